//! Verified outcomes end to end, distributed and under `herald up`: a win reopened inside its
//! hold-back is never announced and nobody keeps its credit; with no hold-back the reopen corrects
//! the announcement on every route that carried it; a confirmed win is announced once, after its
//! window.

use std::time::{Duration, Instant};

use herald_proto::v1::{
    GetLeaderboardRequest, GetValueSummaryRequest, ListWinsRequest, Period, PeriodKind, Scope,
    WinStatus, scoring_client::ScoringClient, spotlight_client::SpotlightClient,
};
use serde_json::Value;

use crate::support::{Herald, SLACK_PATH, WEBHOOK_PATH, standalone::Standalone};

const WAIT: Duration = Duration::from_secs(60);
const RESOLVED: &str = "servicenow/incident-resolved-p1.json";
const HOLD_BACK: &str = "3s";

fn fixture() -> anyhow::Result<Vec<u8>> {
    Ok(std::fs::read(
        herald_testkit::fixtures_dir().join(RESOLVED),
    )?)
}

/// INC0048213 as ServiceNow sends it when the ticket is reopened a day after its resolution.
fn reopened() -> anyhow::Result<Vec<u8>> {
    let mut row: Value = serde_json::from_slice(&fixture()?)?;
    row["sys_mod_count"] = Value::from(24);
    row["previous"] = serde_json::json!({"state": "6", "incident_state": "6"});
    row["audit"] = Value::Array(vec![]);
    let record = &mut row["record"];
    for (key, value) in [
        ("state", "2"),
        ("incident_state", "2"),
        ("resolved_at", ""),
        ("resolved_by", ""),
        ("close_code", ""),
        ("reopen_count", "1"),
        ("reopened_time", "2025-03-12 07:30:00"),
        ("sys_updated_on", "2025-03-12 07:30:00"),
        ("sys_mod_count", "24"),
    ] {
        record[key] = Value::from(value);
    }
    Ok(serde_json::to_vec(&row)?)
}

/// The week of the fixture's outcome.
fn week() -> Option<Period> {
    Some(Period {
        kind: PeriodKind::Week as i32,
        at: Some(herald_proto::time::to_timestamp(
            chrono::DateTime::parse_from_rfc3339("2025-03-11T12:00:00Z")
                .expect("a time")
                .to_utc(),
        )),
    })
}

/// Nobody holds credit for that week: no team, no person, no value.
async fn nobody_keeps_credit(grpc: &str) -> anyhow::Result<()> {
    let mut spotlight = SpotlightClient::connect(grpc.to_string()).await?;
    for scope in [Scope::Person, Scope::Team, Scope::Service] {
        let board = spotlight
            .get_leaderboard(GetLeaderboardRequest {
                period: week(),
                scope: scope as i32,
                limit: 10,
            })
            .await?
            .into_inner();
        assert!(board.entries.is_empty(), "{scope:?}: {board:?}");
    }
    let value = spotlight
        .get_value_summary(GetValueSummaryRequest { period: week() })
        .await?
        .into_inner();
    assert_eq!((value.wins, value.total_value), (0, 0.0), "{value:?}");
    Ok(())
}

/// Waits until scoring has withdrawn the win, and past the end of its hold-back, so a
/// confirmation would have happened by now if it were going to.
async fn withdrawn_past_its_hold_back(grpc: &str) -> anyhow::Result<()> {
    let mut scoring = ScoringClient::connect(grpc.to_string()).await?;
    let revoked = herald_testkit::eventually("the win withdrawn", WAIT, || {
        let mut scoring = scoring.clone();
        async move {
            let list = scoring
                .list_wins(ListWinsRequest {
                    status: WinStatus::Revoked as i32,
                    limit: 10,
                })
                .await
                .ok()?
                .into_inner();
            list.wins.into_iter().next()
        }
    })
    .await?;
    assert!(
        revoked.status_reason.contains("reopened"),
        "{}",
        revoked.status_reason
    );
    let confirm_at = herald_proto::time::opt_from_timestamp(revoked.confirm_at.as_ref())
        .ok_or_else(|| anyhow::anyhow!("no confirm_at"))?;
    let left = (confirm_at - chrono::Utc::now() + chrono::Duration::seconds(1))
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(left).await;
    let pending = scoring
        .list_wins(ListWinsRequest {
            status: WinStatus::Provisional as i32,
            limit: 10,
        })
        .await?
        .into_inner();
    assert_eq!(pending.total, 0, "nothing waits for confirmation");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_a_reopen_inside_the_hold_back_is_never_announced() -> anyhow::Result<()> {
    let mut herald =
        Herald::start_with_env(&[("HERALD_SCORING__VERIFICATION__HOLD_BACK", HOLD_BACK)]).await?;
    let result = async {
        assert_eq!(
            herald.post_signed("servicenow", fixture()?).await?.status(),
            202
        );
        assert_eq!(
            herald
                .post_signed("servicenow", reopened()?)
                .await?
                .status(),
            202
        );
        withdrawn_past_its_hold_back(&herald.grpc(1)).await?;
        herald.wait_settled().await?;
        assert!(herald.slack.requests().is_empty(), "nothing on Slack");
        assert!(
            herald.webhook.requests().is_empty(),
            "nothing on the webhook"
        );
        nobody_keeps_credit(&herald.grpc(2)).await
    }
    .await;
    if result.is_err() {
        eprintln!("{}", herald.logs());
    }
    herald.terminate_all().await?;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_with_no_hold_back_a_reopen_corrects_every_route() -> anyhow::Result<()> {
    let mut herald = Herald::start().await?;
    let result = async {
        assert_eq!(
            herald.post_signed("servicenow", fixture()?).await?.status(),
            202
        );
        herald.slack.wait_for(SLACK_PATH, 1, WAIT).await?;
        herald.webhook.wait_for(WEBHOOK_PATH, 1, WAIT).await?;
        assert_eq!(
            herald
                .post_signed("servicenow", reopened()?)
                .await?
                .status(),
            202
        );
        let slack = herald.slack.wait_for(SLACK_PATH, 2, WAIT).await?;
        let hooks = herald.webhook.wait_for(WEBHOOK_PATH, 2, WAIT).await?;
        assert!(
            slack[1].text().contains("Correction: Warehouse Management"),
            "{}",
            slack[1].text()
        );
        assert!(slack[1].text().contains("reopened"), "{}", slack[1].text());
        let correction = hooks[1].json()?;
        assert_eq!(
            correction["type"], "herald.announcement.correction",
            "{correction}"
        );
        herald.wait_settled().await?;
        assert_eq!(
            herald.slack.requests().len(),
            2,
            "the headline, then its correction"
        );
        nobody_keeps_credit(&herald.grpc(2)).await
    }
    .await;
    if result.is_err() {
        eprintln!("{}", herald.logs());
    }
    herald.terminate_all().await?;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_a_confirmed_win_is_announced_once_after_its_hold_back() -> anyhow::Result<()> {
    let mut herald =
        Herald::start_with_env(&[("HERALD_SCORING__VERIFICATION__HOLD_BACK", HOLD_BACK)]).await?;
    let result = async {
        let posted = Instant::now();
        assert_eq!(
            herald.post_signed("servicenow", fixture()?).await?.status(),
            202
        );
        herald.slack.wait_for(SLACK_PATH, 1, WAIT).await?;
        assert!(
            posted.elapsed() >= Duration::from_secs(3),
            "announced {:?} after the POST, inside its hold-back",
            posted.elapsed()
        );
        herald.wait_settled().await?;
        assert_eq!(herald.slack.requests().len(), 1);
        assert_eq!(herald.webhook.requests().len(), 1);
        Ok(())
    }
    .await;
    if result.is_err() {
        eprintln!("{}", herald.logs());
    }
    herald.terminate_all().await?;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_a_reopen_inside_the_hold_back_is_never_announced() -> anyhow::Result<()> {
    let mut herald = Standalone::start_with(&format!(
        "[scoring.verification.kinds.incident_resolved]\nhold_back = \"{HOLD_BACK}\"\n"
    ))
    .await?;
    let result = async {
        assert_eq!(herald.post(fixture()?).await?.status(), 202);
        assert_eq!(herald.post(reopened()?).await?.status(), 202);
        withdrawn_past_its_hold_back(&herald.grpc).await?;
        herald.wait_settled().await?;
        assert!(herald.webhook.requests().is_empty(), "nothing announced");
        nobody_keeps_credit(&herald.grpc).await
    }
    .await;
    if result.is_err() {
        eprintln!("{}", herald.process.output());
    }
    herald.process.terminate(Duration::from_secs(20)).await?;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_with_no_hold_back_a_reopen_sends_a_correction() -> anyhow::Result<()> {
    let mut herald = Standalone::start().await?;
    let result = async {
        assert_eq!(herald.post(fixture()?).await?.status(), 202);
        herald.webhook.wait_for(WEBHOOK_PATH, 1, WAIT).await?;
        assert_eq!(herald.post(reopened()?).await?.status(), 202);
        let hooks = herald.webhook.wait_for(WEBHOOK_PATH, 2, WAIT).await?;
        let correction = hooks[1].json()?;
        assert_eq!(
            correction["type"], "herald.announcement.correction",
            "{correction}"
        );
        herald.wait_settled().await?;
        assert_eq!(herald.webhook.requests().len(), 2);
        nobody_keeps_credit(&herald.grpc).await
    }
    .await;
    if result.is_err() {
        eprintln!("{}", herald.process.output());
    }
    herald.process.terminate(Duration::from_secs(20)).await?;
    result
}
