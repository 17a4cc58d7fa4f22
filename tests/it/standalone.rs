//! `herald up` as a real process: one binary, the embedded bus and SQLite in a data directory.

use std::time::Duration;

use serde_json::Value;

use crate::support::{
    WEBHOOK_PATH, WEBHOOK_SECRET, standalone::Standalone, verify_standard_webhook,
};

const WAIT: Duration = Duration::from_secs(60);

fn fixture(file: &str) -> anyhow::Result<Vec<u8>> {
    Ok(std::fs::read(herald_testkit::fixtures_dir().join(file))?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_accepted_just_before_a_kill_is_announced_once_after_the_restart()
-> anyhow::Result<()> {
    let mut herald = Standalone::start().await?;
    let result = async {
        let first = herald
            .post(fixture("servicenow/incident-resolved-p1.json")?)
            .await?;
        assert_eq!(first.status().as_u16(), 202);
        let delivered = herald.webhook.wait_for(WEBHOOK_PATH, 1, WAIT).await?;
        verify_standard_webhook(&delivered[0], WEBHOOK_SECRET)?;
        assert!(delivered[0].text().contains("Warehouse Management"));
        // The first delivery must be final before the kill: a send the kill interrupts between the
        // receiver's answer and notify's record of it is sent again under the same webhook-id
        // (ADR 1), which is not what this test is about.
        herald.wait_settled().await?;

        let second = herald
            .post(crate::support::export_row(
                crate::support::HEADLINE_INCIDENT,
            )?)
            .await?;
        assert_eq!(
            second.status().as_u16(),
            202,
            "accepted, so it must not be lost"
        );
        // Frozen the moment it answered, then killed: the event is stored on the bus but cannot
        // have gone further, so only the restarted process can announce it.
        herald.freeze()?;
        herald.process.kill().await?;
        assert_eq!(
            herald.webhook.requests().len(),
            1,
            "the second event was announced before the kill, so the restart proved nothing"
        );

        herald.process.restart().await?;
        herald.wait_ready().await?;
        let delivered = herald.webhook.wait_for(WEBHOOK_PATH, 2, WAIT).await?;
        assert!(
            delivered[1]
                .text()
                .contains(crate::support::HEADLINE_INCIDENT),
            "{}",
            delivered[1].text()
        );

        // Once every message is acknowledged and every delivery final, nothing more can come:
        // each announcement arrived exactly once.
        herald.wait_settled().await?;
        let all = herald.webhook.requests();
        let mut ids: Vec<String> = all
            .iter()
            .map(|r| {
                r.json()
                    .map(|j| j["data"]["id"].as_str().unwrap_or("").to_string())
            })
            .collect::<Result<_, _>>()?;
        ids.sort();
        ids.dedup();
        assert_eq!(
            (all.len(), ids.len()),
            (2, 2),
            "one delivery per announcement, none lost or repeated"
        );

        // The first event again, after the restart: still a duplicate, announced nowhere.
        let again: Value = herald
            .post(fixture("servicenow/incident-resolved-p1.json")?)
            .await?
            .json()
            .await?;
        assert_eq!(again["duplicate"], true);
        herald.wait_settled().await?;
        assert_eq!(herald.webhook.requests().len(), 2);
        anyhow::Ok(())
    }
    .await;
    if result.is_err() {
        eprintln!("{}", herald.process.output());
    }
    result
}

/// The P1 fixture moved to the last two hours: resolved an hour ago, in an hour, against its
/// four-hour target.
fn recent_p1(now: chrono::DateTime<chrono::Utc>) -> anyhow::Result<Vec<u8>> {
    let mut body: Value =
        serde_json::from_slice(&fixture("servicenow/incident-resolved-p1.json")?)?;
    let stamp = |at: chrono::DateTime<chrono::Utc>| at.format("%Y-%m-%d %H:%M:%S").to_string();
    let opened = now - chrono::Duration::hours(2);
    let record = &mut body["record"];
    record["opened_at"] = stamp(opened).into();
    record["resolved_at"] = stamp(opened + chrono::Duration::hours(1)).into();
    record["sla_due"] = stamp(opened + chrono::Duration::hours(4)).into();
    body["sys_id"] = "00000000000000000000000000000abc".into();
    Ok(serde_json::to_vec(&body)?)
}

/// The fixture catalog in a time zone where it is midday now (`Etc/GMT±N`), so "the last two
/// hours" lie in the same day, week and month there whenever the test runs: in the catalog's own
/// zone, a run in the first hours of a Monday or of the 1st would put the win in the last period.
fn catalog_at_midday(
    dir: &std::path::Path,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<std::path::PathBuf> {
    use chrono::Timelike;
    let catalog = std::fs::read_to_string(herald_testkit::fixtures_dir().join("catalog.toml"))?;
    // Local time = UTC + offset, with offset in -11..=12 hours; the Etc zones' sign is inverted.
    let offset = 12 - i64::from(now.hour());
    let zone = match offset {
        0 => "Etc/GMT".to_string(),
        east if east > 0 => format!("Etc/GMT-{east}"),
        west => format!("Etc/GMT+{}", -west),
    };
    let original = "timezone = \"Europe/Amsterdam\"";
    anyhow::ensure!(
        catalog.contains(original),
        "the fixture catalog no longer says {original}"
    );
    let path = dir.join("catalog-midday.toml");
    std::fs::write(
        &path,
        catalog.replace(original, &format!("timezone = \"{zone}\"")),
    )?;
    Ok(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_value_and_spotlight_of_the_events_sent() -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    let dir = tempfile::tempdir()?;
    let catalog = catalog_at_midday(dir.path(), now)?;
    let mut herald = Standalone::start_with_catalog(&catalog, "").await?;
    let result = async {
        assert_eq!(herald.post(recent_p1(now)?).await?.status().as_u16(), 202);
        herald.webhook.wait_for(WEBHOOK_PATH, 1, WAIT).await?;
        let page = herald_testkit::raw_http::get(&format!("{}/", herald.http)).await?;
        assert_eq!(page.status, 200);
        // 2,040 people × 3 working hours saved × €38 = €232,560, in the last 7 days and the
        // month so far, under its own label.
        assert_eq!(
            page.body.matches("<div class=value>€232,560</div>").count(),
            2,
            "the last 7 days' and the month's avoided value: {}",
            page.body
        );
        assert!(
            page.body.contains("1 win · 6,120 working hours"),
            "{}",
            page.body
        );
        assert!(
            !page.body.contains("people back at work ·"),
            "people are never added up across wins"
        );
        assert!(
            page.body.contains("Ingrid Lindqvist"),
            "the spotlight names the resolver"
        );
        assert!(
            !page.body.contains("Jonas") && !page.body.contains("a member of"),
            "the opted-out contributor is never a spotlight story"
        );
        assert!(
            page.body.contains("Warehouse Management restored in 1 h"),
            "the latest wins"
        );
        anyhow::Ok(())
    }
    .await;
    if result.is_err() {
        eprintln!("{}", herald.process.output());
    }
    herald.process.terminate(Duration::from_secs(20)).await?;
    result
}
