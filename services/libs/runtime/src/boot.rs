//! The start and the end every process shares: serve health at once, wait for the dependencies
//! while `/readyz` says what is missing, then serve the components (HTTP routes, gRPC, tasks), and
//! on shutdown let each finish before closing connections.

use std::sync::{Arc, RwLock};

use herald_events::{Bus, ConsumerSpec};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    Listeners, Readiness, SharedConfig,
    component::{Component, Deps},
    db::{Database, Migrations},
    health, startup,
};

pub struct Boot {
    name: &'static str,
    readiness: Readiness,
    shutdown: CancellationToken,
    /// The HTTP routes being served; swapped once the components are built.
    routes: Arc<RwLock<axum::Router>>,
    http: JoinHandle<std::io::Result<()>>,
    grpc_listener: tokio::net::TcpListener,
    tls: Option<crate::tls::Tls>,
    auth: crate::Auth,
    buses: Vec<Arc<dyn Bus>>,
    databases: Vec<Database>,
}

impl Boot {
    /// Starts serving `/healthz`, `/readyz` and `/metrics` at once; other routes answer 503 until
    /// [`Boot::serve`] installs them. Every route and gRPC call is checked against `auth`.
    pub fn start(
        name: &'static str,
        listeners: Listeners,
        auth: crate::Auth,
        shutdown: &CancellationToken,
    ) -> Self {
        let readiness = Readiness::new(name);
        if let (Ok(http), Ok(grpc)) = (listeners.http_addr(), listeners.grpc_addr()) {
            tracing::info!(service = name, %http, %grpc, "listening");
        }
        let starting = health::router(readiness.clone()).fallback(|| async {
            crate::ApiError::unavailable("starting: not ready to take requests yet; retry shortly")
        });
        let routes = Arc::new(RwLock::new(starting));
        let current = routes.clone();
        let service = tower::service_fn(move |request: axum::extract::Request| {
            let router = current
                .read()
                .map(|r| r.clone())
                .unwrap_or_else(|e| e.into_inner().clone());
            async move {
                use tower::ServiceExt;
                router.oneshot(request).await
            }
        });
        let app = axum::Router::new().fallback_service(service).layer(
            axum::middleware::from_fn_with_state(auth.clone(), crate::auth::http_middleware),
        );
        let http = tokio::spawn(startup::serve_http(
            listeners.http,
            listeners.tls.clone(),
            app,
            shutdown.clone(),
        ));
        Self {
            name,
            readiness,
            shutdown: shutdown.clone(),
            routes,
            http,
            grpc_listener: listeners.grpc,
            tls: listeners.tls,
            auth,
            buses: Vec::new(),
            databases: Vec::new(),
        }
    }

    /// Connects to JetStream (creating streams and `consumers`) and to the database (schema,
    /// migrations). `None` when shutdown came first.
    pub async fn connect(
        &mut self,
        shared: &SharedConfig,
        consumers: &[ConsumerSpec],
        schema: &'static str,
        migrations: &Migrations,
    ) -> Option<Deps> {
        let client = format!("herald-{}", self.name);
        let bus = startup::connect_bus(shared, &client, consumers, &self.readiness, &self.shutdown)
            .await?;
        self.buses.push(bus.clone());
        let db =
            startup::connect_database(shared, schema, migrations, &self.readiness, &self.shutdown)
                .await?;
        self.databases.push(db.clone());
        Some(Deps { bus, db })
    }

    /// Registers dependencies made elsewhere (standalone mode), so readiness checks them and
    /// shutdown closes them.
    pub fn adopt(&mut self, name: &str, deps: &Deps) {
        if !self.buses.iter().any(|b| Arc::ptr_eq(b, &deps.bus)) {
            self.readiness
                .add_check(Arc::new(health::BusCheck(deps.bus.clone())));
            self.buses.push(deps.bus.clone());
        }
        self.readiness.add_check(Arc::new(health::DatabaseCheck {
            name: format!("database:{name}"),
            pool: deps.db.pool.clone(),
        }));
        self.databases.push(deps.db.clone());
    }

    /// Serves the components until shutdown, then drains them; returns when all is stopped.
    pub async fn serve(self, components: Vec<Component>) -> anyhow::Result<()> {
        let mut http = health::router(self.readiness.clone());
        let mut grpc = tonic::service::Routes::builder();
        let mut names = Vec::new();
        let mut tasks = Vec::new();
        for component in components {
            http = http.merge(component.http);
            for add in component.grpc {
                add(&mut grpc);
            }
            names.extend(component.grpc_names);
            for (name, task) in component.tasks {
                tasks.push((name, tokio::spawn(task)));
            }
        }
        let http = http.fallback(|| async {
            crate::ApiError::not_found("no such route; webhooks are POSTed to /v1/events/<source>")
        });
        *self.routes.write().unwrap_or_else(|e| e.into_inner()) = http;
        let grpc = tokio::spawn(crate::grpc::serve_routes(
            self.grpc_listener,
            grpc.routes(),
            names,
            self.auth.clone(),
            self.tls.clone(),
            self.shutdown.clone(),
        ));
        self.readiness.started();
        tracing::info!(service = self.name, "ready");

        self.shutdown.cancelled().await;
        let mut first_error: Option<anyhow::Error> = None;
        for (name, task) in tasks {
            if let Err(e) = task.await {
                tracing::error!(service = self.name, task = name, error = %e, "task panicked");
                first_error.get_or_insert(e.into());
            }
        }
        match grpc.await {
            Ok(Err(e)) => {
                first_error.get_or_insert(e.into());
            }
            Err(e) => {
                first_error.get_or_insert(e.into());
            }
            Ok(Ok(())) => {}
        }
        Self::close(
            self.name,
            self.http,
            &self.buses,
            self.databases,
            first_error,
        )
        .await
    }

    /// Returns once shutdown is signalled, for a start-up that never completed.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.shutdown.cancelled().await;
        Self::close(self.name, self.http, &self.buses, self.databases, None).await
    }

    async fn close(
        name: &'static str,
        http: JoinHandle<std::io::Result<()>>,
        buses: &[Arc<dyn Bus>],
        databases: Vec<Database>,
        mut first_error: Option<anyhow::Error>,
    ) -> anyhow::Result<()> {
        match http.await {
            Ok(Err(e)) => {
                first_error.get_or_insert(e.into());
            }
            Err(e) => {
                first_error.get_or_insert(e.into());
            }
            Ok(Ok(())) => {}
        }
        for bus in buses {
            if let Err(e) = bus.flush().await {
                tracing::warn!(service = name, error = %e, "flush at shutdown failed");
            }
        }
        for db in databases {
            db.pool.close().await;
        }
        tracing::info!(service = name, "stopped");
        first_error.map_or(Ok(()), Err)
    }
}
