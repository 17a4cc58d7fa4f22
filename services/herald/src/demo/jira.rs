//! The month's Jira Service Management deliveries: admin webhooks (`jira:issue_updated`) whose
//! changelog sets the resolution, for incidents on ERP Finance and service requests on Microsoft
//! 365, in the shape of `tests/fixtures/jira/`.

use chrono::{DateTime, Duration, Utc};
use herald_catalog::Person;
use herald_proto::v1::Source;
use serde_json::{Value, json};

use super::{
    Submission,
    organisation::{Org, Rng, account, hex_id},
};

const SITE: &str = "https://larkspur.atlassian.net";

/// A JSM issue type and the SLA goal its project gives it.
#[derive(Clone, Copy)]
enum IssueType {
    Incident,
    ServiceRequest,
}

impl IssueType {
    fn name(self) -> &'static str {
        match self {
            IssueType::Incident => "Incident",
            IssueType::ServiceRequest => "Service Request",
        }
    }

    fn id(self) -> &'static str {
        match self {
            IssueType::Incident => "10004",
            IssueType::ServiceRequest => "10007",
        }
    }

    fn goal(self) -> Duration {
        match self {
            IssueType::Incident => Duration::hours(8),
            IssueType::ServiceRequest => Duration::hours(24),
        }
    }
}

/// One issue to resolve: what, where, who, when.
struct Issue<'a> {
    n: u32,
    kind: IssueType,
    summary: &'a str,
    component: &'a str,
    team: (&'a str, &'a str),
    priority: (&'a str, &'a str),
    assignee: &'a Person,
    resolver: &'a Person,
    created: DateTime<Utc>,
    resolved: DateTime<Utc>,
}

/// Jira's field dates: milliseconds and an offset without a colon.
fn jira_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

fn sla_time(at: DateTime<Utc>) -> Value {
    json!({
        "iso8601": at.format("%Y-%m-%dT%H:%M:%S+0000").to_string(),
        "jira": jira_time(at),
        "friendly": at.format("%d/%b/%y %-I:%M %p").to_string(),
        "epochMillis": at.timestamp_millis(),
    })
}

fn user(person: &Person, account_id: &str) -> Value {
    json!({
        "self": format!("{SITE}/rest/api/2/user?accountId={account_id}"),
        "accountId": account_id,
        "displayName": person.display_name,
        "active": true,
        "timeZone": "Europe/Amsterdam",
        "accountType": "atlassian",
    })
}

fn customer(rng: &mut Rng) -> Value {
    let names = [
        "Elif Aydın",
        "Jana Novák",
        "Pieter de Vries",
        "Noor Haddad",
        "Mateo Moreau",
    ];
    let name = *rng.pick(&names);
    let account_id = format!("qm:{}", hex_id(name));
    json!({
        "self": format!("{SITE}/rest/api/2/user?accountId={account_id}"),
        "accountId": account_id,
        "displayName": name,
        "active": true,
        "timeZone": "Europe/Amsterdam",
        "accountType": "customer",
    })
}

/// The "Time to resolution" SLA with its one completed cycle.
fn time_to_resolution(issue: &Issue<'_>) -> Value {
    let goal = issue.kind.goal();
    let breach = issue.created + goal;
    let elapsed = issue.resolved - issue.created;
    json!({
        "id": "2",
        "name": "Time to resolution",
        "completedCycles": [{
            "startTime": sla_time(issue.created),
            "stopTime": sla_time(issue.resolved),
            "breachTime": sla_time(breach),
            "breached": issue.resolved > breach,
            "goalDuration": {"millis": goal.num_milliseconds(), "friendly": format!("{}h", goal.num_hours())},
            "elapsedTime": {"millis": elapsed.num_milliseconds(), "friendly": format!("{}h {}m", elapsed.num_hours(), elapsed.num_minutes() % 60)},
            "remainingTime": {"millis": (goal - elapsed).num_milliseconds(), "friendly": format!("{}h", (goal - elapsed).num_hours())},
        }],
        "slaDisplayFormat": "NEW_SLA_FORMAT",
    })
}

fn issue_resolved(issue: &Issue<'_>, rng: &mut Rng) -> Option<Submission> {
    let assignee_id = account(issue.assignee, "jira", "account_id")?;
    let resolver_id = account(issue.resolver, "jira", "account_id")?;
    let id = 21_900 + issue.n;
    let key = format!("ITSD-{}", 520 + issue.n);
    let (priority_id, priority_name) = issue.priority;
    let (team_id, team_name) = issue.team;
    let body = json!({
        "timestamp": issue.resolved.timestamp_millis() + 4,
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic",
        "user": user(issue.resolver, &resolver_id),
        "issue": {
            "id": id.to_string(),
            "self": format!("{SITE}/rest/api/2/issue/{id}"),
            "key": key,
            "fields": {
                "summary": issue.summary,
                "issuetype": {"id": issue.kind.id(), "name": issue.kind.name(), "subtask": false},
                "project": {"id": "10002", "key": "ITSD", "name": "IT Service Desk", "projectTypeKey": "service_desk"},
                "priority": {"name": priority_name, "id": priority_id},
                "status": {"name": "Resolved", "id": "10019", "statusCategory": {"id": 3, "key": "done", "name": "Done"}},
                "resolution": {"id": "10000", "name": "Done"},
                "resolutiondate": jira_time(issue.resolved),
                "created": jira_time(issue.created),
                "updated": jira_time(issue.resolved),
                "assignee": user(issue.assignee, &assignee_id),
                "reporter": customer(rng),
                "components": [{"id": "10031", "name": issue.component}],
                "customfield_10001": {"id": team_id, "name": team_name, "title": team_name, "isShared": true},
                "customfield_10030": time_to_resolution(issue),
            },
        },
        "changelog": {
            "id": (199_100 + issue.n).to_string(),
            "items": [
                {"field": "resolution", "fieldtype": "jira", "fieldId": "resolution", "from": null, "fromString": null, "to": "10000", "toString": "Done"},
                {"field": "status", "fieldtype": "jira", "fieldId": "status", "from": "3", "fromString": "In Progress", "to": "10019", "toString": "Resolved"},
            ],
        },
    });
    Some(Submission {
        source: Source::Jira,
        content_type: "application/json",
        body: body.to_string().into_bytes(),
        at: issue.resolved,
        wait_for: None,
    })
}

const ERP: (&str, &str) = ("7ddb3d7a-16c8-530f-8b19-c4f251a402c1", "ERP Applications");
const WORKPLACE: (&str, &str) = (
    "c1d0a6e4-3b52-5f8e-9a47-2e61b8d90f13",
    "Workplace Technology",
);
const HIGH: (&str, &str) = ("2", "High");
const MEDIUM: (&str, &str) = ("3", "Medium");

/// An issue of the month: its type and summary, component (a catalog service), Atlassian team,
/// priority, assignee and resolver (catalog person ids), when it was raised (days before the
/// anchor) and how many hours resolving it took.
struct IssueSpec {
    kind: IssueType,
    summary: &'static str,
    component: &'static str,
    team: (&'static str, &'static str),
    priority: (&'static str, &'static str),
    assignee: &'static str,
    resolver: &'static str,
    days_ago: i64,
    hours: i64,
}

const fn erp_incident(
    summary: &'static str,
    priority: (&'static str, &'static str),
    assignee: &'static str,
    resolver: &'static str,
    days_ago: i64,
    hours: i64,
) -> IssueSpec {
    IssueSpec {
        kind: IssueType::Incident,
        summary,
        component: "ERP Finance",
        team: ERP,
        priority,
        assignee,
        resolver,
        days_ago,
        hours,
    }
}

const fn workplace_request(summary: &'static str, days_ago: i64, hours: i64) -> IssueSpec {
    IssueSpec {
        kind: IssueType::ServiceRequest,
        summary,
        component: "Microsoft 365",
        team: WORKPLACE,
        priority: MEDIUM,
        assignee: "p-daniel-brooks",
        resolver: "p-daniel-brooks",
        days_ago,
        hours,
    }
}

/// ERP incidents resolved by the ERP team, access and software requests fulfilled by Workplace
/// Technology: one request past its 24-hour target, the rest inside theirs.
const ISSUES: [IssueSpec; 8] = [
    erp_incident(
        "Payment proposal run fails for company code NL01",
        HIGH,
        "p-mei-chen",
        "p-arjun-patel",
        24,
        5,
    ),
    erp_incident(
        "Vendor invoices stuck in the approval workflow",
        MEDIUM,
        "p-arjun-patel",
        "p-arjun-patel",
        17,
        6,
    ),
    erp_incident(
        "Month-end accrual job aborts on a locked period",
        HIGH,
        "p-mei-chen",
        "p-mei-chen",
        8,
        3,
    ),
    erp_incident(
        "Bank statement import rejects the new file format",
        MEDIUM,
        "p-arjun-patel",
        "p-mei-chen",
        2,
        7,
    ),
    workplace_request(
        "Access to Power BI workspace 'Depot KPIs' for route planners",
        21,
        20,
    ),
    workplace_request("Shared mailbox for the Venlo inbound team", 13, 30),
    workplace_request("Visio licence for the network planning team", 5, 6),
    workplace_request("Teams channel and guest access for a carrier partner", 1, 4),
];

/// The month's Jira deliveries, in the order of [`ISSUES`].
pub fn deliveries(org: &Org<'_>, rng: &mut Rng, now: DateTime<Utc>) -> Vec<Submission> {
    let mut out = Vec::new();
    for (i, spec) in ISSUES.iter().enumerate() {
        let (Some(assignee), Some(resolver)) = (
            org.catalog.person(spec.assignee),
            org.catalog.person(spec.resolver),
        ) else {
            continue;
        };
        let created = now - Duration::days(spec.days_ago) - rng.minutes(60, 8 * 60);
        let resolved = created + Duration::hours(spec.hours) + rng.minutes(0, 50);
        if resolved > now {
            continue;
        }
        let issue = Issue {
            n: u32::try_from(i).unwrap_or(0) + 1,
            kind: spec.kind,
            summary: spec.summary,
            component: spec.component,
            team: spec.team,
            priority: spec.priority,
            assignee,
            resolver,
            created,
            resolved,
        };
        out.extend(issue_resolved(&issue, rng));
    }
    out
}
