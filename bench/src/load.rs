//! The load driver: signed events POSTed over a fixed number of keep-alive connections, either as
//! fast as they are answered (saturation) or at a fixed rate, each send time noted so the sink's
//! arrival times give the event-to-delivery latency.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;

/// What one run of the driver did.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The first event index of the run; indices are `first..first + sent_at.len()`.
    pub first: u64,
    pub sent_at: Vec<Instant>,
    pub accepted: u64,
    pub refused: u64,
    pub errors: u64,
    pub started: Instant,
    pub elapsed: Duration,
}

impl Sent {
    pub fn accepted_per_second(&self) -> f64 {
        self.accepted as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn last_sent(&self) -> Instant {
        self.sent_at.iter().copied().max().unwrap_or(self.started)
    }
}

/// One request to make: its body and extra headers.
pub type Request = (Bytes, Vec<(&'static str, String)>);

/// POSTs `requests` (event `first + i` is `requests[i]`) to `url` over `connections` connections;
/// at `rate` events per second when given, else as fast as they are answered.
pub async fn drive(
    url: &str,
    first: u64,
    requests: Arc<Vec<Request>>,
    connections: usize,
    rate: Option<f64>,
) -> anyhow::Result<Sent> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(30))
        .build()?;
    let next = Arc::new(AtomicU64::new(0));
    let sent_at = Arc::new(Mutex::new(vec![None::<Instant>; requests.len()]));
    let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections.max(1) {
        let (client, url, next, sent_at, counts, requests) = (
            client.clone(),
            url.to_string(),
            next.clone(),
            sent_at.clone(),
            counts.clone(),
            requests.clone(),
        );
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((body, headers)) = requests.get(i as usize) else {
                    break;
                };
                if let Some(rate) = rate {
                    let due = started + Duration::from_secs_f64(i as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let mut request = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone());
                for (name, value) in headers {
                    request = request.header(*name, value);
                }
                let at = Instant::now();
                if let Ok(mut sent) = sent_at.lock() {
                    sent[i as usize] = Some(at);
                }
                match request.send().await {
                    Ok(r) if r.status().is_success() => {
                        counts[0].fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {
                        counts[1].fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        counts[2].fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done?;
    }
    let elapsed = started.elapsed();
    let sent_at = sent_at
        .lock()
        .map_err(|_| anyhow::anyhow!("a driver task panicked"))?
        .iter()
        .map(|t| t.unwrap_or(started))
        .collect();
    Ok(Sent {
        first,
        sent_at,
        accepted: counts[0].load(Ordering::Relaxed),
        refused: counts[1].load(Ordering::Relaxed),
        errors: counts[2].load(Ordering::Relaxed),
        started,
        elapsed,
    })
}

/// The nearest-rank percentile `p` of sorted durations, in milliseconds.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted
        .get(rank.min(sorted.len()) - 1)
        .map(|d| d.as_secs_f64() * 1000.0)
}
