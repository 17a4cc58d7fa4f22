//! `herald up --demo`: the sample organisation (Larkspur Logistics), console and file channels, and
//! a realistic month of ITSM deliveries replayed through ingest's own gRPC API, signed like the
//! tools sign them.
//!
//! The month is generated, not stored: the same seed gives the same records, with times relative to
//! now so this week's and this month's figures are populated. Record identities are stable, so a
//! second `--demo` start on the same data directory adds nothing twice.

use std::{collections::HashMap, path::Path};

use anyhow::Context;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use herald_catalog::{Catalog, Person, Service, Team};
use herald_proto::v1::{SubmitRequest, ingest_client::IngestClient};
use herald_runtime::ConfigLoader;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

/// The sample organisation, as shipped in `deploy/catalog.toml`.
pub const CATALOG: &str = include_str!("../../../deploy/catalog.toml");
/// The demo's webhook secret (for both sources).
pub const SECRET: &str = "herald-demo-secret";
const INSTANCE: &str = "https://larkspur.service-now.com";

/// The demo configuration: the sample catalog (written to the data directory so it can be read and
/// edited), both sources signed with [`SECRET`], headline wins on the console, every announcement
/// in `announcements.jsonl`.
pub fn config_loader(data_dir: &Path) -> anyhow::Result<ConfigLoader> {
    let catalog = data_dir.join("catalog.toml");
    if !catalog.exists() {
        std::fs::write(&catalog, CATALOG)
            .with_context(|| format!("cannot write {}", catalog.display()))?;
    }
    let announcements = data_dir.join("announcements.jsonl");
    let toml = format!(
        r#"
[telemetry]
log_level = "warn"

[catalog]
path = "catalog.toml"

[sources.servicenow]
secret = "{SECRET}"

[sources.cloudevents]
secret = "{SECRET}"

[spotlight]
headline_min_value = 5000
dashboard_refresh_seconds = 10

[notify]
poll_interval = "200ms"

[[notify.channels]]
name = "console"
kind = "console"

[[notify.channels]]
name = "file"
kind = "file"
path = {announcements:?}

[[notify.routes]]
name = "headlines-to-console"
channel = "console"
kinds = ["headline_win"]

[[notify.routes]]
name = "everything-to-file"
channel = "file"
"#,
        announcements = announcements.display().to_string(),
    );
    Ok(ConfigLoader::from_toml_str(&toml, data_dir)?)
}

/// One delivery as a tool would send it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub source: &'static str,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// When the outcome happened; deliveries are replayed in this order.
    pub at: DateTime<Utc>,
}

/// Sends the month through ingest's gRPC API, each source signed with its secret (unsigned where it
/// has none); returns a one-line summary.
pub async fn replay(grpc_url: &str, secrets: &HashMap<String, String>) -> anyhow::Result<String> {
    let catalog = Catalog::from_toml_str(CATALOG)?;
    let deliveries = month(&catalog, Utc::now());
    let client = IngestClient::connect(grpc_url.to_string())
        .await
        .with_context(|| format!("cannot reach ingest at {grpc_url}"))?;
    let total = deliveries.len();
    let results: Vec<anyhow::Result<bool>> = futures::stream::iter(deliveries)
        .map(|d| {
            let mut client = client.clone();
            async move {
                let mut headers =
                    HashMap::from([("content-type".to_string(), d.content_type.to_string())]);
                if let Some(secret) = secrets.get(d.source) {
                    headers.insert("x-herald-signature".to_string(), sign(secret, &d.body));
                }
                let response = client
                    .submit(SubmitRequest {
                        source: d.source.to_string(),
                        body: d.body,
                        headers,
                    })
                    .await
                    .map_err(|s| anyhow::anyhow!("{}: {}", d.source, s.message()))?;
                Ok(response.into_inner().published)
            }
        })
        .buffered(8)
        .collect()
        .await;
    let published = results.iter().filter(|r| matches!(r, Ok(true))).count();
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.err().map(|e| e.to_string()))
        .collect();
    if let Some(first) = failed.first() {
        anyhow::bail!(
            "{} of {total} demo deliveries were refused, the first: {first}",
            failed.len()
        );
    }
    Ok(format!(
        "demo: sent {total} deliveries from the last 30 days, all accepted ({published} were outcomes \
         to score); headline wins appear above, every announcement in announcements.jsonl"
    ))
}

/// `sha256=<Base64 HMAC-SHA256>`, as ServiceNow and CloudEvents senders sign for Herald.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(body);
    format!(
        "sha256={}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// A small deterministic generator: the same month every time.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        // Callers never pass an empty slice: the catalog is checked before generating.
        &items[usize::try_from(self.below(items.len() as u64)).unwrap_or(0)]
    }

    fn minutes(&mut self, from: i64, to: i64) -> Duration {
        let span = u64::try_from(to - from).unwrap_or(1);
        Duration::minutes(from + i64::try_from(self.below(span)).unwrap_or(0))
    }
}

fn hex_id(seed: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(seed.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn is_sys_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn person_ref(p: &Person) -> Value {
    let sys_id = p
        .accounts
        .get("servicenow")
        .and_then(|a| a.get("sys_id"))
        .cloned()
        .unwrap_or_default();
    json!({"value": sys_id, "display_value": p.display_name})
}

fn user_name(p: &Person) -> String {
    p.accounts
        .get("servicenow")
        .and_then(|a| a.get("user_name"))
        .cloned()
        .unwrap_or_else(|| p.id.clone())
}

fn team_ref(t: &Team) -> Value {
    let sys_id = t
        .aliases
        .iter()
        .find(|a| is_sys_id(a))
        .cloned()
        .unwrap_or_else(|| t.id.clone());
    json!({"value": sys_id, "display_value": t.name})
}

fn service_ref(s: &Service) -> Value {
    let sys_id = s
        .aliases
        .iter()
        .find(|a| is_sys_id(a))
        .cloned()
        .unwrap_or_else(|| s.id.clone());
    json!({"value": sys_id, "display_value": s.name})
}

fn ci_of(s: &Service) -> String {
    s.aliases
        .iter()
        .find(|a| !is_sys_id(a) && a.contains('-'))
        .cloned()
        .unwrap_or_else(|| s.name.clone())
}

fn caller(rng: &mut Rng) -> Value {
    let first = [
        "Pieter", "Yara", "Noor", "Mateo", "Eva", "Lars", "Sanne", "Omar", "Femke", "Jules",
    ];
    let last = [
        "de Vries", "Khan", "Haddad", "Moreau", "Jansen", "Smit", "Bakker", "Visser", "Mulder",
        "Bos",
    ];
    let name = format!("{} {}", rng.pick(&first), rng.pick(&last));
    json!({"value": hex_id(&name), "display_value": name})
}

fn titles(service: &str) -> &'static [&'static str] {
    match service {
        "svc-warehouse" => &[
            "Pick confirmations delayed in WMS at DC Venlo",
            "Label printer queue stuck at DC Tilburg",
            "WMS report export times out",
            "RF scanner logins fail after shift change",
        ],
        "svc-shipping-portal" => &[
            "Tracking page slow for business customers",
            "Booking confirmation emails delayed",
            "Customer cannot download proof of delivery",
        ],
        "svc-erp-finance" => &[
            "Invoice run stuck in SAP Finance",
            "Payables approval workflow shows an error",
            "Month-end close job needs a restart",
        ],
        "svc-workplace" => &[
            "Outlook cannot connect for a user",
            "Laptop will not boot after an update",
            "Teams meetings drop audio",
            "Printer offline on the third floor",
        ],
        "svc-remote-access" => &[
            "VPN disconnects every few minutes",
            "MFA prompt loops on VPN login",
            "Depot Duisburg cannot reach the VPN gateway",
        ],
        "svc-fleet" => &[
            "Route plans missing for the morning shift",
            "Proof-of-delivery uploads failing from trucks",
            "Truck telemetry delayed",
        ],
        _ => &["Service degraded for users", "Users report errors"],
    }
}

struct Org<'a> {
    catalog: &'a Catalog,
    desk: Vec<&'a Person>,
}

impl<'a> Org<'a> {
    fn members(&self, team: &str) -> Vec<&'a Person> {
        let people: Vec<&Person> = self
            .catalog
            .people()
            .iter()
            .filter(|p| p.team.as_deref() == Some(team))
            .collect();
        if people.is_empty() {
            self.catalog.people().iter().collect()
        } else {
            people
        }
    }

    fn team(&self, id: &str) -> Option<&'a Team> {
        self.catalog.team(id)
    }
}

/// SLA target per priority, as a typical service desk sets them.
fn sla(priority: u32) -> Duration {
    match priority {
        1 => Duration::hours(4),
        2 => Duration::hours(8),
        3 => Duration::days(3),
        _ => Duration::days(5),
    }
}

struct IncidentSpec<'a> {
    n: u32,
    service: &'a Service,
    team: &'a Team,
    priority: u32,
    title: String,
    opened: DateTime<Utc>,
    resolved: DateTime<Utc>,
    assignee: &'a Person,
    helpers: Vec<&'a Person>,
    triage: Option<&'a Person>,
    automated: bool,
}

fn incident_body(spec: &IncidentSpec<'_>, rng: &mut Rng) -> (Value, String) {
    let sys_id = hex_id(&format!("demo-incident-{}", spec.n));
    let due = spec.opened + sla(spec.priority);
    let (resolver, close_code) = if spec.automated {
        (
            json!({"value": "29c684ccce6411d9614e5b27f96472c7", "display_value": "system"}),
            "No resolution provided",
        )
    } else {
        (person_ref(spec.assignee), "Solution provided")
    };
    let mut audit = Vec::new();
    let mut journal = Vec::new();
    if let Some(triage) = spec.triage {
        audit.push(json!({"fieldname": "assigned_to", "oldvalue": "", "newvalue": person_ref(triage)["value"], "user": user_name(triage), "sys_created_on": stamp(spec.opened)}));
        audit.push(json!({"fieldname": "assigned_to", "oldvalue": person_ref(triage)["value"], "newvalue": person_ref(spec.assignee)["value"], "user": user_name(triage), "sys_created_on": stamp(spec.opened + Duration::minutes(9))}));
        journal.push(json!({"element": "work_notes", "sys_created_by": user_name(triage), "sys_created_on": stamp(spec.opened + Duration::minutes(6)), "value": "Impact confirmed with the users; routing to the owning team."}));
    }
    for helper in &spec.helpers {
        journal.push(json!({"element": "work_notes", "sys_created_by": user_name(helper), "sys_created_on": stamp(spec.opened + Duration::minutes(20)), "value": "Checked the dependencies on my side: healthy."}));
    }
    if !spec.automated {
        journal.push(json!({"element": "work_notes", "sys_created_by": user_name(spec.assignee), "sys_created_on": stamp(spec.resolved - Duration::minutes(3)), "value": "Root cause found and fixed; users confirmed it works again."}));
    }
    let mod_count = 6 + rng.below(6);
    let record = json!({
        "number": format!("INC{:07}", 50_000 + spec.n),
        "short_description": spec.title,
        "state": "6",
        "priority": spec.priority.to_string(),
        "caller_id": caller(rng),
        "opened_at": stamp(spec.opened),
        "business_service": service_ref(spec.service),
        "cmdb_ci": ci_of(spec.service),
        "assignment_group": team_ref(spec.team),
        "assigned_to": if spec.automated { json!("") } else { person_ref(spec.assignee) },
        "resolved_by": resolver,
        "resolved_at": stamp(spec.resolved),
        "close_code": close_code,
        "reassignment_count": if spec.triage.is_some() { "1" } else { "0" },
        "reopen_count": "0",
        "reopened_time": "",
        "made_sla": if spec.resolved <= due { "true" } else { "false" },
        "sla_due": stamp(due),
        "sys_mod_count": mod_count.to_string(),
    });
    let body = json!({
        "instance": INSTANCE, "table": "incident", "sys_id": sys_id, "sys_mod_count": mod_count,
        "operation": "update", "previous": {"state": "2"}, "record": record, "audit": audit, "journal": journal,
    });
    (body, sys_id)
}

fn servicenow(body: &Value, at: DateTime<Utc>) -> Delivery {
    Delivery {
        source: "servicenow",
        content_type: "application/json",
        body: body.to_string().into_bytes(),
        at,
    }
}

/// A month of deliveries ending at `now`, in the order they happened.
pub fn month(catalog: &Catalog, now: DateTime<Utc>) -> Vec<Delivery> {
    let mut rng = Rng(0x5eed_1a2b_3c4d_5e6f);
    let services: Vec<&Service> = catalog
        .services()
        .iter()
        .filter(|s| s.team.is_some())
        .collect();
    let desk_team = catalog
        .teams()
        .first()
        .map(|t| t.id.clone())
        .unwrap_or_default();
    let org = Org {
        catalog,
        desk: Vec::new(),
    };
    let org = Org {
        desk: org.members(&desk_team),
        ..org
    };
    if services.is_empty() || catalog.people().is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut n = 0u32;
    let mut incident = |rng: &mut Rng,
                        out: &mut Vec<Delivery>,
                        service: &Service,
                        priority: u32,
                        title: Option<&str>,
                        opened: DateTime<Utc>,
                        restore: Duration,
                        automated: bool|
     -> (Value, String) {
        n += 1;
        let team_id = service.team.clone().unwrap_or_default();
        let Some(team) = org.team(&team_id) else {
            return (Value::Null, String::new());
        };
        let members = org.members(&team_id);
        // Headline outages go to someone who may be named, so the demo's spotlight has a face.
        let nameable: Vec<&Person> = members
            .iter()
            .copied()
            .filter(|p| p.spotlight == herald_catalog::SpotlightPolicy::OptIn)
            .collect();
        let assignee = if title.is_some() && !nameable.is_empty() {
            *rng.pick(&nameable)
        } else {
            *rng.pick(&members)
        };
        let helpers: Vec<&Person> = members
            .iter()
            .copied()
            .filter(|p| p.id != assignee.id)
            .take(usize::try_from(rng.below(3)).unwrap_or(0))
            .collect();
        let triage = (!org.desk.is_empty() && rng.below(3) > 0).then(|| *rng.pick(&org.desk));
        let spec = IncidentSpec {
            n,
            service,
            team,
            priority,
            title: title
                .map(String::from)
                .unwrap_or_else(|| rng.pick(titles(&service.id)).to_string()),
            opened,
            resolved: opened + restore,
            assignee,
            helpers,
            triage,
            automated,
        };
        let (body, sys_id) = incident_body(&spec, rng);
        out.push(servicenow(&body, spec.resolved));
        (body, sys_id)
    };

    // Everyday incidents: three or four a day over the month, nearly all inside their SLA.
    for day in (0..30).rev() {
        for _ in 0..(3 + rng.below(2)) {
            let service = *rng.pick(&services);
            let priority = if rng.below(10) < 4 { 3 } else { 4 };
            let opened = now - Duration::days(day) - rng.minutes(60, 20 * 60);
            let restore = match priority {
                3 => rng.minutes(90, 40 * 60),
                _ => rng.minutes(180, 90 * 60),
            };
            if opened + restore > now {
                continue;
            }
            let automated = rng.below(25) == 0;
            incident(
                &mut rng, &mut out, service, priority, None, opened, restore, automated,
            );
        }
    }

    // The outages that make headlines.
    let by_id = |id: &str| {
        services
            .iter()
            .copied()
            .find(|s| s.id == id)
            .unwrap_or(services[0])
    };
    let outages = [
        (
            "svc-warehouse",
            1,
            "RF scanners cannot confirm picks at DC Venlo and DC Tilburg",
            Duration::days(9) + Duration::hours(3),
            72,
        ),
        (
            "svc-remote-access",
            2,
            "VPN gateway rejects logins for remote depots",
            Duration::days(16),
            310,
        ),
        (
            "svc-fleet",
            2,
            "Routing API times out for the morning dispatch",
            Duration::days(4) + Duration::hours(2),
            250,
        ),
        (
            "svc-erp-finance",
            2,
            "SAP Finance posting queue halted during month-end",
            Duration::days(22),
            380,
        ),
        (
            "svc-shipping-portal",
            1,
            "Customers cannot print shipping labels",
            Duration::hours(6),
            45,
        ),
    ];
    for (service, priority, title, ago, minutes) in outages {
        let opened = now - ago;
        if opened + Duration::minutes(minutes) <= now {
            incident(
                &mut rng,
                &mut out,
                by_id(service),
                priority,
                Some(title),
                opened,
                Duration::minutes(minutes),
                false,
            );
        }
    }

    // A fix that did not hold: resolved, then reopened by its caller two days later.
    let opened = now - Duration::days(12);
    let (mut body, _) = incident(
        &mut rng,
        &mut out,
        by_id("svc-workplace"),
        3,
        Some("Shared mailbox stops syncing for the finance team"),
        opened,
        Duration::hours(5),
        false,
    );
    if let Some(record) = body.get_mut("record") {
        let reopened = opened + Duration::days(2);
        record["state"] = json!("2");
        record["reopened_time"] = json!(stamp(reopened));
        record["reopen_count"] = json!("1");
        record["resolved_at"] = json!("");
        record["resolved_by"] = json!("");
        body["sys_mod_count"] = json!(14);
        body["previous"] = json!({"state": "6"});
        out.push(servicenow(&body, reopened));
    }

    out.extend(requests(&mut rng, &org, now));
    out.extend(changes_and_problem(&org, &services, now));
    out.extend(automations(&mut rng, now));
    out.sort_by_key(|d| d.at);
    out
}

fn requests(rng: &mut Rng, org: &Org<'_>, now: DateTime<Utc>) -> Vec<Delivery> {
    let items = [
        "Standard laptop bundle for a new starter in Finance",
        "Access to SAP Finance for a new accounts-payable analyst",
        "Replacement phone for a warehouse shift lead",
        "Second monitor for a dispatcher",
        "Standard laptop bundle for a new starter in Customer Service",
        "VPN token for a new depot manager",
    ];
    let Some(workplace) = org.team("team-workplace") else {
        return Vec::new();
    };
    let service = org.catalog.service("svc-workplace");
    let members = org.members(&workplace.id);
    items
        .iter()
        .enumerate()
        .filter_map(|(i, title)| {
            let opened = now - Duration::days(26 - 4 * i64::try_from(i).unwrap_or(0)) - rng.minutes(0, 300);
            let closed = opened + rng.minutes(24 * 60, 72 * 60);
            if closed > now {
                return None;
            }
            let due = opened + Duration::days(5);
            let by = *rng.pick(&members);
            let sys_id = hex_id(&format!("demo-ritm-{i}"));
            let record = json!({
                "number": format!("RITM{:07}", 104_000 + i),
                "short_description": title,
                "state": "3",
                "priority": "4",
                "opened_at": stamp(opened),
                "business_service": service.map(service_ref).unwrap_or(Value::Null),
                "cmdb_ci": "",
                "assignment_group": team_ref(workplace),
                "assigned_to": person_ref(by),
                "closed_by": person_ref(by),
                "closed_at": stamp(closed),
                "due_date": stamp(due),
                "requested_for": caller(rng),
                "reassignment_count": "0",
                "reopen_count": "0",
                "sys_mod_count": "12",
            });
            let body = json!({"instance": INSTANCE, "table": "sc_req_item", "sys_id": sys_id, "sys_mod_count": 12, "record": record,
                              "journal": [{"element": "work_notes", "sys_created_by": user_name(by), "sys_created_on": stamp(closed - Duration::hours(1)), "value": "Delivered and set up with the user."}]});
            Some(servicenow(&body, closed))
        })
        .collect()
}

fn changes_and_problem(org: &Org<'_>, services: &[&Service], now: DateTime<Utc>) -> Vec<Delivery> {
    let mut out = Vec::new();
    let find = |id: &str| services.iter().copied().find(|s| s.id == id);
    let person = |id: &str| org.catalog.person(id);
    // A release that went in quietly.
    if let (Some(service), Some(team), Some(lead), Some(dev)) = (
        find("svc-shipping-portal"),
        org.team("team-platform"),
        person("p-rahul-iyer"),
        person("p-hana-sato"),
    ) {
        let start = now - Duration::days(8) - Duration::hours(2);
        let end = start + Duration::minutes(104);
        let record = json!({
            "number": "CHG0032001", "short_description": "Shipping Portal release: blue/green cut-over", "state": "3",
            "priority": "3", "business_service": service_ref(service), "cmdb_ci": ci_of(service),
            "assignment_group": team_ref(team), "assigned_to": person_ref(lead), "closed_by": person_ref(lead),
            "opened_at": stamp(start - Duration::days(5)), "work_start": stamp(start), "work_end": stamp(end),
            "close_code": "successful", "closed_at": stamp(end + Duration::hours(10)), "made_sla": "true",
            "reassignment_count": "0", "reopen_count": "0", "sys_mod_count": "30",
        });
        let body = json!({"instance": INSTANCE, "table": "change_request", "sys_id": hex_id("demo-chg-1"), "sys_mod_count": 30,
            "record": record, "related": {"incidents_caused": 0},
            "journal": [{"element": "work_notes", "sys_created_by": user_name(dev), "sys_created_on": stamp(end - Duration::minutes(10)), "value": "Smoke tests green on the new stack."}]});
        out.push(servicenow(&body, end + Duration::hours(10)));
    }
    // A change that failed, rolled back, with a blameless postmortem; responders wrote the notes.
    if let (Some(service), Some(team), Some(implementer), Some(closer), Some(r1), Some(r2)) = (
        find("svc-remote-access"),
        org.team("team-network"),
        person("p-tomas-herrera"),
        person("p-grace-kim"),
        person("p-kwame-mensah"),
        person("p-ingrid-lindqvist"),
    ) {
        let start = now - Duration::days(15) - Duration::hours(8);
        let end = start + Duration::minutes(95);
        let record = json!({
            "number": "CHG0031988", "short_description": "Apply the quarterly firewall policy bundle to the edge firewalls", "state": "3",
            "priority": "3", "business_service": service_ref(service), "cmdb_ci": ci_of(service),
            "assignment_group": team_ref(team), "assigned_to": person_ref(implementer), "closed_by": person_ref(closer),
            "opened_at": stamp(start - Duration::days(7)), "work_start": stamp(start), "work_end": stamp(end),
            "close_code": "unsuccessful", "closed_at": stamp(end + Duration::hours(11)),
            "u_postmortem_url": "https://wiki.larkspur.example/ops/postmortems/PM-2025-011", "made_sla": "true",
            "reassignment_count": "0", "reopen_count": "0", "sys_mod_count": "27",
        });
        let body = json!({"instance": INSTANCE, "table": "change_request", "sys_id": hex_id("demo-chg-2"), "sys_mod_count": 27,
        "record": record, "related": {"incidents_caused": 2},
        "journal": [
            {"element": "work_notes", "sys_created_by": user_name(r1), "sys_created_on": stamp(start + Duration::minutes(12)), "value": "VPN authentication failures from 22:09; bridge opened."},
            {"element": "work_notes", "sys_created_by": user_name(r2), "sys_created_on": stamp(end), "value": "Rolled back; service restored; timeline captured for the postmortem."}
        ]});
        out.push(servicenow(&body, end + Duration::hours(11)));
    }
    // A root cause removed: the recurring scanner disconnects.
    if let (Some(service), Some(team), Some(owner)) = (
        find("svc-warehouse"),
        org.team("team-network"),
        person("p-grace-kim"),
    ) {
        let closed = now - Duration::days(3);
        let record = json!({
            "number": "PRB0040201", "short_description": "Recurring RF scanner disconnects during shift change", "state": "107",
            "priority": "2", "business_service": service_ref(service), "cmdb_ci": ci_of(service),
            "assignment_group": team_ref(team), "assigned_to": person_ref(owner), "resolved_by": person_ref(owner),
            "opened_at": stamp(closed - Duration::days(40)), "resolved_at": stamp(closed - Duration::days(10)),
            "closed_at": stamp(closed), "resolution_code": "fix_applied", "reassignment_count": "1", "reopen_count": "0",
            "sys_mod_count": "19",
        });
        let body = json!({"instance": INSTANCE, "table": "problem", "sys_id": hex_id("demo-prb-1"), "sys_mod_count": 19,
            "record": record, "related": {"incident_count": 17, "incident_count_since_fix": 0}});
        out.push(servicenow(&body, closed));
    }
    out
}

fn automations(rng: &mut Rng, now: DateTime<Utc>) -> Vec<Delivery> {
    let runs = [
        (
            "rf-scanner-reimage",
            "Zero-touch re-imaging of warehouse RF scanners",
            "Warehouse Management",
            "Workplace Technology",
            "lucia.fernandez@larkspur.example",
            64,
            22,
            "succeeded",
            20,
        ),
        (
            "new-starter-accounts",
            "New-starter account provisioning (AD, Microsoft 365, SAP roles)",
            "Workplace & Collaboration",
            "Workplace Technology",
            "lucia.fernandez@larkspur.example",
            9,
            38,
            "succeeded",
            13,
        ),
        (
            "licence-reclaim",
            "Reclaim unused Microsoft 365 licences",
            "Microsoft 365",
            "Workplace Technology",
            "daniel.brooks@larkspur.example",
            0,
            0,
            "failed",
            11,
        ),
        (
            "cert-renewal",
            "Automatic certificate renewal for the WMS message brokers",
            "Warehouse Management",
            "Platform & SRE",
            "ingrid.lindqvist@larkspur.example",
            12,
            45,
            "succeeded",
            6,
        ),
        (
            "vpn-profile-push",
            "VPN profile push to depot laptops",
            "Remote Access (VPN)",
            "Network Operations",
            "grace.kim@larkspur.example",
            140,
            12,
            "succeeded",
            2,
        ),
    ];
    runs.iter()
        .map(|&(id, name, service, team, owner, items, minutes_each, status, days_ago)| {
            let finished = now - Duration::days(days_ago) - rng.minutes(30, 600);
            let started = finished - rng.minutes(5, 90);
            let run_id = format!("run-{id}-{}", finished.format("%Y%m%d"));
            let body = json!({
                "specversion": "1.0",
                "type": "dev.herald.automation.run",
                "source": format!("https://automation.larkspur.example/runbooks/{id}"),
                "id": run_id,
                "time": finished.to_rfc3339(),
                "datacontenttype": "application/json",
                "data": {
                    "automation": name, "run_id": run_id, "status": status, "business_service": service,
                    "team": team, "owner": owner, "items": items, "minutes_saved": items * minutes_each,
                    "started_at": started.to_rfc3339(), "finished_at": finished.to_rfc3339(),
                },
            });
            Delivery {
                source: "cloudevents",
                content_type: "application/cloudevents+json",
                body: body.to_string().into_bytes(),
                at: finished,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_month_is_the_same_every_time_and_lies_in_the_past() {
        let catalog = Catalog::from_toml_str(CATALOG).expect("catalog");
        let now = DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .expect("t")
            .with_timezone(&Utc);
        let a = month(&catalog, now);
        let b = month(&catalog, now);
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(&b).all(|(x, y)| x.body == y.body));
        assert!(a.len() > 100, "a realistic month: {} deliveries", a.len());
        assert!(
            a.iter()
                .all(|d| d.at <= now && d.at >= now - Duration::days(31))
        );
        assert!(
            a.windows(2).all(|w| w[0].at <= w[1].at),
            "in the order they happened"
        );
        let text: Vec<String> = a
            .iter()
            .map(|d| String::from_utf8_lossy(&d.body).into_owned())
            .collect();
        for (what, needle) in [
            ("a reopen", "\"reopened_time\":\"2"),
            ("a failed change", "\"close_code\":\"unsuccessful\""),
            ("its postmortem", "u_postmortem_url"),
            ("a problem closed", "\"table\":\"problem\""),
            ("a request", "\"table\":\"sc_req_item\""),
            ("an automation run", "dev.herald.automation.run"),
        ] {
            assert!(
                text.iter().any(|t| t.contains(needle)),
                "no {what} in the demo month"
            );
        }
        let sources: std::collections::HashSet<&str> = a.iter().map(|d| d.source).collect();
        assert_eq!(sources.len(), 2);
    }
}
