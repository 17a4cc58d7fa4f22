//! Scoring's tables (schema `scoring`): events seen, wins and what each person was credited, the
//! signals that can withdraw credit and the ledger of every change. Unique keys make every write
//! idempotent, because redelivery happens.

mod batch;
pub mod report;
pub mod rescore;
mod stories;
mod verification;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use herald_proto::v1::{EventKind, ItsmEvent, Win, WinStatus};
use herald_runtime::{db::begin_write, deferred_sync::DeferredSync};
use sqlx::{AnyPool, Row};

pub use verification::{Lease, ProblemCounts};

use crate::{
    config::ScoringSettings,
    score::{Outcome, Scored},
    value::NoValue,
    verification::{Signal, VerificationSettings, Windows},
};

/// The per-person daily credit cap in force for one outcome: the local day it happened on.
#[derive(Debug, Clone, Copy)]
pub struct DailyCap {
    pub per_person: f64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl DailyCap {
    /// The cap for the day (in the organisation's time zone) that contains `at`.
    pub fn on(per_person: f64, at: DateTime<Utc>, tz: chrono_tz::Tz) -> Self {
        let local = at.with_timezone(&tz).date_naive();
        let start_of = |day: chrono::NaiveDate| {
            day.and_hms_opt(0, 0, 0)
                .and_then(|t| t.and_local_timezone(tz).earliest())
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or(at)
        };
        Self {
            per_person,
            start: start_of(local),
            end: start_of(local + chrono::Days::new(1)),
        }
    }
}

pub use herald_runtime::store::Error as StoreError;

/// What recording an event did.
#[derive(Debug)]
pub struct Recorded {
    /// False when the event had been recorded before (a redelivery).
    pub new: bool,
    /// The win this event produced, if any, in its current status.
    pub win: Option<Win>,
    /// Wins whose current status must be published now, each kept in the outbox until its publish
    /// is marked: a confirmed win this event revoked, a lesson, or (on a redelivery) one whose
    /// publication is still pending.
    pub publish: Vec<Win>,
    /// Whether `win` itself must be published now: see [`Recorded::publish_own`].
    pub publish_win: bool,
}

impl Recorded {
    /// The event's own win when it must be published now: confirmed on arrival, or on a
    /// redelivery still confirmed. It gets no outbox row: the event is acked only once its win is
    /// published, so a redelivery publishes it again (and the bus, spotlight and notify each drop
    /// a repeat). A flag beside `win` rather than a second copy of it: a win is a few dozen
    /// allocations, and a backfill makes one for every row.
    pub fn publish_own(&self) -> Option<&Win> {
        self.win.as_ref().filter(|_| self.publish_win)
    }
}

/// What scoring made of one event.
#[derive(Debug, Clone)]
pub struct EventOutcome {
    pub outcome: String,
    pub note: Option<String>,
    pub win: Option<Win>,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// The stage's commits, made durable by [`Store::sync`] before their events are acked.
    deferred: Arc<DeferredSync>,
}

fn token_of_kind(kind: i32) -> &'static str {
    EventKind::try_from(kind)
        .map(|k| k.token())
        .unwrap_or("unspecified")
}

fn source_token(source: i32) -> &'static str {
    herald_proto::v1::Source::try_from(source)
        .map(|s| s.token())
        .unwrap_or("unspecified")
}

impl Store {
    pub fn new(pool: AnyPool) -> Self {
        Self {
            deferred: Arc::new(DeferredSync::new(pool.clone())),
            pool,
        }
    }

    /// Makes every commit of [`Store::record_outcomes`] so far durable: the stage calls it after
    /// publishing what they released and before acking their events.
    pub async fn sync(&self) -> Result<(), StoreError> {
        Ok(self.deferred.sync().await?)
    }

    /// Records an event with only a scoring result, as the stage does: its signal and its win's
    /// windows worked out from `settings` at `now`, then [`Store::record`].
    pub async fn record_event(
        &self,
        event: &ItsmEvent,
        result: &Result<Scored, NoValue>,
        settings: &VerificationSettings,
        now: DateTime<Utc>,
    ) -> Result<Recorded, StoreError> {
        let kind = result
            .as_ref()
            .ok()
            .map(|s| EventKind::try_from(s.win.kind).unwrap_or(EventKind::Unspecified));
        let (signals, windows) = crate::verification::prepare(event, kind, settings, now);
        self.record(
            event,
            &Outcome::only(result.clone()),
            &signals,
            windows,
            None,
            now,
        )
        .await
    }

    /// Records everything scoring made of an event, as the stage does.
    pub async fn record_outcome(
        &self,
        event: &ItsmEvent,
        outcome: &Outcome,
        settings: &ScoringSettings,
        tz: chrono_tz::Tz,
        now: DateTime<Utc>,
    ) -> Result<Recorded, StoreError> {
        let mut recorded = self
            .record_outcomes(&[(event, outcome)], settings, tz, now, &[])
            .await?;
        self.sync().await?;
        recorded
            .pop()
            .ok_or_else(|| StoreError::Db(sqlx::Error::Protocol("no outcome was recorded".into())))
    }

    /// Records what scoring made of each event of a batch, in order and in one transaction: one
    /// commit for the batch instead of one per event. Events later in the batch see what earlier
    /// ones wrote (a signal, a win), exactly as they would one transaction at a time. The same
    /// transaction clears the outbox mark of the wins in `published`, published since their
    /// own commit ([`Store::mark_published`] without a commit of its own).
    pub async fn record_outcomes(
        &self,
        batch: &[(&ItsmEvent, &Outcome)],
        settings: &ScoringSettings,
        tz: chrono_tz::Tz,
        now: DateTime<Utc>,
        published: &[Win],
    ) -> Result<Vec<Recorded>, StoreError> {
        let items: Vec<batch::Item<'_>> = batch
            .iter()
            .map(|(event, outcome)| {
                let kind = outcome
                    .result
                    .as_ref()
                    .ok()
                    .map(|s| EventKind::try_from(s.win.kind).unwrap_or(EventKind::Unspecified));
                let (signals, windows) =
                    crate::verification::prepare(event, kind, &settings.verification, now);
                let cap = match (settings.credit.max_credit_per_person_per_day, windows) {
                    (Some(per_person), Some(windows)) => {
                        Some(DailyCap::on(per_person, windows.outcome_at, tz))
                    }
                    _ => None,
                };
                batch::Item {
                    event,
                    outcome,
                    signals,
                    windows,
                    cap,
                }
            })
            .collect();
        // Synced later by `sync`: the stage publishes first, so the next stage does not wait on
        // this disk.
        let mut writes = self.deferred.unsynced().await?;
        let mut tx = writes.begin().await?;
        let recorded = batch::record(&mut tx, &items, now).await?;
        // Last, so the rows it locks (never waiting for one) are held only until the commit.
        if !published.is_empty() {
            verification::mark_published_in(&mut tx, published).await?;
        }
        tx.commit().await?;
        writes.release().await?;
        Ok(recorded)
    }

    /// Records an event, the signal it carries and its scoring result in one transaction: a
    /// signal withdraws the wins it falls inside the window of, a new win is held, confirmed or
    /// withdrawn on arrival by signals already seen, and the ledger gets every change.
    pub async fn record(
        &self,
        event: &ItsmEvent,
        outcome: &Outcome,
        signals: &[Signal],
        windows: Option<Windows>,
        cap: Option<&DailyCap>,
        now: DateTime<Utc>,
    ) -> Result<Recorded, StoreError> {
        let item = batch::Item {
            event,
            outcome,
            signals: signals.to_vec(),
            windows,
            cap: cap.copied(),
        };
        let mut tx = begin_write(&self.pool).await?;
        let recorded = batch::record(&mut tx, std::slice::from_ref(&item), now)
            .await?
            .pop()
            .ok_or_else(|| StoreError::Db(sqlx::Error::Protocol("no event was recorded".into())))?;
        tx.commit().await?;
        Ok(recorded)
    }

    /// A win by id.
    pub async fn win(&self, id: &str) -> Result<Option<Win>, StoreError> {
        let row = sqlx::query("SELECT payload FROM wins WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| decode(id, r.get::<Vec<u8>, _>("payload")))
            .transpose()
    }

    /// What became of an event: its outcome, the reason, and the win when it produced one.
    /// `None` when scoring never saw the event.
    pub async fn event_outcome(&self, event_id: &str) -> Result<Option<EventOutcome>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        event_outcome_on(&mut conn, event_id).await
    }

    /// The wins of a record (a ticket number such as `INC0050105`, a Jira key, a PR), newest
    /// first: by when the outcome happened, then by when it was scored.
    pub async fn wins_of_record(&self, record_number: &str) -> Result<Vec<Win>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, payload FROM wins WHERE record_number = $1
             ORDER BY COALESCE(occurred_at, created_at) DESC, created_at DESC, id",
        )
        .bind(record_number)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| decode(&r.get::<String, _>("id"), r.get::<Vec<u8>, _>("payload")))
            .collect()
    }

    /// What became of the newest event about a record, with its id; `None` when scoring never saw
    /// an event about it.
    pub async fn latest_event_of_record(
        &self,
        record_number: &str,
    ) -> Result<Option<(String, EventOutcome)>, StoreError> {
        let row = sqlx::query(
            "SELECT id FROM events WHERE record_number = $1
             ORDER BY COALESCE(occurred_at, scored_at) DESC, scored_at DESC, id LIMIT 1",
        )
        .bind(record_number)
        .fetch_optional(&self.pool)
        .await?;
        let Some(id) = row.map(|r| r.get::<String, _>("id")) else {
            return Ok(None);
        };
        Ok(self.event_outcome(&id).await?.map(|outcome| (id, outcome)))
    }
}

/// A redelivered event: what it produced, and its win again when that is confirmed or still waits
/// in the outbox (the first delivery may have died between the commit and the publish, and a win
/// confirmed on arrival has no outbox row: the redelivery is what publishes it then).
async fn recorded_before(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    event_id: &str,
) -> Result<Recorded, StoreError> {
    let win = event_outcome_on(tx, event_id).await?.and_then(|o| o.win);
    let pending = match &win {
        Some(win) => sqlx::query("SELECT win_id FROM outbox WHERE win_id = $1")
            .bind(&win.id)
            .fetch_optional(&mut **tx)
            .await?
            .is_some(),
        None => false,
    };
    let (publish, publish_win) = match &win {
        Some(win) if pending => (vec![win.clone()], false),
        Some(win) => (Vec::new(), win.status == WinStatus::Confirmed as i32),
        None => (Vec::new(), false),
    };
    Ok(Recorded {
        new: false,
        win,
        publish,
        publish_win,
    })
}

async fn event_outcome_on(
    conn: &mut sqlx::AnyConnection,
    event_id: &str,
) -> Result<Option<EventOutcome>, StoreError> {
    let row = sqlx::query(
        "SELECT e.outcome, e.note, w.id AS win_id, w.payload
         FROM events e LEFT JOIN wins w ON w.id = e.win_id AND e.outcome = 'win'
         WHERE e.id = $1",
    )
    .bind(event_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let win = match row.get::<Option<Vec<u8>>, _>("payload") {
        Some(payload) => Some(decode(&row.get::<String, _>("win_id"), payload)?),
        None => None,
    };
    Ok(Some(EventOutcome {
        outcome: row.get("outcome"),
        note: row.get("note"),
        win,
    }))
}

fn status_token(status: i32) -> &'static str {
    WinStatus::try_from(status)
        .map(|s| s.token())
        .unwrap_or("confirmed")
}

fn decode(id: &str, payload: Vec<u8>) -> Result<Win, StoreError> {
    herald_runtime::store::decode_payload(id, &payload)
}
