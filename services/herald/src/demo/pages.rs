//! The month's on-call pages: PagerDuty v3 webhooks and Opsgenie webhook-integration posts for
//! catalog services, each page triggered, acknowledged and resolved by the person on call (one
//! PagerDuty page resolved by its monitoring integration), in the shape of
//! `tests/fixtures/pagerduty/` and `tests/fixtures/opsgenie/`.

use chrono::{DateTime, Duration, Utc};
use herald_catalog::Person;
use herald_proto::v1::Source;
use serde_json::{Value, json};

use super::{
    Submission,
    organisation::{Org, Rng, account, hex_id},
};

const PAGERDUTY: &str = "https://larkspur.pagerduty.com";
const PAGERDUTY_API: &str = "https://api.pagerduty.com";

/// A PagerDuty service: its id, its name (a catalog alias) and the team it pages.
struct PdService {
    id: &'static str,
    name: &'static str,
    team: (&'static str, &'static str),
    policy: (&'static str, &'static str),
}

const SHIPPING_API: PdService = PdService {
    id: "PSV8R2N",
    name: "Shipping Portal API (prod)",
    team: ("PTM4A7Q", "Platform & SRE"),
    policy: ("PEP2X6C", "Platform & SRE 24x7"),
};
const WMS_GATEWAY: PdService = PdService {
    id: "PSV2WMS",
    name: "WMS RF Gateway (prod)",
    team: ("PTM4A7Q", "Platform & SRE"),
    policy: ("PEP2X6C", "Platform & SRE 24x7"),
};
const VPN: PdService = PdService {
    id: "PSV5VPN",
    name: "GlobalProtect VPN",
    team: ("PNW0T3K", "Network Ops"),
    policy: ("PEP7N4W", "Network Ops on call"),
};

/// One PagerDuty incident: triggered by monitoring, then acknowledged and resolved by people, or
/// resolved by monitoring itself when nobody acted.
struct Page<'a> {
    n: u32,
    service: &'a PdService,
    title: &'a str,
    priority: &'a str,
    triggered: DateTime<Utc>,
    /// Who acknowledged, and after how long; `None`: monitoring resolved it before anyone did.
    ack: Option<(&'a Person, Duration)>,
    resolver: Option<&'a Person>,
    resolved: DateTime<Utc>,
}

fn pd_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn reference(kind: &str, collection: &str, id: &str, summary: &str) -> Value {
    json!({
        "html_url": format!("{PAGERDUTY}/{collection}/{id}"),
        "id": id,
        "self": format!("{PAGERDUTY_API}/{collection}/{id}"),
        "summary": summary,
        "type": kind,
    })
}

fn user_reference(person: &Person) -> Option<Value> {
    let id = account(person, "pagerduty", "user_id")?;
    Some(reference(
        "user_reference",
        "users",
        &id,
        &person.display_name,
    ))
}

/// A PagerDuty id: 14 upper-case letters and digits, the same for the same seed.
fn pd_id(seed: &str) -> String {
    hex_id(seed)
        .bytes()
        .take(14)
        .map(|b| char::from(b).to_ascii_uppercase())
        .collect()
}

/// A UUID-shaped id, the same for the same seed.
pub fn uuid_of(seed: &str) -> String {
    let hex = hex_id(seed);
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

fn pd_event(page: &Page<'_>, event_type: &str, at: DateTime<Utc>, agent: Value) -> Submission {
    let incident_id = pd_id(&format!("demo-page-{}", page.n));
    let status = event_type.trim_start_matches("incident.");
    let assignees: Vec<Value> = match (status, page.ack) {
        ("resolved", _) | (_, None) => Vec::new(),
        (_, Some((person, _))) => user_reference(person).into_iter().collect(),
    };
    let (team_id, team_name) = page.service.team;
    let (policy_id, policy_name) = page.service.policy;
    let body = json!({
        "event": {
            "id": uuid_of(&format!("demo-page-{}-{event_type}", page.n)),
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": pd_time(at),
            "agent": agent,
            "client": null,
            "data": {
                "id": incident_id,
                "type": "incident",
                "self": format!("{PAGERDUTY_API}/incidents/{incident_id}"),
                "html_url": format!("{PAGERDUTY}/incidents/{incident_id}"),
                "number": 4_800 + page.n,
                "status": status,
                "incident_key": hex_id(&format!("demo-page-key-{}", page.n)),
                "created_at": page.triggered.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "title": page.title,
                "service": reference("service_reference", "services", page.service.id, page.service.name),
                "assignees": assignees,
                "escalation_policy": reference("escalation_policy_reference", "escalation_policies", policy_id, policy_name),
                "teams": [reference("team_reference", "teams", team_id, team_name)],
                "priority": {"id": format!("PPR{}", page.priority), "self": format!("{PAGERDUTY_API}/priorities/PPR{}", page.priority), "summary": page.priority, "type": "priority_reference"},
                "urgency": if page.priority == "P1" || page.priority == "P2" { "high" } else { "low" },
                "conference_bridge": null,
                "resolve_reason": null,
            },
        },
    });
    Submission {
        source: Source::Pagerduty,
        content_type: "application/json",
        body: body.to_string().into_bytes(),
        at,
        wait_for: None,
    }
}

/// A page's deliveries: triggered (by its service's monitoring), acknowledged, resolved.
fn pagerduty_page(page: &Page<'_>) -> Vec<Submission> {
    let monitoring = || {
        reference(
            "service_reference",
            "services",
            page.service.id,
            page.service.name,
        )
    };
    let mut out = vec![pd_event(
        page,
        "incident.triggered",
        page.triggered,
        monitoring(),
    )];
    if let Some((person, after)) = page.ack
        && let Some(agent) = user_reference(person)
    {
        out.push(pd_event(
            page,
            "incident.acknowledged",
            page.triggered + after,
            agent,
        ));
    }
    let resolver = page
        .resolver
        .and_then(user_reference)
        .unwrap_or_else(monitoring);
    out.push(pd_event(page, "incident.resolved", page.resolved, resolver));
    out
}

/// A page of the month: where, what, how urgent, when (hours before the anchor), who acknowledged
/// it and after how many minutes, who resolved it, and how long it stayed open.
struct PageSpec {
    service: &'static PdService,
    title: &'static str,
    priority: &'static str,
    hours_ago: i64,
    ack: Option<(&'static str, i64)>,
    resolver: Option<&'static str>,
    minutes_open: i64,
}

const PAGES: [PageSpec; 6] = [
    PageSpec {
        service: &SHIPPING_API,
        title: "Shipping Portal API: 5xx rate above 20% on POST /bookings",
        priority: "P1",
        hours_ago: 27 * 24,
        ack: Some(("p-kwame-mensah", 4)),
        resolver: Some("p-ingrid-lindqvist"),
        minutes_open: 37,
    },
    PageSpec {
        service: &WMS_GATEWAY,
        title: "WMS RF Gateway: confirmation latency p95 above 3 s at DC Tilburg",
        priority: "P3",
        hours_ago: 19 * 24 + 5,
        ack: Some(("p-jonas-weber", 6)),
        resolver: Some("p-jonas-weber"),
        minutes_open: 42,
    },
    PageSpec {
        service: &VPN,
        title: "GlobalProtect VPN: authentication failures above 30% in the EU gateway",
        priority: "P2",
        // Minutes after the firewall change of this week started (month.rs, the failed change).
        hours_ago: 5 * 24 + 7,
        ack: Some(("p-tomas-herrera", 3)),
        resolver: Some("p-tomas-herrera"),
        minutes_open: 95,
    },
    PageSpec {
        service: &SHIPPING_API,
        title: "Shipping Portal API: label service p99 above 8 s",
        priority: "P2",
        // Before the portal's first release this month: that release stays a quiet change.
        hours_ago: 9 * 24 + 2,
        ack: Some(("p-ingrid-lindqvist", 5)),
        resolver: Some("p-kwame-mensah"),
        minutes_open: 51,
    },
    // Monitoring saw the spike end and resolved the page before anyone acknowledged it.
    PageSpec {
        service: &WMS_GATEWAY,
        title: "WMS RF Gateway: connection resets from DC Venlo",
        priority: "P3",
        // Before the scanners' problem was fixed: the warehouse has been quiet since.
        hours_ago: 7 * 24 + 7,
        ack: None,
        resolver: None,
        minutes_open: 6,
    },
    PageSpec {
        service: &SHIPPING_API,
        title: "Shipping Portal API: booking queue depth above 500",
        priority: "P2",
        hours_ago: 20,
        ack: Some(("p-kwame-mensah", 2)),
        resolver: Some("p-kwame-mensah"),
        minutes_open: 33,
    },
];

fn pagerduty(org: &Org<'_>, rng: &mut Rng, now: DateTime<Utc>) -> Vec<Submission> {
    let mut out = Vec::new();
    for (i, spec) in PAGES.iter().enumerate() {
        let ack = match spec.ack {
            Some((id, minutes)) => match org.catalog.person(id) {
                Some(person) => Some((person, Duration::minutes(minutes) + Duration::seconds(17))),
                None => continue,
            },
            None => None,
        };
        let resolver = spec.resolver.and_then(|id| org.catalog.person(id));
        let triggered = now - Duration::hours(spec.hours_ago) - rng.minutes(0, 50);
        let page = Page {
            n: u32::try_from(i).unwrap_or(0) + 1,
            service: spec.service,
            title: spec.title,
            priority: spec.priority,
            triggered,
            ack,
            resolver,
            resolved: triggered + Duration::minutes(spec.minutes_open) + Duration::seconds(41),
        };
        if page.resolved <= now {
            out.extend(pagerduty_page(&page));
        }
    }
    out
}

/// One Opsgenie alert: created by Alertmanager, acknowledged and closed by the person on call.
struct Alert<'a> {
    n: u32,
    message: &'a str,
    entity: &'a str,
    tags: &'a [&'a str],
    priority: &'a str,
    created: DateTime<Utc>,
    responder: &'a Person,
    acknowledged: DateTime<Utc>,
    closed: DateTime<Utc>,
}

/// An Opsgenie webhook post; `updatedAt` is epoch nanoseconds, `createdAt` milliseconds.
fn opsgenie_post(
    alert: &Alert<'_>,
    action: &str,
    at: DateTime<Utc>,
    actor: Option<&Person>,
) -> Submission {
    // An alert created by an integration carries the integration's name and no user id.
    let (username, user_id, via) = match actor {
        Some(person) => (
            account(person, "opsgenie", "username")
                .or_else(|| person.email.clone())
                .unwrap_or_default(),
            account(person, "opsgenie", "user_id"),
            "mobile",
        ),
        None => ("Alertmanager".to_string(), None, "api"),
    };
    let nanos = at.timestamp_nanos_opt().unwrap_or_default();
    let mut body = json!({
        "action": action,
        "alert": {
            "alertId": uuid_of(&format!("demo-alert-{}", alert.n)),
            "message": alert.message,
            "tags": alert.tags,
            "tinyId": (1_900 + alert.n).to_string(),
            "entity": alert.entity,
            "alias": format!("{}:{}", alert.entity, alert.n),
            "createdAt": alert.created.timestamp_millis(),
            "updatedAt": nanos,
            "username": username,
            "source": "Prometheus Alertmanager",
            "priority": alert.priority,
            "teams": ["Platform-SRE"],
            "recipients": ["Platform-SRE_schedule"],
        },
        "source": {"name": "", "type": via},
        "integrationName": "Herald",
        "integrationId": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
    });
    if let Some(user_id) = user_id {
        body["alert"]["userId"] = json!(user_id);
    }
    Submission {
        source: Source::Opsgenie,
        content_type: "application/json",
        body: body.to_string().into_bytes(),
        at,
        wait_for: None,
    }
}

/// An alert of the month: its message, entity and tags, priority, when (hours before the
/// anchor), who responded, and minutes until acknowledged and closed.
struct AlertSpec {
    message: &'static str,
    entity: &'static str,
    tags: &'static [&'static str],
    priority: &'static str,
    hours_ago: i64,
    responder: &'static str,
    minutes_to_ack: i64,
    minutes_open: i64,
}

const ALERTS: [AlertSpec; 4] = [
    AlertSpec {
        message: "[Fleet Routing] optimiser queue lag above 15 minutes",
        entity: "fleet-routing-api",
        tags: &["fleet", "prod", "routing"],
        priority: "P2",
        hours_ago: 25 * 24 + 6,
        responder: "p-ingrid-lindqvist",
        minutes_to_ack: 5,
        minutes_open: 45,
    },
    AlertSpec {
        message: "[WMS] pick-confirmation consumer lag above 5 minutes",
        entity: "wms-rf-gateway",
        tags: &["wms", "prod"],
        priority: "P2",
        hours_ago: 11 * 24 + 3,
        responder: "p-kwame-mensah",
        minutes_to_ack: 3,
        minutes_open: 28,
    },
    AlertSpec {
        message: "[Fleet Routing] proof-of-delivery uploads failing above 10%",
        entity: "fleet-routing-api",
        tags: &["fleet", "prod", "pod"],
        priority: "P2",
        hours_ago: 4 * 24 + 8,
        responder: "p-jonas-weber",
        minutes_to_ack: 7,
        minutes_open: 64,
    },
    AlertSpec {
        message: "[Shipping Portal] certificate expires in 7 days on shipping-portal-prod",
        entity: "shipping-portal-prod",
        tags: &["portal", "prod", "tls"],
        priority: "P3",
        hours_ago: 10,
        responder: "p-ingrid-lindqvist",
        minutes_to_ack: 12,
        minutes_open: 40,
    },
];

fn opsgenie(org: &Org<'_>, rng: &mut Rng, now: DateTime<Utc>) -> Vec<Submission> {
    let mut out = Vec::new();
    for (i, spec) in ALERTS.iter().enumerate() {
        let Some(responder) = org.catalog.person(spec.responder) else {
            continue;
        };
        let created = now - Duration::hours(spec.hours_ago) - rng.minutes(0, 50);
        let alert = Alert {
            n: u32::try_from(i).unwrap_or(0) + 1,
            message: spec.message,
            entity: spec.entity,
            tags: spec.tags,
            priority: spec.priority,
            created,
            responder,
            acknowledged: created
                + Duration::minutes(spec.minutes_to_ack)
                + Duration::milliseconds(27_902),
            closed: created + Duration::minutes(spec.minutes_open) + Duration::milliseconds(18_774),
        };
        if alert.closed > now {
            continue;
        }
        out.push(opsgenie_post(&alert, "Create", alert.created, None));
        out.push(opsgenie_post(
            &alert,
            "Acknowledge",
            alert.acknowledged,
            Some(alert.responder),
        ));
        out.push(opsgenie_post(
            &alert,
            "Close",
            alert.closed,
            Some(alert.responder),
        ));
    }
    out
}

/// Every page of the month, PagerDuty's and Opsgenie's.
pub fn deliveries(org: &Org<'_>, rng: &mut Rng, now: DateTime<Utc>) -> Vec<Submission> {
    let mut out = pagerduty(org, rng, now);
    out.extend(opsgenie(org, rng, now));
    out
}
