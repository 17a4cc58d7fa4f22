//! The Bus for `herald up`: JetStream's semantics in one SQLite file, so a single process needs no
//! server and still loses nothing it accepted.
//!
//! - Streams are rows of `messages` (one sequence for all); a publish inside the duplicate window
//!   with a message id already stored is reported as a duplicate and stores nothing.
//! - A durable consumer has a cursor (the last sequence it has taken) and `pending` rows for what
//!   it holds unacknowledged, each with a delivery count and the time it becomes deliverable again:
//!   after the ack wait, or after a nak's delay.
//! - Every change is a committed transaction (WAL, `synchronous = FULL`) before the call returns, so
//!   a killed process resumes exactly where it stopped: unacknowledged messages come back.
//!   Publishes and acknowledgements from the whole process share commits ([`crate::group_commit`]).
//! - One process owns a data directory at a time (`bus.lock`).

use std::{
    collections::{HashMap, VecDeque},
    fs::File,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use async_trait::async_trait;
use bytes::Bytes;
use sqlx::{
    QueryBuilder, Row, Sqlite, SqlitePool,
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
    },
};
use tokio::sync::Notify;

use crate::group_commit::{Write, Writer, Written};
use crate::{
    Acker, Backlog, Bus, BusError, Headers, IncomingMessage, OutgoingMessage, PublishReceipt,
    StoredMessage, StreamFamily, Subscription, topology::ConsumerSpec, topology::StreamSettings,
};

/// Largest message, as configured for the NATS servers Herald ships with.
const MAX_PAYLOAD: usize = 8 * 1024 * 1024;
/// How many deliveries a subscription takes at once.
const BATCH: i64 = 64;
/// How often a waiting subscription looks again when nothing woke it.
const IDLE_POLL: Duration = Duration::from_millis(250);

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS messages (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        stream       TEXT NOT NULL,
        subject      TEXT NOT NULL,
        msg_id       TEXT NOT NULL,
        payload      BLOB NOT NULL,
        headers      TEXT NOT NULL,
        published_at INTEGER NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS messages_by_id ON messages (stream, msg_id)",
    "CREATE INDEX IF NOT EXISTS messages_by_stream ON messages (stream, seq)",
    "CREATE TABLE IF NOT EXISTS consumers (
        name            TEXT PRIMARY KEY,
        stream          TEXT NOT NULL,
        filter          TEXT NOT NULL,
        ack_wait_ms     INTEGER NOT NULL,
        max_ack_pending INTEGER NOT NULL,
        cursor          INTEGER NOT NULL DEFAULT 0
    )",
    "CREATE TABLE IF NOT EXISTS pending (
        consumer   TEXT NOT NULL,
        seq        INTEGER NOT NULL,
        delivered  INTEGER NOT NULL,
        visible_at INTEGER NOT NULL,
        PRIMARY KEY (consumer, seq)
    )",
    "CREATE INDEX IF NOT EXISTS pending_due ON pending (consumer, visible_at)",
];

struct Inner {
    pool: SqlitePool,
    /// Publishes and acknowledgements, committed in groups.
    writer: Writer,
    settings: StreamSettings,
    /// One per stream family (in [`StreamFamily::ALL`]'s order), woken on every publish to that
    /// stream and every nak of one of its messages, so the subscriptions reading it look at once.
    /// The others have nothing new: woken too, each would claim nothing in a transaction of its
    /// own (three wasted commits for every message `herald up` passes on).
    activity: [Notify; StreamFamily::ALL.len()],
    path: PathBuf,
    // Held for the life of the bus: the lock on the data directory.
    _lock: File,
}

impl Inner {
    fn activity(&self, family: StreamFamily) -> &Notify {
        // A family added to the enum must be given its place here (the match is exhaustive).
        let at = match family {
            StreamFamily::Events => 0,
            StreamFamily::Wins => 1,
            StreamFamily::Announcements => 2,
            StreamFamily::DeadLetters => 3,
        };
        &self.activity[at]
    }
}

/// A durable bus in `<dir>/bus.sqlite`.
#[derive(Clone)]
pub struct EmbeddedBus {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EmbeddedBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBus")
            .field("path", &self.inner.path)
            .finish()
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn db_error(what: &str) -> impl Fn(sqlx::Error) -> BusError + '_ {
    move |e| BusError::NotReady(format!("embedded bus: {what}: {e}"))
}

/// NATS subject matching: `*` is one token, `>` the rest.
pub fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut filter = filter.split('.');
    let mut subject = subject.split('.');
    loop {
        match (filter.next(), subject.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(f), Some(s)) if f == s => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

impl EmbeddedBus {
    /// Opens (creating if needed) the bus in `dir`. Fails when another process has it open.
    pub async fn open(dir: &Path, settings: StreamSettings) -> Result<Self, BusError> {
        let unavailable = |m: String| BusError::NotReady(m);
        std::fs::create_dir_all(dir).map_err(|e| {
            unavailable(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        })?;
        let lock_path = dir.join("bus.lock");
        let lock = File::create(&lock_path)
            .map_err(|e| unavailable(format!("cannot create {}: {e}", lock_path.display())))?;
        lock.try_lock().map_err(|_| {
            unavailable(format!(
                "{} is in use by another herald process; stop it or choose another --data-dir",
                dir.display()
            ))
        })?;
        let path = dir.join("bus.sqlite");
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // A publish or ack is on disk before it is confirmed: nothing accepted is lost.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        // One connection: every operation is a short write transaction, and one writer at a time
        // is what SQLite allows anyway.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(|e| unavailable(format!("cannot open {}: {e}", path.display())))?;
        for statement in SCHEMA.iter().copied() {
            sqlx::query(statement)
                .execute(&pool)
                .await
                .map_err(db_error("creating tables"))?;
        }
        let bus = Self {
            inner: Arc::new(Inner {
                writer: Writer::start(pool.clone()),
                pool,
                settings,
                activity: std::array::from_fn(|_| Notify::new()),
                path,
                _lock: lock,
            }),
        };
        bus.prune().await?;
        // This process owns the directory (the lock), so whatever is still held was held by one
        // that died: hand it out again now rather than after its ack wait.
        sqlx::query("UPDATE pending SET visible_at = $1 WHERE visible_at > $1")
            .bind(now_ms())
            .execute(&bus.inner.pool)
            .await
            .map_err(db_error("releasing held messages"))?;
        Ok(bus)
    }

    /// Deletes messages older than their stream's retention, as JetStream's limits do.
    pub async fn prune(&self) -> Result<u64, BusError> {
        let mut removed = 0;
        for family in StreamFamily::ALL {
            let cutoff = now_ms() - ms(self.inner.settings.max_age(family));
            removed += sqlx::query("DELETE FROM messages WHERE stream = $1 AND published_at < $2")
                .bind(family.stream_name())
                .bind(cutoff)
                .execute(&self.inner.pool)
                .await
                .map_err(db_error("pruning"))?
                .rows_affected();
        }
        Ok(removed)
    }
}

fn encode_headers(headers: &Headers) -> String {
    serde_json::to_string(headers).unwrap_or_else(|_| "[]".to_string())
}

fn decode_headers(text: &str) -> Headers {
    serde_json::from_str(text).unwrap_or_default()
}

fn stored_message(row: &SqliteRow, subject: String) -> StoredMessage {
    StoredMessage {
        sequence: u64::try_from(row.get::<i64, _>("seq")).unwrap_or(0),
        subject,
        headers: decode_headers(&row.get::<String, _>("headers")),
        payload: Bytes::from(row.get::<Vec<u8>, _>("payload")),
        stored_at: chrono::DateTime::from_timestamp_millis(row.get("published_at"))
            .unwrap_or_default(),
    }
}

#[async_trait]
impl Bus for EmbeddedBus {
    async fn ensure_topology(&self, consumers: &[ConsumerSpec]) -> Result<(), BusError> {
        for spec in consumers {
            sqlx::query(
                "INSERT INTO consumers (name, stream, filter, ack_wait_ms, max_ack_pending) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (name) DO UPDATE SET stream = excluded.stream, filter = excluded.filter,
                   ack_wait_ms = excluded.ack_wait_ms, max_ack_pending = excluded.max_ack_pending",
            )
            .bind(&spec.durable)
            .bind(spec.family.stream_name())
            .bind(&spec.filter_subject)
            .bind(ms(spec.ack_wait))
            .bind(spec.max_ack_pending)
            .execute(&self.inner.pool)
            .await
            .map_err(|e| BusError::Consumer {
                stream: spec.family.stream_name().to_string(),
                consumer: spec.durable.clone(),
                source: e.into(),
            })?;
        }
        Ok(())
    }

    async fn publish(&self, message: OutgoingMessage) -> Result<PublishReceipt, BusError> {
        let subject = message.subject.clone();
        let committed = self.queue_publish(message).await?;
        self.published(subject, committed.await)
    }

    async fn publish_in_order(
        &self,
        messages: Vec<OutgoingMessage>,
    ) -> Vec<Result<PublishReceipt, BusError>> {
        // Every message is queued before the first commit is awaited: they share group commits
        // and are stored in this order.
        let mut queued = Vec::with_capacity(messages.len());
        for message in messages {
            let subject = message.subject.clone();
            queued.push((subject, self.queue_publish(message).await));
        }
        let mut answers = Vec::with_capacity(queued.len());
        for (subject, queued) in queued {
            answers.push(match queued {
                Ok(committed) => self.published(subject, committed.await),
                Err(e) => Err(e),
            });
        }
        answers
    }

    async fn subscribe(&self, consumer: &ConsumerSpec) -> Result<Box<dyn Subscription>, BusError> {
        let exists: Option<String> =
            sqlx::query_scalar("SELECT name FROM consumers WHERE name = $1")
                .bind(&consumer.durable)
                .fetch_optional(&self.inner.pool)
                .await
                .map_err(db_error("reading consumers"))?;
        if exists.is_none() {
            return Err(BusError::Receive {
                consumer: consumer.durable.clone(),
                source: "no such consumer; create it with ensure_topology first".into(),
            });
        }
        Ok(Box::new(EmbeddedSubscription {
            inner: self.inner.clone(),
            family: consumer.family,
            consumer: consumer.durable.clone(),
            buffer: VecDeque::new(),
        }))
    }

    async fn list_stored(
        &self,
        family: StreamFamily,
        subject_filter: Option<&str>,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, BusError> {
        let stored_error = |e: sqlx::Error| BusError::Stored {
            stream: family.stream_name().to_string(),
            source: e.into(),
        };
        // Pages of rows, filtered here by subject (NATS wildcards have no SQL equivalent), until
        // `limit` matched or the stream ends.
        let page = i64::try_from(limit.clamp(1, 500)).unwrap_or(500);
        let mut cursor = i64::try_from(after_sequence).unwrap_or(i64::MAX);
        let mut found = Vec::new();
        while found.len() < limit {
            let rows = sqlx::query(
                "SELECT seq, subject, payload, headers, published_at FROM messages
                 WHERE stream = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .bind(family.stream_name())
            .bind(cursor)
            .bind(page)
            .fetch_all(&self.inner.pool)
            .await
            .map_err(stored_error)?;
            let exhausted = i64::try_from(rows.len()).unwrap_or(i64::MAX) < page;
            for row in rows {
                cursor = row.get("seq");
                let subject: String = row.get("subject");
                if subject_filter.is_some_and(|filter| !subject_matches(filter, &subject)) {
                    continue;
                }
                found.push(stored_message(&row, subject));
                if found.len() == limit {
                    break;
                }
            }
            if exhausted {
                break;
            }
        }
        Ok(found)
    }

    async fn get_stored(
        &self,
        family: StreamFamily,
        sequence: u64,
    ) -> Result<Option<StoredMessage>, BusError> {
        let row = sqlx::query(
            "SELECT seq, subject, payload, headers, published_at FROM messages WHERE stream = $1 AND seq = $2",
        )
        .bind(family.stream_name())
        .bind(i64::try_from(sequence).unwrap_or(i64::MAX))
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(|e| BusError::Stored {
            stream: family.stream_name().to_string(),
            source: e.into(),
        })?;
        Ok(row.map(|row| {
            let subject = row.get("subject");
            stored_message(&row, subject)
        }))
    }

    async fn delete_stored(&self, family: StreamFamily, sequence: u64) -> Result<bool, BusError> {
        let stored_error = |e: sqlx::Error| BusError::Stored {
            stream: family.stream_name().to_string(),
            source: e.into(),
        };
        let seq = i64::try_from(sequence).unwrap_or(i64::MAX);
        let mut tx = self.inner.pool.begin().await.map_err(stored_error)?;
        let removed = sqlx::query("DELETE FROM messages WHERE stream = $1 AND seq = $2")
            .bind(family.stream_name())
            .bind(seq)
            .execute(&mut *tx)
            .await
            .map_err(stored_error)?
            .rows_affected();
        // A consumer holding it would otherwise find nothing to deliver; as with JetStream, a
        // removed message is simply gone for everyone.
        sqlx::query("DELETE FROM pending WHERE seq = $1")
            .bind(seq)
            .execute(&mut *tx)
            .await
            .map_err(stored_error)?;
        tx.commit().await.map_err(stored_error)?;
        Ok(removed > 0)
    }

    async fn check_ready(&self) -> Result<(), BusError> {
        sqlx::query("SELECT 1")
            .execute(&self.inner.pool)
            .await
            .map(|_| ())
            .map_err(db_error("checking"))
    }

    async fn backlog(&self, consumer: &ConsumerSpec) -> Result<Backlog, BusError> {
        // Counted over the whole stream past the cursor: Herald's consumers each take their whole
        // stream, and a NATS wildcard has no SQL form, so a narrower filter would be counted high.
        let row = sqlx::query(
            "SELECT
               (SELECT count(*) FROM messages m WHERE m.stream = c.stream AND m.seq > c.cursor),
               (SELECT count(*) FROM pending p WHERE p.consumer = c.name)
             FROM consumers c WHERE c.name = $1",
        )
        .bind(&consumer.durable)
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(db_error("reading a consumer's backlog"))?;
        Ok(row.map_or_else(Backlog::default, |row| Backlog {
            pending: u64::try_from(row.get::<i64, _>(0)).unwrap_or_default(),
            ack_pending: u64::try_from(row.get::<i64, _>(1)).unwrap_or_default(),
        }))
    }

    fn max_payload(&self) -> usize {
        MAX_PAYLOAD
    }

    async fn flush(&self) -> Result<(), BusError> {
        // Every operation was committed before it returned; there is nothing buffered.
        Ok(())
    }
}

struct EmbeddedSubscription {
    inner: Arc<Inner>,
    /// The stream its consumer reads, whose publishes wake it.
    family: StreamFamily,
    consumer: String,
    buffer: VecDeque<IncomingMessage>,
}

impl EmbeddedSubscription {
    /// Takes what is deliverable now (due redeliveries, then new messages up to the consumer's
    /// limit of unacknowledged ones) into the buffer, in one transaction of a few set-based
    /// statements whatever the batch size.
    async fn claim(&mut self) -> Result<(), BusError> {
        let inner = self.inner.clone();
        let receive_error = |e: sqlx::Error| BusError::Receive {
            consumer: self.consumer.clone(),
            source: e.into(),
        };
        let now = now_ms();
        let mut tx = inner.pool.begin().await.map_err(receive_error)?;
        let consumer = sqlx::query(
            "SELECT stream, filter, ack_wait_ms, max_ack_pending, cursor FROM consumers WHERE name = $1",
        )
        .bind(&self.consumer)
        .fetch_optional(&mut *tx)
        .await
        .map_err(receive_error)?
        .ok_or_else(|| BusError::Receive {
            consumer: self.consumer.clone(),
            source: "the consumer was removed".into(),
        })?;
        let stream: String = consumer.get("stream");
        let filter: String = consumer.get("filter");
        let ack_wait: i64 = consumer.get("ack_wait_ms");
        let max_pending: i64 = consumer.get("max_ack_pending");
        let mut cursor: i64 = consumer.get("cursor");

        let mut taken: Vec<(i64, i64)> = sqlx::query(
            "UPDATE pending SET delivered = delivered + 1, visible_at = $3
             WHERE consumer = $1
               AND seq IN (SELECT seq FROM pending WHERE consumer = $1 AND visible_at <= $2 ORDER BY seq LIMIT $4)
             RETURNING seq, delivered",
        )
        .bind(&self.consumer)
        .bind(now)
        .bind(now + ack_wait)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await
        .map_err(receive_error)?
        .into_iter()
        .map(|r| (r.get("seq"), r.get("delivered")))
        .collect();
        taken.sort_unstable();

        let outstanding: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pending WHERE consumer = $1")
                .bind(&self.consumer)
                .fetch_one(&mut *tx)
                .await
                .map_err(receive_error)?;
        let room = (max_pending - outstanding).clamp(0, BATCH);
        if room > 0 {
            let fresh = sqlx::query("SELECT seq, subject FROM messages WHERE stream = $1 AND seq > $2 ORDER BY seq LIMIT $3")
                .bind(&stream)
                .bind(cursor)
                .bind(room)
                .fetch_all(&mut *tx)
                .await
                .map_err(receive_error)?;
            let mut matching = Vec::with_capacity(fresh.len());
            for row in fresh {
                cursor = row.get("seq");
                if subject_matches(&filter, &row.get::<String, _>("subject")) {
                    matching.push(cursor);
                }
            }
            if !matching.is_empty() {
                let mut insert = QueryBuilder::<Sqlite>::new(
                    "INSERT INTO pending (consumer, seq, delivered, visible_at) ",
                );
                insert.push_values(&matching, |mut row, seq| {
                    row.push_bind(&self.consumer)
                        .push_bind(*seq)
                        .push_bind(1_i64)
                        .push_bind(now + ack_wait);
                });
                insert
                    .build()
                    .execute(&mut *tx)
                    .await
                    .map_err(receive_error)?;
                taken.extend(matching.into_iter().map(|seq| (seq, 1)));
            }
            sqlx::query("UPDATE consumers SET cursor = $2 WHERE name = $1")
                .bind(&self.consumer)
                .bind(cursor)
                .execute(&mut *tx)
                .await
                .map_err(receive_error)?;
        }

        if !taken.is_empty() {
            let mut select = QueryBuilder::<Sqlite>::new(
                "SELECT seq, subject, payload, headers FROM messages WHERE seq IN (",
            );
            let mut seqs = select.separated(", ");
            for (seq, _) in &taken {
                seqs.push_bind(*seq);
            }
            select.push(")");
            let mut rows: HashMap<i64, SqliteRow> = select
                .build()
                .fetch_all(&mut *tx)
                .await
                .map_err(receive_error)?
                .into_iter()
                .map(|r| (r.get("seq"), r))
                .collect();
            for (seq, delivered) in taken {
                let Some(row) = rows.remove(&seq) else {
                    // Pruned while pending: nothing left to deliver.
                    sqlx::query("DELETE FROM pending WHERE consumer = $1 AND seq = $2")
                        .bind(&self.consumer)
                        .bind(seq)
                        .execute(&mut *tx)
                        .await
                        .map_err(receive_error)?;
                    continue;
                };
                self.buffer.push_back(IncomingMessage::new(
                    row.get("subject"),
                    Bytes::from(row.get::<Vec<u8>, _>("payload")),
                    decode_headers(&row.get::<String, _>("headers")),
                    u32::try_from(delivered).unwrap_or(u32::MAX),
                    u64::try_from(seq).unwrap_or(0),
                    Box::new(EmbeddedAcker {
                        inner: inner.clone(),
                        family: self.family,
                        consumer: self.consumer.clone(),
                        seq,
                        ack_wait,
                    }),
                ));
            }
        }
        tx.commit().await.map_err(receive_error)
    }

    /// When the next held message falls due, so an idle subscription wakes for it.
    async fn next_due(&self) -> Result<Option<i64>, BusError> {
        sqlx::query_scalar("SELECT min(visible_at) FROM pending WHERE consumer = $1")
            .bind(&self.consumer)
            .fetch_one(&self.inner.pool)
            .await
            .map_err(db_error("reading pending"))
    }
}

#[async_trait]
impl Subscription for EmbeddedSubscription {
    async fn next(&mut self) -> Option<Result<IncomingMessage, BusError>> {
        loop {
            if let Some(delivery) = self.buffer.pop_front() {
                return Some(Ok(delivery));
            }
            // Registered before looking, so a publish in between is not missed.
            let inner = self.inner.clone();
            let woken = inner.activity(self.family).notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if let Err(e) = self.claim().await {
                return Some(Err(e));
            }
            if !self.buffer.is_empty() {
                continue;
            }
            let next_due = match self.next_due().await {
                Ok(next_due) => next_due,
                Err(e) => return Some(Err(e)),
            };
            let wait = next_due
                .map(|due| Duration::from_millis(u64::try_from(due - now_ms()).unwrap_or(0)))
                .unwrap_or(IDLE_POLL)
                .min(IDLE_POLL);
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

struct EmbeddedAcker {
    inner: Arc<Inner>,
    family: StreamFamily,
    consumer: String,
    seq: i64,
    ack_wait: i64,
}

impl EmbeddedAcker {
    async fn set_visible(&self, at: i64) -> Result<(), BusError> {
        self.inner
            .writer
            .submit(Write::SetVisible {
                consumer: self.consumer.clone(),
                seq: self.seq,
                at,
            })
            .await
            .map(|_| ())
            .map_err(|e| BusError::Ack(e.into()))
    }
}

#[async_trait]
impl Acker for EmbeddedAcker {
    async fn ack(&self) -> Result<(), BusError> {
        self.inner
            .writer
            .submit(Write::Ack {
                consumer: self.consumer.clone(),
                seq: self.seq,
            })
            .await
            .map(|_| ())
            .map_err(|e| BusError::Ack(e.into()))
    }

    async fn nak(&self, delay: Duration) -> Result<(), BusError> {
        self.set_visible(now_ms() + ms(delay)).await?;
        self.inner.activity(self.family).notify_waiters();
        Ok(())
    }

    async fn in_progress(&self) -> Result<(), BusError> {
        self.set_visible(now_ms() + self.ack_wait).await
    }
}

impl EmbeddedBus {
    /// Checks a message and queues it for the next group commit; the future answers once it is
    /// committed.
    async fn queue_publish(
        &self,
        message: OutgoingMessage,
    ) -> Result<impl Future<Output = Result<Written, String>> + use<>, BusError> {
        let Some(family) = StreamFamily::of_subject(&message.subject) else {
            return Err(BusError::Publish {
                subject: message.subject,
                source: "no stream captures this subject".into(),
            });
        };
        let size = message.payload.len();
        if size > MAX_PAYLOAD {
            return Err(BusError::TooLarge {
                size,
                limit: MAX_PAYLOAD,
            });
        }
        let now = now_ms();
        let headers = encode_headers(&message.stored_headers());
        self.inner
            .writer
            .enqueue(Write::Publish {
                stream: family.stream_name(),
                subject: message.subject.clone(),
                msg_id: message.msg_id,
                headers,
                payload: message.payload,
                published_at: now,
                window_start: now - ms(self.inner.settings.duplicate_window),
            })
            .await
            .map_err(|e| BusError::Publish {
                subject: message.subject,
                source: e.into(),
            })
    }

    /// The receipt of a committed publish, waking consumers when something new was stored.
    fn published(
        &self,
        subject: String,
        committed: Result<Written, String>,
    ) -> Result<PublishReceipt, BusError> {
        let written = committed.map_err(|e| BusError::Publish {
            subject: subject.clone(),
            source: e.into(),
        })?;
        let Written::Published(receipt) = written else {
            return Err(BusError::Publish {
                subject,
                source: "the bus answered a publish with something else".into(),
            });
        };
        if !receipt.duplicate {
            // `queue_publish` refused any subject no stream captures.
            if let Some(family) = StreamFamily::of_subject(&subject) {
                self.inner.activity(family).notify_waiters();
            }
        }
        Ok(receipt)
    }
}

#[cfg(test)]
mod tests {
    use super::subject_matches;

    #[test]
    fn subjects_match_like_nats() {
        assert!(subject_matches(
            "herald.events.>",
            "herald.events.servicenow.incident_resolved"
        ));
        assert!(subject_matches(
            "herald.events.*.incident_resolved",
            "herald.events.jira.incident_resolved"
        ));
        assert!(!subject_matches(
            "herald.events.*",
            "herald.events.jira.incident_resolved"
        ));
        assert!(!subject_matches("herald.wins.>", "herald.events.x"));
        assert!(!subject_matches("herald.events.>", "herald.events"));
        assert!(subject_matches("a.b", "a.b"));
    }
}
