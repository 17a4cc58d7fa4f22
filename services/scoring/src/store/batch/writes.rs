//! The writes of a run, each one multi-row statement for the whole run.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use herald_proto::v1::{ItsmEvent, RawEncoding, ValueLabel, Win, WinStatus};
use herald_runtime::{
    db::millis,
    payload::{pack, pack_without_dictionary},
    store::{AnyQuery, batch_query, insert_new, is_postgres, value_rows},
};
use prost::Message;
use sqlx::{Any, Transaction};

use super::super::{StoreError, source_token, status_token, token_of_kind};
use crate::{
    value::NoValue,
    verification::{Signal, Windows},
};

/// Rows per statement at most, whatever the columns: well inside PostgreSQL's 65,535 and SQLite's
/// 32,766 bound values.
fn rows_per_statement(columns: usize) -> usize {
    (30_000 / columns).max(1)
}

/// A signal with the id of the event that brought it (a signal's own id may be the event's with a
/// suffix).
pub(super) type SignalOf<'a> = (&'a str, &'a Signal);

/// Inserts the events not seen before, and the signals of those events; returns the ids inserted
/// (a redelivery's is not, and its signals were kept when it first came). An event that scored a
/// win points at it from the start (setting the link afterwards rewrote the row, payload and all);
/// [`unlink_events`] clears it for the few whose win was not made.
pub(super) async fn events_and_signals(
    tx: &mut Transaction<'_, Any>,
    events: &[(&ItsmEvent, &Result<crate::score::Scored, NoValue>)],
    signals: &[SignalOf<'_>],
    now: DateTime<Utc>,
) -> Result<HashSet<String>, StoreError> {
    if is_postgres(tx) {
        return super::arrays::events_and_signals(tx, events, signals, now).await;
    }
    let inserted = events_alone(tx, events, now).await?;
    let fresh: Vec<SignalOf<'_>> = signals
        .iter()
        .filter(|(event, _)| inserted.contains(*event))
        .copied()
        .collect();
    signals_alone(tx, &fresh).await?;
    Ok(inserted)
}

async fn events_alone(
    tx: &mut Transaction<'_, Any>,
    events: &[(&ItsmEvent, &Result<crate::score::Scored, NoValue>)],
    now: DateTime<Utc>,
) -> Result<HashSet<String>, StoreError> {
    let mut inserted = HashSet::new();
    for chunk in events.chunks(rows_per_statement(10)) {
        let sql = format!(
            "INSERT INTO events (id, source, kind, record_number, occurred_at, outcome, note, scored_at, payload,
                                 win_id)
             VALUES {} ON CONFLICT (id) DO NOTHING",
            value_rows(tx, chunk.len(), 10)
        );
        let ids: Vec<&str> = chunk.iter().map(|(event, _)| event.id.as_str()).collect();
        let bind = |mut query: AnyQuery<'static>| {
            for (event, result) in chunk {
                let row = EventRow::of(event, result);
                query = query
                    .bind(row.id.to_string())
                    .bind(row.source)
                    .bind(row.kind)
                    .bind(row.record_number.to_string())
                    .bind(row.occurred_at)
                    .bind(row.outcome)
                    .bind(row.note.map(str::to_string))
                    .bind(millis(now))
                    .bind(kept_payload(event))
                    .bind(row.win_id.map(str::to_string));
            }
            query
        };
        inserted.extend(insert_new(tx, "events", sql, &ids, bind).await?);
    }
    Ok(inserted)
}

/// An event's `events` row but the time it was scored and its payload, which the caller binds
/// beside it: bound value by value here, or as one row of a run's columns ([`super::arrays`]).
#[derive(serde::Serialize)]
pub(super) struct EventRow<'a> {
    id: &'a str,
    source: &'static str,
    kind: &'static str,
    record_number: &'a str,
    occurred_at: Option<i64>,
    /// `win`, or `no_value` with the reason in `note`.
    outcome: &'static str,
    note: Option<&'a str>,
    /// The win it scored.
    win_id: Option<&'a str>,
}

impl<'a> EventRow<'a> {
    pub(super) fn of(
        event: &'a ItsmEvent,
        result: &'a Result<crate::score::Scored, NoValue>,
    ) -> Self {
        let (outcome, note) = match result {
            Ok(_) => ("win", None),
            Err(NoValue(reason)) => ("no_value", Some(reason.as_str())),
        };
        Self {
            id: &event.id,
            source: source_token(event.source),
            kind: token_of_kind(event.kind),
            record_number: event.record.as_ref().map_or("", |r| r.number.as_str()),
            occurred_at: herald_proto::time::opt_from_timestamp(event.occurred_at.as_ref())
                .map(millis),
            outcome,
            note,
            win_id: result.as_ref().ok().map(|scored| scored.win.id.as_str()),
        }
    }
}

/// The event as kept for `herald rescore`, which replays events under another catalog: scoring's
/// reading of the delivery, without the delivery itself (the raw body, most of an event's bytes,
/// stays on the event stream for audit; scoring never reads it), packed.
pub(super) fn kept_payload(event: &ItsmEvent) -> Vec<u8> {
    // Field by field, so the body is not copied only to be dropped, and a field added to the
    // event later has to be placed here.
    let encoded = ItsmEvent {
        id: event.id.clone(),
        source: event.source,
        kind: event.kind,
        occurred_at: event.occurred_at,
        record: event.record.clone(),
        received_at: event.received_at,
        raw_payload: Vec::new(),
        raw_content_type: String::new(),
        raw_payload_omitted: event.raw_payload_omitted,
        raw_payload_encoding: RawEncoding::Identity as i32,
        origin: event.origin,
    }
    .encode_to_vec();
    pack_without_dictionary(encoded)
}

/// Keeps signals of events seen for the first time (an event's id is the events table's key, in
/// the same transaction, and a run never holds one event twice), so each is kept once.
async fn signals_alone(
    tx: &mut Transaction<'_, Any>,
    signals: &[SignalOf<'_>],
) -> Result<(), StoreError> {
    for chunk in signals.chunks(rows_per_statement(7)) {
        let sql = format!(
            "INSERT INTO signals (event_id, source, kind, record_number, at, business_service, configuration_item)
             VALUES {}",
            value_rows(tx, chunk.len(), 7)
        );
        let mut query = batch_query(sql);
        for &(event, signal) in chunk {
            let row = SignalRow::of(event, signal);
            query = query
                .bind(row.event_id.to_string())
                .bind(row.source)
                .bind(row.kind)
                .bind(row.record_number.to_string())
                .bind(row.at)
                .bind(row.business_service.map(str::to_string))
                .bind(row.configuration_item.map(str::to_string));
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// A signal's `signals` row: bound value by value here, or as one row of a run's columns
/// ([`super::arrays`]).
#[derive(serde::Serialize)]
pub(super) struct SignalRow<'a> {
    /// The event that brought it: the row is kept only with that event's own.
    of_event: &'a str,
    event_id: &'a str,
    source: &'static str,
    kind: &'static str,
    record_number: &'a str,
    at: i64,
    business_service: Option<&'a str>,
    configuration_item: Option<&'a str>,
}

impl<'a> SignalRow<'a> {
    pub(super) fn of(of_event: &'a str, signal: &'a Signal) -> Self {
        Self {
            of_event,
            event_id: &signal.event_id,
            source: signal.source.token(),
            kind: signal.kind.token(),
            record_number: &signal.record_number,
            at: millis(signal.at),
            business_service: signal.business_service.as_deref(),
            configuration_item: signal.configuration_item.as_deref(),
        }
    }
}

/// A win ready to be written.
pub(super) struct NewWin<'a> {
    pub win: &'a Win,
    pub outcome_key: &'a str,
    pub windows: Windows,
    pub configuration_item: Option<&'a str>,
}

/// The `wins` columns of a [`WinRow`], in the order [`bind_win`] binds them.
const WIN_COLUMNS: &str = "id, outcome_key, event_id, source, kind, record_number, occurred_at, \
                           business_service, team, label, amount, currency, hours, headline, \
                           payload, created_at, status, outcome_at, confirm_at, revocable_until, \
                           configuration_item, status_reason, status_at";

/// A win's `wins` row but its payload (the encoded win, which the caller binds beside it): bound
/// value by value ([`bind_win`]), or as one row of a batch's columns (`in_one`), each field the
/// column of its name.
#[derive(serde::Serialize)]
pub(super) struct WinRow<'a> {
    pub id: &'a str,
    pub outcome_key: &'a str,
    pub event_id: &'a str,
    pub source: &'static str,
    pub kind: &'static str,
    pub record_number: &'a str,
    pub occurred_at: Option<i64>,
    pub business_service: Option<&'a str>,
    pub team: Option<&'a str>,
    pub label: &'static str,
    pub amount: f64,
    pub currency: &'a str,
    pub hours: f64,
    pub headline: &'a str,
    pub created_at: i64,
    pub status: &'static str,
    pub outcome_at: i64,
    pub confirm_at: i64,
    pub revocable_until: i64,
    pub configuration_item: Option<&'a str>,
    pub status_reason: &'a str,
    pub status_at: i64,
}

impl<'a> WinRow<'a> {
    pub(super) fn of(new: &NewWin<'a>, now: DateTime<Utc>) -> Self {
        let win = new.win;
        let value = win.value.as_ref();
        Self {
            id: &win.id,
            outcome_key: new.outcome_key,
            event_id: &win.event_id,
            source: source_token(win.source),
            kind: token_of_kind(win.kind),
            record_number: &win.record_number,
            occurred_at: herald_proto::time::opt_from_timestamp(win.occurred_at.as_ref())
                .map(millis),
            business_service: win.business_service.as_deref(),
            team: win.team.as_deref(),
            label: value
                .and_then(|v| ValueLabel::try_from(v.label).ok())
                .map(|l| l.token())
                .unwrap_or("unspecified"),
            amount: value.map(|v| v.amount).unwrap_or_default(),
            currency: value.map(|v| v.currency.as_str()).unwrap_or_default(),
            hours: value.map(|v| v.hours).unwrap_or_default(),
            headline: &win.headline,
            created_at: millis(now),
            status: status_token(win.status),
            outcome_at: millis(new.windows.outcome_at),
            confirm_at: millis(new.windows.confirm_at),
            revocable_until: millis(new.windows.revocable_until),
            configuration_item: new.configuration_item,
            status_reason: &win.status_reason,
            status_at: millis(now),
        }
    }

    /// Whether its numbers are finite, which the arrays of [`super::in_one`] require.
    pub(super) fn is_finite(&self) -> bool {
        self.amount.is_finite() && self.hours.is_finite()
    }
}

/// Binds a win's 23 values in the order of [`WIN_COLUMNS`]: its row and its payload.
pub(super) fn bind_win<'q>(query: AnyQuery<'q>, row: WinRow<'_>, payload: Vec<u8>) -> AnyQuery<'q> {
    query
        .bind(row.id.to_string())
        .bind(row.outcome_key.to_string())
        .bind(row.event_id.to_string())
        .bind(row.source)
        .bind(row.kind)
        .bind(row.record_number.to_string())
        .bind(row.occurred_at)
        .bind(row.business_service.map(str::to_string))
        .bind(row.team.map(str::to_string))
        .bind(row.label)
        .bind(row.amount)
        .bind(row.currency.to_string())
        .bind(row.hours)
        .bind(row.headline.to_string())
        .bind(payload)
        .bind(row.created_at)
        .bind(row.status)
        .bind(row.outcome_at)
        .bind(row.confirm_at)
        .bind(row.revocable_until)
        .bind(row.configuration_item.map(str::to_string))
        .bind(row.status_reason.to_string())
        .bind(row.status_at)
}

/// Inserts wins whose outcome has none yet; returns the ids inserted.
pub(super) async fn wins(
    tx: &mut Transaction<'_, Any>,
    wins: &[NewWin<'_>],
    now: DateTime<Utc>,
) -> Result<HashSet<String>, StoreError> {
    let mut inserted = HashSet::new();
    for chunk in wins.chunks(rows_per_statement(23)) {
        let sql = format!(
            "INSERT INTO wins ({WIN_COLUMNS}) VALUES {} ON CONFLICT (id) DO NOTHING",
            value_rows(tx, chunk.len(), 23)
        );
        let ids: Vec<&str> = chunk.iter().map(|new| new.win.id.as_str()).collect();
        let bind = |query: AnyQuery<'static>| {
            chunk.iter().fold(query, |query, new| {
                bind_win(query, WinRow::of(new, now), pack(new.win.encode_to_vec()))
            })
        };
        inserted.extend(insert_new(tx, "wins", sql, &ids, bind).await?);
    }
    Ok(inserted)
}

/// Clears the win of events whose scored win was not made after all.
pub(super) async fn unlink_events(
    tx: &mut Transaction<'_, Any>,
    events: &[&str],
) -> Result<(), StoreError> {
    for chunk in events.chunks(rows_per_statement(1)) {
        let sql = format!(
            "UPDATE events SET win_id = NULL WHERE id IN (VALUES {})",
            value_rows(tx, chunk.len(), 1)
        );
        let mut query = batch_query(sql);
        for event in chunk {
            query = query.bind(event.to_string());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// An event whose outcome an earlier event already credited: the event, the id of the win it
/// scored and that win's outcome key.
pub(super) struct Repeat<'a> {
    pub event: &'a str,
    pub win: &'a str,
    pub outcome_key: &'a str,
}

/// Marks events whose outcome an earlier event already credited (the "closed" push after the
/// "resolved" one), pointing each at that earlier win: the win of the same id whose outcome key
/// is the same (an id is a hash of the outcome key, so two outcomes could share one; such an
/// event is pointed at no win rather than at another outcome's).
pub(super) async fn same_outcome(
    tx: &mut Transaction<'_, Any>,
    events: &[Repeat<'_>],
) -> Result<(), StoreError> {
    for chunk in events.chunks(rows_per_statement(3)) {
        let sql = format!(
            "WITH v(id, win_id, outcome_key) AS (VALUES {})
             UPDATE events SET outcome = 'same_outcome',
                    win_id = (SELECT w.id FROM v JOIN wins w
                                ON w.id = v.win_id AND w.outcome_key = v.outcome_key
                              WHERE v.id = events.id),
                    note = 'this outcome was already credited by an earlier event'
             WHERE id IN (SELECT id FROM v)",
            value_rows(tx, chunk.len(), 3)
        );
        let mut query = batch_query(sql);
        for repeat in chunk {
            query = query
                .bind(repeat.event.to_string())
                .bind(repeat.win.to_string())
                .bind(repeat.outcome_key.to_string());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// The `person_credits` rows of `wins`: (win, outcome time in ms, person, amount).
pub(super) fn credit_rows<'a>(
    wins: &[(&'a Win, DateTime<Utc>)],
) -> Vec<(&'a str, i64, &'a str, f64)> {
    wins.iter()
        .flat_map(|(w, outcome_at)| {
            super::people_credited(w)
                .map(move |(person, amount)| (w.id.as_str(), millis(*outcome_at), person, amount))
        })
        .collect()
}

/// What each person was credited by each win, by the day of its outcome: the daily cap's reading.
/// A win's team credit and every share's role stay in its payload.
pub(in crate::store) async fn person_credits(
    tx: &mut Transaction<'_, Any>,
    wins: &[(&Win, DateTime<Utc>)],
) -> Result<(), StoreError> {
    let rows = credit_rows(wins);
    for chunk in rows.chunks(rows_per_statement(4)) {
        let sql = format!(
            "INSERT INTO person_credits (person, outcome_at, win_id, amount)
             VALUES {} ON CONFLICT DO NOTHING",
            value_rows(tx, chunk.len(), 4)
        );
        let mut query = batch_query(sql);
        for (win, outcome_at, person, amount) in chunk {
            query = query
                .bind(person.to_string())
                .bind(*outcome_at)
                .bind(win.to_string())
                .bind(*amount);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// One line of the ledger: a win credited, confirmed or revoked.
pub(in crate::store) struct Entry<'a> {
    pub win: &'a Win,
    pub entry: &'static str,
    pub reason: Option<&'a str>,
}

/// Appends ledger lines in order (a revocation carries the win's value negated). Each line is
/// filed under when its win arrived (`win_at`, the win's `created_at`, read from its row, which
/// is written before any line of it), so the index the lines are read by grows at its end.
pub(in crate::store) async fn ledger(
    tx: &mut Transaction<'_, Any>,
    entries: &[Entry<'_>],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for chunk in entries.chunks(rows_per_statement(6)) {
        let sql = format!(
            "WITH v(n, win_id, entry, at, amount, reason) AS (VALUES {})
             INSERT INTO ledger (win_id, win_at, entry, at, amount, reason)
             SELECT v.win_id, (SELECT w.created_at FROM wins w WHERE w.id = v.win_id), v.entry,
                    v.at, v.amount, v.reason
             FROM v ORDER BY v.n",
            value_rows(tx, chunk.len(), 6)
        );
        let mut query = batch_query(sql);
        for (n, e) in (0_i64..).zip(chunk) {
            query = query
                .bind(n)
                .bind(e.win.id.clone())
                .bind(e.entry)
                .bind(millis(now))
                .bind(signed_amount(e))
                .bind(e.reason.map(str::to_string));
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// What a ledger line carries: the win's value, negated by a revocation.
pub(super) fn signed_amount(e: &Entry<'_>) -> f64 {
    let amount = e.win.value.as_ref().map(|v| v.amount).unwrap_or_default();
    if e.entry == "revoked" {
        -amount
    } else {
        amount
    }
}

/// The ledger lines of a win just recorded: its provisional credit, and at once its withdrawal
/// when it arrived withdrawn. A win that arrived confirmed (every backfilled win, and every live
/// one with no hold-back) gets its "confirmed" line alone, which [`Store::ledger_of`] reads back as
/// the credit and the confirmation at the same instant: the "credited" line beside it said nothing
/// more, and cost three of the 28 log records a backfilled row wrote on PostgreSQL (BENCHMARKS.md,
/// forty-fifth sitting).
///
/// [`Store::ledger_of`]: crate::store::Store::ledger_of
pub(in crate::store) fn new_win_entries(win: &Win) -> Vec<Entry<'_>> {
    let line = |entry, reason| Entry { win, entry, reason };
    match WinStatus::try_from(win.status) {
        Ok(WinStatus::Confirmed) => vec![line(CONFIRMED_ON_ARRIVAL, None)],
        Ok(WinStatus::Revoked) => vec![
            line("credited", None),
            line("revoked", Some(&win.status_reason)),
        ],
        _ => vec![line("credited", None)],
    }
}

/// The entry a win's ledger starts with when it arrived confirmed; any other win's starts with
/// "credited".
pub(in crate::store) const CONFIRMED_ON_ARRIVAL: &str = "confirmed";
