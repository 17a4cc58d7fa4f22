//! A durable consumer's subscription on the embedded bus: claims of what is deliverable, and the
//! acknowledgements of what was handled.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};

use super::{Inner, decode_headers, ms, now_ms, subject_matches};
use crate::{
    Acker, BusError, Cause, IncomingMessage, StreamFamily, Subscription, topology::ConsumerSpec,
};

/// How many deliveries a subscription takes at once. Written into the claim's SQL as a literal
/// (`LIMIT 64`): SQLite plans a `LIMIT` given as a parameter from its value, so it compiled those
/// statements again on every claim, the prepared-statement cache notwithstanding.
const BATCH: i64 = 64;
const _: () = assert!(BATCH == 64, "the claim's SQL says LIMIT 64");
/// Redeliveries due now, taken for another ack wait.
const TAKE_DUE: &str = "UPDATE pending SET delivered = delivered + 1, visible_at = ?3
     WHERE consumer = ?1
       AND seq IN (SELECT seq FROM pending WHERE consumer = ?1 AND visible_at <= ?2 ORDER BY seq LIMIT 64)
     RETURNING seq, delivered";
/// The stream's messages after the consumer's cursor.
const NEXT_FRESH: &str = "SELECT seq, subject, payload, headers FROM messages
     WHERE stream = ?1 AND seq > ?2 ORDER BY seq LIMIT 64";
/// How often a waiting subscription looks again when nothing woke it.
const IDLE_POLL: Duration = Duration::from_millis(250);

pub(super) struct EmbeddedSubscription {
    inner: Arc<Inner>,
    /// The stream its consumer reads, whose publishes wake it.
    family: StreamFamily,
    consumer: String,
    buffer: VecDeque<IncomingMessage>,
}

/// A message taken for delivery.
struct Taken {
    seq: i64,
    delivered: i64,
    subject: String,
    payload: Vec<u8>,
    headers: String,
}

/// What a claim found.
enum Claim {
    /// Messages to deliver, held for the consumer's ack wait (ms).
    Taken { messages: Vec<Taken>, ack_wait: i64 },
    /// Nothing deliverable now; the earliest time a held message falls due, if any.
    Nothing { next_due: Option<i64> },
}

impl EmbeddedSubscription {
    pub(super) fn new(inner: Arc<Inner>, consumer: &ConsumerSpec) -> Self {
        Self {
            inner,
            family: consumer.family,
            consumer: consumer.durable.clone(),
            buffer: VecDeque::new(),
        }
    }

    /// Takes what is deliverable now into the buffer; when there is nothing, says when to look
    /// again.
    async fn claim(&mut self) -> Result<Option<i64>, BusError> {
        let consumer = self.consumer.clone();
        let claimed = self
            .inner
            .db
            .call_unsynced(move |c| claim(c, &consumer, now_ms()))
            .await
            .map_err(|source| BusError::Receive {
                consumer: self.consumer.clone(),
                source,
            })?;
        let (messages, ack_wait) = match claimed {
            Claim::Nothing { next_due } => return Ok(next_due),
            Claim::Taken { messages, ack_wait } => (messages, ack_wait),
        };
        for taken in messages {
            self.buffer.push_back(IncomingMessage::new(
                taken.subject,
                Bytes::from(taken.payload),
                decode_headers(&taken.headers),
                u32::try_from(taken.delivered).unwrap_or(u32::MAX),
                u64::try_from(taken.seq).unwrap_or(0),
                Box::new(EmbeddedAcker {
                    inner: self.inner.clone(),
                    family: self.family,
                    consumer: self.consumer.clone(),
                    seq: taken.seq,
                    ack_wait,
                }),
            ));
        }
        Ok(None)
    }
}

/// Takes what `consumer` may have now, on the bus's thread: due redeliveries, then new messages
/// up to the consumer's limit of unacknowledged ones; when there are none, the time the next held
/// message falls due.
fn claim(c: &Connection, consumer: &str, now: i64) -> Result<Claim, Cause> {
    let (stream, filter, ack_wait, max_pending, mut cursor) = c
        .prepare_cached(
            "SELECT stream, filter, ack_wait_ms, max_ack_pending, cursor FROM consumers WHERE name = ?1",
        )?
        .query_row([consumer], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, i64>(4)?,
            ))
        })
        .optional()?
        .ok_or("the consumer was removed")?;
    let visible_at = now + ack_wait;

    let mut due: Vec<(i64, i64)> = c
        .prepare_cached(TAKE_DUE)?
        .query_map(params![consumer, now, visible_at], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    due.sort_unstable();
    let mut messages = Vec::new();
    {
        let mut lookup =
            c.prepare_cached("SELECT subject, payload, headers FROM messages WHERE seq = ?1")?;
        let mut forget =
            c.prepare_cached("DELETE FROM pending WHERE consumer = ?1 AND seq = ?2")?;
        for (seq, delivered) in due {
            let found = lookup
                .query_row([seq], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                .optional()?;
            match found {
                Some((subject, payload, headers)) => messages.push(Taken {
                    seq,
                    delivered,
                    subject,
                    payload,
                    headers,
                }),
                // Pruned while pending: nothing left to deliver.
                None => {
                    forget.execute(params![consumer, seq])?;
                }
            }
        }
    }

    let outstanding: i64 = c
        .prepare_cached("SELECT count(*) FROM pending WHERE consumer = ?1")?
        .query_row([consumer], |row| row.get(0))?;
    let room = (max_pending - outstanding).clamp(0, BATCH);
    if room > 0 {
        let before = cursor;
        let mut fresh = c.prepare_cached(NEXT_FRESH)?;
        let mut hold = c.prepare_cached(
            "INSERT INTO pending (consumer, seq, delivered, visible_at) VALUES (?1, ?2, 1, ?3)",
        )?;
        let mut rows = fresh.query(params![stream, cursor])?;
        let mut looked_at = 0;
        // No further than the room: the cursor moves past only what was looked at.
        while looked_at < room
            && let Some(row) = rows.next()?
        {
            looked_at += 1;
            cursor = row.get(0)?;
            let subject: String = row.get(1)?;
            if subject_matches(&filter, &subject) {
                hold.execute(params![consumer, cursor, visible_at])?;
                messages.push(Taken {
                    seq: cursor,
                    delivered: 1,
                    subject,
                    payload: row.get(2)?,
                    headers: row.get(3)?,
                });
            }
        }
        if cursor != before {
            c.prepare_cached("UPDATE consumers SET cursor = ?2 WHERE name = ?1")?
                .execute(params![consumer, cursor])?;
        }
    }

    if !messages.is_empty() {
        return Ok(Claim::Taken { messages, ack_wait });
    }
    let next_due = c
        .prepare_cached("SELECT min(visible_at) FROM pending WHERE consumer = ?1")?
        .query_row([consumer], |row| row.get(0))?;
    Ok(Claim::Nothing { next_due })
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
            let next_due = match self.claim().await {
                Ok(next_due) => next_due,
                Err(e) => return Some(Err(e)),
            };
            if !self.buffer.is_empty() {
                continue;
            }
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

/// What becomes of a message's pending row: each statement with its own parameters.
enum Change {
    /// Handled: the row goes.
    Acked,
    /// Deliverable again at this time (ms): a nak, or work still in progress.
    VisibleAt(i64),
}

impl EmbeddedAcker {
    async fn change(&self, change: Change) -> Result<(), BusError> {
        let (consumer, seq) = (self.consumer.clone(), self.seq);
        self.inner
            .db
            .call_unsynced(move |c| {
                match change {
                    Change::Acked => c
                        .prepare_cached("DELETE FROM pending WHERE consumer = ?1 AND seq = ?2")?
                        .execute(params![consumer, seq])?,
                    Change::VisibleAt(at) => c
                        .prepare_cached(
                            "UPDATE pending SET visible_at = ?3 WHERE consumer = ?1 AND seq = ?2",
                        )?
                        .execute(params![consumer, seq, at])?,
                };
                Ok(())
            })
            .await
            .map_err(BusError::Ack)
    }
}

#[async_trait]
impl Acker for EmbeddedAcker {
    async fn ack(&self) -> Result<(), BusError> {
        self.change(Change::Acked).await
    }

    async fn nak(&self, delay: Duration) -> Result<(), BusError> {
        self.change(Change::VisibleAt(now_ms() + ms(delay))).await?;
        self.inner.activity(self.family).notify_waiters();
        Ok(())
    }

    async fn in_progress(&self) -> Result<(), BusError> {
        self.change(Change::VisibleAt(now_ms() + self.ack_wait))
            .await
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::{Connection, StatementStatus, params};

    use super::{Claim, NEXT_FRESH, TAKE_DUE, claim};
    use crate::Cause;

    #[test]
    fn claims_reuse_their_compiled_statements() -> Result<(), Cause> {
        let c = Connection::open_in_memory()?;
        c.execute_batch(super::super::SCHEMA)?;
        c.execute(
            "INSERT INTO consumers (name, stream, filter, ack_wait_ms, max_ack_pending)
             VALUES ('scoring', 'EVENTS', '>', 1000, 1000)",
            [],
        )?;
        for i in 0..20i64 {
            c.execute(
                "INSERT INTO messages (stream, subject, msg_id, payload, headers, published_at)
                 VALUES ('EVENTS', 'events.x', ?1, x'00', '', 0)",
                params![format!("m{i}")],
            )?;
            // One new message each time, and from the fifth on a redelivery falls due too.
            let taken = match claim(&c, "scoring", i * 250)? {
                Claim::Taken { messages, .. } => messages.len(),
                Claim::Nothing { .. } => 0,
            };
            assert!(taken >= 1, "claim {i} took the new message");
        }
        for sql in [TAKE_DUE, NEXT_FRESH] {
            let statement = c.prepare_cached(sql)?;
            assert!(statement.get_status(StatementStatus::Run) >= 20, "{sql}");
            assert_eq!(
                statement.get_status(StatementStatus::RePrepare),
                0,
                "compiled again on a claim: {sql}"
            );
        }
        Ok(())
    }
}
