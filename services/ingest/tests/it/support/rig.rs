//! Ingest's HTTP route served on a free port in the test process, with a chosen clock and chosen
//! keys per source, publishing to a throwaway nats-server. Used where a test must set what the
//! configuration cannot: the clock a signed timestamp is checked against.

use std::{collections::BTreeMap, sync::Arc};

use chrono::{DateTime, Utc};
use herald_catalog::Catalog;
use herald_events::{Bus, JetStreamBus, JetStreamOptions};
use herald_ingest::{
    accept::Ingestor,
    config::SourceSettings,
    http::{HttpState, router},
    rejections::RejectionLog,
    sources,
};
use herald_proto::v1::{ItsmEvent, Source};
use herald_runtime::Secret;
use herald_testkit::NatsServer;
use tokio_util::sync::CancellationToken;

use super::{SECRET, fixtures, stored_events};

pub struct Rig {
    pub nats: NatsServer,
    pub client: async_nats::Client,
    pub http: reqwest::Client,
    pub base: String,
    shutdown: CancellationToken,
}

/// Every source keyed with the shared test secret (Opsgenie's token is the same string).
pub fn test_keys() -> BTreeMap<String, SourceSettings> {
    Source::ALL
        .iter()
        .map(|source| {
            (
                source.token().to_string(),
                keyed(source.token(), SECRET, None),
            )
        })
        .collect()
}

/// One source's settings: `current` (and `previous`) as secrets, or as tokens for Opsgenie.
pub fn keyed(source: &str, current: &str, previous: Option<&str>) -> SourceSettings {
    let current = Some(Secret::new(current));
    let previous = previous.map(Secret::new);
    if source == "opsgenie" {
        SourceSettings {
            token: current,
            previous_token: previous,
            ..Default::default()
        }
    } else {
        SourceSettings {
            secret: current,
            previous_secret: previous,
            ..Default::default()
        }
    }
}

impl Rig {
    pub async fn start(
        settings: BTreeMap<String, SourceSettings>,
        clock: Option<DateTime<Utc>>,
    ) -> anyhow::Result<Self> {
        herald_runtime::install_tls_provider();
        let nats = NatsServer::start().await?;
        let bus = JetStreamBus::connect(JetStreamOptions::new(nats.url(), "ingest-rig")).await?;
        bus.ensure_topology(&[]).await?;
        let catalog = Catalog::from_file(&fixtures().join("catalog.toml"))?;
        let mut ingestor = Ingestor::new(
            sources::handlers(&settings),
            |source: Source| {
                settings
                    .get(source.token())
                    .map(SourceSettings::keys)
                    .unwrap_or_default()
            },
            Arc::new(catalog),
            Arc::new(bus),
        );
        if let Some(at) = clock {
            ingestor = ingestor.with_clock(Arc::new(move || at));
        }
        let state = Arc::new(HttpState {
            max_body_bytes: 2 * 1024 * 1024,
            ingestor: Arc::new(ingestor),
            rejections: RejectionLog::discard(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router(state))
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        let client = async_nats::connect(nats.url()).await?;
        Ok(Self {
            nats,
            client,
            http: reqwest::Client::new(),
            base,
            shutdown,
        })
    }

    pub fn events_url(&self, source: &str) -> String {
        format!("{}/v1/events/{source}", self.base)
    }

    pub async fn stored_events(&self) -> anyhow::Result<Vec<(String, ItsmEvent)>> {
        stored_events(&self.client).await
    }

    /// POSTs `body` with `headers` to a source's route.
    pub async fn post(
        &self,
        source: &str,
        headers: &BTreeMap<String, String>,
        body: Vec<u8>,
    ) -> anyhow::Result<reqwest::Response> {
        let mut request = self.http.post(self.events_url(source)).body(body);
        for (k, v) in headers {
            request = request.header(k, v);
        }
        Ok(request.send().await?)
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
