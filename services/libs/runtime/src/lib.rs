//! What every Herald service shares at run time.
//!
//! - [`auth`]: bearer tokens with read and admin scopes on gRPC and the figures' HTTP pages.
//! - [`config`]: one `herald.toml` read by every service, with `HERALD_…` environment overrides.
//! - [`secret`]: values that never appear in logs or `Debug` output.
//! - [`telemetry`]: structured logs and optional OpenTelemetry export.
//! - [`shutdown`]: one cancellation token for SIGTERM and SIGINT.
//! - [`health`]: `/healthz`, `/readyz` and Prometheus `/metrics`.
//! - [`error`]: one error type whose code maps to both an HTTP and a gRPC status.
//! - [`grpc`]: serving an API with `grpc.health.v1` and reflection beside it.
//! - [`db`]: a PostgreSQL pool confined to the service's own schema.
//! - [`deferred_sync`]: commits left unsynced until the stage acknowledges its input.
//! - [`store`]: the error every store returns, and whether a message should be retried for it.
//! - [`listeners`]: the sockets a service is handed, so tests can bind port 0.
//! - [`tls`]: rustls on both listeners when a certificate is configured.
//! - [`dead_letters`]: `herald.v1.DeadLetters`, listing and replaying dead letters on any bus.

pub mod auth;
pub mod boot;
pub mod component;
pub mod config;
pub mod db;
pub mod dead_letters;
pub mod deferred_sync;
pub mod error;
pub mod grpc;
pub mod health;
pub mod kept;
pub mod listeners;
pub mod payload;
pub mod pg_arrays;
pub mod secret;
pub mod service;
pub mod shutdown;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tls;

pub use auth::Auth;
pub use config::{ConfigLoader, SharedConfig};
pub use error::{ApiError, ErrorKind};
pub use health::{Readiness, ReadinessCheck};
pub use listeners::Listeners;
pub use secret::Secret;

/// Installs ring as the process's TLS crypto provider. Outbound HTTPS clients (reqwest with
/// `rustls-no-provider`) panic without one. Safe to call more than once.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
