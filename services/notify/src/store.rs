//! Notify's tables: deliveries and their attempt log, on PostgreSQL or SQLite.

use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_proto::v1::Announcement;
use herald_runtime::{
    db::{Backend, Database, from_millis, millis},
    kept::KeptConnections,
    payload::pack,
    store::{AnyQuery, batch_query, numbered_rows_from, value_rows},
};
use prost::Message;
use sha2::{Digest, Sha256};
use sqlx::{AnyPool, Row};

use crate::attempt::AttemptOutcome;

pub use herald_runtime::store::Error as StoreError;

/// A delivery claimed for an attempt.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: String,
    pub announcement_id: String,
    pub route: String,
    pub channel: String,
    /// This attempt's number in the delivery's log, from 1.
    pub attempt: u32,
    /// This attempt's number since the delivery was last replayed, from 1: what the attempt
    /// budget and the backoff count.
    pub try_number: u32,
    /// `None` when the stored announcement cannot be decoded.
    pub announcement: Option<Announcement>,
    /// The trace the delivery was queued in, carried on by its attempts.
    pub traceparent: Option<String>,
    /// When this process claimed it: its lease runs from here.
    pub claimed_at: std::time::Instant,
    /// When the claim runs out, as stored (milliseconds since the epoch): it tells this claim
    /// from a later one of the same delivery, taken after this one ran out.
    pub lease_until: i64,
}

impl Claimed {
    /// Whether it carries a correction of an earlier announcement.
    pub fn is_correction(&self) -> bool {
        self.announcement
            .as_ref()
            .is_some_and(|a| a.kind == herald_proto::v1::AnnouncementKind::Correction as i32)
    }
}

/// A delivery as `ListDeliveries` shows it.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub id: String,
    pub announcement_id: String,
    pub route: String,
    pub channel: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The delivery whose merged summary carried this one, when a burst was merged.
    pub merged_into: Option<String>,
    pub attempt_log: Vec<AttemptRow>,
    /// What was delivered, read from the stored announcement; `None` when it cannot be decoded.
    pub announcement: Option<Announcement>,
}

#[derive(Debug, Clone)]
pub struct AttemptRow {
    pub attempt: i64,
    pub at: DateTime<Utc>,
    pub http_status: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
    /// The receiver's answer to an attempt that went through, cut short.
    pub answer: Option<String>,
}

/// Why a delivery cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("no delivery {0}")]
    NotFound(String),
    #[error(
        "delivery {id} is {status}: only a delivered, failed or withdrawn delivery can be replayed"
    )]
    NotFinished { id: String, status: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One attempt that has ended, and what comes after it.
#[derive(Debug, Clone, Copy)]
pub struct Finished<'a> {
    pub claimed: &'a Claimed,
    pub outcome: &'a AttemptOutcome,
    pub duration: Duration,
    pub next: Next,
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    Delivered,
    RetryAt(DateTime<Utc>),
    Failed,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// The connections a delivery's two statements use, kept between deliveries (see
    /// [`herald_runtime::kept`]).
    kept: KeptConnections,
    backend: Backend,
}

/// Stable per (announcement, route, channel): the `webhook-id` receivers de-duplicate on.
pub fn delivery_id(announcement_id: &str, route: &str, channel: &str) -> String {
    let digest = Sha256::digest(format!("{announcement_id}\n{route}\n{channel}").as_bytes());
    format!("d-{}", hex::encode(&digest[..10]))
}

/// A delivery to create: on `route` to `channel`, first tried at `not_before` (now, or later when
/// the route's quiet hours hold it).
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub route: String,
    pub channel: String,
    pub not_before: DateTime<Utc>,
}

/// One announcement's deliveries to create, for [`Store::enqueue_many`].
pub struct Enqueue<'a> {
    pub announcement: &'a Announcement,
    pub planned: &'a [Planned],
    /// The trace the deliveries are queued in (the announcement's message's).
    pub traceparent: Option<String>,
}

/// What [`Store::enqueue_claiming`] did: how many deliveries are new, and those of them it claimed.
#[derive(Debug, Default)]
pub struct Queued {
    pub created: u64,
    pub claimed: Vec<Claimed>,
}

/// Eleven bound values a row: far inside either backend's limit.
const ENQUEUE_ROWS_PER_STATEMENT: usize = 500;

/// Attempt log rows a statement carries at most: seven values each, far below either database's
/// parameter limit.
const ATTEMPTS_PER_STATEMENT: usize = 100;

/// The attempt log's insert of the rows `values` (placeholders of [`bind_attempt`]'s seven).
fn insert_attempts_sql(values: &str) -> String {
    format!(
        "INSERT INTO attempts (delivery_id, attempt, at, http_status, error, duration_ms, answer)
         VALUES {values} ON CONFLICT DO NOTHING"
    )
}

/// The update that marks the deliveries `ids` (placeholders) delivered at `at` (a placeholder).
fn mark_delivered_sql(at: &str, ids: &str) -> String {
    format!(
        "UPDATE deliveries SET status = 'delivered', next_attempt_at = NULL, lease_until = NULL,
                last_error = NULL, delivered_at = {at}
         WHERE id IN ({ids})"
    )
}

/// Binds an attempt log row's seven values, in the order of its columns: `delivery_id, attempt,
/// at, http_status, error, duration_ms, answer`.
fn bind_attempt<'q>(query: AnyQuery<'q>, f: &'q Finished<'_>, now: i64) -> AnyQuery<'q> {
    query
        .bind(&f.claimed.id)
        .bind(i64::from(f.claimed.attempt))
        .bind(now)
        .bind(f.outcome.status().map(i64::from))
        .bind(f.outcome.error())
        .bind(duration_ms(f.duration))
        .bind(f.outcome.answer())
}

/// [`Store::finish_attempts`] for attempts that all went through, on PostgreSQL: the attempt log's
/// rows and the deliveries' new status in one statement (the insert a data-modifying `WITH` of
/// the update), atomic without a transaction around it. Three round trips fewer than the
/// transaction (its BEGIN, the second statement, its COMMIT), which at a low rate is a delivery's
/// largest cost. SQLite has no such form and keeps the transaction.
async fn finish_delivered_in_one(
    conn: &mut sqlx::AnyConnection,
    delivered: &[&Finished<'_>],
    now: i64,
) -> Result<(), StoreError> {
    let mut next = 1;
    let attempts = numbered_rows_from(&mut next, delivered.len(), 7);
    let now_at = next;
    next += 1;
    let ids = numbered_rows_from(&mut next, delivered.len(), 1);
    let sql = format!(
        "WITH logged AS ({}) {}",
        insert_attempts_sql(&attempts),
        mark_delivered_sql(&format!("${now_at}"), &format!("VALUES {ids}"))
    );
    let mut query = batch_query(sql);
    for f in delivered {
        query = bind_attempt(query, f, now);
    }
    query = query.bind(now);
    for f in delivered {
        query = query.bind(&f.claimed.id);
    }
    query.execute(conn).await?;
    Ok(())
}

/// A row of [`Store::enqueue_claiming`]: the announcement, its encoded payload, where it goes and
/// whether it is claimed for sending at once.
type EnqueueRow<'a> = (&'a Enqueue<'a>, &'a Vec<u8>, &'a Planned, bool);

/// Inserts `chunk` in one statement on `conn`, adding what is new and claimed to `queued`.
async fn insert_deliveries(
    conn: &mut sqlx::AnyConnection,
    chunk: &[EnqueueRow<'_>],
    lease_until: i64,
    now_ms: i64,
    queued: &mut Queued,
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO deliveries (id, announcement_id, route, channel, status, attempts, lease_until,
                                 next_attempt_at, created_at, payload, traceparent)
         VALUES {}
         ON CONFLICT (announcement_id, route, channel) DO NOTHING
         RETURNING id",
        value_rows(conn, chunk.len(), 11)
    );
    let mut query = batch_query(sql);
    for (item, payload, p, claimed) in chunk {
        let id = &item.announcement.id;
        query = query
            .bind(delivery_id(id, &p.route, &p.channel))
            .bind(id)
            .bind(&p.route)
            .bind(&p.channel)
            .bind(if *claimed { "sending" } else { "pending" })
            .bind(i64::from(*claimed))
            .bind(claimed.then_some(lease_until))
            .bind(millis(p.not_before).max(now_ms))
            .bind(now_ms)
            .bind(*payload)
            .bind(&item.traceparent);
    }
    let mut created: std::collections::HashSet<String> = query
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.get::<String, _>("id"))
        .collect();
    queued.created += created.len() as u64;
    for (item, _, p, _) in chunk.iter().filter(|row| row.3) {
        let id = delivery_id(&item.announcement.id, &p.route, &p.channel);
        // An announcement twice in one call (a redelivery in the same batch) is one row:
        // the first of its rows was stored, the others met the conflict. Claimed once.
        if created.remove(&id) {
            queued.claimed.push(Claimed {
                id,
                announcement_id: item.announcement.id.clone(),
                route: p.route.clone(),
                channel: p.channel.clone(),
                attempt: 1,
                try_number: 1,
                announcement: Some(item.announcement.clone()),
                traceparent: item.traceparent.clone(),
                claimed_at: std::time::Instant::now(),
                lease_until,
            });
        }
    }
    Ok(())
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    pub fn new(db: Database) -> Self {
        Self {
            kept: KeptConnections::new(db.pool.clone()),
            pool: db.pool,
            backend: db.backend,
        }
    }

    /// Creates the deliveries of an announcement, one per (route, channel), due at once; repeats
    /// change nothing. Returns how many are new.
    pub async fn enqueue(
        &self,
        announcement: &Announcement,
        routes: &[(String, String)],
    ) -> Result<u64, StoreError> {
        let now = Utc::now();
        let planned: Vec<Planned> = routes
            .iter()
            .map(|(route, channel)| Planned {
                route: route.clone(),
                channel: channel.clone(),
                not_before: now,
            })
            .collect();
        self.enqueue_planned(announcement, &planned).await
    }

    /// Creates the deliveries of an announcement, one per (route, channel), each first due at its
    /// `not_before`; repeats change nothing. Returns how many are new.
    pub async fn enqueue_planned(
        &self,
        announcement: &Announcement,
        planned: &[Planned],
    ) -> Result<u64, StoreError> {
        let traceparent = herald_events::trace::current_traceparent();
        self.enqueue_many(&[Enqueue {
            announcement,
            planned,
            traceparent,
        }])
        .await
    }

    /// [`Store::enqueue_planned`] for several announcements in one transaction and as few
    /// multi-row statements as fit. Returns how many deliveries are new.
    pub async fn enqueue_many(&self, items: &[Enqueue<'_>]) -> Result<u64, StoreError> {
        Ok(self
            .enqueue_claiming(items, |_| false, Duration::ZERO)
            .await?
            .created)
    }

    /// [`Store::enqueue_many`], with the new deliveries that `claim` picks claimed for `lease` in
    /// the same statement, their first attempt counted: the caller sends them at once, with no
    /// claim of its own (a row and a commit fewer on the way to the channel). A repeat is neither
    /// created nor claimed.
    pub async fn enqueue_claiming(
        &self,
        items: &[Enqueue<'_>],
        claim: impl Fn(&Planned) -> bool,
        lease: Duration,
    ) -> Result<Queued, StoreError> {
        let now = Utc::now();
        let now_ms = millis(now);
        let lease_until = now_ms + duration_ms(lease);
        let payloads: Vec<Vec<u8>> = items
            .iter()
            .map(|item| pack(item.announcement.encode_to_vec()))
            .collect();
        let rows: Vec<EnqueueRow<'_>> = items
            .iter()
            .zip(&payloads)
            .flat_map(|(item, payload)| item.planned.iter().map(move |p| (item, payload, p)))
            .map(|(item, payload, p)| (item, payload, p, claim(p)))
            .collect();
        let mut queued = Queued::default();
        if rows.is_empty() {
            return Ok(queued);
        }
        if rows.len() <= ENQUEUE_ROWS_PER_STATEMENT {
            // One statement is atomic on its own: a transaction around it would add only its
            // BEGIN's and COMMIT's round trips, two of the few a delivery costs at a low rate.
            let mut conn = self.kept.take().await?;
            insert_deliveries(&mut conn, &rows, lease_until, now_ms, &mut queued).await?;
            conn.keep();
        } else {
            let mut tx = self.pool.begin().await?;
            for chunk in rows.chunks(ENQUEUE_ROWS_PER_STATEMENT) {
                insert_deliveries(&mut tx, chunk, lease_until, now_ms, &mut queued).await?;
            }
            tx.commit().await?;
        }
        Ok(queued)
    }

    /// Routes a correction to every route that carried the announcement it corrects: a delivery not
    /// attempted yet is withdrawn instead (nobody saw it, so nothing needs correcting); every other
    /// one gets the correction, on the same route and channel, due at once. Returns how many
    /// corrections are new.
    pub async fn enqueue_correction(&self, correction: &Announcement) -> Result<u64, StoreError> {
        self.enqueue_correction_held(correction, |_| Utc::now())
            .await
    }

    /// As [`Store::enqueue_correction`], each correction first due at `not_before(route)`: the
    /// route's own sending window.
    pub async fn enqueue_correction_held(
        &self,
        correction: &Announcement,
        not_before: impl Fn(&str) -> DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let now = millis(Utc::now());
        let payload = pack(correction.encode_to_vec());
        let traceparent = herald_events::trace::current_traceparent();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE deliveries SET status = 'withdrawn', next_attempt_at = NULL,
                    last_error = 'withdrawn before it was sent: the win no longer stands'
             WHERE announcement_id = $1 AND status = 'pending' AND attempts = 0",
        )
        .bind(&correction.corrects)
        .execute(&mut *tx)
        .await?;
        let carried = sqlx::query(
            "SELECT route, channel FROM deliveries WHERE announcement_id = $1 AND status <> 'withdrawn'",
        )
        .bind(&correction.corrects)
        .fetch_all(&mut *tx)
        .await?;
        let mut created = 0;
        for row in carried {
            let route: String = row.get("route");
            let channel: String = row.get("channel");
            created += sqlx::query(
                "INSERT INTO deliveries (id, announcement_id, route, channel, status, next_attempt_at, created_at, payload, traceparent)
                 VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8)
                 ON CONFLICT (announcement_id, route, channel) DO NOTHING",
            )
            .bind(delivery_id(&correction.id, &route, &channel))
            .bind(&correction.id)
            .bind(&route)
            .bind(&channel)
            .bind(millis(not_before(&route)).max(now))
            .bind(now)
            .bind(&payload)
            .bind(&traceparent)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(created)
    }

    /// Takes the deliveries whose dispatcher vanished mid-attempt (still `sending`, lease run out),
    /// leasing them to the caller for `lease` without counting a new attempt: the caller decides
    /// whether the channel may be sent to again and logs the interrupted attempt.
    pub async fn take_interrupted(&self, lease: Duration) -> Result<Vec<Claimed>, StoreError> {
        let now = Utc::now();
        let rows = sqlx::query(
            "UPDATE deliveries SET lease_until = $1
             WHERE status = 'sending' AND lease_until < $2
             RETURNING id, announcement_id, route, channel, attempts, attempt_base, payload, traceparent, lease_until",
        )
        .bind(millis(now) + duration_ms(lease))
        .bind(millis(now))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(claimed_of).collect())
    }

    /// Claims up to `limit` due pending deliveries for `lease`. Replicas never claim the same row;
    /// an attempt whose dispatcher vanished is [`Store::take_interrupted`]'s, not this.
    pub async fn claim_due(&self, limit: i64, lease: Duration) -> Result<Vec<Claimed>, StoreError> {
        self.claim(Channels::All, limit, lease).await
    }

    /// The same, leaving out the deliveries to `busy` channels: this replica is still sending to
    /// them, and what waits for them is claimed when they are free.
    pub async fn claim_due_except(
        &self,
        busy: &[String],
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<Claimed>, StoreError> {
        self.claim(Channels::Except(busy), limit, lease).await
    }

    /// Claims up to `limit` due pending deliveries to `channel`: what arrived for it while its
    /// dispatcher waited for the channel's next slot.
    pub async fn claim_due_on(
        &self,
        channel: &str,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<Claimed>, StoreError> {
        self.claim(Channels::Only(channel), limit, lease).await
    }

    async fn claim(
        &self,
        channels: Channels<'_>,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<Claimed>, StoreError> {
        let now = Utc::now();
        // PostgreSQL replicas skip rows another one has locked; SQLite has a single writer.
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let only = match channels {
            Channels::All => String::new(),
            Channels::Only(_) => "AND channel = $4".to_string(),
            Channels::Except([]) => String::new(),
            Channels::Except(busy) => format!(
                "AND channel NOT IN ({})",
                (4..4 + busy.len())
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let sql = format!(
            "UPDATE deliveries
             SET status = 'sending', attempts = attempts + 1, lease_until = $2
             WHERE id IN (SELECT id FROM deliveries
                          WHERE status = 'pending' AND next_attempt_at <= $3 {only}
                          ORDER BY next_attempt_at
                          LIMIT $1
                          {lock})
             RETURNING id, announcement_id, route, channel, attempts, attempt_base, payload, traceparent, lease_until"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(limit)
            .bind(millis(now) + duration_ms(lease))
            .bind(millis(now));
        match channels {
            Channels::All => {}
            Channels::Only(channel) => query = query.bind(channel.to_string()),
            Channels::Except(busy) => {
                for channel in busy {
                    query = query.bind(channel.clone());
                }
            }
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut claimed: Vec<Claimed> = rows.into_iter().map(claimed_of).collect();
        // RETURNING gives no order; keep announcements in the order they came.
        claimed.sort_by(|a, b| {
            a.announcement_id
                .cmp(&b.announcement_id)
                .then(a.route.cmp(&b.route))
        });
        Ok(claimed)
    }

    /// Logs an attempt and moves the delivery on.
    pub async fn finish_attempt(
        &self,
        claimed: &Claimed,
        outcome: &AttemptOutcome,
        duration: Duration,
        next: Next,
    ) -> Result<(), StoreError> {
        self.finish_attempts(&[Finished {
            claimed,
            outcome,
            duration,
            next,
        }])
        .await
    }

    /// Logs attempts and moves their deliveries on, all in one transaction: one multi-row insert
    /// into the attempt log, one update for every delivery that went through, and one per delivery
    /// that goes on to a retry or fails (rare, and each with its own error).
    pub async fn finish_attempts(&self, finished: &[Finished<'_>]) -> Result<(), StoreError> {
        if finished.is_empty() {
            return Ok(());
        }
        let now = millis(Utc::now());
        let (delivered, others): (Vec<&Finished<'_>>, Vec<&Finished<'_>>) =
            finished.iter().partition(|f| f.next == Next::Delivered);
        if self.backend == Backend::Postgres
            && others.is_empty()
            && delivered.len() <= ATTEMPTS_PER_STATEMENT
        {
            let mut conn = self.kept.take().await?;
            finish_delivered_in_one(&mut conn, &delivered, now).await?;
            conn.keep();
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for chunk in finished.chunks(ATTEMPTS_PER_STATEMENT) {
            let sql = insert_attempts_sql(&value_rows(&tx, chunk.len(), 7));
            let mut query = batch_query(sql);
            for f in chunk {
                query = bind_attempt(query, f, now);
            }
            query.execute(&mut *tx).await?;
        }
        for chunk in delivered.chunks(500) {
            let places: Vec<String> = (2..chunk.len() + 2).map(|i| format!("${i}")).collect();
            let sql = mark_delivered_sql("$1", &places.join(", "));
            let mut query = batch_query(sql).bind(now);
            for f in chunk {
                query = query.bind(&f.claimed.id);
            }
            query.execute(&mut *tx).await?;
        }
        for f in others {
            let (status, next_at) = match f.next {
                Next::RetryAt(at) => ("pending", Some(millis(at))),
                Next::Delivered | Next::Failed => ("failed", None),
            };
            sqlx::query(
                "UPDATE deliveries SET status = $2, next_attempt_at = $3, lease_until = NULL,
                        last_error = $4
                 WHERE id = $1",
            )
            .bind(&f.claimed.id)
            .bind(status)
            .bind(next_at)
            .bind(f.outcome.error())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Logs the attempt that sent a merged summary on every delivery it carried, in one
    /// transaction: the carrier's own log says what was sent; each other one's says which
    /// delivery carried it, and a delivered one remembers it in `merged_into`.
    pub async fn finish_merged(
        &self,
        carrier: &Claimed,
        merged: &[Claimed],
        outcome: &AttemptOutcome,
        duration: Duration,
        next: Next,
    ) -> Result<(), StoreError> {
        let now = millis(Utc::now());
        let (status, next_at, delivered_at) = match next {
            Next::Delivered => ("delivered", None, Some(now)),
            Next::RetryAt(at) => ("pending", Some(millis(at)), None),
            Next::Failed => ("failed", None, None),
        };
        let note = format!("merged into the summary sent as {}", carrier.id);
        let mut tx = self.pool.begin().await?;
        for (claimed, carried_by) in std::iter::once((carrier, None))
            .chain(merged.iter().map(|m| (m, Some(carrier.id.as_str()))))
        {
            let answer = match carried_by {
                None => outcome.answer().map(str::to_string),
                Some(_) => Some(note.clone()),
            };
            sqlx::query(
                "INSERT INTO attempts (delivery_id, attempt, at, http_status, error, duration_ms, answer)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            )
            .bind(&claimed.id)
            .bind(i64::from(claimed.attempt))
            .bind(now)
            .bind(outcome.status().map(i64::from))
            .bind(outcome.error())
            .bind(duration_ms(duration))
            .bind(answer)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE deliveries SET status = $2, next_attempt_at = $3, lease_until = NULL,
                        last_error = $4, delivered_at = COALESCE($5, delivered_at),
                        merged_into = CASE WHEN $2 = 'delivered' THEN $6 ELSE NULL END
                 WHERE id = $1",
            )
            .bind(&claimed.id)
            .bind(status)
            .bind(next_at)
            .bind(outcome.error())
            .bind(delivered_at)
            .bind(carried_by)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Gives claimed deliveries back, untried: pending again, due at once, the claim's attempt
    /// not counted. Only a claim still held is given back: one that ran out and was taken again
    /// (by [`Store::take_interrupted`], then claimed anew) belongs to its new holder.
    pub async fn release(&self, claimed: &[Claimed]) -> Result<(), StoreError> {
        // Two values a delivery.
        for chunk in claimed.chunks(250) {
            let held: Vec<String> = (0..chunk.len())
                .map(|i| format!("(id = ${} AND lease_until = ${})", 2 * i + 1, 2 * i + 2))
                .collect();
            let sql = format!(
                "UPDATE deliveries SET status = 'pending', attempts = attempts - 1, lease_until = NULL
                 WHERE status = 'sending' AND ({})",
                held.join(" OR ")
            );
            let mut query = batch_query(sql);
            for c in chunk {
                query = query.bind(&c.id).bind(c.lease_until);
            }
            query.execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Reserves the next sending slot of `channel`, `interval` after the one before it whichever
    /// replica took that: returns when this message may be sent (now, or later when the channel's
    /// pace says so).
    pub async fn reserve_slot(
        &self,
        channel: &str,
        interval: Duration,
    ) -> Result<DateTime<Utc>, StoreError> {
        let now = millis(Utc::now());
        let step = duration_ms(interval);
        let row = sqlx::query(
            "INSERT INTO channel_pace (channel, next_slot) VALUES ($1, $2)
             ON CONFLICT (channel) DO UPDATE SET next_slot =
                 CASE WHEN channel_pace.next_slot > $3 THEN channel_pace.next_slot ELSE $3 END + $4
             RETURNING next_slot",
        )
        .bind(channel)
        .bind(now + step)
        .bind(now)
        .bind(step)
        .fetch_one(&self.pool)
        .await?;
        Ok(from_millis(row.get::<i64, _>("next_slot") - step))
    }

    /// Puts a finished delivery back in the queue, due at once and with a fresh attempt budget;
    /// its attempt log is kept. Returns it as listed.
    pub async fn replay(&self, id: &str) -> Result<DeliveryRow, ReplayError> {
        let now = millis(Utc::now());
        let replayed = sqlx::query(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = $2, lease_until = NULL,
                    attempt_base = attempts, merged_into = NULL, last_error = NULL
             WHERE id = $1 AND status IN ('delivered', 'failed', 'withdrawn')",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(StoreError::from)?
        .rows_affected();
        if replayed == 0 {
            let row = sqlx::query("SELECT status FROM deliveries WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::from)?;
            return Err(match row {
                None => ReplayError::NotFound(id.to_string()),
                Some(row) => ReplayError::NotFinished {
                    id: id.to_string(),
                    status: row.get("status"),
                },
            });
        }
        self.get(id)
            .await?
            .ok_or_else(|| ReplayError::NotFound(id.to_string()))
    }

    /// One delivery, with its attempts.
    pub async fn get(&self, id: &str) -> Result<Option<DeliveryRow>, StoreError> {
        Ok(self.list_where(Some(id), None, &[], 1).await?.pop())
    }

    /// Records that `address` wants no more digests.
    pub async fn opt_out_of_digests(&self, address: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO digest_optouts (address, at) VALUES ($1, $2) ON CONFLICT (address) DO NOTHING",
        )
        .bind(address.trim().to_lowercase())
        .bind(millis(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Of `addresses`, those that unsubscribed from digests (lower-cased).
    pub async fn digest_optouts(
        &self,
        addresses: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut out = std::collections::HashSet::new();
        for chunk in addresses.chunks(500) {
            let places: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT address FROM digest_optouts WHERE address IN ({})",
                places.join(", ")
            );
            let mut query = batch_query(sql);
            for a in chunk {
                query = query.bind(a.trim().to_lowercase());
            }
            for row in query.fetch_all(&self.pool).await? {
                out.insert(row.get::<String, _>("address"));
            }
        }
        Ok(out)
    }

    /// When the next pending delivery falls due, or the next attempt under way runs out of its
    /// lease, if any. Two minimums, each the first entry of its own index: one over both kinds
    /// read every row under way and, in PostgreSQL, every dead index entry sent rows left behind
    /// (4 ms a call and up, once per turn of the dispatcher).
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT min(next_attempt_at) FROM deliveries WHERE status = 'pending') AS pending,
                    (SELECT min(lease_until) FROM deliveries WHERE status = 'sending') AS leased",
        )
        .fetch_one(&self.pool)
        .await?;
        let pending = row.try_get::<Option<i64>, _>("pending")?;
        let leased = row.try_get::<Option<i64>, _>("leased")?;
        Ok(pending.into_iter().chain(leased).min().map(from_millis))
    }

    /// Deliveries, newest first, with their attempts.
    pub async fn list(
        &self,
        announcement_id: Option<&str>,
        statuses: &[&'static str],
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        self.list_where(None, announcement_id, statuses, limit)
            .await
    }

    async fn list_where(
        &self,
        id: Option<&str>,
        announcement_id: Option<&str>,
        statuses: &[&'static str],
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        // The filter is built from fixed words only; every value is a bound parameter.
        let mut filter = vec!["1 = 1".to_string()];
        let mut next = 2;
        if id.is_some() {
            filter.push(format!("id = ${next}"));
            next += 1;
        }
        if announcement_id.is_some() {
            filter.push(format!("announcement_id = ${next}"));
            next += 1;
        }
        if !statuses.is_empty() {
            let places: Vec<String> = (next..next + statuses.len())
                .map(|i| format!("${i}"))
                .collect();
            filter.push(format!("status IN ({})", places.join(", ")));
        }
        let filter = filter.join(" AND ");
        let chosen = format!(
            "SELECT id FROM deliveries WHERE {filter} ORDER BY created_at DESC, id LIMIT $1"
        );
        let bind_all = |sql: String| {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(limit);
            if let Some(id) = id {
                query = query.bind(id.to_string());
            }
            if let Some(a) = announcement_id {
                query = query.bind(a.to_string());
            }
            for s in statuses {
                query = query.bind(*s);
            }
            query
        };
        // One snapshot for both reads, so a delivery and its attempt log agree even while an
        // attempt is being recorded.
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        let rows = bind_all(format!(
            "SELECT id, announcement_id, route, channel, status, attempts, last_error, created_at,
                    delivered_at, next_attempt_at, merged_into, payload
             FROM deliveries WHERE id IN ({chosen}) ORDER BY created_at DESC, id"
        ))
        .fetch_all(&mut *tx)
        .await?;
        let mut deliveries: Vec<DeliveryRow> = rows
            .into_iter()
            .map(|r| DeliveryRow {
                id: r.get("id"),
                announcement_id: r.get("announcement_id"),
                route: r.get("route"),
                channel: r.get("channel"),
                status: r.get("status"),
                attempts: r.get("attempts"),
                last_error: r.get("last_error"),
                created_at: from_millis(r.get("created_at")),
                delivered_at: r.get::<Option<i64>, _>("delivered_at").map(from_millis),
                next_attempt_at: r.get::<Option<i64>, _>("next_attempt_at").map(from_millis),
                merged_into: r.get("merged_into"),
                attempt_log: Vec::new(),
                announcement: stored_announcement(&r),
            })
            .collect();
        let attempts = bind_all(format!(
            "SELECT delivery_id, attempt, at, http_status, error, duration_ms, answer FROM attempts
             WHERE delivery_id IN ({chosen}) ORDER BY delivery_id, attempt"
        ))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        for row in attempts {
            let id: String = row.get("delivery_id");
            if let Some(d) = deliveries.iter_mut().find(|d| d.id == id) {
                d.attempt_log.push(AttemptRow {
                    attempt: row.get("attempt"),
                    at: from_millis(row.get("at")),
                    http_status: row.get("http_status"),
                    error: row.get("error"),
                    duration_ms: row.get("duration_ms"),
                    answer: row.get("answer"),
                });
            }
        }
        Ok(deliveries)
    }
}

/// Which channels' deliveries a claim takes.
#[derive(Clone, Copy)]
enum Channels<'a> {
    All,
    Only(&'a str),
    Except(&'a [String]),
}

/// A delivery's announcement as stored (packed, or as encoded before packing), or `None` when it
/// cannot be read (the dispatcher then records a failed attempt that says so).
fn stored_announcement(r: &sqlx::any::AnyRow) -> Option<Announcement> {
    let id: String = r.try_get("id").unwrap_or_default();
    let stored: Vec<u8> = r.try_get("payload").ok()?;
    herald_runtime::store::decode_payload(&id, &stored)
        .inspect_err(|e| tracing::warn!(delivery = %id, error = %e, "a delivery's stored announcement cannot be read"))
        .ok()
}

fn claimed_of(r: sqlx::any::AnyRow) -> Claimed {
    let attempts: i64 = r.get("attempts");
    let base: i64 = r.get("attempt_base");
    Claimed {
        try_number: u32::try_from(attempts - base).unwrap_or(0),
        id: r.get("id"),
        announcement_id: r.get("announcement_id"),
        route: r.get("route"),
        channel: r.get("channel"),
        attempt: u32::try_from(attempts).unwrap_or(0),
        announcement: stored_announcement(&r),
        traceparent: r.try_get::<Option<String>, _>("traceparent").ok().flatten(),
        claimed_at: std::time::Instant::now(),
        lease_until: r
            .try_get::<Option<i64>, _>("lease_until")
            .ok()
            .flatten()
            .unwrap_or_default(),
    }
}
