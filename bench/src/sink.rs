//! The webhook receiver every benchmarked pipeline delivers to: answers 200 at once and notes when
//! each event's announcement arrived (by the record number in the body) and how often.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Instant,
};

use axum::{Router, body::Bytes, extract::State, routing::post};

use crate::events::index_in;

#[derive(Default)]
struct Seen {
    /// When each event's announcement first arrived, and the `webhook-id` it came under.
    first: Vec<Option<(Instant, Option<String>)>>,
    deliveries: u64,
    /// A second announcement of an event under another id: a reader would see it twice.
    duplicates: u64,
    /// The same announcement again under the same `webhook-id`: a retry, which a Standard Webhooks
    /// receiver recognises and drops.
    repeats: u64,
    unknown: u64,
}

#[derive(Clone)]
pub struct Sink {
    seen: Arc<Mutex<Seen>>,
    /// Until when every request is held before its answer (a channel that hangs).
    hang_until: Arc<Mutex<Option<Instant>>>,
    pub addr: SocketAddr,
}

#[derive(Clone)]
struct AppState {
    seen: Arc<Mutex<Seen>>,
    hang_until: Arc<Mutex<Option<Instant>>>,
}

/// How long a hanging receiver holds a request: longer than any sender's timeout.
const HANG: std::time::Duration = std::time::Duration::from_secs(60);

async fn receive(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> &'static str {
    let now = Instant::now();
    let index = index_in(&body);
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Ok(mut seen) = state.seen.lock() {
        seen.deliveries += 1;
        match index.and_then(|i| usize::try_from(i).ok()) {
            Some(i) => {
                if seen.first.len() <= i {
                    seen.first.resize(i + 1, None);
                }
                match &seen.first[i] {
                    Some((_, first_id)) if id.is_some() && *first_id == id => seen.repeats += 1,
                    Some(_) => seen.duplicates += 1,
                    None => seen.first[i] = Some((now, id)),
                }
            }
            None => seen.unknown += 1,
        }
    }
    let hang = state
        .hang_until
        .lock()
        .ok()
        .and_then(|until| *until)
        .is_some_and(|until| now < until);
    if hang {
        // Received, but answered too late: the sender cannot tell whether it arrived.
        tokio::time::sleep(HANG).await;
    }
    "ok"
}

impl Sink {
    pub async fn start() -> anyhow::Result<Self> {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let hang_until = Arc::new(Mutex::new(None));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/bare", post(|| async { "ok" }))
            .route("/{*path}", post(receive))
            .with_state(AppState {
                seen: seen.clone(),
                hang_until: hang_until.clone(),
            });
        tokio::spawn(async move {
            axum::serve(
                axum::serve::ListenerExt::tap_io(listener, herald_runtime::startup::no_delay),
                app,
            )
            .await
        });
        Ok(Self {
            seen,
            hang_until,
            addr,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// When event `index` first arrived.
    pub fn arrival(&self, index: u64) -> Option<Instant> {
        let seen = self.seen.lock().ok()?;
        seen.first
            .get(usize::try_from(index).ok()?)
            .cloned()
            .flatten()
            .map(|(at, _)| at)
    }

    /// How many of the events in `range` arrived.
    pub fn arrived(&self, range: std::ops::Range<u64>) -> u64 {
        let Ok(seen) = self.seen.lock() else { return 0 };
        range
            .filter(|i| {
                usize::try_from(*i)
                    .ok()
                    .and_then(|i| seen.first.get(i).and_then(Option::as_ref))
                    .is_some()
            })
            .count() as u64
    }

    /// Announcements of an event already delivered, under another id: seen twice by a reader.
    pub fn duplicates(&self) -> u64 {
        self.seen.lock().map(|s| s.duplicates).unwrap_or(0)
    }

    /// Retries of an announcement already received, under the same `webhook-id`.
    pub fn repeats(&self) -> u64 {
        self.seen.lock().map(|s| s.repeats).unwrap_or(0)
    }

    /// Holds every request received in the next `period` for a minute before answering.
    pub fn hang_for(&self, period: std::time::Duration) {
        if let Ok(mut until) = self.hang_until.lock() {
            *until = Some(Instant::now() + period);
        }
    }
}
