//! Digests from two spotlight processes on one stream and one database: the weekly digest goes out
//! once at its local time, and a restart of both repeats nothing.

use std::time::Duration;

use chrono::{Datelike, SubsecRound, Utc};
use herald_proto::{
    time::{opt_from_timestamp, to_timestamp},
    v1::{Announcement, EventKind, Value, ValueLabel, Win, WinStatus},
};
use herald_testkit::{NatsServer, ServiceProcess, TestDatabase};

use crate::support::{spawn_replica, wait_ready_on};
use prost::Message;

const STREAM: &str = "HERALD_ANNOUNCEMENTS";

/// Every announcement on the stream, by subject, oldest first.
async fn on_stream(bus: &async_nats::Client) -> anyhow::Result<Vec<(String, Announcement)>> {
    let js = async_nats::jetstream::new(bus.clone());
    let mut stream = js.get_stream(STREAM).await?;
    let last = stream.info().await?.state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        let raw = stream.get_raw_message(seq).await?;
        out.push((
            raw.subject.to_string(),
            Announcement::decode(raw.payload.as_ref())?,
        ));
    }
    Ok(out)
}

fn announced(processes: &[(ServiceProcess, u16)]) -> usize {
    processes
        .iter()
        .map(|(p, _)| p.output().matches("digest announced").count())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_weekly_digest_goes_out_once_from_two_replicas_and_not_again_after_a_restart()
-> anyhow::Result<()> {
    herald_testkit::init_tracing();
    herald_runtime::install_tls_provider();
    let nats = NatsServer::start().await?;
    let db = TestDatabase::create().await?;
    // Built first (when stale), so the seconds below are the replicas' start and not a build.
    herald_testkit::binary("herald-spotlight")?;
    // The digest's local time: a few seconds from now, today, in Oslo.
    let tz: chrono_tz::Tz = "Europe/Oslo".parse()?;
    // Whole seconds: the schedule says "HH:MM:SS".
    let due = (Utc::now() + chrono::Duration::seconds(8)).trunc_subsecs(0);
    let local = due.with_timezone(&tz);
    let day = local.weekday().to_string().to_lowercase();
    let at = local.format("%H:%M:%S").to_string();
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("herald.toml");
    let catalog = herald_testkit::fixtures_dir().join("catalog.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[nats]
url = "{nats}"
[database]
url = "{db}"
[catalog]
path = {catalog:?}
[spotlight]
headline_min_value = 1000000000
digest_check_every = "200ms"
digest_lease = "5s"
[[spotlight.digests]]
name = "weekly"
period = "week"
day = "{day}"
at = "{at}"
timezone = "Europe/Oslo"
"#,
            nats = nats.url(),
            db = db.url(),
            catalog = catalog.display().to_string(),
        ),
    )?;
    let mut replicas: Vec<(ServiceProcess, u16)> = Vec::new();
    for _ in 0..2 {
        replicas.push(spawn_replica("herald-spotlight", "spotlight", &config).await?);
    }
    // A win inside the period the digest tells (the week before, when today is Monday).
    let schedule = herald_spotlight::digest::schedule::Schedule {
        name: "weekly".into(),
        period: herald_spotlight::periods::PeriodKind::Week,
        day: herald_spotlight::digest::schedule::Day::Weekday(local.weekday()),
        at: local.time(),
        tz,
    };
    let period = schedule.covers(due);
    let occurred = period
        .start
        .and_hms_opt(12, 0, 0)
        .expect("noon")
        .and_local_timezone(tz)
        .earliest()
        .expect("a local noon")
        .with_timezone(&Utc);
    let win = Win {
        id: "w-digest-1".into(),
        kind: EventKind::IncidentResolved as i32,
        occurred_at: Some(to_timestamp(occurred)),
        headline: "Warehouse Management restored in 1 h 12 min: 2,040 people back at work".into(),
        status: WinStatus::Confirmed as i32,
        business_service: Some("svc-warehouse".into()),
        team: Some("team-platform".into()),
        value: Some(Value {
            amount: 21_000.0,
            currency: "EUR".into(),
            label: ValueLabel::Avoided as i32,
            hours: 300.0,
            ..Default::default()
        }),
        ..Default::default()
    };
    let bus = async_nats::connect(nats.url()).await?;
    herald_testkit::nats::publish(
        &bus,
        "herald.wins.incident_resolved",
        &win.id,
        win.encode_to_vec(),
    )
    .await?;
    let logs = |replicas: &[(ServiceProcess, u16)]| {
        replicas
            .iter()
            .map(|(p, _)| p.output())
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    herald_testkit::eventually(
        "one digest on the stream",
        Duration::from_secs(30),
        || async {
            let n = herald_testkit::nats::stream_len(&bus, STREAM).await.ok()?;
            (n >= 1).then_some(())
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", logs(&replicas)))?;
    // Both replicas keep looking for a while: still one digest, and with it one private prompt per
    // team (the win credits nobody, so every team's members went unrecognised).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let first = on_stream(&bus).await?;
    let digests: Vec<&Announcement> = first
        .iter()
        .filter(|(s, _)| s == "herald.announcements.digest")
        .map(|(_, a)| a)
        .collect();
    assert_eq!(digests.len(), 1);
    assert_eq!(announced(&replicas), 1, "built once:\n{}", logs(&replicas));
    let prompts: Vec<&Announcement> = first
        .iter()
        .filter(|(s, _)| s == "herald.announcements.prompt")
        .map(|(_, a)| a)
        .collect();
    assert_eq!(
        prompts.len(),
        6,
        "one per team with a lead: {:?}",
        first.iter().map(|(s, _)| s).collect::<Vec<_>>()
    );
    let desk = prompts
        .iter()
        .find(|p| p.team.as_deref() == Some("team-service-desk"))
        .and_then(|p| p.card.clone())
        .unwrap_or_default();
    assert!(
        desk.title
            .starts_with("2 people in Service Desk have had no recognised win for 4 weeks"),
        "{}",
        desk.title
    );
    assert!(
        desk.summary.contains("Amara Okafor, Sofia Rossi"),
        "{}",
        desk.summary
    );
    let digest = digests[0].clone();
    let sent = opt_from_timestamp(digest.created_at.as_ref()).expect("created_at");
    assert!(sent >= due, "sent at {sent}, before its time {due}");
    let card = digest.card.clone().unwrap_or_default();
    assert!(card.title.ends_with(": 1 verified win"), "{}", card.title);
    assert!(
        card.summary.contains("Warehouse Management restored"),
        "{}",
        card.summary
    );
    assert_eq!(card.value_lines.len(), 1, "{card:?}");
    assert_eq!(
        digest.id,
        format!("digest-weekly-{}", period.start),
        "the id names the period it tells"
    );
    assert!(digest.id.starts_with("digest-weekly-"), "{}", digest.id);
    assert_eq!(
        digest.digest, "weekly",
        "routes may pick digests by schedule"
    );

    // A restart of both, still inside the grace period: nothing is built or sent again.
    for (process, http) in replicas.iter_mut() {
        process.terminate(Duration::from_secs(20)).await?;
        process.restart().await?;
        wait_ready_on(*http, process).await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        on_stream(&bus).await?.len(),
        first.len(),
        "nothing more on the stream"
    );
    assert_eq!(
        announced(&replicas),
        1,
        "a restart sent it again:\n{}",
        logs(&replicas)
    );
    Ok(())
}
