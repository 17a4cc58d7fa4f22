//! Scoring's tables (schema `scoring`): events seen, wins and their credits. Unique keys make every
//! write idempotent, because redelivery happens.

use herald_proto::v1::{CreditSubject, EventKind, ItsmEvent, Source, ValueLabel, Win};
use herald_runtime::db::millis;
use prost::Message;
use sqlx::{AnyPool, Row};

use crate::{score::Scored, value::NoValue};

pub use herald_runtime::store::Error as StoreError;

/// What recording an event did.
#[derive(Debug)]
pub enum Recorded {
    /// First time this event was seen; a new win to publish, if it earned one.
    New(Option<Win>),
    /// Seen before (a redelivery): the win it produced, to publish again in case that was lost.
    Seen(Option<Win>),
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
}

fn token_of_kind(kind: i32) -> &'static str {
    EventKind::try_from(kind)
        .map(|k| k.token())
        .unwrap_or("unspecified")
}

impl Store {
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    /// Records an event and its scoring result in one transaction.
    pub async fn record(
        &self,
        event: &ItsmEvent,
        result: &Result<Scored, NoValue>,
    ) -> Result<Recorded, StoreError> {
        let mut tx = self.pool.begin().await?;
        let record = event.record.clone().unwrap_or_default();
        let (outcome, note) = match result {
            Ok(_) => ("win", None),
            Err(NoValue(reason)) => ("no_value", Some(reason.as_str())),
        };
        let inserted = sqlx::query(
            "INSERT INTO events (id, source, kind, record_number, occurred_at, outcome, note, scored_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&event.id)
        .bind(
            Source::try_from(event.source)
                .map(|s| s.token())
                .unwrap_or("unspecified"),
        )
        .bind(token_of_kind(event.kind))
        .bind(&record.number)
        .bind(herald_proto::time::opt_from_timestamp(event.occurred_at.as_ref()).map(millis))
        .bind(outcome)
        .bind(note)
        .bind(millis(chrono::Utc::now()))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            let win = self.event_outcome(&event.id).await?.and_then(|o| o.win);
            return Ok(Recorded::Seen(win));
        }
        let Ok(scored) = result else {
            tx.commit().await?;
            return Ok(Recorded::New(None));
        };

        let win = &scored.win;
        let value = win.value.clone().unwrap_or_default();
        let created = sqlx::query(
            "INSERT INTO wins (id, outcome_key, event_id, source, kind, record_number, occurred_at,
                               business_service, team, label, amount, currency, hours, headline, payload,
                               created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
             ON CONFLICT (outcome_key) DO NOTHING",
        )
        .bind(&win.id)
        .bind(&scored.outcome_key)
        .bind(&win.event_id)
        .bind(Source::try_from(win.source).map(|s| s.token()).unwrap_or("unspecified"))
        .bind(token_of_kind(win.kind))
        .bind(&win.record_number)
        .bind(herald_proto::time::opt_from_timestamp(win.occurred_at.as_ref()).map(millis))
        .bind(&win.business_service)
        .bind(&win.team)
        .bind(ValueLabel::try_from(value.label).map(|l| l.token()).unwrap_or("unspecified"))
        .bind(value.amount)
        .bind(&value.currency)
        .bind(value.hours)
        .bind(&win.headline)
        .bind(win.encode_to_vec())
        .bind(millis(chrono::Utc::now()))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if created == 0 {
            // Another event (the "closed" push after the "resolved" one) already credited this outcome.
            sqlx::query(
                "UPDATE events SET outcome = 'same_outcome', win_id = (SELECT id FROM wins WHERE outcome_key = $2),
                        note = 'this outcome was already credited by an earlier event'
                 WHERE id = $1",
            )
            .bind(&event.id)
            .bind(&scored.outcome_key)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(Recorded::New(None));
        }
        for credit in &win.credits {
            sqlx::query(
                "INSERT INTO credits (win_id, subject, subject_id, role, share, amount)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(&win.id)
            .bind(
                CreditSubject::try_from(credit.subject)
                    .map(|s| s.token())
                    .unwrap_or("unspecified"),
            )
            .bind(&credit.id)
            .bind(&credit.role)
            .bind(credit.share)
            .bind(credit.amount)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE events SET win_id = $2 WHERE id = $1")
            .bind(&event.id)
            .bind(&win.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Recorded::New(Some(win.clone())))
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
        let row = sqlx::query(
            "SELECT e.outcome, e.note, w.id AS win_id, w.payload
             FROM events e LEFT JOIN wins w ON w.id = e.win_id AND e.outcome = 'win'
             WHERE e.id = $1",
        )
        .bind(event_id)
        .fetch_optional(&self.pool)
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

fn decode(id: &str, payload: Vec<u8>) -> Result<Win, StoreError> {
    Win::decode(payload.as_slice()).map_err(|e| StoreError::Corrupt(id.to_string(), e))
}
