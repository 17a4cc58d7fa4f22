//! Group commit for the embedded bus. Every publish and acknowledgement of the process waits in one
//! queue; a single task takes whatever has gathered, applies it in one transaction (one fsync) and
//! only then answers each caller. A write that arrives alone is committed at once, as before; under
//! load, the writes that arrived during one commit share the next. Nothing is confirmed before it
//! is on disk.

use std::collections::BTreeMap;

use bytes::Bytes;
use sqlx::{QueryBuilder, Sqlite, SqlitePool, Transaction};
use tokio::sync::{mpsc, oneshot};

use crate::PublishReceipt;

/// Writes per transaction at most, so one commit never holds the file for long.
const MAX_GROUP: usize = 512;

/// One write to the bus.
#[derive(Debug)]
pub(crate) enum Write {
    /// Stores a message unless one with its id is in the stream since `window_start` (ms).
    Publish {
        stream: &'static str,
        subject: String,
        msg_id: String,
        payload: Bytes,
        headers: String,
        published_at: i64,
        window_start: i64,
    },
    /// The consumer is done with the message.
    Ack { consumer: String, seq: i64 },
    /// The message becomes deliverable again at `at` (ms): a nak, or work still in progress.
    SetVisible { consumer: String, seq: i64, at: i64 },
}

/// What a write did.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Written {
    Published(PublishReceipt),
    Done,
}

type Reply = oneshot::Sender<Result<Written, String>>;

/// The queue in front of the committing task; the task ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<(Write, Reply)>,
}

impl Writer {
    pub(crate) fn start(pool: SqlitePool) -> Self {
        let (queue, mut waiting) = mpsc::channel::<(Write, Reply)>(4 * MAX_GROUP);
        tokio::spawn(async move {
            while let Some(first) = waiting.recv().await {
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    match waiting.try_recv() {
                        Ok(next) => group.push(next),
                        Err(_) => break,
                    }
                }
                commit(&pool, group).await;
            }
        });
        Self { queue }
    }

    /// Queues `write` and waits until it is committed (or failed).
    pub(crate) async fn submit(&self, write: Write) -> Result<Written, String> {
        self.enqueue(write).await?.await
    }

    /// Queues `write` and returns at once with a way to wait for its commit: writes queued one
    /// after another are applied in that order, so a caller can queue several in order and then
    /// wait for them all.
    pub(crate) async fn enqueue(
        &self,
        write: Write,
    ) -> Result<impl Future<Output = Result<Written, String>> + use<>, String> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((write, reply))
            .await
            .map_err(|_| "the embedded bus is shutting down".to_string())?;
        Ok(async move {
            answer
                .await
                .map_err(|_| "the embedded bus stopped before committing".to_string())?
        })
    }
}

async fn apply(tx: &mut Transaction<'_, Sqlite>, write: &Write) -> Result<Written, sqlx::Error> {
    match write {
        Write::Publish {
            stream,
            subject,
            msg_id,
            payload,
            headers,
            published_at,
            window_start,
        } => {
            // One statement: stored unless the stream holds the id since `window_start`. Earlier
            // writes of the same group are visible here, so a duplicate inside one group is found
            // like any other. (Each statement is a round trip to the connection's thread: a
            // look-up and an insert per publish were a third of `herald up`'s bus statements.)
            let stored: Option<i64> = sqlx::query_scalar(
                "INSERT INTO messages (stream, subject, msg_id, payload, headers, published_at)
                 SELECT $1, $2, $3, $4, $5, $6
                 WHERE NOT EXISTS (SELECT 1 FROM messages
                                   WHERE stream = $1 AND msg_id = $3 AND published_at >= $7)
                 RETURNING seq",
            )
            .bind(*stream)
            .bind(subject)
            .bind(msg_id)
            .bind(payload.as_ref())
            .bind(headers)
            .bind(published_at)
            .bind(window_start)
            .fetch_optional(&mut **tx)
            .await?;
            let (duplicate, seq) = match stored {
                Some(seq) => (false, seq),
                None => (
                    true,
                    sqlx::query_scalar(
                        "SELECT seq FROM messages WHERE stream = $1 AND msg_id = $2 AND published_at >= $3
                         ORDER BY seq LIMIT 1",
                    )
                    .bind(*stream)
                    .bind(msg_id)
                    .bind(window_start)
                    .fetch_one(&mut **tx)
                    .await?,
                ),
            };
            Ok(Written::Published(PublishReceipt {
                duplicate,
                sequence: u64::try_from(seq).unwrap_or(0),
            }))
        }
        Write::Ack { consumer, seq } => {
            ack_all(tx, &[(consumer.as_str(), *seq)]).await?;
            Ok(Written::Done)
        }
        Write::SetVisible { consumer, seq, at } => {
            sqlx::query("UPDATE pending SET visible_at = $3 WHERE consumer = $1 AND seq = $2")
                .bind(consumer)
                .bind(seq)
                .bind(at)
                .execute(&mut **tx)
                .await?;
            Ok(Written::Done)
        }
    }
}

/// Sequence numbers per statement at most (one value each, well below SQLite's limit).
const ACK_CHUNK: usize = 500;

/// Removes acknowledged messages from their consumers' pending lists: one statement per consumer
/// (a row-value `IN (VALUES …)` over both columns made SQLite scan the whole table).
async fn ack_all(
    tx: &mut Transaction<'_, Sqlite>,
    acks: &[(&str, i64)],
) -> Result<(), sqlx::Error> {
    let mut by_consumer: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (consumer, seq) in acks {
        by_consumer.entry(consumer).or_default().push(*seq);
    }
    for (consumer, seqs) in by_consumer {
        for chunk in seqs.chunks(ACK_CHUNK) {
            let mut delete = QueryBuilder::<Sqlite>::new("DELETE FROM pending WHERE consumer = ");
            delete.push_bind(consumer).push(" AND seq IN (");
            let mut list = delete.separated(", ");
            for seq in chunk {
                list.push_bind(*seq);
            }
            delete.push(")");
            delete.build().execute(&mut **tx).await?;
        }
    }
    Ok(())
}

/// Applies a group in one transaction and answers each write once it is committed. A write that
/// fails alone gets its error and the others still commit (the group's acknowledgements share
/// their statements, so they fail or hold together); if the commit fails, every write of the
/// group gets that error and none is confirmed.
async fn commit(pool: &SqlitePool, group: Vec<(Write, Reply)>) {
    let fail_all = |group: Vec<(Write, Reply)>, error: String| {
        for (_, reply) in group {
            let _ = reply.send(Err(error.clone()));
        }
    };
    let mut tx = match pool.begin().await {
        Ok(tx) => tx,
        Err(e) => return fail_all(group, format!("cannot begin a transaction: {e}")),
    };
    // The group's acknowledgements in one statement: each only removes its own pending row, so
    // where it falls among the group's other writes changes nothing.
    let acks: Vec<(&str, i64)> = group
        .iter()
        .filter_map(|(write, _)| match write {
            Write::Ack { consumer, seq } => Some((consumer.as_str(), *seq)),
            _ => None,
        })
        .collect();
    let acked = ack_all(&mut tx, &acks).await.map_err(|e| e.to_string());
    let mut results = Vec::with_capacity(group.len());
    for (write, _) in &group {
        results.push(match write {
            Write::Ack { .. } => acked.clone().map(|()| Written::Done),
            _ => apply(&mut tx, write).await.map_err(|e| e.to_string()),
        });
    }
    if let Err(e) = tx.commit().await {
        return fail_all(group, format!("commit failed: {e}"));
    }
    metrics::histogram!("herald_embedded_bus_group_size").record(group.len() as f64);
    for ((_, reply), result) in group.into_iter().zip(results) {
        let _ = reply.send(result);
    }
}
