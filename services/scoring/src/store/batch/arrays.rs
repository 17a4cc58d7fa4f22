//! A run's events and signals on PostgreSQL, each list bound column by column as arrays
//! ([`pg_arrays`]), so each statement has one text whatever the run's size. As `VALUES` lists their
//! text changed with every run's size, and PostgreSQL parsed and planned each one anew, a tenth of
//! the time it then took to run them (BENCHMARKS, thirtieth sitting). SQLite keeps the lists
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
use super::writes::{EventRow, SignalRow, kept_payload};
use crate::{score::Scored, value::NoValue, verification::Signal};

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

/// Its parameters: the events' columns, the time they are scored, then their payloads (one
/// `bytea`, each event saying where its own is).
static INSERT_EVENTS: LazyLock<String> = LazyLock::new(|| {
    let now = EVENT_COLUMNS.len() + 1;
    let payloads = now + 1;
    format!(
        "INSERT INTO events (id, source, kind, record_number, occurred_at, outcome, note, scored_at,
                             payload, win_id)
         SELECT v.id, v.source, v.kind, v.record_number, v.occurred_at, v.outcome, v.note, ${now},
                substring(${payloads} FROM v.payload_at FOR v.payload_len), v.win_id
         FROM {events}
         ON CONFLICT (id) DO NOTHING RETURNING id",
        events = pg_arrays::unnest(1, EVENT_COLUMNS, "v"),
    )
});

const SIGNAL_COLUMNS: &[Column] = &[
    ("event_id", "text"),
    ("source", "text"),
    ("kind", "text"),
    ("record_number", "text"),
    ("at", "bigint"),
    ("business_service", "text"),
    ("configuration_item", "text"),
];

static INSERT_SIGNALS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO signals (event_id, source, kind, record_number, at, business_service,
                              configuration_item)
         SELECT v.event_id, v.source, v.kind, v.record_number, v.at, v.business_service,
                v.configuration_item
         FROM {signals}",
        signals = pg_arrays::unnest(1, SIGNAL_COLUMNS, "v"),
    )
});

/// [`super::writes::events`] on PostgreSQL: the same rows, in one statement.
pub(super) async fn events(
    tx: &mut Transaction<'_, Any>,
    events: &[(&ItsmEvent, &Result<Scored, NoValue>)],
    now: DateTime<Utc>,
) -> Result<HashSet<String>, StoreError> {
    let mut payloads = Blobs::default();
    let rows: Vec<Placed<EventRow<'_>>> = events
        .iter()
        .map(|(event, result)| payloads.place(EventRow::of(event, result), &kept_payload(event)))
        .collect();
    let rows = pg_arrays::bind(sqlx::query(INSERT_EVENTS.as_str()), &rows, EVENT_COLUMNS)?
        .bind(millis(now))
        .bind(payloads.into_bytes())
        .fetch_all(&mut **tx)
        .await?;
    Ok(rows.iter().map(|r| r.get::<String, _>("id")).collect())
}

/// [`super::writes::signals`] on PostgreSQL: the same rows, in one statement.
pub(super) async fn signals(
    tx: &mut Transaction<'_, Any>,
    signals: &[&Signal],
) -> Result<(), StoreError> {
    let rows: Vec<SignalRow<'_>> = signals.iter().map(|s| SignalRow::of(s)).collect();
    pg_arrays::bind(sqlx::query(INSERT_SIGNALS.as_str()), &rows, SIGNAL_COLUMNS)?
        .execute(&mut **tx)
        .await?;
    Ok(())
}
