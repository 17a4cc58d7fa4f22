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
//!   Every operation of the process (publishes, acknowledgements, claims) runs on one connection
//!   thread and shares commits with whatever was queued beside it ([`committer`]).
//! - One process owns a data directory at a time (`bus.lock`).

mod checkpoint;
mod committer;
mod subscription;

pub use checkpoint::Checkpointer;

use std::{
    fs::File,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, Row, params};
use tokio::sync::Notify;

use self::{committer::Committer, subscription::EmbeddedSubscription};
use crate::{
    Backlog, Bus, BusError, Cause, Headers, OutgoingMessage, PublishReceipt, StoredMessage,
    StreamFamily, Subscription, topology::ConsumerSpec, topology::StreamSettings,
};

/// Pages the write-ahead log of a SQLite file may hold before the commit that passes it copies them
/// back into the file itself (SQLite's default is 1,000), when the file's [`Checkpointer`] has not
/// done so already. A checkpoint writes each page the log holds once, however often it changed, so
/// a longer log writes the pages every batch touches (the tables' last pages, the b-trees' upper
/// levels) fewer times. It is sized so that the commits of a backfill leave the copy to the
/// checkpointer: scoring writes about 75 MB of log a second in a `herald up` backfill, so with
/// 4,000 pages (16 MB) its own commits were copying the log back (its connection wrote the file
/// itself) while the committer waited. With 40,000 (160 MB) and the checkpointer every 2 s, a
/// million-row backfill took 289–298 s against 353–404 s. A file's log keeps the length it reached
/// (after each of the checkpointer's passes SQLite writes over it from the start again rather than
/// grow it): up to about 160 MB for a file written as fast as a backfill writes, which saved a
/// further 8 % against cutting it back to 64 MiB each time. The bus and the services' SQLite stores
/// use the same figure.
pub const SQLITE_CHECKPOINT_PAGES: u32 = 40_000;

/// Largest message, as configured for the NATS servers Herald ships with.
const MAX_PAYLOAD: usize = 8 * 1024 * 1024;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS messages (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        stream       TEXT NOT NULL,
        subject      TEXT NOT NULL,
        msg_id       TEXT NOT NULL,
        payload      BLOB NOT NULL,
        headers      TEXT NOT NULL,
        published_at INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS messages_by_id ON messages (stream, msg_id);
    CREATE INDEX IF NOT EXISTS messages_by_stream ON messages (stream, seq);
    CREATE TABLE IF NOT EXISTS consumers (
        name            TEXT PRIMARY KEY,
        stream          TEXT NOT NULL,
        filter          TEXT NOT NULL,
        ack_wait_ms     INTEGER NOT NULL,
        max_ack_pending INTEGER NOT NULL,
        cursor          INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE IF NOT EXISTS pending (
        consumer   TEXT NOT NULL,
        seq        INTEGER NOT NULL,
        delivered  INTEGER NOT NULL,
        visible_at INTEGER NOT NULL,
        PRIMARY KEY (consumer, seq)
    ) WITHOUT ROWID;
";

/// Whether `pending` has the shape earlier bus files have: a row-id table with an index on its key
/// and one on `(consumer, visible_at)`. Every claim and acknowledgement wrote a page of each of
/// those three b-trees to the log; kept in its key's b-tree alone, with the due times read from
/// the consumer's few held rows, a claim and an acknowledgement write one. `herald up` wrote about
/// a quarter fewer bytes of the bus's log an event at 200 events/s.
fn pending_has_a_row_id(c: &Connection) -> Result<bool, Cause> {
    let sql: Option<String> = c
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'pending'",
            [],
            |row| row.get(0),
        )
        .optional()?;
    Ok(sql.is_some_and(|sql| !sql.contains("WITHOUT ROWID")))
}

/// Creates the bus's tables, or brings an older file's to this shape, keeping every row. Runs as
/// one job of the committer, so a failure leaves the file as it was. An older `pending` is moved
/// aside (its indexes go with it) so that [`SCHEMA`], the one place its shape is written, creates
/// the new one.
fn create_or_upgrade(c: &Connection) -> Result<(), Cause> {
    let upgrading = pending_has_a_row_id(c)?;
    if upgrading {
        c.execute_batch("ALTER TABLE pending RENAME TO pending_with_row_ids")?;
    }
    c.execute_batch(SCHEMA)?;
    if upgrading {
        c.execute_batch(
            "INSERT INTO pending (consumer, seq, delivered, visible_at)
                 SELECT consumer, seq, delivered, visible_at FROM pending_with_row_ids;
             DROP TABLE pending_with_row_ids;",
        )?;
    }
    Ok(())
}

struct Inner {
    /// The bus file's connection, on a thread of its own.
    db: Committer,
    settings: StreamSettings,
    /// One per stream family (in [`StreamFamily::ALL`]'s order), woken on every publish to that
    /// stream and every nak of one of its messages, so the subscriptions reading it look at once.
    /// The others have nothing new: woken too, each would claim nothing in a transaction of its
    /// own (three wasted commits for every message `herald up` passes on).
    activity: [Notify; StreamFamily::ALL.len()],
    path: PathBuf,
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

fn not_ready(what: &str) -> impl Fn(Cause) -> BusError + '_ {
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
        // One connection: one writer at a time is what SQLite allows anyway.
        let db = Committer::open(&path, lock)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        db.call(create_or_upgrade)
            .await
            .map_err(not_ready("creating tables"))?;
        let bus = Self {
            inner: Arc::new(Inner {
                db,
                settings,
                activity: std::array::from_fn(|_| Notify::new()),
                path,
            }),
        };
        bus.prune().await?;
        // This process owns the directory (the lock), so whatever is still held was held by one
        // that died: hand it out again now rather than after its ack wait.
        let now = now_ms();
        bus.inner
            .db
            .call(move |c| {
                Ok(c.execute(
                    "UPDATE pending SET visible_at = ?1 WHERE visible_at > ?1",
                    [now],
                )?)
            })
            .await
            .map_err(not_ready("releasing held messages"))?;
        Ok(bus)
    }

    /// Deletes messages older than their stream's retention, as JetStream's limits do.
    pub async fn prune(&self) -> Result<u64, BusError> {
        let cutoffs: Vec<(&'static str, i64)> = StreamFamily::ALL
            .iter()
            .map(|family| {
                (
                    family.stream_name(),
                    now_ms() - ms(self.inner.settings.max_age(*family)),
                )
            })
            .collect();
        self.inner
            .db
            .call(move |c| {
                let mut removed = 0;
                for (stream, cutoff) in cutoffs {
                    removed += c.execute(
                        "DELETE FROM messages WHERE stream = ?1 AND published_at < ?2",
                        params![stream, cutoff],
                    )?;
                }
                Ok(u64::try_from(removed).unwrap_or(u64::MAX))
            })
            .await
            .map_err(not_ready("pruning"))
    }
}

fn encode_headers(headers: &Headers) -> String {
    serde_json::to_string(headers).unwrap_or_else(|_| "[]".to_string())
}

fn decode_headers(text: &str) -> Headers {
    serde_json::from_str(text).unwrap_or_default()
}

/// A row of `seq, subject, payload, headers, published_at`.
fn stored_message(row: &Row<'_>) -> rusqlite::Result<StoredMessage> {
    Ok(StoredMessage {
        sequence: u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0),
        subject: row.get(1)?,
        payload: Bytes::from(row.get::<_, Vec<u8>>(2)?),
        headers: decode_headers(&row.get::<_, String>(3)?),
        stored_at: chrono::DateTime::from_timestamp_millis(row.get(4)?).unwrap_or_default(),
    })
}

/// A message to store, checked and ready for the bus's thread.
struct Publish {
    stream: &'static str,
    subject: String,
    msg_id: String,
    payload: Bytes,
    headers: String,
    published_at: i64,
    /// A message with the same id stored since then (ms) makes this one a duplicate.
    window_start: i64,
}

impl Publish {
    /// Stores the message unless the stream holds its id since `window_start`; earlier jobs of
    /// the same group are visible here, so a duplicate inside one group is found like any other.
    fn store(&self, c: &Connection) -> Result<PublishReceipt, Cause> {
        let stored: Option<i64> = c
            .prepare_cached(
                "INSERT INTO messages (stream, subject, msg_id, payload, headers, published_at)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6
                 WHERE NOT EXISTS (SELECT 1 FROM messages
                                   WHERE stream = ?1 AND msg_id = ?3 AND published_at >= ?7)
                 RETURNING seq",
            )?
            .query_row(
                params![
                    self.stream,
                    self.subject,
                    self.msg_id,
                    self.payload.as_ref(),
                    self.headers,
                    self.published_at,
                    self.window_start
                ],
                |row| row.get(0),
            )
            .optional()?;
        let (duplicate, seq) = match stored {
            Some(seq) => (false, seq),
            None => (
                true,
                c.prepare_cached(
                    "SELECT seq FROM messages WHERE stream = ?1 AND msg_id = ?2 AND published_at >= ?3
                     ORDER BY seq LIMIT 1",
                )?
                .query_row(params![self.stream, self.msg_id, self.window_start], |row| {
                    row.get::<_, i64>(0)
                })?,
            ),
        };
        Ok(PublishReceipt {
            duplicate,
            sequence: u64::try_from(seq).unwrap_or(0),
        })
    }
}

#[async_trait]
impl Bus for EmbeddedBus {
    async fn ensure_topology(&self, consumers: &[ConsumerSpec]) -> Result<(), BusError> {
        for spec in consumers {
            let row = (
                spec.durable.clone(),
                spec.family.stream_name(),
                spec.filter_subject.clone(),
                ms(spec.ack_wait),
                spec.max_ack_pending,
            );
            self.inner
                .db
                .call(move |c| {
                    c.execute(
                        "INSERT INTO consumers (name, stream, filter, ack_wait_ms, max_ack_pending)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (name) DO UPDATE SET stream = excluded.stream,
                           filter = excluded.filter, ack_wait_ms = excluded.ack_wait_ms,
                           max_ack_pending = excluded.max_ack_pending",
                        params![row.0, row.1, row.2, row.3, row.4],
                    )?;
                    Ok(())
                })
                .await
                .map_err(|source| BusError::Consumer {
                    stream: spec.family.stream_name().to_string(),
                    consumer: spec.durable.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    async fn publish(&self, message: OutgoingMessage) -> Result<PublishReceipt, BusError> {
        let subject = message.subject.clone();
        let stored = self.queue_publish(message).await?;
        self.published(subject, stored.await)
    }

    async fn publish_in_order(
        &self,
        messages: Vec<OutgoingMessage>,
    ) -> Vec<Result<PublishReceipt, BusError>> {
        // Every message is queued before the first answer is awaited: they share commits and are
        // stored in this order.
        let mut queued = Vec::with_capacity(messages.len());
        for message in messages {
            let subject = message.subject.clone();
            queued.push((subject, self.queue_publish(message).await));
        }
        let mut answers = Vec::with_capacity(queued.len());
        for (subject, queued) in queued {
            answers.push(match queued {
                Ok(stored) => self.published(subject, stored.await),
                Err(e) => Err(e),
            });
        }
        answers
    }

    async fn subscribe(&self, consumer: &ConsumerSpec) -> Result<Box<dyn Subscription>, BusError> {
        let name = consumer.durable.clone();
        let exists = self
            .inner
            .db
            .call(move |c| {
                Ok(c.prepare_cached("SELECT 1 FROM consumers WHERE name = ?1")?
                    .exists([name])?)
            })
            .await
            .map_err(not_ready("reading consumers"))?;
        if !exists {
            return Err(BusError::Receive {
                consumer: consumer.durable.clone(),
                source: "no such consumer; create it with ensure_topology first".into(),
            });
        }
        Ok(Box::new(EmbeddedSubscription::new(
            self.inner.clone(),
            consumer,
        )))
    }

    async fn list_stored(
        &self,
        family: StreamFamily,
        subject_filter: Option<&str>,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, BusError> {
        let stream = family.stream_name();
        let stored_error = |source| BusError::Stored {
            stream: stream.to_string(),
            source,
        };
        // Pages of rows, filtered here by subject (NATS wildcards have no SQL equivalent), until
        // `limit` matched or the stream ends. One job a page: a filter that matches little reads
        // the whole stream, and everything else the process does waits while a job runs.
        let page = i64::try_from(limit.clamp(1, 500)).unwrap_or(500);
        let mut cursor = i64::try_from(after_sequence).unwrap_or(i64::MAX);
        let mut found = Vec::new();
        while found.len() < limit {
            let rows = self
                .inner
                .db
                .call(move |c| {
                    Ok(c.prepare_cached(
                        "SELECT seq, subject, payload, headers, published_at FROM messages
                         WHERE stream = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                    )?
                    .query_map(params![stream, cursor, page], stored_message)?
                    .collect::<rusqlite::Result<Vec<_>>>()?)
                })
                .await
                .map_err(stored_error)?;
            let exhausted = i64::try_from(rows.len()).unwrap_or(i64::MAX) < page;
            for message in rows {
                cursor = i64::try_from(message.sequence).unwrap_or(i64::MAX);
                if subject_filter.is_some_and(|filter| !subject_matches(filter, &message.subject)) {
                    continue;
                }
                found.push(message);
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
        let stream = family.stream_name();
        let seq = i64::try_from(sequence).unwrap_or(i64::MAX);
        self.inner
            .db
            .call(move |c| {
                Ok(c.prepare_cached(
                    "SELECT seq, subject, payload, headers, published_at FROM messages
                     WHERE stream = ?1 AND seq = ?2",
                )?
                .query_row(params![stream, seq], stored_message)
                .optional()?)
            })
            .await
            .map_err(|source| BusError::Stored {
                stream: stream.to_string(),
                source,
            })
    }

    async fn delete_stored(&self, family: StreamFamily, sequence: u64) -> Result<bool, BusError> {
        let stream = family.stream_name();
        let seq = i64::try_from(sequence).unwrap_or(i64::MAX);
        self.inner
            .db
            .call(move |c| {
                let removed = c.execute(
                    "DELETE FROM messages WHERE stream = ?1 AND seq = ?2",
                    params![stream, seq],
                )?;
                // A consumer holding it would otherwise find nothing to deliver; as with
                // JetStream, a removed message is simply gone for everyone.
                c.execute("DELETE FROM pending WHERE seq = ?1", [seq])?;
                Ok(removed > 0)
            })
            .await
            .map_err(|source| BusError::Stored {
                stream: stream.to_string(),
                source,
            })
    }

    async fn check_ready(&self) -> Result<(), BusError> {
        self.inner
            .db
            .call(|c| Ok(c.execute_batch("SELECT 1")?))
            .await
            .map_err(not_ready("checking"))
    }

    async fn backlog(&self, consumer: &ConsumerSpec) -> Result<Backlog, BusError> {
        let name = consumer.durable.clone();
        // Counted over the whole stream past the cursor: Herald's consumers each take their whole
        // stream, and a NATS wildcard has no SQL form, so a narrower filter would be counted high.
        self.inner
            .db
            .call(move |c| {
                let counts = c
                    .prepare_cached(
                        "SELECT
                           (SELECT count(*) FROM messages m WHERE m.stream = c.stream AND m.seq > c.cursor),
                           (SELECT count(*) FROM pending p WHERE p.consumer = c.name)
                         FROM consumers c WHERE c.name = ?1",
                    )?
                    .query_row([name], |row| {
                        Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
                    })
                    .optional()?;
                Ok(counts.map_or_else(Backlog::default, |(pending, ack_pending)| Backlog {
                    pending: u64::try_from(pending).unwrap_or_default(),
                    ack_pending: u64::try_from(ack_pending).unwrap_or_default(),
                }))
            })
            .await
            .map_err(not_ready("reading a consumer's backlog"))
    }

    fn max_payload(&self) -> usize {
        MAX_PAYLOAD
    }

    async fn flush(&self) -> Result<(), BusError> {
        // Every operation was committed before it returned; there is nothing buffered.
        Ok(())
    }
}

impl EmbeddedBus {
    /// Checks a message and queues it for the bus's thread; the future answers once it is
    /// committed.
    async fn queue_publish(
        &self,
        message: OutgoingMessage,
    ) -> Result<impl Future<Output = Result<PublishReceipt, Cause>> + use<>, BusError> {
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
        // Only what its publisher makes again from a redelivered input may skip the fsync.
        let synced = !message.republished_on_redelivery;
        let publish = Publish {
            stream: family.stream_name(),
            subject: message.subject.clone(),
            headers: encode_headers(&message.stored_headers()),
            msg_id: message.msg_id,
            payload: message.payload,
            published_at: now,
            window_start: now - ms(self.inner.settings.duplicate_window),
        };
        self.inner
            .db
            .queue(synced, move |c| publish.store(c))
            .await
            .map_err(|source| BusError::Publish {
                subject: message.subject,
                source,
            })
    }

    /// The receipt of a committed publish, waking consumers when something new was stored.
    fn published(
        &self,
        subject: String,
        stored: Result<PublishReceipt, Cause>,
    ) -> Result<PublishReceipt, BusError> {
        let receipt = stored.map_err(|source| BusError::Publish {
            subject: subject.clone(),
            source,
        })?;
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
    use super::{EmbeddedBus, subject_matches};
    use crate::{
        Cause, OutgoingMessage,
        embedded::committer::tests::{occupied, sync_level},
    };

    /// Whether a publish's group waits for the disk, seen by a job of the same group: 2 is FULL
    /// (synced), 1 NORMAL (written to the log only).
    async fn sync_level_of(bus: &EmbeddedBus, message: OutgoingMessage) -> Result<i64, Cause> {
        let db = &bus.inner.db;
        let busy = occupied(db).await?;
        let stored = bus.queue_publish(message).await?;
        let beside = db.queue(false, sync_level).await?;
        busy.await?;
        stored.await?;
        beside.await
    }

    #[tokio::test]
    async fn only_what_a_redelivery_publishes_again_is_stored_without_waiting_for_the_disk()
    -> Result<(), Cause> {
        let dir = tempfile::tempdir()?;
        let bus = EmbeddedBus::open(dir.path(), Default::default()).await?;
        let message = |id: &str| OutgoingMessage::new("herald.wins.incident", id, "win");
        assert_eq!(sync_level_of(&bus, message("accepted")).await?, 2);
        assert_eq!(
            sync_level_of(&bus, message("made again").republished_on_redelivery()).await?,
            1
        );
        assert_eq!(sync_level_of(&bus, message("accepted again")).await?, 2);
        Ok(())
    }

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
