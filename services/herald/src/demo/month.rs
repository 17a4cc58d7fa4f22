//! A realistic month of ITSM deliveries for the sample organisation: everyday incidents, the
//! outages that make headlines, a fix that did not hold, requests, changes, a problem closed and
//! automation runs, with times relative to now so this week's and this month's figures fill.

use chrono::{DateTime, Duration, Utc};
use herald_catalog::{BusinessService, Catalog, Person, Team};
use herald_proto::v1::Source;
use serde_json::{Value, json};

use super::{
    INSTANCE, Submission,
    organisation::{
        Org, Rng, caller, ci_of, hex_id, person_ref, service_ref, sla, stamp, team_ref, titles,
        user_name,
    },
};

struct IncidentSpec<'a> {
    n: u32,
    service: &'a BusinessService,
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

fn incident_body(spec: &IncidentSpec<'_>, rng: &mut Rng) -> Value {
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
    json!({
        "instance": INSTANCE, "table": "incident", "sys_id": sys_id, "sys_mod_count": mod_count,
        "operation": "update", "previous": {"state": "2"}, "record": record, "audit": audit, "journal": journal,
    })
}

fn servicenow(body: &Value, at: DateTime<Utc>) -> Submission {
    Submission {
        source: Source::Servicenow,
        content_type: "application/json",
        body: body.to_string().into_bytes(),
        at,
    }
}

/// One incident to generate: where, how bad, when, and how long until service was restored.
struct Outage<'a> {
    service: &'a BusinessService,
    priority: u32,
    /// A headline outage's title; everyday incidents pick one of the service's.
    title: Option<&'a str>,
    opened: DateTime<Utc>,
    restore: Duration,
    automated: bool,
}

/// Generates incidents one after the other: numbers them and collects their deliveries.
struct Incidents<'o, 'c> {
    org: &'o Org<'c>,
    rng: Rng,
    out: Vec<Submission>,
    n: u32,
}

impl<'c> Incidents<'_, 'c> {
    /// Generates the incident's resolved delivery and returns its body (`Null` when the service
    /// has no team in the catalog).
    fn incident(&mut self, outage: Outage<'_>) -> Value {
        self.n += 1;
        let team_id = outage.service.team.clone().unwrap_or_default();
        let Some(team) = self.org.team(&team_id) else {
            return Value::Null;
        };
        let members = self.org.members(&team_id);
        let assignee = self.assignee(&members, outage.title.is_some());
        let helpers: Vec<&Person> = members
            .iter()
            .copied()
            .filter(|p| p.id != assignee.id)
            .take(usize::try_from(self.rng.below(3)).unwrap_or(0))
            .collect();
        let desk = &self.org.desk;
        let triage = (!desk.is_empty() && self.rng.below(3) > 0).then(|| *self.rng.pick(desk));
        let title = match outage.title {
            Some(title) => title.to_string(),
            None => self.rng.pick(titles(&outage.service.id)).to_string(),
        };
        let spec = IncidentSpec {
            n: self.n,
            service: outage.service,
            team,
            priority: outage.priority,
            title,
            opened: outage.opened,
            resolved: outage.opened + outage.restore,
            assignee,
            helpers,
            triage,
            automated: outage.automated,
        };
        let body = incident_body(&spec, &mut self.rng);
        self.out.push(servicenow(&body, spec.resolved));
        body
    }

    /// Headline outages go to someone who may be named, so the demo's spotlight has a face.
    fn assignee(&mut self, members: &[&'c Person], headline: bool) -> &'c Person {
        let nameable: Vec<&Person> = members
            .iter()
            .copied()
            .filter(|p| p.spotlight == herald_catalog::SpotlightPolicy::OptIn)
            .collect();
        let pool: &[&'c Person] = if headline && !nameable.is_empty() {
            &nameable
        } else {
            members
        };
        let chosen: &&'c Person = self.rng.pick(pool);
        chosen
    }

    /// Everyday incidents: three or four a day over the month, nearly all inside their SLA.
    fn everyday(&mut self, services: &[&BusinessService], now: DateTime<Utc>) {
        for day in (0..30).rev() {
            for _ in 0..(3 + self.rng.below(2)) {
                let service = *self.rng.pick(services);
                let priority = if self.rng.below(10) < 4 { 3 } else { 4 };
                let opened = now - Duration::days(day) - self.rng.minutes(60, 20 * 60);
                let restore = match priority {
                    3 => self.rng.minutes(90, 40 * 60),
                    _ => self.rng.minutes(180, 90 * 60),
                };
                if opened + restore > now {
                    continue;
                }
                let automated = self.rng.below(25) == 0;
                self.incident(Outage {
                    service,
                    priority,
                    title: None,
                    opened,
                    restore,
                    automated,
                });
            }
        }
    }

    /// The outages that make headlines.
    fn headlines(&mut self, by_id: impl Fn(&str) -> &'c BusinessService, now: DateTime<Utc>) {
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
            let restore = Duration::minutes(minutes);
            if opened + restore <= now {
                self.incident(Outage {
                    service: by_id(service),
                    priority,
                    title: Some(title),
                    opened,
                    restore,
                    automated: false,
                });
            }
        }
    }

    /// A fix that did not hold: resolved, then reopened by its caller two days later.
    fn reopened(&mut self, service: &BusinessService, now: DateTime<Utc>) {
        let opened = now - Duration::days(12);
        let mut body = self.incident(Outage {
            service,
            priority: 3,
            title: Some("Shared mailbox stops syncing for the finance team"),
            opened,
            restore: Duration::hours(5),
            automated: false,
        });
        let Some(record) = body.get_mut("record") else {
            return;
        };
        let reopened = opened + Duration::days(2);
        record["state"] = json!("2");
        record["reopened_time"] = json!(stamp(reopened));
        record["reopen_count"] = json!("1");
        record["resolved_at"] = json!("");
        record["resolved_by"] = json!("");
        body["sys_mod_count"] = json!(14);
        body["previous"] = json!({"state": "6"});
        self.out.push(servicenow(&body, reopened));
    }
}

/// A month of deliveries ending at `now`, in the order they happened.
pub fn month(catalog: &Catalog, now: DateTime<Utc>) -> Vec<Submission> {
    let services: Vec<&BusinessService> = catalog
        .services()
        .iter()
        .filter(|s| s.team.is_some())
        .collect();
    let Some(&first) = services.first() else {
        return Vec::new();
    };
    if catalog.people().is_empty() {
        return Vec::new();
    }
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
    let by_id = |id: &str| {
        services
            .iter()
            .copied()
            .find(|s| s.id == id)
            .unwrap_or(first)
    };
    let mut incidents = Incidents {
        org: &org,
        rng: Rng(0x5eed_1a2b_3c4d_5e6f),
        out: Vec::new(),
        n: 0,
    };
    incidents.everyday(&services, now);
    incidents.headlines(by_id, now);
    incidents.reopened(by_id("svc-workplace"), now);

    let Incidents {
        mut rng, mut out, ..
    } = incidents;
    out.extend(requests(&mut rng, &org, now));
    out.extend(changes_and_problem(&org, &services, now));
    out.extend(automations(&mut rng, now));
    out.sort_by_key(|d| d.at);
    out
}

fn requests(rng: &mut Rng, org: &Org<'_>, now: DateTime<Utc>) -> Vec<Submission> {
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

fn changes_and_problem(
    org: &Org<'_>,
    services: &[&BusinessService],
    now: DateTime<Utc>,
) -> Vec<Submission> {
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

fn automations(rng: &mut Rng, now: DateTime<Utc>) -> Vec<Submission> {
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
            Submission {
                source: Source::Cloudevents,
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
    use crate::demo::CATALOG;

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
        let sources: std::collections::HashSet<Source> = a.iter().map(|d| d.source).collect();
        assert_eq!(sources.len(), 2);
    }
}
