//! `/healthz` (the process is alive), `/readyz` (it can do its work: NATS, PostgreSQL and the
//! streams are there) and Prometheus `/metrics`, served on every service's HTTP listener.

use std::{
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use async_trait::async_trait;
use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// One dependency a service needs to be ready.
#[async_trait]
pub trait ReadinessCheck: Send + Sync {
    fn name(&self) -> &str;
    /// `Err` carries what is wrong, for the operator.
    async fn check(&self) -> Result<(), String>;
}

#[derive(Default)]
struct Inner {
    /// Why the service is not ready yet while it starts (connecting, migrating).
    starting: Option<String>,
    checks: Vec<Arc<dyn ReadinessCheck>>,
}

/// The readiness state of one service. Starts "not ready" until [`Readiness::started`].
#[derive(Clone)]
pub struct Readiness {
    service: &'static str,
    inner: Arc<Mutex<Inner>>,
}

impl Readiness {
    pub fn new(service: &'static str) -> Self {
        Self {
            service,
            inner: Arc::new(Mutex::new(Inner {
                starting: Some("starting".to_string()),
                checks: Vec::new(),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Says what the service is waiting for while it starts.
    pub fn starting(&self, reason: impl Into<String>) {
        self.lock().starting = Some(reason.into());
    }

    /// Start-up finished; from now on readiness is the result of the checks.
    pub fn started(&self) {
        self.lock().starting = None;
    }

    pub fn add_check(&self, check: Arc<dyn ReadinessCheck>) {
        self.lock().checks.push(check);
    }

    /// Runs every check (each with a short timeout) and reports the outcome per check.
    pub async fn evaluate(&self) -> (bool, serde_json::Value) {
        let (starting, checks) = {
            let inner = self.lock();
            (inner.starting.clone(), inner.checks.clone())
        };
        if let Some(reason) = starting {
            return (
                false,
                serde_json::json!({ "service": self.service, "status": "starting", "reason": reason }),
            );
        }
        let mut ready = true;
        let mut results = serde_json::Map::new();
        for check in checks {
            let outcome = match tokio::time::timeout(Duration::from_secs(2), check.check()).await {
                Ok(Ok(())) => "ok".to_string(),
                Ok(Err(reason)) => reason,
                Err(_) => "timed out after 2s".to_string(),
            };
            ready &= outcome == "ok";
            results.insert(check.name().to_string(), outcome.into());
        }
        let status = if ready { "ready" } else { "not_ready" };
        (
            ready,
            serde_json::json!({ "service": self.service, "status": status, "checks": results }),
        )
    }
}

/// Bucket bounds of every `*_seconds` histogram: a millisecond to five minutes.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Bucket bounds of the batch-size histograms: one message to a full run.
const SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// The histograms that count messages or events rather than time.
const SIZE_HISTOGRAMS: &[&str] = &["herald_worker_batch_messages", "herald_scoring_run_events"];

/// The process-wide Prometheus recorder (one per process, shared by services running together).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Durations and batch sizes as histograms with fixed buckets, so a dashboard can add
            // replicas up and take quantiles across them (summaries cannot be added up).
            let builder = SIZE_HISTOGRAMS.iter().fold(
                PrometheusBuilder::new()
                    .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS),
                |built, name| {
                    built.and_then(|b| {
                        b.set_buckets_for_metric(Matcher::Full((*name).into()), SIZE_BUCKETS)
                    })
                },
            );
            let builder = match builder {
                Ok(builder) => builder,
                Err(e) => {
                    tracing::warn!(error = %e, "histogram buckets refused; histograms are summaries");
                    PrometheusBuilder::new()
                }
            };
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; ours then renders nothing, which
            // the metrics test would catch.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// The health, readiness and metrics routes.
pub fn router(readiness: Readiness) -> Router {
    // Installed now, not at the first scrape: counts recorded before it would be lost.
    metrics_handle();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(readiness)
}

async fn healthz(State(readiness): State<Readiness>) -> impl IntoResponse {
    Json(serde_json::json!({ "service": readiness.service, "status": "alive" }))
}

async fn readyz(State(readiness): State<Readiness>) -> impl IntoResponse {
    let (ready, mut body) = readiness.evaluate().await;
    if ready {
        (StatusCode::OK, Json(body))
    } else {
        let message = match body.get("reason").and_then(|r| r.as_str()) {
            Some(reason) => format!("not ready: {reason}"),
            None => "not ready: a dependency check failed (see checks)".to_string(),
        };
        if let Some(map) = body.as_object_mut() {
            map.insert(
                "error".into(),
                serde_json::json!({ "code": "not_ready", "message": message }),
            );
        }
        (StatusCode::SERVICE_UNAVAILABLE, Json(body))
    }
}

async fn render_metrics() -> impl IntoResponse {
    let handle = metrics_handle();
    handle.run_upkeep();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
}

/// Readiness of the bus: connected and the streams exist.
pub struct BusCheck(pub Arc<dyn herald_events::Bus>);

#[async_trait]
impl ReadinessCheck for BusCheck {
    fn name(&self) -> &str {
        "nats"
    }

    async fn check(&self) -> Result<(), String> {
        self.0.check_ready().await.map_err(|e| e.to_string())
    }
}

/// Readiness of a service's database: a round trip succeeds.
pub struct DatabaseCheck {
    pub name: String,
    pub pool: sqlx::AnyPool,
}

#[async_trait]
impl ReadinessCheck for DatabaseCheck {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> Result<(), String> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| format!("query failed: {e}"))
    }
}
