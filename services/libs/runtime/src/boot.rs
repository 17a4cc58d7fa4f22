//! The start and the end every service shares: serve health at once, wait for NATS and PostgreSQL
//! while `/readyz` says what is missing, run the service's tasks, and on shutdown let each finish
//! before closing connections.

use std::{future::Future, sync::Arc};

use herald_events::{Bus, ConsumerSpec};
use sqlx::PgPool;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::{Readiness, SharedConfig, health, startup};

pub struct Boot {
    name: &'static str,
    readiness: Readiness,
    shutdown: CancellationToken,
    tasks: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)>,
    bus: Option<Arc<dyn Bus>>,
    pool: Option<PgPool>,
}

impl Boot {
    /// Starts serving `/healthz`, `/readyz`, `/metrics` and `routes` on `http`.
    pub fn start(
        name: &'static str,
        http: TcpListener,
        routes: axum::Router,
        shutdown: &CancellationToken,
    ) -> Self {
        let readiness = Readiness::new(name);
        if let Ok(addr) = http.local_addr() {
            tracing::info!(service = name, http = %addr, "listening");
        }
        let router = routes.merge(health::router(readiness.clone()));
        let mut boot = Self {
            name,
            readiness,
            shutdown: shutdown.clone(),
            tasks: Vec::new(),
            bus: None,
            pool: None,
        };
        boot.spawn("http", startup::serve_http(http, router, shutdown.clone()));
        boot
    }

    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// Connects to NATS (creating streams and `consumers`) and to PostgreSQL (schema `schema`,
    /// migrations applied). `None` when shutdown came first.
    pub async fn connect(
        &mut self,
        shared: &SharedConfig,
        consumers: &[ConsumerSpec],
        schema: &'static str,
        migrator: &'static sqlx::migrate::Migrator,
    ) -> Option<(Arc<dyn Bus>, PgPool)> {
        let client = format!("herald-{}", self.name);
        let bus = startup::connect_bus(shared, &client, consumers, &self.readiness, &self.shutdown)
            .await?;
        self.bus = Some(bus.clone());
        let pool =
            startup::connect_database(shared, schema, migrator, &self.readiness, &self.shutdown)
                .await?;
        self.pool = Some(pool.clone());
        Some((bus, pool))
    }

    /// Runs `task` as part of the service; it must return once shutdown is signalled.
    pub fn spawn<F, E>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<anyhow::Error> + Send + 'static,
    {
        let handle = tokio::spawn(async move { task.await.map_err(Into::into) });
        self.tasks.push((name, handle));
    }

    /// Runs a task that cannot fail (a consume loop, a dispatcher) as part of the service.
    pub fn spawn_loop(
        &mut self,
        name: &'static str,
        task: impl Future<Output = ()> + Send + 'static,
    ) {
        self.spawn(name, async move {
            task.await;
            Ok::<_, std::convert::Infallible>(())
        });
    }

    /// Serves a gRPC API (with health and reflection) until shutdown.
    pub fn spawn_grpc<S>(&mut self, listener: TcpListener, service: S)
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = std::convert::Infallible,
            > + tonic::server::NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(service = self.name, grpc = %addr, "listening");
        }
        self.spawn(
            "grpc",
            crate::grpc::serve(listener, service, self.shutdown.clone()),
        );
    }

    /// Start-up is over: readiness now reflects the dependency checks.
    pub fn ready(&self) {
        self.readiness.started();
        tracing::info!(service = self.name, "ready");
    }

    /// Waits for shutdown, then for every task to finish; flushes the bus and closes the pool.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.shutdown.cancelled().await;
        let mut first_error = None;
        for (task, handle) in self.tasks {
            let result = match handle.await {
                Ok(result) => result,
                Err(e) => Err(anyhow::anyhow!(
                    "{task} task panicked or was cancelled: {e}"
                )),
            };
            if let Err(e) = result {
                tracing::error!(service = self.name, task, error = %format!("{e:#}"), "task failed");
                first_error.get_or_insert(e);
            }
        }
        if let Some(bus) = &self.bus
            && let Err(e) = bus.flush().await
        {
            tracing::warn!(service = self.name, error = %e, "flush at shutdown failed");
        }
        if let Some(pool) = self.pool {
            pool.close().await;
        }
        tracing::info!(service = self.name, "stopped");
        first_error.map_or(Ok(()), Err)
    }
}
