//! Start-up that waits for dependencies instead of crashing: a service comes up, serves `/healthz`,
//! reports on `/readyz` what it is waiting for, and keeps trying until NATS and PostgreSQL answer
//! or it is asked to stop.

use std::{future::Future, sync::Arc, time::Duration};

use herald_events::{Bus, ConsumerSpec, JetStreamBus, JetStreamOptions, backoff::Backoff};
use tokio_util::sync::CancellationToken;

use crate::{Readiness, SharedConfig, db, health};

/// Calls `attempt` until it succeeds; `None` when shutdown came first.
pub async fn retry<T, E, F, Fut>(
    what: &str,
    shutdown: &CancellationToken,
    mut attempt: F,
) -> Option<T>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let backoff = Backoff {
        base: Duration::from_millis(500),
        max: Duration::from_secs(15),
    };
    let mut failures = 0u32;
    loop {
        let result = tokio::select! {
            _ = shutdown.cancelled() => return None,
            result = attempt() => result,
        };
        match result {
            Ok(value) => return Some(value),
            Err(e) => {
                failures += 1;
                let wait = backoff.delay(failures);
                tracing::warn!(error = %e, attempt = failures, retry_in_ms = wait.as_millis() as u64, "{what} failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

/// Connects to JetStream and creates or updates the streams and `consumers`.
pub async fn connect_bus(
    shared: &SharedConfig,
    client_name: &str,
    consumers: &[ConsumerSpec],
    readiness: &Readiness,
    shutdown: &CancellationToken,
) -> Option<Arc<dyn Bus>> {
    readiness.starting(format!("connecting to NATS at {}", shared.nats.url));
    let mut options = JetStreamOptions::new(shared.nats.url.clone(), client_name);
    options.streams = shared.nats.streams.clone();
    let bus = retry("connecting to NATS", shutdown, || {
        JetStreamBus::connect(options.clone())
    })
    .await?;
    readiness.starting("creating streams and consumers");
    retry("creating streams and consumers", shutdown, || {
        bus.ensure_topology(consumers)
    })
    .await?;
    let bus: Arc<dyn Bus> = Arc::new(bus);
    readiness.add_check(Arc::new(health::BusCheck(bus.clone())));
    Some(bus)
}

/// Connects to the service's database (PostgreSQL schema or SQLite file) and applies its migrations.
pub async fn connect_database(
    shared: &SharedConfig,
    schema: &'static str,
    migrations: &db::Migrations,
    readiness: &Readiness,
    shutdown: &CancellationToken,
) -> Option<db::Database> {
    readiness.starting("connecting to the database");
    let database = retry("connecting to the database", shutdown, || {
        db::connect(&shared.database, schema)
    })
    .await?;
    readiness.starting(format!("applying migrations for {schema}"));
    retry("applying migrations", shutdown, || {
        db::migrate(&database, schema, migrations)
    })
    .await?;
    readiness.add_check(Arc::new(health::DatabaseCheck {
        name: "database".to_string(),
        pool: database.pool.clone(),
    }));
    Some(database)
}

/// Serves an axum router on `listener` until `shutdown`, letting in-flight requests finish.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    tls: Option<crate::tls::Tls>,
    router: axum::Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    match tls {
        Some(tls) => {
            let service = router
                .layer(axum::middleware::from_fn(
                    crate::tls::tls_peer_as_socket_addr,
                ))
                .into_make_service_with_connect_info::<crate::tls::TlsPeer>();
            axum::serve(tls.http_listener(listener), service)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
        }
        None => {
            use axum::serve::ListenerExt;
            let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
            axum::serve(listener.tap_io(no_delay), service)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
        }
    }
}

/// Sends each response at once: with Nagle's algorithm on, a response written in two parts waits
/// for the client's delayed acknowledgement of the first (about 40 ms on Linux) before the second.
pub fn no_delay(stream: &mut tokio::net::TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
    }
}
