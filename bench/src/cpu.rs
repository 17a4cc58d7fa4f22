//! CPU time read from `/proc`: what Herald's own processes, every program on the machine (the
//! database's backends, nats-server, the driver) and the machine as a whole spent during a run.
//! Herald's processes alone leave out PostgreSQL, whose work is done in backends that are not
//! Herald's children, so a figure of theirs cannot say whether the machine was the limit.

use std::collections::HashMap;

use serde::Serialize;

/// Linux reports process and machine CPU time in USER_HZ, 100 on every mainstream distribution.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds (user and system) `pid` has used so far; `None` once it has exited.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    program_seconds(&stat).map(|(_, seconds)| seconds)
}

/// The program name and CPU seconds of one `/proc/<pid>/stat` line.
fn program_seconds(stat: &str) -> Option<(String, f64)> {
    // The program name may hold spaces and parentheses; the fields after its last ')' are fixed.
    let (head, after) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_string();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some((name, ticks / TICKS_PER_SECOND))
}

/// Seconds the machine's CPUs were busy so far, all CPUs together (everything but idle, I/O wait
/// and steal); `None` where `/proc/stat` cannot be read.
fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|t| t.parse::<f64>().unwrap_or(0.0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already inside user); steal
    // is time the hypervisor gave to other machines, not work done here.
    let busy: f64 = ticks
        .iter()
        .take(7)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    Some(busy / TICKS_PER_SECOND)
}

/// Every process's CPU seconds so far, by pid, with its program name.
fn processes() -> HashMap<u32, (String, f64)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            Some((pid, program_seconds(&stat)?))
        })
        .collect()
}

/// The machine's and every program's CPU time at one moment, to subtract from a later one.
pub struct Snapshot {
    at: std::time::Instant,
    machine: Option<f64>,
    processes: HashMap<u32, (String, f64)>,
}

/// What the CPUs did between two snapshots, in cores (CPU seconds per wall second).
#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    /// The whole machine busy: every program, the kernel's network and interrupt work included.
    pub machine_cores: f64,
    /// Each program (processes of one name together: PostgreSQL's backends are one line), the
    /// busiest first; programs under 0.01 cores are left out.
    pub programs: Vec<ProgramUsage>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProgramUsage {
    pub program: String,
    pub cores: f64,
}

impl Usage {
    /// The machine's busy cores; never less than its programs' sum, which the sampling's slack
    /// can put above the machine's own figure.
    pub fn busy_cores(&self) -> f64 {
        let named: f64 = self.programs.iter().map(|p| p.cores).sum();
        self.machine_cores.max(named)
    }

    /// "postgres 0.62, nats-server 0.23, …, busy in all 1.95": the ten busiest programs, then the
    /// whole machine (the kernel's own work included).
    pub fn by_program(&self) -> String {
        let mut parts: Vec<String> = self
            .programs
            .iter()
            .take(10)
            .map(|p| format!("{} {:.2}", p.program, p.cores))
            .collect();
        parts.push(format!("busy in all {:.2}", self.busy_cores()));
        parts.join(", ")
    }
}

impl Snapshot {
    pub fn take() -> Self {
        Self {
            at: std::time::Instant::now(),
            machine: machine_busy_seconds(),
            processes: processes(),
        }
    }

    /// Usage from this snapshot to now. A process started since counts from zero; one that
    /// exited since is left out (a run's programs live through it). The programs' sum can exceed
    /// the machine's figure by the sampling's slack: the two are read at slightly different times.
    pub fn usage_since(&self) -> Usage {
        let now = Self::take();
        let wall = now.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let mut by_program: HashMap<String, f64> = HashMap::new();
        for (pid, (name, seconds)) in &now.processes {
            // Matched by pid alone, and counted under one name: a kernel worker's name changes
            // with what it works on.
            let before = self.processes.get(pid).map_or(0.0, |(_, s)| *s);
            let program = if name.starts_with("kworker") {
                "kworker"
            } else {
                name.as_str()
            };
            *by_program.entry(program.to_string()).or_default() += (seconds - before).max(0.0);
        }
        let mut programs: Vec<ProgramUsage> = by_program
            .into_iter()
            .map(|(program, seconds)| ProgramUsage {
                program,
                cores: seconds / wall,
            })
            .filter(|p| p.cores >= 0.01)
            .collect();
        programs.sort_by(|a, b| b.cores.total_cmp(&a.cores));
        Usage {
            machine_cores: match (self.machine, now.machine) {
                (Some(before), Some(after)) => (after - before).max(0.0) / wall,
                _ => 0.0,
            },
            programs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_its_program_and_cpu_seconds() {
        // pid (comm) state ppid … utime (14th) stime (15th) …
        let line = "42 (herald (test) x) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0";
        let (name, seconds) = program_seconds(line).expect("parsed");
        assert_eq!(name, "herald (test) x");
        assert!((seconds - 3.25).abs() < 1e-9, "{seconds}");
    }

    #[test]
    fn busy_work_shows_in_this_process_and_the_machine() {
        let before = Snapshot::take();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(300) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let usage = before.usage_since();
        assert!(usage.machine_cores > 0.2, "{usage:?}");
        let me = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| program_seconds(&s))
            .map(|(name, _)| name)
            .expect("own stat");
        let mine = usage
            .programs
            .iter()
            .find(|p| p.program == me)
            .map_or(0.0, |p| p.cores);
        assert!(
            mine > 0.2,
            "this process spun for the whole window: {usage:?}"
        );
    }
}
