//! One test per fixture in tests/fixtures: sent over HTTP exactly as expected.json says (bytes,
//! headers, and the clock where the signature carries a timestamp), answered with its status, and
//! publishing exactly the canonical event of the oracle to a real nats-server, or nothing.

use serde_json::Value;

use crate::support::{rig::*, *};

async fn check_fixture(file: &str) -> anyhow::Result<()> {
    let entry = delivery(file)?;
    let clock = entry["verify_at"]
        .as_str()
        .map(chrono::DateTime::parse_from_rfc3339)
        .transpose()?
        .map(|at| at.with_timezone(&chrono::Utc));
    let rig = Rig::start(test_keys(), clock).await?;
    let source = entry["source"].as_str().unwrap_or_default();
    let response = rig
        .post(source, &fixture_headers(&entry), fixture_bytes(&entry)?)
        .await?;
    let status = response.status().as_u16();
    let body: Value = response.json().await?;
    assert_eq!(
        Some(u64::from(status)),
        entry["status"].as_u64(),
        "{file}: {body}"
    );
    let stored = rig.stored_events().await?;
    let published = entry["published"] == Value::Bool(true);
    assert_eq!(body["published"], Value::Bool(published), "{file}: {body}");
    if !published {
        assert!(
            stored.is_empty(),
            "{file}: nothing published, got {stored:?}"
        );
        return Ok(());
    }
    assert_eq!(stored.len(), 1, "{file}: exactly one event stored");
    let (subject, event) = &stored[0];
    assert_event_matches(file, &entry["event"], event);
    assert_eq!(
        subject,
        &format!(
            "herald.events.{source}.{}",
            entry["event"]["kind"].as_str().unwrap_or_default()
        )
    );
    assert_eq!(body["id"], entry["event"]["id"], "{file}");
    assert_eq!(
        herald_runtime::payload::raw_body(event)?.as_ref(),
        fixture_bytes(&entry)?.as_slice(),
        "{file}: raw payload kept byte for byte for audit"
    );
    assert!(event.received_at.is_some());
    Ok(())
}

macro_rules! fixture_tests {
    ($($name:ident => $file:literal,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() -> anyhow::Result<()> {
                check_fixture($file).await
            }
        )*

        /// A fixture added to expected.json without a test here fails this test.
        #[test]
        fn every_fixture_has_its_test() -> anyhow::Result<()> {
            let tested: std::collections::BTreeSet<&str> = [$($file),*].into_iter().collect();
            let oracle = expected()?;
            let listed: std::collections::BTreeSet<&str> = oracle["deliveries"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["file"].as_str())
                .collect();
            assert_eq!(tested, listed);
            Ok(())
        }
    };
}

fixture_tests! {
    servicenow_incident_resolved_p1 => "servicenow/incident-resolved-p1.json",
    servicenow_incident_reopened => "servicenow/incident-reopened.json",
    servicenow_change_implemented => "servicenow/change-implemented.json",
    servicenow_change_failed => "servicenow/change-failed.json",
    servicenow_problem_closed => "servicenow/problem-closed.json",
    servicenow_ritm_fulfilled => "servicenow/ritm-fulfilled.json",
    jira_issue_resolved => "jira/issue-resolved.json",
    jira_issue_created => "jira/issue-created.json",
    jira_request_resolved => "jira/request-resolved.json",
    pagerduty_incident_acknowledged => "pagerduty/incident-acknowledged.json",
    pagerduty_incident_resolved => "pagerduty/incident-resolved.json",
    pagerduty_incident_resolved_rotation => "pagerduty/incident-resolved-rotation.json",
    opsgenie_alert_acknowledge => "opsgenie/alert-acknowledge.json",
    opsgenie_alert_addnote => "opsgenie/alert-addnote.json",
    opsgenie_alert_close => "opsgenie/alert-close.json",
    zendesk_ticket_created => "zendesk/ticket-created.json",
    zendesk_ticket_solved => "zendesk/ticket-solved.json",
    zendesk_satisfaction_good => "zendesk/satisfaction-good.json",
    github_pull_request_merged => "github/pull-request-merged.json",
    github_deployment_status_success => "github/deployment-status-success.json",
    github_ping => "github/ping.json",
    cloudevents_automation_run_structured => "cloudevents/automation-run-structured.json",
    cloudevents_automation_run_binary => "cloudevents/automation-run-binary.data.json",
    cloudevents_automation_run_failed => "cloudevents/automation-run-failed.json",
}
