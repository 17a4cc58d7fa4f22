//! Credit: the team first, then every person who worked on it, each part named. No self-credit,
//! a cap per win, and nothing for system accounts (they never reach contributors).

use herald_catalog::Catalog;
use herald_proto::v1::{Credit, CreditSubject, EventKind, Record};

use crate::config::ScoringSettings;

/// What the person who brought the outcome about did, in words.
fn resolver_role(kind: EventKind) -> &'static str {
    match kind {
        EventKind::RequestFulfilled => "fulfilled it",
        EventKind::AutomationRun => "owns the automation",
        EventKind::ChangeImplemented => "implemented it",
        EventKind::ProblemClosed => "removed the root cause",
        EventKind::DeploymentSucceeded | EventKind::PullRequestMerged => "shipped it",
        _ => "resolved it",
    }
}

/// The credits of a win worth `amount`.
pub fn credits(
    kind: EventKind,
    record: &Record,
    amount: f64,
    catalog: &Catalog,
    settings: &ScoringSettings,
) -> Vec<Credit> {
    let mut credits = Vec::new();
    let team = record
        .assignment_group
        .clone()
        .map(|t| (t, "resolving team"))
        .or_else(|| {
            record
                .business_service
                .as_deref()
                .and_then(|s| catalog.service(s))
                .and_then(|s| s.team.clone())
                .map(|t| (t, "team that owns the service"))
        });
    if let Some((team, role)) = team {
        credits.push(Credit {
            subject: CreditSubject::Team as i32,
            id: team,
            role: role.to_string(),
            share: 1.0,
            amount,
        });
    }

    // No self-credit: whoever asked for the work is not credited for doing it.
    let requester = record.requester.as_deref();
    let eligible = |p: &&str| Some(*p) != requester;
    let resolver = record
        .resolved_by
        .as_deref()
        .or(record.assignee.as_deref())
        .filter(eligible);
    let mut others: Vec<&str> = record
        .contributors
        .iter()
        .map(String::as_str)
        .filter(eligible)
        .filter(|p| Some(*p) != resolver)
        .collect();
    others.sort_unstable();
    others.dedup();
    let room = settings
        .max_credited_people
        .saturating_sub(usize::from(resolver.is_some()));
    others.truncate(room);

    let (resolver_share, others_share) = match (resolver.is_some(), others.len()) {
        (true, 0) => (1.0, 0.0),
        (true, n) => (
            settings.resolver_share,
            (1.0 - settings.resolver_share) / n as f64,
        ),
        (false, 0) => (0.0, 0.0),
        (false, n) => (0.0, 1.0 / n as f64),
    };
    let person = |id: &str, role: &str, share: f64| Credit {
        subject: CreditSubject::Person as i32,
        id: id.to_string(),
        role: role.to_string(),
        share,
        amount: amount * share,
    };
    if let Some(resolver) = resolver {
        credits.push(person(resolver, resolver_role(kind), resolver_share));
    }
    for other in others {
        credits.push(person(other, "worked on it", others_share));
    }
    credits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(resolver: Option<&str>, contributors: &[&str], requester: Option<&str>) -> Record {
        Record {
            assignment_group: Some("team-a".into()),
            resolved_by: resolver.map(String::from),
            contributors: contributors.iter().map(|s| s.to_string()).collect(),
            requester: requester.map(String::from),
            ..Default::default()
        }
    }

    fn shares(credits: &[Credit]) -> Vec<(String, f64)> {
        credits.iter().map(|c| (c.id.clone(), c.share)).collect()
    }

    #[test]
    fn the_team_carries_the_whole_value_and_people_split_it() {
        let settings = ScoringSettings::default();
        let c = credits(
            EventKind::IncidentResolved,
            &record(Some("p-r"), &["p-a", "p-b", "p-r"], None),
            100.0,
            &Catalog::default(),
            &settings,
        );
        assert_eq!(
            shares(&c),
            vec![
                ("team-a".into(), 1.0),
                ("p-r".into(), 0.5),
                ("p-a".into(), 0.25),
                ("p-b".into(), 0.25)
            ]
        );
        let people: f64 = c
            .iter()
            .filter(|c| c.subject == CreditSubject::Person as i32)
            .map(|c| c.amount)
            .sum();
        assert!((people - 100.0).abs() < 1e-9);
    }

    #[test]
    fn a_lone_resolver_gets_it_all_and_the_requester_nothing() {
        let settings = ScoringSettings::default();
        let c = credits(
            EventKind::IncidentResolved,
            &record(Some("p-r"), &["p-r", "p-q"], Some("p-q")),
            10.0,
            &Catalog::default(),
            &settings,
        );
        assert_eq!(
            shares(&c),
            vec![("team-a".into(), 1.0), ("p-r".into(), 1.0)]
        );
        // Resolving your own request earns nothing either.
        let c = credits(
            EventKind::IncidentResolved,
            &record(Some("p-q"), &["p-q"], Some("p-q")),
            10.0,
            &Catalog::default(),
            &settings,
        );
        assert_eq!(shares(&c), vec![("team-a".into(), 1.0)]);
    }

    #[test]
    fn people_beyond_the_cap_are_not_credited() {
        let settings = ScoringSettings {
            max_credited_people: 3,
            ..Default::default()
        };
        let c = credits(
            EventKind::IncidentResolved,
            &record(Some("p-r"), &["p-1", "p-2", "p-3", "p-4"], None),
            10.0,
            &Catalog::default(),
            &settings,
        );
        assert_eq!(c.len(), 1 + 3);
    }
}
