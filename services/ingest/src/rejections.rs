//! A bounded log of rejected deliveries, so an operator can see why a tool's webhook is failing
//! (`SELECT * FROM ingest.rejections ORDER BY id DESC`). Written off the request path; when the
//! writer falls behind, entries are dropped and counted rather than slowing ingest down.

use sqlx::AnyPool;
use tokio::sync::mpsc;

/// How many rejections are kept; older ones are pruned.
const KEEP: i64 = 10_000;

#[derive(Debug, Clone)]
pub struct Rejection {
    pub source: String,
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub body_bytes: Option<usize>,
    pub remote: Option<String>,
}

#[derive(Clone)]
pub struct RejectionLog {
    tx: mpsc::Sender<Rejection>,
}

impl RejectionLog {
    /// Starts the writer; it stops when every sender is gone.
    pub fn spawn(pool: AnyPool) -> Self {
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(write_loop(pool, rx));
        Self { tx }
    }

    /// A log that keeps nothing, for ingest embedded where there is no database (tools, tests).
    pub fn discard() -> Self {
        let (tx, _) = mpsc::channel(1);
        Self { tx }
    }

    pub fn record(&self, rejection: Rejection) {
        if self.tx.try_send(rejection).is_err() {
            metrics::counter!("herald_ingest_rejections_dropped_total").increment(1);
        }
    }
}

async fn write_loop(pool: AnyPool, mut rx: mpsc::Receiver<Rejection>) {
    let mut written: u64 = 0;
    while let Some(r) = rx.recv().await {
        let result = sqlx::query(
            "INSERT INTO rejections (received_at, source, status, code, message, body_bytes, remote)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(herald_runtime::db::millis(chrono::Utc::now()))
        .bind(&r.source)
        .bind(i64::from(r.status))
        .bind(r.code)
        .bind(&r.message)
        .bind(r.body_bytes.and_then(|b| i64::try_from(b).ok()))
        .bind(&r.remote)
        .execute(&pool)
        .await;
        if let Err(e) = result {
            tracing::debug!(error = %e, "could not log a rejection");
            continue;
        }
        written += 1;
        if written.is_multiple_of(500) {
            let _ = sqlx::query(
                "DELETE FROM rejections WHERE id < (SELECT max(id) FROM rejections) - $1",
            )
            .bind(KEEP)
            .execute(&pool)
            .await;
        }
    }
}
