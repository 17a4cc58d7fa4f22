//! Credit: the team first, then every person who worked on it, each part named.
//!
//! The fairness rules (docs/value-model.md, "Credit"):
//! - the team carries the whole value; the people split it, and their shares always add up to it;
//! - who counts: the resolver, the assignee, and everyone the source shows in the assignment
//!   history, the work notes and linked records (the record's `contributors`); system accounts never
//!   reach them;
//! - no self-credit: the requester or caller is never credited for their own ticket;
//! - trivial closures earn nothing ([`trivial_closure`]): duplicates, cancellations and the other
//!   configured close codes (automatic closures are refused before credit is computed);
//! - at most `max_credited_people` people per win, and at most `max_credit_per_person_per_day` per
//!   person per day ([`cap_daily`]);
//! - raw counts (tickets closed, comments written, SLA ticks) are never scored: credit only splits
//!   the value of a verified outcome.

use std::collections::HashMap;

use herald_catalog::Catalog;
use herald_proto::v1::{Credit, CreditSubject, EventKind, Record};
use serde::Deserialize;

use crate::config::ScoringSettings;

/// `[scoring.credit]`: how a win's value is split and what earns nothing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CreditRules {
    /// Share for the assignee when someone else resolved it. Absent: the assignee shares the
    /// non-resolver part equally with everyone else who worked on it.
    pub assignee_share: Option<f64>,
    /// Close codes (case-insensitive) of closures that earn nothing: the outcome was not work done.
    pub trivial_close_codes: Vec<String>,
    /// Most value one person can be credited in a day (organisation currency); the excess stays
    /// with the team. Absent: no daily cap.
    pub max_credit_per_person_per_day: Option<f64>,
}

impl Default for CreditRules {
    fn default() -> Self {
        Self {
            assignee_share: None,
            trivial_close_codes: [
                "duplicate",
                "canceled",
                "cancelled",
                "rejected",
                "withdrawn",
            ]
            .map(String::from)
            .to_vec(),
            max_credit_per_person_per_day: None,
        }
    }
}

impl CreditRules {
    pub fn validate(&self, resolver_share: f64) -> Result<(), String> {
        if let Some(share) = self.assignee_share
            && !((0.0..=1.0).contains(&share) && share + resolver_share <= 1.0)
        {
            return Err(
                "[scoring.credit] assignee_share must be between 0 and 1, and with \
                 resolver_share at most 1"
                    .into(),
            );
        }
        if self
            .max_credit_per_person_per_day
            .is_some_and(|cap| !(cap.is_finite() && cap >= 0.0))
        {
            return Err(
                "[scoring.credit] max_credit_per_person_per_day must be zero or more".into(),
            );
        }
        Ok(())
    }
}

/// Why a closure is trivial and earns nothing, or `None` when it is real work.
pub fn trivial_closure(record: &Record, rules: &CreditRules) -> Option<String> {
    let code = record.close_code.as_deref()?.trim();
    rules
        .trivial_close_codes
        .iter()
        .any(|t| t.trim().eq_ignore_ascii_case(code))
        .then(|| {
            format!(
                "closed as {code:?}: a trivial closure (scoring.credit.trivial_close_codes) earns \
                 nothing"
            )
        })
}

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

/// The credits of a win worth `amount`: the team with the whole value, then each person.
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
    credits.extend(
        people(kind, record, settings)
            .into_iter()
            .map(|(id, role, share)| Credit {
                subject: CreditSubject::Person as i32,
                id: id.to_string(),
                role: role.to_string(),
                share,
                amount: amount * share,
            }),
    );
    credits
}

/// Each credited person with their part and share; the shares add up to 1 whenever anyone is
/// credited.
fn people<'a>(
    kind: EventKind,
    record: &'a Record,
    settings: &ScoringSettings,
) -> Vec<(&'a str, &'static str, f64)> {
    // No self-credit: whoever asked for the work is not credited for doing it.
    let requester = record.requester.as_deref();
    let eligible = |p: &&str| Some(*p) != requester && !p.trim().is_empty();
    let resolver = record
        .resolved_by
        .as_deref()
        .or(record.assignee.as_deref())
        .filter(eligible);
    // The assignee has a part of their own only when the rules give them one.
    let assignee = record
        .assignee
        .as_deref()
        .filter(eligible)
        .filter(|a| Some(*a) != resolver)
        .filter(|_| settings.credit.assignee_share.is_some());
    let mut others: Vec<&str> = record
        .contributors
        .iter()
        .map(String::as_str)
        .chain(record.assignee.as_deref())
        .filter(eligible)
        .filter(|p| Some(*p) != resolver && Some(*p) != assignee)
        .collect();
    others.sort_unstable();
    others.dedup();
    let named = usize::from(resolver.is_some()) + usize::from(assignee.is_some());
    others.truncate(settings.max_credited_people.saturating_sub(named));
    let assignee =
        assignee.filter(|_| settings.max_credited_people > usize::from(resolver.is_some()));

    // Weights per part, then normalised: a part nobody holds leaves its weight to the others.
    let resolver_weight = settings.resolver_share;
    let assignee_weight = settings.credit.assignee_share.unwrap_or(0.0);
    let rest = (1.0 - resolver_weight - assignee_weight).max(0.0);
    let mut parts: Vec<(&str, &'static str, f64)> = Vec::new();
    if let Some(r) = resolver {
        parts.push((r, resolver_role(kind), resolver_weight));
    }
    if let Some(a) = assignee {
        parts.push((a, "was assigned it", assignee_weight));
    }
    for other in &others {
        parts.push((other, "worked on it", rest / others.len() as f64));
    }
    let total: f64 = parts.iter().map(|p| p.2).sum();
    let even = 1.0 / parts.len().max(1) as f64;
    parts
        .into_iter()
        .map(|(id, role, weight)| {
            // Dividing by a total that is 1 up to rounding would turn 0.5 into 0.5000000000000001.
            let share = if (total - 1.0).abs() < 1e-9 {
                weight
            } else if total > 0.0 {
                weight / total
            } else {
                even
            };
            (id, role, share)
        })
        .collect()
}

/// Applies the per-person daily cap: nobody is credited more than `cap` in a day, counting what
/// `credited_today` already holds for them (person id → amount). What a cap cuts is not handed to
/// anyone else (that would reward others for someone's cap); it stays with the team, whose credit
/// is unchanged. Shares are recomputed from the capped amounts. Team credits pass through.
pub fn cap_daily(
    credits: Vec<Credit>,
    credited_today: &HashMap<String, f64>,
    cap: f64,
) -> Vec<Credit> {
    let win_amount = credits
        .iter()
        .find(|c| c.subject == CreditSubject::Team as i32)
        .map(|c| c.amount)
        .or_else(|| {
            credits
                .iter()
                .find(|c| c.share > 0.0)
                .map(|c| c.amount / c.share)
        });
    let mut running: HashMap<String, f64> = HashMap::new();
    credits
        .into_iter()
        .map(|mut credit| {
            if credit.subject != CreditSubject::Person as i32 {
                return credit;
            }
            let so_far = running
                .entry(credit.id.clone())
                .or_insert_with(|| credited_today.get(&credit.id).copied().unwrap_or(0.0));
            let room = (cap - *so_far).max(0.0);
            if credit.amount > room {
                credit.amount = room;
                if let Some(total) = win_amount.filter(|t| *t > 0.0) {
                    credit.share = room / total;
                }
            }
            *so_far += credit.amount;
            credit
        })
        .collect()
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

    #[test]
    fn an_assignee_share_names_the_assignee_part() {
        let mut settings = ScoringSettings::default();
        settings.credit.assignee_share = Some(0.3);
        let mut r = record(Some("p-r"), &["p-a", "p-r", "p-x"], None);
        r.assignee = Some("p-a".into());
        let c = credits(
            EventKind::IncidentResolved,
            &r,
            100.0,
            &Catalog::default(),
            &settings,
        );
        let parts: Vec<(&str, &str, f64)> = c[1..]
            .iter()
            .map(|c| (c.id.as_str(), c.role.as_str(), c.share))
            .collect();
        assert_eq!(
            parts,
            vec![
                ("p-r", "resolved it", 0.5),
                ("p-a", "was assigned it", 0.3),
                ("p-x", "worked on it", 0.2)
            ]
        );
    }

    #[test]
    fn trivial_close_codes_are_matched_whole_and_case_insensitively() {
        let rules = CreditRules::default();
        let closed = |code: &str| Record {
            close_code: Some(code.into()),
            ..Default::default()
        };
        assert!(trivial_closure(&closed("Duplicate"), &rules).is_some());
        assert!(trivial_closure(&closed(" canceled "), &rules).is_some());
        assert!(trivial_closure(&closed("Solution provided"), &rules).is_none());
        assert!(trivial_closure(&closed("Not a duplicate after all"), &rules).is_none());
        assert!(trivial_closure(&Record::default(), &rules).is_none());
    }
}
