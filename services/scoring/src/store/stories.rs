//! Beside the wins: requesters' praise (attached to the rated ticket's win, whichever arrives
//! first), lessons learned (published at once: a failure is a fact, not an outcome to verify), the
//! deployments and merges counted for delivery metrics, and the daily credit cap's running totals.

use chrono::{DateTime, Utc};
use herald_proto::v1::{ItsmEvent, RequesterPraise, Win, WinStatus};
use herald_runtime::{db::millis, payload::pack};
use prost::Message;
use sqlx::{Any, Row, Transaction};

use super::{StoreError, decode, source_token, status_token, token_of_kind};
use crate::{
    score::Scored,
    value::{DeliveryKind, DeliveryMetric, Praise},
};

/// Keeps a requester's praise and attaches it to the newest standing win of the rated ticket.
pub(super) async fn keep_praise(
    tx: &mut Transaction<'_, Any>,
    event: &ItsmEvent,
    praise: &Praise,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO praise (event_id, source, record_number, quote, requester, score, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(&event.id)
    .bind(praise.source.token())
    .bind(&praise.record_number)
    .bind(&praise.quote)
    .bind(&praise.requester)
    .bind(&praise.score)
    .bind(millis(now))
    .execute(&mut **tx)
    .await?;
    let row = sqlx::query(
        "SELECT id, payload FROM wins WHERE source = $1 AND record_number = $2 AND status <> 'revoked'
           AND id NOT LIKE 'l-%'
         ORDER BY outcome_at DESC LIMIT 1",
    )
    .bind(praise.source.token())
    .bind(&praise.record_number)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(row) = row {
        let id: String = row.get("id");
        let mut win = decode(&id, row.get::<Vec<u8>, _>("payload"))?;
        win.praise = Some(requester_praise(praise));
        // A provisional win carries the quote when it is published; a confirmed one shows it in
        // `herald explain` and the digests.
        sqlx::query("UPDATE wins SET payload = $2 WHERE id = $1")
            .bind(&id)
            .bind(pack(win.encode_to_vec()))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

fn requester_praise(praise: &Praise) -> RequesterPraise {
    RequesterPraise {
        quote: praise.quote.clone(),
        requester: praise.requester.clone(),
        score: praise.score.clone(),
    }
}

/// Records a lesson, confirmed at once; returns it when new, to publish.
pub(super) async fn record_lesson(
    tx: &mut Transaction<'_, Any>,
    lesson: &Scored,
    now: DateTime<Utc>,
) -> Result<Option<Win>, StoreError> {
    let mut win = lesson.win.clone();
    win.status = WinStatus::Confirmed as i32;
    win.status_at = Some(herald_proto::time::to_timestamp(now));
    let occurred = herald_proto::time::opt_from_timestamp(win.occurred_at.as_ref()).map(millis);
    let created = sqlx::query(
        "INSERT INTO wins (id, outcome_key, event_id, source, kind, record_number, occurred_at,
                           business_service, team, label, amount, currency, hours, headline, payload,
                           created_at, status, outcome_at, confirm_at, revocable_until, status_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'unspecified', 0, '', 0, $10, $11, $12, $13, $7,
                 $12, $7, $12)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&win.id)
    .bind(&lesson.outcome_key)
    .bind(&win.event_id)
    .bind(source_token(win.source))
    .bind(token_of_kind(win.kind))
    .bind(&win.record_number)
    .bind(occurred)
    .bind(&win.business_service)
    .bind(&win.team)
    .bind(&win.headline)
    .bind(pack(win.encode_to_vec()))
    .bind(millis(now))
    .bind(status_token(win.status))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if created != 1 {
        return Ok(None);
    }
    super::verification::to_outbox(tx, &[&win]).await?;
    Ok(Some(win))
}

pub(super) async fn count_delivery(
    tx: &mut Transaction<'_, Any>,
    event: &ItsmEvent,
    metric: &DeliveryMetric,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO delivery_metrics (event_id, kind, service, repository, at, environment, production,
                                       linked_change, automated)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(&event.id)
    .bind(match metric.kind {
        DeliveryKind::Deployment => "deployment",
        DeliveryKind::Merge => "merge",
    })
    .bind(&metric.service)
    .bind(&metric.repository)
    .bind(millis(metric.at))
    .bind(&metric.environment)
    .bind(i32::from(metric.production))
    .bind(&metric.linked_change)
    .bind(i32::from(metric.automated))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
