//! Herald end to end: four service binaries as separate processes, a real nats-server with
//! JetStream, real PostgreSQL, and real HTTP receivers for Slack and a webhook.

use std::time::Duration;

use herald_proto::{
    time::to_timestamp,
    v1::{GetLeaderboardRequest, Period, PeriodKind, Scope, spotlight_client::SpotlightClient},
};
use serde_json::Value;

use crate::support::*;

const WAIT: Duration = Duration::from_secs(30);

/// A ServiceNow P1 resolved, signed, becomes a Slack message and a signed webhook; a repeat changes
/// nothing; bad deliveries are refused; the leaderboard credits the resolver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolved_incident_is_announced_on_slack_and_webhook() -> anyhow::Result<()> {
    let herald = Herald::start().await?;
    let result = scenario(&herald).await;
    if result.is_err() {
        eprintln!("{}", herald.logs());
    }
    result
}

async fn scenario(herald: &Herald) -> anyhow::Result<()> {
    let response = herald
        .post_fixture("servicenow/incident-resolved-p1.json")
        .await?;
    assert_eq!(response.status().as_u16(), 202);
    let accepted: Value = response.json().await?;
    assert_eq!(
        accepted["id"],
        "servicenow:incident:de67bddaeb083f8fbf5aa0a6fa7222c2:23"
    );

    // (a) Slack: Block Kit naming the business service, the people credited, a labelled value.
    let slack = herald.slack.wait_for(SLACK_PATH, 1, WAIT).await?;
    let message = slack[0].json()?;
    let blocks = message["blocks"].as_array().cloned().unwrap_or_default();
    assert!(!blocks.is_empty() && blocks.len() <= 50);
    assert_eq!(blocks[0]["type"], "header");
    let text = message.to_string();
    assert!(
        text.contains("Warehouse Management"),
        "service from the catalog: {text}"
    );
    assert!(
        text.contains("Ingrid Lindqvist (resolved it)"),
        "credited people: {text}"
    );
    assert!(
        text.contains("Tomás Herrera") && text.contains("Amara Okafor"),
        "{text}"
    );
    assert!(
        text.contains("a member of Platform &amp; SRE"),
        "the opted-out person, by team: {text}"
    );
    assert!(
        !text.contains("Jonas"),
        "an opted-out person is named: {text}"
    );
    assert!(
        text.contains("€216,475 of lost work avoided"),
        "value line: {text}"
    );
    assert!(
        text.contains("avoided: cost that did not have to be paid"),
        "its label: {text}"
    );

    // (b) The webhook, signed with Standard Webhooks: verified as a receiver would.
    let hooks = herald.webhook.wait_for(WEBHOOK_PATH, 1, WAIT).await?;
    verify_standard_webhook(&hooks[0], WEBHOOK_SECRET)?;
    let body = hooks[0].json()?;
    assert_eq!(body["type"], "herald.announcement.headline_win");
    assert_eq!(body["data"]["business_service"], "svc-warehouse");

    // The same delivery again: accepted as a duplicate, one announcement per route still.
    let again = herald
        .post_fixture("servicenow/incident-resolved-p1.json")
        .await?;
    assert_eq!(again.status().as_u16(), 202);
    let again: Value = again.json().await?;
    assert_eq!(again["duplicate"], true);

    // Bad deliveries: refused with a JSON error saying what is wrong, nothing published.
    let p1 =
        std::fs::read(herald_testkit::fixtures_dir().join("servicenow/incident-resolved-p1.json"))?;
    let ingest = herald.http(0);
    let wrong = herald
        .client
        .post(format!("{ingest}/v1/events/servicenow"))
        .header(
            "x-herald-signature",
            "sha256=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .body(p1.clone())
        .send()
        .await?;
    assert_eq!(wrong.status().as_u16(), 401);
    let error: Value = wrong.json().await?;
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("secret"),
        "{error}"
    );
    let malformed = herald
        .post_signed("servicenow", b"{not json".to_vec())
        .await?;
    assert_eq!(malformed.status().as_u16(), 400);
    assert!(malformed.json::<Value>().await?["error"]["code"].is_string());
    let unknown = herald
        .client
        .post(format!("{ingest}/v1/events/nowhere"))
        .body("{}")
        .send()
        .await?;
    assert_eq!(unknown.status().as_u16(), 404);
    let too_big = herald_testkit::raw_http::post(
        &format!("{ingest}/v1/events/servicenow"),
        &[],
        vec![b'x'; 2 * 1024 * 1024 + 1],
        false,
    )
    .await?;
    assert_eq!(too_big.status, 413);
    assert!(too_big.body.contains("bytes"), "{}", too_big.body);

    // Once every stage has acknowledged everything and every delivery is final, nothing more
    // can be sent: count.
    herald.wait_settled().await?;
    assert_eq!(
        herald.slack.requests().len(),
        1,
        "Slack got more than one message"
    );
    assert_eq!(
        herald.webhook.requests().len(),
        1,
        "the webhook got more than one message"
    );

    // GetLeaderboard over gRPC: the resolver, with half of the hours given back.
    let mut spotlight = SpotlightClient::connect(herald.grpc(2)).await?;
    let at =
        chrono::DateTime::parse_from_rfc3339("2025-03-11T08:04:37Z")?.with_timezone(&chrono::Utc);
    let board = spotlight
        .get_leaderboard(GetLeaderboardRequest {
            period: Some(Period {
                kind: PeriodKind::Week as i32,
                at: Some(to_timestamp(at)),
            }),
            scope: Scope::Person as i32,
            limit: 5,
        })
        .await?
        .into_inner();
    let first = board
        .entries
        .first()
        .ok_or_else(|| anyhow::anyhow!("empty leaderboard"))?;
    assert_eq!(first.id, "p-ingrid-lindqvist");
    assert_eq!(first.display_name, "Ingrid Lindqvist");
    // People are shown by what they did: money per person is withheld unless configured.
    assert!(first.value_withheld && first.value == 0.0, "{first:?}");
    // 2,040 people × 2.7925 h saved, half to the resolver.
    assert!(
        (first.hours - 2040.0 * 2.7925 / 2.0).abs() < 0.01,
        "{first:?}"
    );
    assert_eq!(first.wins, 1);
    Ok(())
}

/// SIGKILL of scoring right after the 202, then a restart: the announcement still arrives, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoring_killed_right_after_the_202_still_announces_exactly_once() -> anyhow::Result<()> {
    let mut herald = Herald::start().await?;
    let result = kill_scenario(&mut herald).await;
    if result.is_err() {
        eprintln!("{}", herald.logs());
    }
    result
}

async fn kill_scenario(herald: &mut Herald) -> anyhow::Result<()> {
    // Freeze scoring first so it has certainly not finished the event when it dies: the kill
    // lands while the event is accepted but unprocessed (or pulled and unacknowledged).
    let pid = herald
        .scoring
        .pid()
        .ok_or_else(|| anyhow::anyhow!("scoring not running"))?;
    std::process::Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()?;
    let response = herald
        .post_signed("servicenow", export_row(HEADLINE_INCIDENT)?)
        .await?;
    assert_eq!(response.status().as_u16(), 202);
    herald.scoring.kill().await?;

    // The event is stored and scoring has not finished it: it is still waiting for scoring (not
    // yet delivered, or delivered and unacknowledged), no win exists, so nothing was announced.
    let nats = async_nats::connect(herald.nats.url()).await?;
    let js = async_nats::jetstream::new(nats.clone());
    let mut scoring: async_nats::jetstream::consumer::PullConsumer = js
        .get_stream("HERALD_EVENTS")
        .await?
        .get_consumer("scoring")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let info = scoring.info().await?;
    assert_eq!(
        info.num_pending + info.num_ack_pending as u64,
        1,
        "the event waits for scoring: {info:?}"
    );
    assert_eq!(
        herald_testkit::nats::stream_len(&nats, "HERALD_WINS").await?,
        0,
        "no win before the restart"
    );
    assert!(herald.slack.requests().is_empty());

    herald.scoring.restart().await?;
    herald.wait_ready(1).await?;
    let slack = herald.slack.wait_for(SLACK_PATH, 1, WAIT).await?;
    assert!(
        slack[0].text().contains(HEADLINE_INCIDENT),
        "{}",
        slack[0].text()
    );
    herald.webhook.wait_for(WEBHOOK_PATH, 1, WAIT).await?;

    // Every stage has acknowledged everything (a lost ack would leave a message pending and bring
    // a redelivery) and every delivery is final: still one each.
    herald.wait_settled().await?;
    assert_eq!(
        herald.slack.requests().len(),
        1,
        "announced more than once on Slack"
    );
    assert_eq!(
        herald.webhook.requests().len(),
        1,
        "announced more than once on the webhook"
    );

    // And every service stops cleanly on SIGTERM.
    for (index, name) in SERVICES.iter().enumerate() {
        let code = herald
            .process(index)
            .terminate(Duration::from_secs(20))
            .await?;
        assert_eq!(code, Some(0), "{name} exited with {code:?}");
    }
    Ok(())
}
