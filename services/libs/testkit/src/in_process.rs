//! A Herald service started in-process on port 0, against its own nats-server and database, with
//! typed helpers for what tests do to it: publish to its stream, post or submit a delivery, wait
//! until its consumer has handled everything, ask its gRPC API, read a metric.

use std::{path::Path, time::Duration};

use herald_proto::v1::{
    GetLeaderboardRequest, GetValueSummaryRequest, Leaderboard, ListDeliveriesRequest,
    ListDeliveriesResponse, Period, PeriodKind, Scope, SubmitRequest, SubmitResponse, ValueSummary,
    ingest_client::IngestClient, notify_client::NotifyClient, spotlight_client::SpotlightClient,
};
use herald_runtime::{ConfigLoader, Listeners, service::Service};
use tokio_util::sync::CancellationToken;

use crate::{NatsServer, TestDatabase, raw_http::RawResponse};

/// A running service and what it runs against.
pub struct InProcess {
    pub nats: NatsServer,
    pub db: TestDatabase,
    /// `http://127.0.0.1:<port>` of the HTTP and gRPC listeners.
    pub http: String,
    pub grpc: String,
    /// A NATS connection for the test's own publishing and reading.
    pub client: async_nats::Client,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl InProcess {
    /// Starts service `S` with `[nats]` and `[database]` pointing at fresh servers, then
    /// `extra_toml`; relative paths in it resolve against `base_dir`. Returns once `/readyz` says
    /// ready.
    pub async fn start<S: Service>(extra_toml: &str, base_dir: &Path) -> anyhow::Result<Self> {
        Self::start_on::<S>(NatsServer::start().await?, extra_toml, base_dir).await
    }

    /// The same, against a nats-server the caller started (to choose its settings).
    pub async fn start_on<S: Service>(
        nats: NatsServer,
        extra_toml: &str,
        base_dir: &Path,
    ) -> anyhow::Result<Self> {
        Self::start_with::<S>(nats, TestDatabase::create().await?, extra_toml, base_dir).await
    }

    /// The same, on a nats-server and database kept from an earlier run (see
    /// [`InProcess::stop_keeping_state`]), to restart a service on the state it left.
    pub async fn start_with<S: Service>(
        nats: NatsServer,
        db: TestDatabase,
        extra_toml: &str,
        base_dir: &Path,
    ) -> anyhow::Result<Self> {
        crate::init_tracing();
        herald_runtime::install_tls_provider();
        let toml = format!(
            "[nats]\nurl = \"{}\"\n[database]\nurl = \"{}\"\n{extra_toml}",
            nats.url(),
            db.url()
        );
        let config = S::load(&ConfigLoader::from_toml_str(&toml, base_dir)?)?;
        let listeners = Listeners::ephemeral().await?;
        let http = format!("http://{}", listeners.http_addr()?);
        let grpc = format!("http://{}", listeners.grpc_addr()?);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(herald_runtime::service::run::<S>(
            config,
            listeners,
            shutdown.clone(),
        ));
        let ready = format!("{http}/readyz");
        crate::eventually(&format!("{} ready", S::NAME), Duration::from_secs(30), || {
            let ready = ready.clone();
            async move { (crate::raw_http::get_status(&ready).await.ok()? == 200).then_some(()) }
        })
        .await?;
        let client = async_nats::connect(nats.url()).await?;
        Ok(Self {
            nats,
            db,
            http,
            grpc,
            client,
            shutdown,
            task,
        })
    }

    /// Asks the service to stop and waits for it; its result is the test's.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await?
    }

    /// Stops the service and hands back its nats-server and database, still running and intact.
    pub async fn stop_keeping_state(self) -> anyhow::Result<(NatsServer, TestDatabase)> {
        self.shutdown.cancel();
        self.task.await??;
        Ok((self.nats, self.db))
    }

    // ------------------------------------------------------------------ the bus

    /// Publishes `message` to JetStream under `msg_id` and waits until the stream stored it, as the
    /// stage before this one would.
    pub async fn publish(
        &self,
        subject: &str,
        msg_id: &str,
        message: &impl prost::Message,
    ) -> anyhow::Result<()> {
        crate::nats::publish(&self.client, subject, msg_id, message.encode_to_vec()).await
    }

    /// Waits until the service's durable consumer `durable` on `stream` has acknowledged every
    /// message: whatever was published before has been handled and committed.
    pub async fn wait_until_consumed(&self, stream: &str, durable: &str) -> anyhow::Result<()> {
        crate::nats::wait_until_consumed(&self.client, stream, durable).await
    }

    /// How many messages `stream` holds.
    pub async fn stream_len(&self, stream: &str) -> anyhow::Result<u64> {
        crate::nats::stream_len(&self.client, stream).await
    }

    // ------------------------------------------------------------------ ingest

    /// POSTs `body` to `/v1/events/<source>` with exactly `headers`.
    pub async fn post(
        &self,
        source: &str,
        headers: &[(&str, &str)],
        body: impl Into<Vec<u8>>,
    ) -> anyhow::Result<RawResponse> {
        let url = format!("{}/v1/events/{source}", self.http);
        crate::raw_http::post(&url, headers, body.into(), false).await
    }

    /// POSTs `body` to `/v1/events/<source>` signed with `secret` the way Herald's own scheme
    /// wants (`X-Herald-Signature: sha256=<Base64 HMAC-SHA256>`), as JSON.
    pub async fn post_signed(
        &self,
        source: &str,
        secret: &str,
        body: impl Into<Vec<u8>>,
    ) -> anyhow::Result<RawResponse> {
        let body = body.into();
        let signature = herald_signature(secret, &body);
        let headers = [
            ("Content-Type", "application/json"),
            ("X-Herald-Signature", signature.as_str()),
        ];
        self.post(source, &headers, body).await
    }

    /// `herald.v1.Ingest/Submit`: one delivery over gRPC, raw body and headers.
    pub async fn submit(
        &self,
        source: &str,
        headers: &[(&str, &str)],
        body: impl Into<Vec<u8>>,
    ) -> Result<SubmitResponse, tonic::Status> {
        let request = SubmitRequest {
            historical: false,
            source: source.to_string(),
            body: body.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        self.ingest()
            .await?
            .submit(request)
            .await
            .map(|r| r.into_inner())
    }

    /// A gRPC client of ingest.
    pub async fn ingest(&self) -> Result<IngestClient<tonic::transport::Channel>, tonic::Status> {
        IngestClient::connect(self.grpc.clone())
            .await
            .map_err(|e| tonic::Status::unavailable(format!("{}: {e}", self.grpc)))
    }

    // ------------------------------------------------------------------ spotlight

    /// The leaderboard of `scope` for the week (or month) that contains `at`, at most `limit`
    /// entries (0: the service's default).
    pub async fn leaderboard(
        &self,
        scope: Scope,
        period: PeriodKind,
        at: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<Leaderboard, tonic::Status> {
        let request = GetLeaderboardRequest {
            period: Some(period_at(period, at)),
            scope: scope as i32,
            limit,
        };
        self.spotlight()
            .await?
            .get_leaderboard(request)
            .await
            .map(|r| r.into_inner())
    }

    /// The value summary of the week (or month) that contains `at`.
    pub async fn value_summary(
        &self,
        period: PeriodKind,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<ValueSummary, tonic::Status> {
        let request = GetValueSummaryRequest {
            period: Some(period_at(period, at)),
        };
        self.spotlight()
            .await?
            .get_value_summary(request)
            .await
            .map(|r| r.into_inner())
    }

    /// A gRPC client of spotlight.
    pub async fn spotlight(
        &self,
    ) -> Result<SpotlightClient<tonic::transport::Channel>, tonic::Status> {
        SpotlightClient::connect(self.grpc.clone())
            .await
            .map_err(|e| tonic::Status::unavailable(format!("{}: {e}", self.grpc)))
    }

    // ------------------------------------------------------------------ notify

    /// Notify's deliveries of `announcement` (every announcement when empty) in `status` (any
    /// when `None`), with their attempt logs.
    /// Waits up to `wait` until `announcement` has a delivery in `status`, and returns the first.
    pub async fn first_delivery(
        &self,
        announcement: &str,
        status: herald_proto::v1::DeliveryStatus,
        wait: Duration,
    ) -> anyhow::Result<herald_proto::v1::Delivery> {
        crate::eventually(
            &format!("a delivery of {announcement} {status:?}"),
            wait,
            || async {
                let list = self.deliveries(announcement, Some(status)).await.ok()?;
                list.deliveries.into_iter().next()
            },
        )
        .await
    }

    pub async fn deliveries(
        &self,
        announcement: &str,
        status: Option<herald_proto::v1::DeliveryStatus>,
    ) -> Result<ListDeliveriesResponse, tonic::Status> {
        let request = ListDeliveriesRequest {
            announcement_id: announcement.to_string(),
            status: status.map_or(0, |s| s as i32),
            limit: 0,
        };
        self.notify()
            .await?
            .list_deliveries(request)
            .await
            .map(|r| r.into_inner())
    }

    /// A gRPC client of notify.
    pub async fn notify(&self) -> Result<NotifyClient<tonic::transport::Channel>, tonic::Status> {
        NotifyClient::connect(self.grpc.clone())
            .await
            .map_err(|e| tonic::Status::unavailable(format!("{}: {e}", self.grpc)))
    }

    // ------------------------------------------------------------------ metrics

    /// The value of one Prometheus series on `/metrics`, named with its labels exactly as the
    /// exporter prints them (`herald_ingest_deliveries_total{source="servicenow",status="202"}`);
    /// 0 while the series does not exist yet. Counters are process-wide, and several tests may
    /// share a process: compare a reading before with one after, never an absolute value.
    pub async fn metric(&self, series: &str) -> anyhow::Result<f64> {
        let page = crate::raw_http::get(&format!("{}/metrics", self.http)).await?;
        anyhow::ensure!(page.status == 200, "/metrics answered {}", page.status);
        metric_in(&page.body, series)
    }
}

/// The value of `series` in a Prometheus text page; 0 when it is absent.
pub fn metric_in(page: &str, series: &str) -> anyhow::Result<f64> {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(Ok(0.0), |value| {
            value
                .trim()
                .parse()
                .map_err(|e| anyhow::anyhow!("{series} has value {value:?}: {e}"))
        })
}

/// A period of `kind` containing `at`.
pub fn period_at(kind: PeriodKind, at: chrono::DateTime<chrono::Utc>) -> Period {
    Period {
        kind: kind as i32,
        at: Some(herald_proto::time::to_timestamp(at)),
    }
}

/// `sha256=<Base64 HMAC-SHA256 of body>` under `secret`: Herald's own signature header value.
pub fn herald_signature(secret: &str, body: &[u8]) -> String {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(body);
    format!(
        "sha256={}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}
