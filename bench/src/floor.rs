//! The floor: Herald's shape with none of Herald's own work, only what its guarantees cost. A
//! signed webhook is checked and stored on a stream before its 202; three stages in a row each
//! take a pull's messages, record their keys in PostgreSQL in one statement (the least a stage that
//! keeps state commits: a redelivery then changes nothing), and pass them on under a
//! de-duplication id before acking; the last stage records each delivery as being sent before it
//! sends it and what it came to after. Nothing is parsed, scored, ranked, rendered or kept beyond
//! the keys (the messages themselves stay on the streams; `keep_bodies` keeps them in the rows
//! too, to measure what that costs): what this delivers a second, and how
//! soon, is what the machine it runs on leaves for a pipeline that keeps those guarantees — one
//! implementation, as simple as we could write it, not a bound on every design.

use std::{net::SocketAddr, time::Duration};

use anyhow::Context as _;
use async_nats::{
    HeaderMap,
    header::NATS_MESSAGE_ID,
    jetstream::{self, Message, consumer::PullConsumer},
};
use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap as HttpHeaders, StatusCode},
    routing::{get, post},
};
use base64::Engine as _;
use futures::StreamExt as _;
use sqlx::{PgPool, Postgres, QueryBuilder, postgres::PgPoolOptions};

use crate::events::SECRET;

/// Where the floor's parts live, from its command line. No `Debug`: the database URL may carry a
/// password.
#[derive(Clone)]
pub struct Settings {
    pub nats_url: String,
    pub database_url: String,
    /// Where every delivery goes.
    pub webhook: String,
    pub listen: SocketAddr,
    /// Whether each stage keeps every message's body in its row as well, as Herald keeps the
    /// event, the win and the announcement: what storing the content costs beside the keys.
    pub keep_bodies: bool,
}

/// The three streams in a row, as Herald's events, wins and announcements: each stage takes from
/// the one before and stores on its own.
const STREAMS: [(&str, &str); 3] = [
    ("FLOOR_EVENTS", "floor.events"),
    ("FLOOR_WINS", "floor.wins"),
    ("FLOOR_ANNOUNCEMENTS", "floor.announcements"),
];

/// Where history goes in: the first stream's subject, which a backfill stores rows on directly.
pub const EVENTS_SUBJECT: &str = STREAMS[0].1;

/// The header that marks a message as history (a backfilled row): recorded by the first two
/// stages like any other, never passed on to be delivered, as Herald's spotlight counts a
/// backfilled win but does not announce it.
pub const HISTORY_HEADER: &str = "Floor-History";

/// The stream of what is to be announced, which history never reaches.
pub const ANNOUNCEMENTS_STREAM: &str = STREAMS[2].0;

/// The stream and consumer of the stage that records history last: a backfill is done when this
/// consumer has acknowledged every row.
pub const HISTORY_DONE_AT: (&str, &str) = (STREAMS[1].0, CONSUMER);

/// Each stage's durable consumer, the same name on each stream.
const CONSUMER: &str = "floor";

/// Each stage's table: the key of every message it took (which a redelivery repeats), and its
/// body when bodies are kept.
const TABLES: [&str; 3] = ["floor_events", "floor_wins", "floor_deliveries"];

/// A pull's size, as Herald's stages take them.
const PULL: usize = 100;

/// Pulls each stage works on at once: one commit's flush need not hold up the next pull.
const LANES: usize = 2;

/// PostgreSQL connections: one for each lane of the three stages, and two to spare.
const CONNECTIONS: u32 = 3 * LANES as u32 + 2;

/// Runs the floor until the process is stopped.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(CONNECTIONS)
        .connect(&settings.database_url)
        .await
        .context("connecting to PostgreSQL")?;
    create_tables(&pool).await?;
    // A connection for the webhook and one for each stage, as each of Herald's services has its
    // own: one connection for all would queue every stage's traffic behind the others'.
    let connect = async || -> anyhow::Result<jetstream::Context> {
        let client = async_nats::connect(&settings.nats_url)
            .await
            .context("connecting to nats-server")?;
        Ok(jetstream::new(client))
    };
    let js = connect().await?;
    let mut consumers = Vec::with_capacity(STREAMS.len());
    for (name, subject) in STREAMS {
        let stream = js
            .get_or_create_stream(jetstream::stream::Config {
                name: name.into(),
                subjects: vec![subject.into()],
                ..Default::default()
            })
            .await
            .with_context(|| format!("creating stream {name}"))?;
        let consumer: PullConsumer = stream
            .get_or_create_consumer(
                CONSUMER,
                jetstream::consumer::pull::Config {
                    durable_name: Some(CONSUMER.into()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ..Default::default()
                },
            )
            .await
            .with_context(|| format!("creating the consumer of {name}"))?;
        consumers.push(consumer);
    }

    let sender = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut stages = tokio::task::JoinSet::new();
    for (stage, consumer) in consumers.into_iter().enumerate() {
        let js = connect().await?;
        for _ in 0..LANES {
            let lane = Lane {
                table: TABLES[stage],
                next: STREAMS.get(stage + 1).map(|(_, subject)| *subject),
                announces: stage + 2 == STREAMS.len(),
                pool: pool.clone(),
                js: js.clone(),
                sender: sender.clone(),
                webhook: settings.webhook.clone(),
                keep_bodies: settings.keep_bodies,
            };
            let consumer = consumer.clone();
            stages.spawn(async move { lane.work(consumer).await });
        }
    }

    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    let app = Router::new()
        .route("/v1/events/servicenow", post(accept))
        .route("/readyz", get(|| async { "ready" }))
        .with_state(js);
    let server = axum::serve(
        axum::serve::ListenerExt::tap_io(listener, herald_runtime::startup::no_delay),
        app,
    );
    tokio::select! {
        served = server => served.context("the HTTP listener stopped"),
        stopped = stages.join_next() => match stopped {
            Some(Ok(Err(e))) => Err(e),
            Some(Err(e)) => Err(e.into()),
            _ => anyhow::bail!("a stage stopped"),
        },
    }
}

async fn create_tables(pool: &PgPool) -> anyhow::Result<()> {
    for table in &TABLES[..2] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE IF NOT EXISTS {table} (id TEXT PRIMARY KEY, body BYTEA)"
        )))
        .execute(pool)
        .await?;
    }
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS floor_deliveries (
             id TEXT PRIMARY KEY, status TEXT NOT NULL, at BIGINT, body BYTEA)",
    )
    .execute(pool)
    .await?;
    // Kept bodies are compressed as Herald's are: with lz4 where the server has it.
    for table in TABLES {
        let lz4 = format!("ALTER TABLE {table} ALTER COLUMN body SET COMPRESSION lz4");
        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(lz4)).execute(pool).await {
            eprintln!("{table}: bodies keep the default compression: {e}");
        }
    }
    Ok(())
}

/// The webhook: a 202 once the event is signed by the configured secret and stored on the first
/// stream, under its signature as the de-duplication id (a retried webhook is the same body).
async fn accept(
    State(js): State<jetstream::Context>,
    headers: HttpHeaders,
    body: Bytes,
) -> StatusCode {
    let Some(signature) = headers
        .get("x-herald-signature")
        .and_then(|v| v.to_str().ok())
        .filter(|s| signed(s, &body))
    else {
        return StatusCode::UNAUTHORIZED;
    };
    let mut stored = HeaderMap::new();
    stored.insert(NATS_MESSAGE_ID, signature);
    let Ok(ack) = js.publish_with_headers(STREAMS[0].1, stored, body).await else {
        return StatusCode::SERVICE_UNAVAILABLE;
    };
    match ack.await {
        Ok(_) => StatusCode::ACCEPTED,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Whether `signature` (`sha256=<Base64 HMAC-SHA256>`) is `body`'s under the benchmark's secret,
/// by ingest's own constant-time check.
fn signed(signature: &str, body: &[u8]) -> bool {
    signature
        .strip_prefix("sha256=")
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .is_some_and(|tag| herald_ingest::verify::hmac_matches(SECRET.as_bytes(), body, &tag))
}

/// One of a stage's lanes.
struct Lane {
    table: &'static str,
    /// The stream it passes its messages on to; `None` for the last stage, which delivers.
    next: Option<&'static str>,
    /// Whether what it passes on is announced (the stage before the last): history stops here.
    announces: bool,
    pool: PgPool,
    js: jetstream::Context,
    sender: reqwest::Client,
    webhook: String,
    keep_bodies: bool,
}

impl Lane {
    async fn work(self, consumer: PullConsumer) -> anyhow::Result<()> {
        let mut pulls = consumer
            .stream()
            .max_messages_per_batch(PULL)
            .messages()
            .await?
            .ready_chunks(PULL);
        while let Some(pull) = pulls.next().await {
            let messages: Vec<Message> = pull
                .into_iter()
                .collect::<Result<_, _>>()
                .map_err(|e| anyhow::anyhow!("{}: {e}", self.table))?;
            let keyed = messages
                .iter()
                .map(|m| Ok((key_of(m)?, m)))
                .collect::<anyhow::Result<Vec<(String, &Message)>>>()
                .with_context(|| self.table)?;
            match self.next {
                Some(next) => self.pass_on(&keyed, next).await?,
                None => self.deliver(&keyed).await?,
            }
            for message in &messages {
                message
                    .ack()
                    .await
                    .map_err(|e| anyhow::anyhow!("{}: ack: {e}", self.table))?;
            }
        }
        anyhow::bail!("{}: the consumer ended", self.table)
    }

    /// Records the pull's keys in one statement, then stores each message on the next stream under
    /// its key (a redelivered pull is dropped there as a duplicate), the acks awaited together;
    /// history is carried on as history, and not at all to be announced.
    async fn pass_on(
        &self,
        keyed: &[(String, &Message)],
        next: &'static str,
    ) -> anyhow::Result<()> {
        self.keep(keyed, None).await?;
        let mut acks = Vec::with_capacity(keyed.len());
        for (key, message) in keyed {
            let history = is_history(message);
            if history && self.announces {
                continue;
            }
            let mut headers = HeaderMap::new();
            headers.insert(NATS_MESSAGE_ID, key.as_str());
            if history {
                headers.insert(HISTORY_HEADER, "1");
            }
            acks.push(
                self.js
                    .publish_with_headers(next, headers, message.payload.clone())
                    .await?,
            );
        }
        for ack in acks {
            ack.await?;
        }
        Ok(())
    }

    /// Records each new delivery as being sent, sends them all, then records what each came to:
    /// a delivery already recorded (a redelivered pull) is not sent again.
    async fn deliver(&self, keyed: &[(String, &Message)]) -> anyhow::Result<()> {
        let claimed = self.keep(keyed, Some("sending")).await?;
        let sends = keyed.iter().filter(|(key, _)| claimed.contains(key)).map(
            |(key, message)| async move {
                let answer = self
                    .sender
                    .post(&self.webhook)
                    .header("webhook-id", key.as_str())
                    .header("content-type", "application/json")
                    .body(message.payload.clone())
                    .send()
                    .await;
                let ok = answer.is_ok_and(|a| a.status().is_success());
                (key.as_str(), ok)
            },
        );
        let outcomes = futures::future::join_all(sends).await;
        let (delivered, failed): (Vec<_>, Vec<_>) = outcomes.into_iter().partition(|(_, ok)| *ok);
        let now = chrono::Utc::now().timestamp_millis();
        for (status, ids) in [("delivered", delivered), ("failed", failed)] {
            if ids.is_empty() {
                continue;
            }
            let ids: Vec<&str> = ids.into_iter().map(|(id, _)| id).collect();
            // Planned afresh each time: a plan kept from when the table was empty reads all of
            // it for every pull (a sequential scan that grew with the table in the first runs).
            sqlx::query("UPDATE floor_deliveries SET status = $1, at = $2 WHERE id = ANY($3)")
                .persistent(false)
                .bind(status)
                .bind(now)
                .bind(&ids)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Inserts the pull's keys into this stage's table in one statement (with `status`, for
    /// deliveries, and the bodies when they are kept); returns the keys that were new.
    async fn keep(
        &self,
        keyed: &[(String, &Message)],
        status: Option<&str>,
    ) -> anyhow::Result<std::collections::HashSet<String>> {
        let mut columns = vec!["id"];
        columns.extend(status.map(|_| "status"));
        if self.keep_bodies {
            columns.push("body");
        }
        let mut insert = QueryBuilder::<Postgres>::new(format!(
            "INSERT INTO {} ({}) ",
            self.table,
            columns.join(", ")
        ));
        insert.push_values(keyed, |mut row, (key, message)| {
            row.push_bind(key.as_str());
            if let Some(status) = status {
                row.push_bind(status);
            }
            if self.keep_bodies {
                row.push_bind(message.payload.as_ref());
            }
        });
        insert.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
        let new = insert
            .build_query_scalar::<String>()
            .fetch_all(&self.pool)
            .await?;
        Ok(new.into_iter().collect())
    }
}

fn is_history(message: &Message) -> bool {
    message
        .headers
        .as_ref()
        .is_some_and(|h| h.get(HISTORY_HEADER).is_some())
}

/// The key a message carries on from the stream before: the de-duplication id it was stored
/// under, or its place in its stream when it has none. A message with neither stops the floor
/// rather than share an empty key, which would drop it as a repeat.
fn key_of(message: &Message) -> anyhow::Result<String> {
    if let Some(id) = message
        .headers
        .as_ref()
        .and_then(|h| h.get(NATS_MESSAGE_ID))
    {
        return Ok(id.as_str().to_string());
    }
    let info = message
        .info()
        .map_err(|e| anyhow::anyhow!("a message with no id and no stream position: {e}"))?;
    Ok(format!("{}-{}", info.stream, info.stream_sequence))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_secrets_signature_is_accepted() {
        let body = br#"{"number":"INCB0000001"}"#;
        let good = crate::events::sign(body);
        assert!(signed(&good, body));
        assert!(!signed(&good, b"{}"), "another body");
        assert!(!signed("sha256=AAAA", body), "another signature");
        assert!(
            !signed(good.trim_start_matches("sha256="), body),
            "no scheme"
        );
    }
}
