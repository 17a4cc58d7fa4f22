//! The month's Zendesk deliveries: `ticket.created` and `ticket.status_changed` events of the
//! service desk's tickets, and the satisfaction trigger's body (good and bad ratings with
//! comments) for tickets solved in the month, in the shape of `tests/fixtures/zendesk/`.

use chrono::{DateTime, Duration, Utc};
use herald_catalog::Person;
use herald_proto::v1::Source;
use serde_json::{Value, json};

use super::{
    Submission,
    organisation::{Org, Rng, account, hex_id},
};

const ACCOUNT_ID: u64 = 11_873_402;
const SERVICE_DESK_GROUP: &str = "360004418212";

/// One ticket the service desk solved, and what its requester said about it.
struct Ticket<'a> {
    id: u32,
    subject: &'a str,
    /// Zendesk's upper-case type in events (`INCIDENT`, `QUESTION`, `TASK`).
    kind: &'a str,
    priority: &'a str,
    tags: &'a [&'a str],
    agent: &'a Person,
    requester: (String, String),
    created: DateTime<Utc>,
    solved: DateTime<Utc>,
    rating: Option<(&'a str, &'a str)>,
}

fn zendesk_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A ULID-shaped event id, the same for the same seed.
fn event_id(seed: &str) -> String {
    hex_id(seed)[..26].to_ascii_uppercase()
}

fn ticket_event(ticket: &Ticket<'_>, agent_id: &str, solved: bool) -> Submission {
    let (requester_id, _) = &ticket.requester;
    let (at, status, actor, assignee) = if solved {
        (ticket.solved, "SOLVED", agent_id, json!(agent_id))
    } else {
        (ticket.created, "NEW", requester_id.as_str(), Value::Null)
    };
    let what = if solved { "solved" } else { "created" };
    let mut event = json!({
        "meta": {"sequence": {"id": uuid_like(&format!("demo-zd-{}-{what}-seq", ticket.id)), "position": 1, "total": 1}},
    });
    if solved {
        event["current"] = json!("SOLVED");
        event["previous"] = json!("OPEN");
    }
    let body = json!({
        "account_id": ACCOUNT_ID,
        "detail": {
            "actor_id": actor,
            "assignee_id": assignee,
            "brand_id": "360000712004",
            "created_at": zendesk_time(ticket.created),
            "description": ticket.subject,
            "external_id": null,
            "form_id": "360001193512",
            "group_id": SERVICE_DESK_GROUP,
            "id": ticket.id.to_string(),
            "is_public": true,
            "organization_id": "360051820033",
            "priority": ticket.priority,
            "requester_id": requester_id,
            "status": status,
            "subject": ticket.subject,
            "submitter_id": requester_id,
            "tags": ticket.tags,
            "type": ticket.kind,
            "updated_at": zendesk_time(at),
            "via": {"channel": "web"},
        },
        "event": event,
        "id": event_id(&format!("demo-zd-{}-{what}", ticket.id)),
        "subject": format!("zen:ticket:{}", ticket.id),
        "time": at.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string(),
        "type": if solved { "zen:event-type:ticket.status_changed" } else { "zen:event-type:ticket.created" },
        "zendesk_event_version": "2022-11-06",
    });
    Submission {
        source: Source::Zendesk,
        content_type: "application/json",
        body: body.to_string().into_bytes(),
        at,
        wait_for: None,
    }
}

fn uuid_like(seed: &str) -> String {
    super::pages::uuid_of(seed)
}

/// Words, the way the trigger's placeholders render `ticket.type` and `ticket.priority`.
fn word(code: &str) -> String {
    let lower = code.to_ascii_lowercase();
    let mut chars = lower.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// The satisfaction trigger's body (fixtures README §3.5): to-the-minute times, space-separated
/// tags, words for type, status and priority.
fn rating(ticket: &Ticket<'_>, at: DateTime<Utc>) -> Option<Submission> {
    let (score, comment) = ticket.rating?;
    let minute = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%MZ").to_string();
    let (_, requester_email) = &ticket.requester;
    let body = json!({
        "herald_event": "satisfaction_rated",
        "ticket": {
            "id": ticket.id.to_string(),
            "subject": ticket.subject,
            "type": word(ticket.kind),
            "status": "Solved",
            "priority": word(ticket.priority),
            "link": format!("https://larkspur.zendesk.com/agent/tickets/{}", ticket.id),
            "assignee_email": ticket.agent.email,
            "group": "Service Desk",
            "requester_email": requester_email,
            "tags": ticket.tags.join(" "),
            "created_at": minute(ticket.created),
            "updated_at": minute(at),
        },
        "satisfaction": {
            "score": score,
            "rating": if score == "good" { "Good, I'm satisfied" } else { "Bad, I'm unsatisfied" },
            "comment": comment,
        },
    });
    Some(Submission {
        source: Source::Zendesk,
        content_type: "application/json",
        body: body.to_string().into_bytes(),
        at,
        wait_for: None,
    })
}

fn requester(rng: &mut Rng) -> (String, String) {
    let people = [
        "marco.deluca",
        "yara.khan",
        "lars.smit",
        "femke.visser",
        "omar.haddad",
        "eva.jansen",
    ];
    let name = *rng.pick(&people);
    let id = 902_341_188_800 + rng.below(90);
    (id.to_string(), format!("{name}@larkspur.example"))
}

/// A ticket of the month: what, Zendesk's type and priority codes, its tags (a service's alias
/// among them), the agent who solved it, when (days before the anchor), minutes to solve, and the
/// requester's rating with its comment, if they gave one.
struct TicketSpec {
    subject: &'static str,
    kind: &'static str,
    priority: &'static str,
    tags: &'static [&'static str],
    agent: &'static str,
    days_ago: i64,
    minutes_to_solve: i64,
    rating: Option<(&'static str, &'static str)>,
}

const TICKETS: [TicketSpec; 8] = [
    TicketSpec {
        subject: "VPN asks for MFA again every few minutes on depot laptops (Eindhoven)",
        kind: "INCIDENT",
        priority: "HIGH",
        tags: &["remote_access", "depot", "mfa"],
        agent: "p-sofia-rossi",
        days_ago: 23,
        minutes_to_solve: 91,
        rating: Some((
            "good",
            "Sofia sorted all three laptops over the phone in ten minutes. Drivers left on time. Thank you!",
        )),
    },
    TicketSpec {
        subject: "Cannot open shared calendar of the Tilburg planning team",
        kind: "QUESTION",
        priority: "NORMAL",
        tags: &["workplace", "calendar"],
        agent: "p-amara-okafor",
        days_ago: 19,
        minutes_to_solve: 240,
        rating: None,
    },
    TicketSpec {
        subject: "Laptop docking station shows no external monitor",
        kind: "INCIDENT",
        priority: "NORMAL",
        tags: &["workplace", "hardware"],
        agent: "p-amara-okafor",
        days_ago: 14,
        minutes_to_solve: 300,
        rating: Some((
            "bad",
            "Took three days and two visits; the dock was swapped in the end but nobody told me it was ordered.",
        )),
    },
    TicketSpec {
        subject: "Set up VPN on a replacement laptop for a depot manager",
        kind: "TASK",
        priority: "NORMAL",
        tags: &["remote_access", "depot"],
        agent: "p-sofia-rossi",
        days_ago: 10,
        minutes_to_solve: 150,
        rating: None,
    },
    TicketSpec {
        subject: "Outlook keeps asking for the password after the reset",
        kind: "INCIDENT",
        priority: "HIGH",
        tags: &["workplace", "outlook"],
        agent: "p-sofia-rossi",
        days_ago: 6,
        minutes_to_solve: 35,
        rating: Some((
            "good",
            "Fixed while I was still on the call, and she explained how to avoid it next time.",
        )),
    },
    TicketSpec {
        subject: "Request a second monitor for the Venlo dispatch desk",
        kind: "TASK",
        priority: "LOW",
        tags: &["workplace", "hardware"],
        agent: "p-amara-okafor",
        days_ago: 3,
        minutes_to_solve: 420,
        rating: None,
    },
    TicketSpec {
        subject: "VPN drops when switching from Wi-Fi to 4G in the truck cabin",
        kind: "INCIDENT",
        priority: "NORMAL",
        tags: &["remote_access", "mobile"],
        agent: "p-sofia-rossi",
        days_ago: 1,
        minutes_to_solve: 130,
        rating: None,
    },
    TicketSpec {
        subject: "Driver app: route sync fails for every truck of the Venlo depot",
        kind: "INCIDENT",
        priority: "HIGH",
        tags: &["fleet-routing-api", "driver_app"],
        agent: "p-sofia-rossi",
        days_ago: 5,
        minutes_to_solve: 52,
        rating: Some((
            "good",
            "All 40 trucks had their routes again before the second wave left. Great job, thank you!",
        )),
    },
];

/// Tickets raised and solved by the service desk through the month; four of them rated the
/// morning after they were solved.
pub fn deliveries(org: &Org<'_>, rng: &mut Rng, now: DateTime<Utc>) -> Vec<Submission> {
    let mut out = Vec::new();
    for (i, spec) in TICKETS.iter().enumerate() {
        let Some(agent) = org.catalog.person(spec.agent) else {
            continue;
        };
        let Some(agent_id) = account(agent, "zendesk", "user_id") else {
            continue;
        };
        let created = now - Duration::days(spec.days_ago) - rng.minutes(30, 6 * 60);
        let ticket = Ticket {
            id: 5_600 + u32::try_from(i).unwrap_or(0) * 7,
            subject: spec.subject,
            kind: spec.kind,
            priority: spec.priority,
            tags: spec.tags,
            agent,
            requester: requester(rng),
            created,
            solved: created + Duration::minutes(spec.minutes_to_solve) + Duration::seconds(44),
            rating: spec.rating,
        };
        let rated_at = ticket.solved + Duration::hours(16) + rng.minutes(0, 120);
        if ticket.solved > now {
            continue;
        }
        out.push(ticket_event(&ticket, &agent_id, false));
        out.push(ticket_event(&ticket, &agent_id, true));
        if rated_at <= now {
            out.extend(rating(&ticket, rated_at));
        }
    }
    out
}
