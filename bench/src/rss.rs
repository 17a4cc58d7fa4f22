//! Resident memory of the benchmarked processes, read from `/proc`, sampled while they work.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

/// The resident set of `pid` in MiB (Linux); `None` elsewhere or once it has exited.
pub fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// The peak resident set of each named process while it runs, sampled every 100 ms.
pub struct PeakSampler {
    peaks: Arc<Mutex<HashMap<String, f64>>>,
    stop: Arc<AtomicBool>,
}

impl PeakSampler {
    pub fn start(processes: Vec<(String, u32)>) -> Self {
        let peaks = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peaks.clone(), stop.clone());
        tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                for (name, pid) in &processes {
                    if let (Some(rss), Ok(mut peaks)) = (rss_mib(*pid), p.lock()) {
                        let peak: &mut f64 = peaks.entry(name.clone()).or_insert(0.0);
                        *peak = f64::max(*peak, rss);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self { peaks, stop }
    }

    /// The peaks so far, by process name.
    pub fn finish(self) -> HashMap<String, f64> {
        self.stop.store(true, Ordering::Relaxed);
        self.peaks.lock().map(|p| p.clone()).unwrap_or_default()
    }
}
