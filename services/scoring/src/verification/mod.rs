//! Verified outcomes (GUIDE §5): a win's credit is provisional until its hold-back window has
//! passed with no reopen, no rollback and no related incident; a signal whose own time falls inside
//! the revocation window after the outcome withdraws it, whenever and in whatever order it arrives.
//!
//! This module holds the rules (which events are signals, which wins a signal withdraws, how long
//! each kind is held); `store::verification` applies them in the same transaction that records an
//! event, and `confirmer` confirms what has waited long enough.

pub mod confirmer;
pub mod settings;

use chrono::{DateTime, Utc};
use std::fmt::Write;

use herald_proto::{
    time::opt_from_timestamp,
    v1::{EventKind, ItsmEvent, Origin, Source, Win, WinStatus},
};

pub use settings::VerificationSettings;

/// The one kind of win a signal about something nearby (not the same record) withdraws. The
/// indexes that find standing wins by business service or configuration item hold only wins of
/// this kind (scoring migration 0013), so the lookup names it as a literal the planner can match
/// to their predicate.
pub const NEARBY_WITHDRAWN: EventKind = EventKind::ChangeImplemented;

/// Why a signal withdraws credit, in the words `herald explain` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalKind {
    /// The same ticket or page was reopened: the outcome did not hold.
    Reopen,
    /// The same change failed (rolled back).
    Rollback,
    /// An incident or page on the same business service or configuration item: a change that
    /// caused one was not a quiet change.
    RelatedIncident,
    /// The record breached its SLA in a later cycle.
    SlaBreach,
}

impl SignalKind {
    pub const ALL: [SignalKind; 4] = [
        SignalKind::Reopen,
        SignalKind::Rollback,
        SignalKind::RelatedIncident,
        SignalKind::SlaBreach,
    ];

    pub fn token(self) -> &'static str {
        match self {
            SignalKind::Reopen => "reopen",
            SignalKind::Rollback => "rollback",
            SignalKind::RelatedIncident => "related_incident",
            SignalKind::SlaBreach => "sla_breach",
        }
    }

    pub fn from_token(token: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.token() == token)
    }

    /// The win kinds this signal can withdraw.
    pub fn withdraws(self) -> &'static [EventKind] {
        match self {
            SignalKind::Reopen | SignalKind::SlaBreach => &[
                EventKind::IncidentResolved,
                EventKind::RequestFulfilled,
                EventKind::PageResolved,
                EventKind::ProblemClosed,
            ],
            SignalKind::Rollback => &[EventKind::ChangeImplemented],
            SignalKind::RelatedIncident => &[NEARBY_WITHDRAWN],
        }
    }

    /// Whether the signal is about the same record (reopen, rollback, breach) or about anything on
    /// the same service or configuration item (a related incident).
    pub fn same_record(self) -> bool {
        !matches!(self, SignalKind::RelatedIncident)
    }
}

/// An event that can withdraw credit.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub event_id: String,
    pub kind: SignalKind,
    pub source: Source,
    pub record_number: String,
    /// The signal's own time: when the reopen, the failure or the incident happened.
    pub at: DateTime<Utc>,
    pub business_service: Option<String>,
    pub configuration_item: Option<String>,
}

impl Signal {
    /// The reason a withdrawn win carries.
    pub fn reason(&self) -> String {
        let when = self.at.format("%Y-%m-%d %H:%M UTC");
        match self.kind {
            SignalKind::Reopen => format!("{} was reopened {when}", self.record_number),
            SignalKind::Rollback => format!("{} failed {when}", self.record_number),
            SignalKind::RelatedIncident => format!(
                "{} was raised {when} on the same {}",
                self.record_number,
                if self.business_service.is_some() {
                    "business service"
                } else {
                    "configuration item"
                }
            ),
            SignalKind::SlaBreach => {
                format!("{} breached its SLA (seen {when})", self.record_number)
            }
        }
    }
}

/// The signals an event carries. An event can carry two: a resolved incident on a service is
/// also a related incident (as of when it was opened) for any change on that service, and it may
/// report an SLA breach that withdraws an earlier cycle's win.
pub fn signals_of(event: &ItsmEvent) -> Vec<Signal> {
    let record = event.record.clone().unwrap_or_default();
    let kind = EventKind::try_from(event.kind).unwrap_or(EventKind::Unspecified);
    let Some(at) = opt_from_timestamp(event.occurred_at.as_ref())
        .or_else(|| opt_from_timestamp(event.received_at.as_ref()))
    else {
        return Vec::new();
    };
    let on_something = record.business_service.is_some() || record.configuration_item.is_some();
    let signal = |id: String, kind: SignalKind, at: DateTime<Utc>| Signal {
        event_id: id,
        kind,
        source: Source::try_from(event.source).unwrap_or(Source::Unspecified),
        record_number: record.number.clone(),
        at,
        business_service: record.business_service.clone(),
        configuration_item: record.configuration_item.clone(),
    };
    let mut signals = Vec::new();
    match kind {
        EventKind::IncidentReopened | EventKind::RequestReopened | EventKind::PageReopened => {
            signals.push(signal(event.id.clone(), SignalKind::Reopen, at));
        }
        EventKind::ChangeFailed => signals.push(signal(event.id.clone(), SignalKind::Rollback, at)),
        EventKind::IncidentOpened | EventKind::PageTriggered if on_something => {
            signals.push(signal(event.id.clone(), SignalKind::RelatedIncident, at));
        }
        // Tools often send only the resolution: the incident still happened, when it was opened.
        EventKind::IncidentResolved | EventKind::PageResolved if on_something => {
            let opened = opt_from_timestamp(record.opened_at.as_ref()).unwrap_or(at);
            signals.push(signal(
                format!("{}#opened", event.id),
                SignalKind::RelatedIncident,
                opened,
            ));
        }
        _ => {}
    }
    if record.sla_breached == Some(true) {
        signals.push(signal(
            format!("{}#breach", event.id),
            SignalKind::SlaBreach,
            at,
        ));
    }
    signals
}

/// The time an outcome happened: its resolution, else the event's own time.
pub fn outcome_at(event: &ItsmEvent) -> Option<DateTime<Utc>> {
    let record = event.record.as_ref();
    record
        .and_then(|r| opt_from_timestamp(r.resolved_at.as_ref()))
        .or_else(|| opt_from_timestamp(event.occurred_at.as_ref()))
}

/// What verification needs to record an event: the signal it carries and, for an event that earned
/// a win, that win's windows.
pub fn prepare(
    event: &ItsmEvent,
    win_kind: Option<EventKind>,
    settings: &VerificationSettings,
    now: DateTime<Utc>,
) -> (Vec<Signal>, Option<Windows>) {
    let windows = win_kind.and_then(|kind| {
        let outcome_at = outcome_at(event)?;
        let received_at = opt_from_timestamp(event.received_at.as_ref()).unwrap_or(now);
        Some(Windows::of(
            kind,
            outcome_at,
            received_at.min(now),
            settings,
        ))
    });
    (signals_of(event), windows)
}

/// When a win's hold-back ends and until when it can be revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    pub outcome_at: DateTime<Utc>,
    pub confirm_at: DateTime<Utc>,
    pub revocable_until: DateTime<Utc>,
}

impl Windows {
    /// The hold-back runs on the wall clock from the later of the outcome and its arrival, so an
    /// outcome that arrives late is not confirmed on arrival; the revocation window runs from the
    /// outcome itself (a reopen's own time decides).
    pub fn of(
        kind: EventKind,
        outcome_at: DateTime<Utc>,
        received_at: DateTime<Utc>,
        settings: &VerificationSettings,
    ) -> Self {
        let window = settings.window(kind);
        let start = outcome_at.max(received_at);
        Self {
            outcome_at,
            confirm_at: start + window.hold_back,
            revocable_until: outcome_at + window.revoke_within,
        }
    }

    /// Whether a signal at `at` falls inside the window after the outcome.
    pub fn covers(&self, at: DateTime<Utc>) -> bool {
        at > self.outcome_at && at <= self.revocable_until
    }
}

/// One line of a win's ledger: the entry, when, the amount it carries, and why (a withdrawal's
/// reason).
pub type LedgerLine = (String, DateTime<Utc>, f64, Option<String>);

/// The verification part of `herald explain` at `now`: where the win stands, why, and its ledger.
pub fn describe(win: &Win, ledger: &[LedgerLine], now: DateTime<Utc>) -> String {
    let when = |t: Option<&prost_types::Timestamp>| {
        opt_from_timestamp(t)
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|| "?".into())
    };
    let mut out = String::new();
    let status = match WinStatus::try_from(win.status) {
        Ok(WinStatus::Provisional) => format!(
            "provisional: pending verification until {}; a reopen, rollback or related incident before {} withdraws it. Not in any public figure yet.",
            when(win.confirm_at.as_ref()),
            when(win.revocable_until.as_ref()),
        ),
        Ok(WinStatus::Confirmed) if win.lesson.is_some() => format!(
            "told {}: a lesson is a fact, not an outcome to verify",
            when(win.status_at.as_ref())
        ),
        // A win of history (a backfill, or events replayed late) is often confirmed after its
        // window has closed: "still withdrawn by one before" a date already past would mislead.
        Ok(WinStatus::Confirmed)
            if opt_from_timestamp(win.revocable_until.as_ref()).is_some_and(|end| end <= now) =>
        {
            format!(
                "confirmed {}: the hold-back passed with no reopen, rollback or related incident; final since {}, when the window for one closed",
                when(win.status_at.as_ref()),
                when(win.revocable_until.as_ref()),
            )
        }
        Ok(WinStatus::Confirmed) => format!(
            "confirmed {}: the hold-back passed with no reopen, rollback or related incident (still withdrawn by one before {})",
            when(win.status_at.as_ref()),
            when(win.revocable_until.as_ref()),
        ),
        Ok(WinStatus::Revoked) => format!(
            "revoked {}: {}. Nobody keeps credit for it; it counts in no total.",
            when(win.status_at.as_ref()),
            win.status_reason
        ),
        _ => "confirmed (recorded before verification existed)".to_string(),
    };
    let _ = writeln!(out, "Status: {status}");
    let origin = Origin::try_from(win.origin).unwrap_or(Origin::Unspecified);
    if matches!(origin, Origin::Backfill | Origin::CatchUp) {
        let _ = writeln!(
            out,
            "History: arrived through {} — counted in its period, never announced as news",
            if origin == Origin::Backfill {
                "a backfill"
            } else {
                "the poller's catch-up"
            }
        );
    }
    if !win.rules_version.is_empty() {
        let _ = writeln!(out, "Rules: {}", win.rules_version);
    }
    if !ledger.is_empty() {
        let _ = writeln!(out, "Ledger:");
        for (entry, at, amount, reason) in ledger {
            let _ = writeln!(
                out,
                "  {}  {:<9} {:>14.2}{}",
                at.format("%Y-%m-%d %H:%M:%S"),
                entry,
                amount,
                reason
                    .as_deref()
                    .map(|r| format!("  ({r})"))
                    .unwrap_or_default()
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use herald_proto::{time::to_timestamp, v1::Record};

    use super::*;

    fn at(hour: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0)
            .single()
            .expect("time")
            + Duration::hours(hour)
    }

    #[test]
    fn a_confirmed_win_is_told_withdrawable_only_while_its_window_is_open() {
        let win = Win {
            status: WinStatus::Confirmed as i32,
            status_at: Some(to_timestamp(at(0))),
            revocable_until: Some(to_timestamp(at(72))),
            ..Win::default()
        };
        let open = describe(&win, &[], at(71));
        assert!(
            open.contains("still withdrawn by one before 2026-11-05 08:00 UTC"),
            "{open}"
        );
        let closed = describe(&win, &[], at(72));
        assert!(
            closed.contains("final since 2026-11-05 08:00 UTC, when the window for one closed"),
            "{closed}"
        );
        assert!(!closed.contains("still withdrawn"), "{closed}");
    }

    #[test]
    fn a_signal_about_something_nearby_withdraws_only_the_kind_the_nearby_indexes_hold() {
        let nearby: Vec<SignalKind> = SignalKind::ALL
            .into_iter()
            .filter(|k| !k.same_record())
            .collect();
        assert_eq!(nearby, [SignalKind::RelatedIncident]);
        for kind in nearby {
            assert_eq!(kind.withdraws(), [NEARBY_WITHDRAWN], "{kind:?}");
        }
    }

    fn event(kind: EventKind, hour: i64, record: Record) -> ItsmEvent {
        ItsmEvent {
            id: format!("e-{}-{hour}", kind.token()),
            source: Source::Servicenow as i32,
            kind: kind as i32,
            occurred_at: Some(to_timestamp(at(hour))),
            record: Some(record),
            ..Default::default()
        }
    }

    #[test]
    fn reopens_rollbacks_related_incidents_and_breaches_are_signals() {
        let kinds = |kind: EventKind, record: &Record| -> Vec<SignalKind> {
            signals_of(&event(kind, 5, record.clone()))
                .into_iter()
                .map(|s| s.kind)
                .collect()
        };
        let ticket = Record {
            number: "INC1".into(),
            ..Default::default()
        };
        assert_eq!(
            kinds(EventKind::IncidentReopened, &ticket),
            [SignalKind::Reopen]
        );
        assert_eq!(
            kinds(EventKind::ChangeFailed, &ticket),
            [SignalKind::Rollback]
        );
        // An incident counts against changes only when it names a service or a CI.
        assert!(kinds(EventKind::IncidentOpened, &ticket).is_empty());
        assert!(kinds(EventKind::IncidentResolved, &ticket).is_empty());
        let on_service = Record {
            business_service: Some("wms".into()),
            opened_at: Some(to_timestamp(at(1))),
            ..ticket.clone()
        };
        assert_eq!(
            kinds(EventKind::IncidentOpened, &on_service),
            [SignalKind::RelatedIncident]
        );
        // A resolution alone still tells that an incident happened, as of its opening.
        let resolved = signals_of(&event(EventKind::IncidentResolved, 5, on_service.clone()));
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].kind, SignalKind::RelatedIncident);
        assert_eq!(resolved[0].at, at(1));
        let breached = Record {
            sla_breached: Some(true),
            ..on_service
        };
        assert_eq!(
            kinds(EventKind::IncidentResolved, &breached),
            [SignalKind::RelatedIncident, SignalKind::SlaBreach]
        );
    }

    #[test]
    fn the_hold_back_starts_at_arrival_when_the_outcome_arrives_late() {
        let settings = VerificationSettings::default();
        let on_time = Windows::of(EventKind::IncidentResolved, at(0), at(0), &settings);
        assert_eq!(on_time.confirm_at, at(72));
        assert_eq!(on_time.revocable_until, at(72));
        // Arrived two days late: held 72 h from arrival, revocable 72 h from the outcome.
        let late = Windows::of(EventKind::IncidentResolved, at(0), at(48), &settings);
        assert_eq!(late.confirm_at, at(120));
        assert_eq!(late.revocable_until, at(72));
        assert!(late.covers(at(24)));
        assert!(
            !late.covers(at(0)),
            "the outcome itself is not a signal against it"
        );
        assert!(!late.covers(at(73)));
    }

    #[test]
    fn quiet_changes_are_held_a_week_by_default() {
        let settings = VerificationSettings::default();
        let change = Windows::of(EventKind::ChangeImplemented, at(0), at(0), &settings);
        assert_eq!(change.confirm_at, at(7 * 24));
        assert!(change.covers(at(6 * 24)));
    }
}
