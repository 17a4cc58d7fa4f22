//! The other programs on the machine while a fixed rate runs. On a shared machine another
//! program's burst takes the cores from every stage at once, and the events sent then make the
//! tail: on the machine these figures were first taken on, a message broker's once-a-minute work
//! took 0.6 of a core for 300 ms, and the slowest 1 % bunched at that moment. Sampled every
//! 200 ms, from `/proc` only (no storage counters: the sampler itself should cost next to
//! nothing), so a report can say when a neighbour took a core and what the tail is without those
//! moments, beside the tail with them.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde::Serialize;

use crate::cpu::{Stat, parse_stat};

/// How often the processes are read.
const EVERY: Duration = Duration::from_millis(200);

/// A moment counts as taken when other programs used this much of a core or more in it.
pub const TAKEN_CORES: f64 = 0.2;

/// How long after a taken moment an event sent is still counted as sent in it: the cores come
/// back, the queues it left take a little longer to drain.
const AFTERMATH: Duration = Duration::from_millis(100);

/// One sampled moment in which other programs took [`TAKEN_CORES`] or more.
#[derive(Debug, Clone, Serialize)]
pub struct Taken {
    /// When it began, in seconds after the sampler started.
    pub at_s: f64,
    /// Other programs' CPU in it, in cores.
    pub cores: f64,
    /// The one that took most, and its cores.
    pub busiest: String,
    pub busiest_cores: f64,
    #[serde(skip)]
    from: Instant,
    #[serde(skip)]
    to: Instant,
}

impl Taken {
    /// Whether an event sent at `at` went out while this moment held the cores, or just after.
    pub fn covers(&self, at: Instant) -> bool {
        at >= self.from && at < self.to + AFTERMATH
    }
}

/// What the sampler found over a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Neighbours {
    /// Moments sampled.
    pub moments: usize,
    /// The moments other programs took a share of a core in, in order.
    pub taken: Vec<Taken>,
}

impl Neighbours {
    /// Whether an event sent at `at` went out in a taken moment.
    pub fn took_cores_at(&self, at: Instant) -> bool {
        self.taken.iter().any(|t| t.covers(at))
    }

    /// "beam.smp 0.62 cores at 8.4 s, …" (the three busiest moments), or that there were none.
    pub fn summary(&self) -> String {
        if self.taken.is_empty() {
            return format!(
                "other programs never took {TAKEN_CORES} of a core in a 200-ms moment ({} sampled)",
                self.moments
            );
        }
        let mut busiest: Vec<&Taken> = self.taken.iter().collect();
        busiest.sort_by(|a, b| b.cores.total_cmp(&a.cores));
        let named: Vec<String> = busiest
            .iter()
            .take(3)
            .map(|t| {
                format!(
                    "{:.2} cores at {:.1} s ({} {:.2})",
                    t.cores, t.at_s, t.busiest, t.busiest_cores
                )
            })
            .collect();
        format!(
            "other programs took {TAKEN_CORES} of a core or more in {} of {} 200-ms moments: {}",
            self.taken.len(),
            self.moments,
            named.join(", ")
        )
    }
}

/// Reads the processes every [`EVERY`] until finished.
pub struct Sampler {
    found: Arc<Mutex<Neighbours>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    /// Starts sampling; `ours` are the pids of the benchmarked target, whose programs (by name,
    /// so that PostgreSQL's backends count as PostgreSQL) are not neighbours, nor are Herald's
    /// programs, the driver's, nats-server, PostgreSQL or the kernel's threads.
    pub fn start(ours: &[u32]) -> Self {
        let mut names: Vec<String> = ours
            .iter()
            .filter_map(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                Some(parse_stat(&stat)?.name)
            })
            .collect();
        names.extend(["postgres", "nats-server"].map(String::from));
        let found = Arc::new(Mutex::new(Neighbours::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (f, s) = (found.clone(), stop.clone());
        // A thread of its own, not a task: the driver's runtime must not wait on `/proc`.
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut before = (Instant::now(), others(&names));
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(EVERY);
                let now = (Instant::now(), others(&names));
                let wall = now.0.duration_since(before.0).as_secs_f64().max(1e-3);
                let mut by_name: HashMap<&str, f64> = HashMap::new();
                for (pid, (name, seconds)) in &now.1 {
                    // One that started in the moment counts from zero.
                    let was = before.1.get(pid).map_or(0.0, |b| b.1);
                    *by_name.entry(name.as_str()).or_default() += (seconds - was).max(0.0);
                }
                let cores: f64 = by_name.values().sum::<f64>() / wall;
                if let Ok(mut found) = f.lock() {
                    found.moments += 1;
                    if cores >= TAKEN_CORES {
                        let (busiest, seconds) = by_name
                            .iter()
                            .max_by(|a, b| a.1.total_cmp(b.1))
                            .map(|(n, s)| (n.to_string(), *s))
                            .unwrap_or_default();
                        found.taken.push(Taken {
                            at_s: before.0.duration_since(started).as_secs_f64(),
                            cores,
                            busiest,
                            busiest_cores: seconds / wall,
                            from: before.0,
                            to: now.0,
                        });
                    }
                }
                before = now;
            }
        });
        Self {
            found,
            stop,
            thread: Some(thread),
        }
    }

    pub fn finish(mut self) -> Neighbours {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.found.lock().map(|f| f.clone()).unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Whether a program is the benchmark's own, or the kernel's (whose threads, children of
/// `kthreadd`, do the I/O and networking of every program, Herald's included).
fn is_ours(stat: &Stat, pid: u32, ours: &[String]) -> bool {
    pid == 2
        || stat.parent == 2
        || stat.name == "herald"
        || stat.name.starts_with("herald-")
        || ours.contains(&stat.name)
}

/// Every other program's CPU seconds so far, by pid.
fn others(ours: &[String]) -> HashMap<u32, (String, f64)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
            (!is_ours(&stat, pid, ours)).then_some((pid, (stat.name, stat.seconds)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_herald_and_the_target_are_not_neighbours() {
        let ours = vec!["postgres".to_string()];
        let stat = |line: &str| parse_stat(line).expect("a stat line");
        let beam = stat("3024 (beam.smp) S 1 3024 3024 0 -1 4194560 1 0 0 0 700 400 0 0");
        assert_eq!(beam.seconds, 11.0);
        assert!(!is_ours(&beam, 3024, &ours));
        let worker = stat("47 (kworker/1:1H-kblockd) I 2 0 0 0 -1 1 0 0 0 0 0 600 0 0");
        assert!(is_ours(&worker, 47, &ours));
        let backend = stat("9 (postgres) S 8 9 9 0 -1 1 0 0 0 0 5 5 0 0");
        assert!(is_ours(&backend, 9, &ours));
        let spotlight = stat("10 (herald-spotligh) S 1 10 10 0 -1 1 0 0 0 0 5 5 0 0");
        assert!(is_ours(&spotlight, 10, &ours));
    }

    #[test]
    fn a_busy_neighbour_is_caught_in_its_moment_and_covers_what_was_sent_then() {
        // This test's own process (`herald_bench-…`) is not the target's, so its spinning thread
        // is a neighbour.
        let sampler = Sampler::start(&[]);
        std::thread::sleep(Duration::from_millis(450));
        let spin_from = Instant::now();
        let mut x = 0u64;
        while spin_from.elapsed() < Duration::from_millis(700) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        std::thread::sleep(Duration::from_millis(450));
        let found = sampler.finish();
        assert!(found.moments >= 6, "{found:?}");
        let during = spin_from + Duration::from_millis(350);
        assert!(found.took_cores_at(during), "{found:?}");
        assert!(
            found.summary().contains("200-ms moments"),
            "{}",
            found.summary()
        );
    }
}
