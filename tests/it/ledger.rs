//! Operators' view of verification and of model changes, with the real `herald` binary against
//! `herald up`: a confirmed win is listed by `herald wins`, `herald rescore --dry-run` under a
//! catalog with Warehouse Management's hourly rate doubled shows that win doubling and changes
//! nothing, and `herald ledger rebuild --check` finds the live figures equal to the ledger.

use std::{process::Output, time::Duration};

use herald_proto::v1::{ExplainRequest, scoring_client::ScoringClient};
use serde_json::Value;

use crate::support::herald_cli as herald;
use crate::support::standalone::Standalone;

const WAIT: Duration = Duration::from_secs(60);
const RECORD: &str = "INC0048213";

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn json(output: &Output) -> anyhow::Result<Value> {
    serde_json::from_slice(&output.stdout)
        .map_err(|e| anyhow::anyhow!("not JSON ({e}): {}", describe(output)))
}

/// The fixture catalog with Warehouse Management's loaded hourly rate doubled.
fn doubled_catalog() -> anyhow::Result<String> {
    let text = std::fs::read_to_string(herald_testkit::fixtures_dir().join("catalog.toml"))?;
    let start = text
        .find("id = \"svc-warehouse\"")
        .ok_or_else(|| anyhow::anyhow!("no warehouse in the fixture catalog"))?;
    let at = start
        + text[start..]
            .find("loaded_hourly_rate = 38.0")
            .ok_or_else(|| anyhow::anyhow!("the warehouse's rate is not 38.0"))?;
    let end = at + "loaded_hourly_rate = 38.0".len();
    Ok(format!(
        "{}loaded_hourly_rate = 76.0{}",
        &text[..at],
        &text[end..]
    ))
}

#[tokio::test]
async fn wins_rescore_and_ledger_check_against_herald_up() -> anyhow::Result<()> {
    let herald_up = Standalone::start().await?;
    let url = herald_up.grpc.clone();
    let body =
        std::fs::read(herald_testkit::fixtures_dir().join("servicenow/incident-resolved-p1.json"))?;
    let response = herald_up.post(body).await?;
    anyhow::ensure!(response.status() == 202, "not accepted: {response:?}");

    // The hold-back is 0 here: the win is confirmed by the next pass of the confirmer.
    let confirmed = herald_testkit::eventually("the confirmed win", WAIT, || {
        let url = url.clone();
        async move {
            let output = herald(&[
                "wins",
                "list",
                "--status",
                "confirmed",
                "--json",
                "--url",
                &url,
            ])
            .await
            .ok()?;
            let list = json(&output).ok()?;
            list["wins"]
                .as_array()?
                .iter()
                .find(|w| w["record_number"] == RECORD)
                .cloned()
        }
    })
    .await?;
    herald_up.wait_settled().await?;
    let win_id = confirmed["id"].as_str().unwrap_or_default().to_string();
    let old = confirmed["amount"].as_f64().unwrap_or_default();
    assert!(old > 0.0, "{confirmed}");
    assert_eq!(confirmed["status"], "confirmed");
    assert_eq!(confirmed["label"], "avoided");

    let list = herald(&["wins", "list", "--status", "confirmed", "--url", &url]).await?;
    assert!(list.status.success(), "{}", describe(&list));
    let text = stdout(&list);
    for expected in [
        win_id.as_str(),
        RECORD,
        "incident_resolved",
        "[avoided]",
        "confirmed",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
    let pending = herald(&["wins", "pending", "--url", &url]).await?;
    assert!(pending.status.success(), "{}", describe(&pending));
    assert!(
        stdout(&pending).contains("no wins pending verification"),
        "{}",
        describe(&pending)
    );

    // The proposed catalog, reviewed before it lands.
    let proposed = herald_up.dir.path().join("proposed-catalog.toml");
    std::fs::write(&proposed, doubled_catalog()?)?;
    let proposed = proposed.display().to_string();
    let refused = herald(&["rescore", "--catalog", &proposed, "--url", &url]).await?;
    assert_eq!(refused.status.code(), Some(2), "{}", describe(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--dry-run"),
        "{}",
        describe(&refused)
    );

    // A catalog scoring would refuse is refused here too, with the catalog's own message.
    let broken = herald_up.dir.path().join("broken-catalog.toml");
    std::fs::write(
        &broken,
        doubled_catalog()?.replace("loaded_hourly_rate = 76.0", "loaded_hourly_rate = -1.0"),
    )?;
    let broken = broken.display().to_string();
    let refused = herald(&["rescore", "--catalog", &broken, "--dry-run", "--url", &url]).await?;
    assert_eq!(refused.status.code(), Some(1), "{}", describe(&refused));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("InvalidArgument") && message.contains("loaded_hourly_rate"),
        "{}",
        describe(&refused)
    );

    let dry_run = herald(&[
        "rescore",
        "--catalog",
        &proposed,
        "--dry-run",
        "--json",
        "--url",
        &url,
    ])
    .await?;
    assert!(dry_run.status.success(), "{}", describe(&dry_run));
    let report = json(&dry_run)?;
    assert_eq!(report["changed"], 1, "{report}");
    let change = &report["changes"][0];
    assert_eq!(change["win_id"], win_id.as_str(), "{report}");
    assert_eq!(change["effect"], "changed");
    let new = change["new_amount"].as_f64().unwrap_or_default();
    assert!((change["old_amount"].as_f64().unwrap_or_default() - old).abs() < 0.01);
    assert!((new - 2.0 * old).abs() < 0.01, "{report}");
    let avoided = report["totals"]
        .as_array()
        .and_then(|totals| totals.iter().find(|t| t["label"] == "avoided"))
        .cloned()
        .unwrap_or_default();
    assert!(
        (avoided["after"].as_f64().unwrap_or_default() - 2.0 * old).abs() < 0.01,
        "{report}"
    );

    let table = herald(&[
        "rescore",
        "--catalog",
        &proposed,
        "--dry-run",
        "--url",
        &url,
    ])
    .await?;
    assert!(table.status.success(), "{}", describe(&table));
    let text = stdout(&table);
    for expected in [
        win_id.as_str(),
        "nothing was changed",
        "Totals by label",
        "avoided",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }

    // Nothing changed: explain still shows the stored amount.
    let mut scoring = ScoringClient::connect(url.clone()).await?;
    let explanation = scoring
        .explain(ExplainRequest { id: win_id.clone() })
        .await?
        .into_inner();
    let stored = explanation
        .win
        .and_then(|w| w.value)
        .map(|v| v.amount)
        .unwrap_or_default();
    assert!(
        (stored - old).abs() < 0.01,
        "explain shows {stored}, was {old}"
    );

    let check = herald(&["ledger", "rebuild", "--check", "--url", &url]).await?;
    assert!(check.status.success(), "{}", describe(&check));
    let text = stdout(&check);
    assert!(text.contains("ledger entries checked"), "{text}");
    assert!(text.contains("the live figures match the ledger"), "{text}");
    let check = json(&herald(&["ledger", "rebuild", "--check", "--json", "--url", &url]).await?)?;
    assert!(
        check["entries"].as_u64().unwrap_or_default() >= 1,
        "{check}"
    );
    assert!(
        check["rows_checked"].as_u64().unwrap_or_default() >= 1,
        "{check}"
    );
    Ok(())
}
