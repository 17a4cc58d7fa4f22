//! Splitting a batch into runs that can be written as sets.
//!
//! Events are recorded in order: an event later in a batch must see what earlier ones wrote, exactly
//! as one transaction at a time would. Writing a run as a set reads the database once for all of
//! its events, before any of them is written, so a run holds only events that cannot see each
//! other's writes: none on the same record (a reopen and the win it withdraws, the "resolved" and
//! "closed" pushes of one outcome, a redelivery), none whose related-incident signal could
//! withdraw another's change, and no event with anything beside its win (praise, a lesson, a
//! deployment), which goes alone. The one interaction left inside a run, the daily credit cap, is
//! carried forward in memory.

use std::{collections::HashSet, ops::Range};

use herald_proto::v1::EventKind;

use super::Item;
use crate::verification::SignalKind;

/// Events a run holds at most, so one statement's parameters stay well inside both databases'
/// limits (a win row has 24).
const RUN_MAX: usize = 256;

/// A service or configuration item: where a related incident withdraws changes.
#[derive(Hash, PartialEq, Eq)]
enum Scope<'a> {
    Service(&'a str),
    Item(&'a str),
}

/// What the events of the run so far touch.
#[derive(Default)]
struct Claims<'a> {
    events: HashSet<&'a str>,
    records: HashSet<(i32, &'a str)>,
    outcomes: HashSet<&'a str>,
    /// Where a change won in this run (a related incident there would withdraw it).
    changes: HashSet<Scope<'a>>,
    /// Where a related incident in this run was raised.
    incidents: HashSet<Scope<'a>>,
    len: usize,
}

/// What one event touches.
struct Touches<'a> {
    event: &'a str,
    records: Vec<(i32, &'a str)>,
    outcome: Option<&'a str>,
    changes: Vec<Scope<'a>>,
    incidents: Vec<Scope<'a>>,
}

fn scopes<'a>(service: Option<&'a str>, item: Option<&'a str>) -> Vec<Scope<'a>> {
    service
        .map(Scope::Service)
        .into_iter()
        .chain(item.map(Scope::Item))
        .collect()
}

fn touches<'a>(item: &'a Item<'_>) -> Touches<'a> {
    let record = item.event.record.as_ref();
    let number = record.map(|r| r.number.as_str()).unwrap_or_default();
    let configuration_item = record.and_then(|r| r.configuration_item.as_deref());
    let mut records = vec![(item.event.source, number)];
    records.extend(
        item.signals
            .iter()
            .map(|s| (s.source as i32, s.record_number.as_str())),
    );
    let scored = item.outcome.result.as_ref().ok();
    let mut changes = Vec::new();
    if let Some(scored) = scored {
        records.push((scored.win.source, scored.win.record_number.as_str()));
        let kind = EventKind::try_from(scored.win.kind).unwrap_or(EventKind::Unspecified);
        if SignalKind::RelatedIncident.withdraws().contains(&kind) {
            changes = scopes(scored.win.business_service.as_deref(), configuration_item);
        }
    }
    let incidents = item
        .signals
        .iter()
        .filter(|s| !s.kind.same_record())
        .flat_map(|s| {
            scopes(
                s.business_service.as_deref(),
                s.configuration_item.as_deref(),
            )
        })
        .collect();
    Touches {
        event: item.event.id.as_str(),
        records,
        outcome: scored.map(|s| s.outcome_key.as_str()),
        changes,
        incidents,
    }
}

impl<'a> Claims<'a> {
    fn conflicts(&self, t: &Touches<'a>) -> bool {
        self.len >= RUN_MAX
            || self.events.contains(t.event)
            || t.records.iter().any(|r| self.records.contains(r))
            || t.outcome.is_some_and(|o| self.outcomes.contains(o))
            || t.changes.iter().any(|s| self.incidents.contains(s))
            || t.incidents.iter().any(|s| self.changes.contains(s))
    }

    fn add(&mut self, t: Touches<'a>) {
        self.events.insert(t.event);
        self.records.extend(t.records);
        self.outcomes.extend(t.outcome);
        self.changes.extend(t.changes);
        self.incidents.extend(t.incidents);
        self.len += 1;
    }
}

/// The batch's runs, in order, covering every index once.
pub(super) fn runs(items: &[Item<'_>]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut claims = Claims::default();
    for (i, item) in items.iter().enumerate() {
        if !item.is_plain() {
            if start < i {
                out.push(start..i);
            }
            out.push(i..i + 1);
            start = i + 1;
            claims = Claims::default();
            continue;
        }
        let t = touches(item);
        if claims.conflicts(&t) {
            out.push(start..i);
            start = i;
            claims = Claims::default();
        }
        claims.add(t);
    }
    if start < items.len() {
        out.push(start..items.len());
    }
    out
}
