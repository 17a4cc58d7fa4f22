//! The month's automation runs: structured CloudEvents of Herald's own type
//! `dev.herald.automation.run`, each reporting how many runs it made and the manual minutes one run
//! replaces (`runs`, `minutes_per_run`, and their product as `minutes_saved`), one failed run
//! among them, in the shape of `tests/fixtures/cloudevents/`.

use chrono::{DateTime, Duration, Utc};
use herald_proto::v1::Source;
use serde_json::json;

use super::{Submission, organisation::Rng};

/// An automation and what one of its runs saves.
struct Automation {
    id: &'static str,
    name: &'static str,
    service: &'static str,
    team: &'static str,
    owner: &'static str,
    minutes_per_run: i64,
}

const AUTOMATIONS: [Automation; 5] = [
    Automation {
        id: "rf-scanner-reimage",
        name: "Zero-touch re-imaging of warehouse RF scanners",
        service: "Warehouse Management",
        team: "Workplace Technology",
        owner: "lucia.fernandez@larkspur.example",
        minutes_per_run: 22,
    },
    Automation {
        id: "new-starter-accounts",
        name: "New-starter account provisioning (AD, Microsoft 365, SAP roles)",
        service: "Workplace & Collaboration",
        team: "Workplace Technology",
        owner: "lucia.fernandez@larkspur.example",
        minutes_per_run: 38,
    },
    Automation {
        id: "licence-reclaim",
        name: "Reclaim unused Microsoft 365 licences",
        service: "Microsoft 365",
        team: "Workplace Technology",
        owner: "daniel.brooks@larkspur.example",
        minutes_per_run: 9,
    },
    Automation {
        id: "cert-renewal",
        name: "Automatic certificate renewal for the WMS message brokers",
        service: "Warehouse Management",
        team: "Platform & SRE",
        owner: "ingrid.lindqvist@larkspur.example",
        minutes_per_run: 45,
    },
    Automation {
        id: "vpn-profile-push",
        name: "VPN profile push to depot laptops",
        service: "Remote Access (VPN)",
        team: "Network Operations",
        owner: "grace.kim@larkspur.example",
        minutes_per_run: 12,
    },
];

fn run_event(
    automation: &Automation,
    runs: i64,
    failed: bool,
    started: DateTime<Utc>,
    finished: DateTime<Utc>,
) -> Submission {
    let run_id = format!("run-{}-{}", automation.id, finished.format("%Y%m%d-%H%M"));
    let mut data = json!({
        "automation": automation.name,
        "run_id": run_id,
        "status": if failed { "failed" } else { "succeeded" },
        "business_service": automation.service,
        "team": automation.team,
        "owner": automation.owner,
        "runs": if failed { 0 } else { runs },
        "minutes_per_run": automation.minutes_per_run,
        "minutes_saved": if failed { 0 } else { runs * automation.minutes_per_run },
        "started_at": started.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "finished_at": finished.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "url": format!("https://automation.larkspur.example/runs/{run_id}"),
    });
    if failed {
        data["error"] =
            json!("Graph API returned 429 for 30 minutes; run aborted before any change.");
    }
    let body = json!({
        "specversion": "1.0",
        "type": "dev.herald.automation.run",
        "source": format!("https://automation.larkspur.example/runbooks/{}", automation.id),
        "id": run_id,
        "time": finished.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "subject": automation.id,
        "datacontenttype": "application/json",
        "data": data,
    });
    Submission {
        source: Source::Cloudevents,
        content_type: "application/cloudevents+json",
        body: body.to_string().into_bytes(),
        at: finished,
        wait_for: None,
    }
}

/// Each automation's batches through the month: (automation, runs, failed, days ago).
pub fn deliveries(rng: &mut Rng, now: DateTime<Utc>) -> Vec<Submission> {
    let batches: [(usize, i64, bool, i64); 12] = [
        (0, 64, false, 27),
        (1, 9, false, 24),
        (4, 95, false, 20),
        (3, 12, false, 17),
        (0, 58, false, 13),
        (2, 0, true, 11),
        (1, 14, false, 10),
        (2, 310, false, 6),
        (4, 140, false, 4),
        // A scanner firmware roll-out: every RF scanner re-imaged without a visit.
        (0, 380, false, 3),
        (1, 6, false, 1),
        (3, 4, false, 0),
    ];
    batches
        .iter()
        .filter_map(|&(which, runs, failed, days)| {
            let automation = &AUTOMATIONS[which];
            let finished = now - Duration::days(days) - rng.minutes(30, 600);
            let started = finished - rng.minutes(5, 90);
            (finished <= now).then(|| run_event(automation, runs, failed, started, finished))
        })
        .collect()
}
