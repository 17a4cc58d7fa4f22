//! A realistic month of ITSM deliveries for the sample organisation, from every tool Herald reads:
//! ServiceNow's everyday incidents, the outages that make headlines, a fix that did not hold,
//! requests fulfilled on time and late, changes (quiet ones and one that failed) and a problem
//! closed; Jira Service Management issues, PagerDuty and Opsgenie pages, Zendesk tickets and their
//! ratings, GitHub pull requests and deployments, and automation runs. Times are relative to the
//! month's anchor (the first `--demo` start), so this week's and this month's figures fill.

use chrono::{DateTime, Duration, Utc};
use herald_catalog::{BusinessService, Catalog, Person, Team};
use herald_proto::v1::Source;
use serde_json::{Value, json};

use super::{
    INSTANCE, Submission, automation,
    github::{self, Release},
    jira,
    organisation::{
        Org, Rng, caller, ci_of, hex_id, person_ref, service_ref, sla, stamp, team_ref, titles,
        user_name,
    },
    pages, zendesk,
};

struct IncidentSpec<'a> {
    n: u32,
    service: &'a BusinessService,
    team: &'a Team,
    priority: u32,
    title: String,
    /// The configuration item the incident names.
    ci: String,
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
        "cmdb_ci": spec.ci,
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
        wait_for: None,
    }
}

/// One incident to generate: where, how bad, when, and how long until service was restored.
struct Outage<'a> {
    service: &'a BusinessService,
    priority: u32,
    /// A headline outage's title; everyday incidents pick one of the service's.
    title: Option<&'a str>,
    /// The configuration item, when it is not the service's main one.
    ci: Option<&'a str>,
    opened: DateTime<Utc>,
    restore: Duration,
    automated: bool,
}

/// A stretch of time in which a service has no incident at all (none open during it): the week
/// after a quiet change, the days since a problem's fix.
struct Quiet<'a> {
    service: &'a str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

impl Quiet<'_> {
    fn overlaps(&self, service: &str, opened: DateTime<Utc>, resolved: DateTime<Utc>) -> bool {
        self.service == service && opened < self.to && resolved > self.from
    }
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
            ci: outage
                .ci
                .map_or_else(|| ci_of(outage.service), str::to_string),
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

    /// Everyday incidents: three or four a day over the month, nearly all inside their SLA, none
    /// on a service while it is `quiet`.
    fn everyday(&mut self, services: &[&BusinessService], quiet: &[Quiet<'_>], now: DateTime<Utc>) {
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
                if quiet
                    .iter()
                    .any(|q| q.overlaps(&service.id, opened, opened + restore))
                {
                    continue;
                }
                self.incident(Outage {
                    service,
                    priority,
                    title: None,
                    ci: None,
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
                    // The scanners' outage is on their gateway, the problem's configuration item.
                    ci: (service == "svc-warehouse").then_some(RF_GATEWAY),
                    opened,
                    restore,
                    automated: false,
                });
            }
        }
    }

    /// The RF scanners dropping their sessions at shift change, again and again, until the problem
    /// behind it was fixed: incidents on the scanners' gateway in the month before the fix.
    fn scanner_disconnects(&mut self, warehouse: &BusinessService, now: DateTime<Utc>) {
        for (days, hours, minutes) in [
            (27, 6, 95),
            (22, 14, 140),
            (17, 6, 70),
            (13, 22, 180),
            (8, 6, 110),
        ] {
            self.incident(Outage {
                service: warehouse,
                priority: 3,
                title: Some("RF scanners drop their session at shift change"),
                ci: Some(RF_GATEWAY),
                opened: now - Duration::days(days) - Duration::hours(hours),
                restore: Duration::minutes(minutes),
                automated: false,
            });
        }
    }

    /// A fix that did not hold: an outage restored in the afternoon, announced, and reopened by
    /// its caller the next morning, inside the window: the headline is corrected.
    fn reopened(&mut self, service: &BusinessService, now: DateTime<Utc>) {
        let opened = now - Duration::days(4) - Duration::hours(9);
        let restore = Duration::hours(3);
        let mut body = self.incident(Outage {
            service,
            priority: 2,
            title: Some("Payment run stops after the first company code in SAP Finance"),
            ci: None,
            opened,
            restore,
            automated: false,
        });
        let Some(record) = body.get_mut("record") else {
            return;
        };
        let number = record["number"].as_str().unwrap_or_default().to_string();
        let reopened = opened + restore + Duration::hours(17) + Duration::minutes(12);
        record["state"] = json!("2");
        record["reopened_time"] = json!(stamp(reopened));
        record["reopen_count"] = json!("1");
        record["resolved_at"] = json!("");
        record["resolved_by"] = json!("");
        body["sys_mod_count"] = json!(14);
        body["previous"] = json!({"state": "6"});
        let mut reopen = servicenow(&body, reopened);
        reopen.wait_for = Some(number);
        self.out.push(reopen);
    }
}

/// The RF scanners' gateway: the configuration item of the scanner incidents and of the problem
/// that removed their cause.
const RF_GATEWAY: &str = "wms-rf-gateway";

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
    let releases = releases(now);
    let quiet = [
        // Nothing goes wrong on the Shipping Portal in the week after its first release (a quiet
        // change); the page the morning after the second release is what withdraws that one.
        Quiet {
            service: "svc-shipping-portal",
            from: releases[0].started,
            to: now - Duration::hours(18),
        },
        // The scanners' problem fixed: no warehouse incident since.
        Quiet {
            service: "svc-warehouse",
            from: problem_fixed(now),
            to: now,
        },
    ];
    incidents.everyday(&services, &quiet, now);
    incidents.headlines(by_id, now);
    incidents.scanner_disconnects(by_id("svc-warehouse"), now);
    incidents.reopened(by_id("svc-erp-finance"), now);

    let Incidents {
        mut rng, mut out, ..
    } = incidents;
    out.extend(requests(&mut rng, &org, now));
    out.extend(changes_and_problem(&org, &services, &releases, now));
    out.extend(jira::deliveries(&org, &mut rng, now));
    out.extend(pages::deliveries(&org, &mut rng, now));
    out.extend(zendesk::deliveries(&org, &mut rng, now));
    out.extend(github::deliveries(&org, &mut rng, now, &releases));
    out.extend(automation::deliveries(&mut rng, now));
    out.retain(|d| d.at <= now);
    out.sort_by_key(|d| d.at);
    out
}

/// A requested item: what, when it was opened (days ago), its due date (days after opening) and
/// how long fulfilling it took (hours).
struct Item {
    title: &'static str,
    days_ago: i64,
    due_days: i64,
    hours: i64,
}

const ITEMS: [Item; 8] = [
    Item {
        title: "Standard laptop bundle for a new starter in Finance",
        days_ago: 27,
        due_days: 5,
        hours: 50,
    },
    Item {
        title: "Access to SAP Finance for a new accounts-payable analyst",
        days_ago: 23,
        due_days: 3,
        hours: 30,
    },
    Item {
        title: "Replacement phone for a warehouse shift lead",
        days_ago: 19,
        due_days: 2,
        hours: 70,
    },
    Item {
        title: "Second monitor for a dispatcher",
        days_ago: 15,
        due_days: 5,
        hours: 26,
    },
    Item {
        title: "Standard laptop bundle for a new starter in Customer Service",
        days_ago: 12,
        due_days: 5,
        hours: 140,
    },
    Item {
        title: "VPN token for a new depot manager",
        days_ago: 8,
        due_days: 3,
        hours: 20,
    },
    Item {
        title: "Standard laptop bundle for a new starter at DC Venlo",
        days_ago: 6,
        due_days: 5,
        hours: 45,
    },
    Item {
        title: "Shared drive access for the Tilburg planning team",
        days_ago: 3,
        due_days: 2,
        hours: 9,
    },
];

/// Requested items fulfilled by Workplace Technology: most before their due date, two after it.
fn requests(rng: &mut Rng, org: &Org<'_>, now: DateTime<Utc>) -> Vec<Submission> {
    let Some(workplace) = org.team("team-workplace") else {
        return Vec::new();
    };
    let service = org.catalog.service("svc-workplace");
    let members = org.members(&workplace.id);
    ITEMS
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            let opened = now - Duration::days(item.days_ago) - rng.minutes(0, 300);
            let closed = opened + Duration::hours(item.hours) + rng.minutes(0, 50);
            if closed > now {
                return None;
            }
            let due = opened + Duration::days(item.due_days);
            let by = *rng.pick(&members);
            let record = json!({
                "number": format!("RITM{:07}", 104_000 + i),
                "short_description": item.title,
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
                "made_sla": if closed <= due { "true" } else { "false" },
                "requested_for": caller(rng),
                "reassignment_count": "0",
                "reopen_count": "0",
                "sys_mod_count": "12",
            });
            let body = json!({"instance": INSTANCE, "table": "sc_req_item", "sys_id": hex_id(&format!("demo-ritm-{i}")), "sys_mod_count": 12, "record": record,
                              "journal": [{"element": "work_notes", "sys_created_by": user_name(by), "sys_created_on": stamp(closed - Duration::hours(1)), "value": "Delivered and set up with the user."}]});
            Some(servicenow(&body, closed))
        })
        .collect()
}

/// The Shipping Portal's production releases this month, each under its own change.
fn releases(now: DateTime<Utc>) -> [Release; 2] {
    let first = now - Duration::days(8) - Duration::hours(2);
    let second = now - Duration::days(2) - Duration::hours(5);
    [
        Release {
            change: "CHG0032001",
            version: "2026.4",
            started: first,
            finished: first + Duration::minutes(104),
        },
        Release {
            change: "CHG0032007",
            version: "2026.4.1",
            started: second,
            finished: second + Duration::minutes(38),
        },
    ]
}

/// A change to the Shipping Portal that went in quietly: closed successful, no incident caused.
fn quiet_release(
    org: &Org<'_>,
    service: &BusinessService,
    release: &Release,
    title: &str,
    n: usize,
) -> Option<Submission> {
    let team = org.team("team-platform")?;
    let lead = org.catalog.person("p-rahul-iyer")?;
    let dev = org.catalog.person("p-hana-sato")?;
    let (start, end) = (release.started, release.finished);
    let closed = end + Duration::hours(10);
    let record = json!({
        "number": release.change, "short_description": title, "state": "3",
        "priority": "3", "business_service": service_ref(service), "cmdb_ci": ci_of(service),
        "assignment_group": team_ref(team), "assigned_to": person_ref(lead), "closed_by": person_ref(lead),
        "opened_at": stamp(start - Duration::days(5)), "work_start": stamp(start), "work_end": stamp(end),
        "close_code": "successful", "closed_at": stamp(closed), "made_sla": "true",
        "reassignment_count": "0", "reopen_count": "0", "sys_mod_count": "30",
    });
    let body = json!({"instance": INSTANCE, "table": "change_request", "sys_id": hex_id(&format!("demo-chg-{n}")), "sys_mod_count": 30,
        "record": record, "related": {"incidents_caused": 0},
        "journal": [{"element": "work_notes", "sys_created_by": user_name(dev), "sys_created_on": stamp(end - Duration::minutes(10)), "value": "Smoke tests green on the new stack."}]});
    Some(servicenow(&body, closed))
}

/// A change that failed and was rolled back, with a blameless postmortem. The responders' work
/// notes name the engineer whose change it was, as real notes do; the story Herald tells must not.
fn failed_change(
    org: &Org<'_>,
    service: &BusinessService,
    now: DateTime<Utc>,
) -> Option<Submission> {
    let person = |id: &str| org.catalog.person(id);
    let team = org.team("team-network")?;
    let (implementer, closer) = (person("p-tomas-herrera")?, person("p-grace-kim")?);
    let (r1, r2) = (person("p-kwame-mensah")?, person("p-ingrid-lindqvist")?);
    let start = failed_change_started(now);
    let end = start + Duration::minutes(95);
    let closed = end + Duration::hours(11);
    let record = json!({
        "number": "CHG0031988", "short_description": "Apply the quarterly firewall policy bundle to the edge firewalls", "state": "3",
        "priority": "3", "business_service": service_ref(service), "cmdb_ci": ci_of(service),
        "assignment_group": team_ref(team), "assigned_to": person_ref(implementer), "closed_by": person_ref(closer),
        "opened_by": person_ref(implementer),
        "opened_at": stamp(start - Duration::days(7)), "work_start": stamp(start), "work_end": stamp(end),
        "close_code": "unsuccessful", "closed_at": stamp(closed),
        "close_notes": "Bundle applied; remote VPN users could not authenticate because the new rule order shadowed the portal rule. Rolled back, service restored. Postmortem PM-2026-011.",
        "u_postmortem_url": "https://wiki.larkspur.example/ops/postmortems/PM-2026-011", "made_sla": "true",
        "reassignment_count": "0", "reopen_count": "0", "sys_mod_count": "27",
    });
    let note = |who: &Person, minutes: i64, text: String| json!({"element": "work_notes", "sys_created_by": user_name(who), "sys_created_on": stamp(start + Duration::minutes(minutes)), "value": text});
    let body = json!({"instance": INSTANCE, "table": "change_request", "sys_id": hex_id("demo-chg-2"), "sys_mod_count": 27,
    "record": record, "related": {"incidents_caused": 2},
    "journal": [
        note(r1, 12, format!("Paged for VPN authentication failures; they started minutes after {} pushed the policy bundle. Bridge opened.", implementer.display_name)),
        note(implementer, 88, "Rollback of the policy bundle started.".to_string()),
        note(r2, 97, "Rollback confirmed: portal authentication works again; timeline captured for the postmortem.".to_string()),
    ]});
    Some(servicenow(&body, closed))
}

/// When the firewall change that failed started: this week, so its lesson is news.
fn failed_change_started(now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::days(5) - Duration::hours(8)
}

/// When the fix for the scanner disconnects went in: the warehouse has had no incident since.
fn problem_fixed(now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::days(6)
}

/// A root cause removed: the recurring scanner disconnects, fixed on the scanners' gateway six
/// days ago and closed once the fix had held for a few days.
fn problem_closed(
    org: &Org<'_>,
    service: &BusinessService,
    now: DateTime<Utc>,
) -> Option<Submission> {
    let team = org.team("team-network")?;
    let owner = org.catalog.person("p-grace-kim")?;
    let fixed = problem_fixed(now);
    let closed = now - Duration::days(2);
    let record = json!({
        "number": "PRB0040201", "short_description": "Recurring RF scanner disconnects during shift change", "state": "107",
        "priority": "2", "business_service": service_ref(service), "cmdb_ci": RF_GATEWAY,
        "assignment_group": team_ref(team), "assigned_to": person_ref(owner), "resolved_by": person_ref(owner),
        "opened_at": stamp(now - Duration::days(24)), "resolved_at": stamp(fixed),
        "closed_at": stamp(closed), "resolution_code": "fix_applied", "reassignment_count": "1", "reopen_count": "0",
        "sys_mod_count": "19",
    });
    let body = json!({"instance": INSTANCE, "table": "problem", "sys_id": hex_id("demo-prb-1"), "sys_mod_count": 19,
        "record": record, "related": {"incident_count": 6, "incident_count_since_fix": 0}});
    Some(servicenow(&body, closed))
}

fn changes_and_problem(
    org: &Org<'_>,
    services: &[&BusinessService],
    releases: &[Release; 2],
    now: DateTime<Utc>,
) -> Vec<Submission> {
    let find = |id: &str| services.iter().copied().find(|s| s.id == id);
    let mut out = Vec::new();
    if let Some(portal) = find("svc-shipping-portal") {
        let [first, second] = releases;
        out.extend(quiet_release(
            org,
            portal,
            first,
            "Shipping Portal release: blue/green cut-over",
            1,
        ));
        out.extend(quiet_release(
            org,
            portal,
            second,
            "Shipping Portal patch release: carrier API client upgrade",
            3,
        ));
    }
    if let Some(vpn) = find("svc-remote-access") {
        out.extend(failed_change(org, vpn, now));
    }
    if let Some(warehouse) = find("svc-warehouse") {
        out.extend(problem_closed(org, warehouse, now));
    }
    out
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
            (
                "notes naming who triggered the failure",
                "after Tomás Herrera pushed",
            ),
            ("a late request", "\"made_sla\":\"false\""),
            ("a bad rating", "\"score\":\"bad\""),
            (
                "a deployment linked to a change",
                "\"change_request\":\"CHG0032001\"",
            ),
            ("runs per batch", "\"minutes_per_run\""),
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
        for source in Source::ALL {
            assert!(
                sources.contains(source),
                "no {source:?} delivery in the month"
            );
        }
    }
}
