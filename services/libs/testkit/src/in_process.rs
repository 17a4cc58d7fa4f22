//! A Herald service started in-process on port 0, against its own nats-server and database.

use std::{path::Path, time::Duration};

use herald_runtime::{ConfigLoader, Listeners, service::Service};
use tokio_util::sync::CancellationToken;

use crate::{NatsServer, TestDatabase};

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
}
