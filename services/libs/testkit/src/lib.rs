//! Real components for Herald's tests: a `nats-server` with JetStream on a free port with a temporary
//! store, a PostgreSQL database per test (on `DATABASE_URL`, or on a throwaway cluster started here),
//! HTTP receivers standing in for Slack, Teams and webhooks, an SMTP sink standing in for a mail
//! relay, and service binaries run as processes.
//!
//! Nothing is mocked. When a server cannot be found, the error says how to get it; tests fail rather
//! than skip.

pub mod in_process;
mod locate;
pub mod nats;
pub mod otlp;
pub mod postgres;
pub mod process;
pub mod raw_http;
pub mod receiver;
pub mod smtp_sink;
pub mod stores;
pub mod wait;

pub use in_process::InProcess;
pub use nats::{NatsCluster, NatsServer};
pub use otlp::{OtlpReceiver, ReceivedSpan};
pub use postgres::TestDatabase;
pub use process::{ServiceProcess, binary, herald_up_args};
pub use receiver::{HttpReceiver, ReceivedRequest, Reply};
pub use smtp_sink::{SinkTls, SmtpExchange, SmtpSink};
pub use wait::eventually;

use std::net::TcpListener;

/// The repository's root directory.
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../..")
        .canonicalize()
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.."))
}

/// The shared ingest fixtures (`tests/fixtures`).
pub fn fixtures_dir() -> std::path::PathBuf {
    repo_root().join("tests/fixtures")
}

/// A port nobody listens on right now. Another process may take it before we do; callers that
/// start servers retry on a bind failure.
pub fn free_port() -> std::io::Result<u16> {
    // Below the kernel's ephemeral range (32768 and up on Linux): a port the kernel hands out for
    // port 0 is also what it gives the next outgoing connection of any test, which may take it
    // before the service under test binds it. A pseudo-random start per process and call keeps
    // concurrent test processes apart; the bind checks the port is free now.
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    // A port handed out is free until its caller binds it, so a second call before then could
    // hand it out again (one fault run picks a dozen ports before starting anything, and once two
    // of them were the same): never the same port twice in one process.
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    const LOW: u64 = 20_000;
    const SPAN: u64 = 12_000;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()))
        .unwrap_or(0);
    let seed = u64::from(std::process::id())
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(nanos)
        .wrapping_add(CALLS.fetch_add(1, Ordering::Relaxed).wrapping_mul(7919));
    for i in 0..SPAN {
        let port = u16::try_from(LOW + (seed.wrapping_add(i * 104_729)) % SPAN).unwrap_or(0);
        if port != 0
            && !handed_out.contains(&port)
            && TcpListener::bind(("127.0.0.1", port)).is_ok()
        {
            handed_out.push(port);
            return Ok(port);
        }
    }
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Sends test logs to the test's output (shown for failing tests). Safe to call repeatedly.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,async_nats=warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Prometheus Alertmanager, for the benchmark's side-by-side run: `$HERALD_ALERTMANAGER`, or
/// `alertmanager` / Debian's `prometheus-alertmanager` on PATH.
pub fn alertmanager() -> Option<std::path::PathBuf> {
    locate::find_program("alertmanager", "HERALD_ALERTMANAGER", &[])
        .or_else(|| locate::find_program("prometheus-alertmanager", "HERALD_ALERTMANAGER", &[]))
}

#[cfg(test)]
mod tests {
    /// Picked by chance among 12,000 ports, a thousand picks would repeat some port hundreds of
    /// times over; none may repeat while a caller has yet to bind it.
    #[test]
    fn a_free_port_is_never_handed_out_twice() -> std::io::Result<()> {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let port = super::free_port()?;
            assert!(seen.insert(port), "port {port} handed out twice");
        }
        Ok(())
    }
}
