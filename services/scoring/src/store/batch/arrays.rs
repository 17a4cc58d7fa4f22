//! A run's events and signals on PostgreSQL, in one statement: the events' insert, then the
//! signals of the events it inserted, as a data-modifying `WITH` clause joined to their ids (a
//! redelivered event's signals were kept when it first came). At a low event rate a run is one
//! event, and each statement is a round trip that wakes PostgreSQL and scoring. Each list is bound
//! column by column as arrays ([`pg_arrays`]), so the statement has one text whatever the run's
//! size: as `VALUES` lists its text changed with every run's size, and PostgreSQL parsed and
//! planned each one anew, a tenth of the time it then took to run them (BENCHMARKS, thirtieth
//! sitting). SQLite has no data-modifying `WITH` and keeps two statements with their lists
//! ([`super::writes`]).

use std::{collections::HashSet, sync::LazyLock};

use chrono::{DateTime, Utc};
use herald_proto::v1::ItsmEvent;
use herald_runtime::{
    db::millis,
    pg_arrays::{self, Column},
    store::{Blobs, Placed},
};
use sqlx::{Any, Row, Transaction};

use super::super::StoreError;
use super::writes::{EventRow, SignalOf, SignalRow, kept_payload};
use crate::{score::Scored, value::NoValue};

const EVENT_COLUMNS: &[Column] = &[
    ("id", "text"),
    ("source", "text"),
    ("kind", "text"),
    ("record_number", "text"),
    ("occurred_at", "bigint"),
    ("outcome", "text"),
    ("note", "text"),
    ("win_id", "text"),
    ("payload_at", "int"),
    ("payload_len", "int"),
];

const SIGNAL_COLUMNS: &[Column] = &[
    ("of_event", "text"),
    ("event_id", "text"),
    ("source", "text"),
    ("kind", "text"),
    ("record_number", "text"),
    ("at", "bigint"),
    ("business_service", "text"),
    ("configuration_item", "text"),
];

/// Its parameters: the events' columns, the time they are scored, the signals' columns, then the
/// events' payloads (one `bytea`, each event saying where its own is).
static INSERT_EVENTS_AND_SIGNALS: LazyLock<String> = LazyLock::new(|| {
    let now = EVENT_COLUMNS.len() + 1;
    let signals = now + 1;
    let payloads = signals + SIGNAL_COLUMNS.len();
    format!(
        "WITH e AS (
             INSERT INTO events (id, source, kind, record_number, occurred_at, outcome, note,
                                 scored_at, payload, win_id)
             SELECT v.id, v.source, v.kind, v.record_number, v.occurred_at, v.outcome, v.note,
                    ${now}, substring(${payloads} FROM v.payload_at FOR v.payload_len), v.win_id
             FROM {events}
             ON CONFLICT (id) DO NOTHING RETURNING id),
         s AS (
             INSERT INTO signals (event_id, source, kind, record_number, at, business_service,
                                  configuration_item)
             SELECT v.event_id, v.source, v.kind, v.record_number, v.at, v.business_service,
                    v.configuration_item
             FROM {signal_rows}
             JOIN e ON e.id = v.of_event)
         SELECT id FROM e",
        events = pg_arrays::unnest(1, EVENT_COLUMNS, "v"),
        signal_rows = pg_arrays::unnest(signals, SIGNAL_COLUMNS, "v"),
    )
});

/// [`super::writes::events_and_signals`] on PostgreSQL: the same rows, in one statement.
pub(super) async fn events_and_signals(
    tx: &mut Transaction<'_, Any>,
    events: &[(&ItsmEvent, &Result<Scored, NoValue>)],
    signals: &[SignalOf<'_>],
    now: DateTime<Utc>,
) -> Result<HashSet<String>, StoreError> {
    let mut payloads = Blobs::default();
    let rows: Vec<Placed<EventRow<'_>>> = events
        .iter()
        .map(|(event, result)| payloads.place(EventRow::of(event, result), &kept_payload(event)))
        .collect();
    let signals: Vec<SignalRow<'_>> = signals
        .iter()
        .map(|&(event, signal)| SignalRow::of(event, signal))
        .collect();
    let query = pg_arrays::bind(
        sqlx::query(INSERT_EVENTS_AND_SIGNALS.as_str()),
        &rows,
        EVENT_COLUMNS,
    )?;
    let rows = pg_arrays::bind(query.bind(millis(now)), &signals, SIGNAL_COLUMNS)?
        .bind(payloads.into_bytes())
        .fetch_all(&mut **tx)
        .await?;
    Ok(rows.iter().map(|r| r.get::<String, _>("id")).collect())
}
