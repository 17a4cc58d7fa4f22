//! CPU time read from `/proc`: what Herald's own processes, every program on the machine (the
//! database's backends, nats-server, the driver) and the machine as a whole spent during a run.
//! Herald's processes alone leave out PostgreSQL, whose work is done in backends that are not
//! Herald's children, so a figure of theirs cannot say whether the machine was the limit.
//!
//! Beside the CPU, how much of it the kernel spent and what each program wrote to storage
//! (`write_bytes` of `/proc/<pid>/io`: pages it made dirty in files on a disk, sockets and
//! in-memory file systems not counted): `herald up`'s backfill is bound by the pages it writes,
//! and these say by how much in every report.

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
    parse_stat(stat).map(|s| (s.name, s.seconds))
}

/// What one `/proc/<pid>/stat` line says of its process.
pub struct Stat {
    pub name: String,
    /// The parent's pid: 2 (`kthreadd`) for the kernel's own threads.
    pub parent: u32,
    /// CPU seconds so far, user and system.
    pub seconds: f64,
}

pub fn parse_stat(stat: &str) -> Option<Stat> {
    // The program name may hold spaces and parentheses; the fields after its last ')' are fixed.
    let (head, after) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_string();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(Stat {
        name,
        parent: fields.get(1)?.parse().ok()?,
        seconds: ticks / TICKS_PER_SECOND,
    })
}

/// Seconds the machine's CPUs were busy so far, all CPUs together, and of those the kernel's own;
/// `None` where `/proc/stat` cannot be read.
fn machine_busy_seconds() -> Option<MachineTime> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    machine_time(&stat)
}

#[derive(Debug, Clone, Copy)]
struct MachineTime {
    /// Everything but idle, I/O wait and steal.
    busy: f64,
    /// System, interrupt and soft-interrupt time: the kernel at work for the programs (copying
    /// what they write, moving their packets).
    kernel: f64,
    /// Context switches on every CPU so far (`ctxt`): each time a CPU put one thread aside for
    /// another, as a message handed from process to process does on its way.
    switches: Option<u64>,
}

fn machine_time(stat: &str) -> Option<MachineTime> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|t| t.parse::<f64>().unwrap_or(0.0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already inside user); steal
    // is time the hypervisor gave to other machines, not work done here.
    let at = |i: usize| ticks.get(i).copied().unwrap_or(0.0);
    let kernel = at(2) + at(5) + at(6);
    let switches = stat
        .lines()
        .find_map(|l| l.strip_prefix("ctxt "))
        .and_then(|n| n.trim().parse().ok());
    Some(MachineTime {
        busy: (at(0) + at(1) + kernel) / TICKS_PER_SECOND,
        kernel: kernel / TICKS_PER_SECOND,
        switches,
    })
}

/// Bytes `pid` has written to storage so far (`write_bytes`), or `None` where its `io` file cannot
/// be read (another user's process, without the privilege).
fn written_bytes(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io_written(&io)
}

fn io_written(io: &str) -> Option<u64> {
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))?
        .trim()
        .parse()
        .ok()
}

/// One process at one moment.
struct Process {
    program: String,
    cpu_seconds: f64,
    written: Option<u64>,
}

/// Every process's CPU seconds and storage writes so far, by pid, with its program name.
fn processes() -> HashMap<u32, Process> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (program, cpu_seconds) = program_seconds(&stat)?;
            Some((
                pid,
                Process {
                    program,
                    cpu_seconds,
                    written: written_bytes(pid),
                },
            ))
        })
        .collect()
}

/// The machine's and every program's CPU time at one moment, to subtract from a later one.
pub struct Snapshot {
    at: std::time::Instant,
    machine: Option<MachineTime>,
    processes: HashMap<u32, Process>,
}

/// What the CPUs did between two snapshots, in cores (CPU seconds per wall second).
#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    /// The whole machine busy: every program, the kernel's network and interrupt work included.
    pub machine_cores: f64,
    /// Of those, the kernel's: system, interrupt and soft-interrupt time.
    pub kernel_cores: f64,
    /// Context switches a second on the whole machine (0 where `/proc/stat` does not count them).
    pub switches_per_second: f64,
    /// Each program (processes of one name together: PostgreSQL's backends are one line), the
    /// busiest first; programs under 0.01 cores are left out.
    pub programs: Vec<ProgramUsage>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProgramUsage {
    pub program: String,
    pub cores: f64,
    /// Bytes its processes wrote to storage (`None` when no process of it could be read).
    pub written_bytes: Option<u64>,
}

impl Usage {
    /// The machine's busy cores; never less than its programs' sum, which the sampling's slack
    /// can put above the machine's own figure.
    pub fn busy_cores(&self) -> f64 {
        let named: f64 = self.programs.iter().map(|p| p.cores).sum();
        self.machine_cores.max(named)
    }

    /// "postgres 0.62, nats-server 0.23, …, busy in all 1.95 (20 % of it in the kernel)": the ten
    /// busiest programs, then the whole machine (the kernel's own work included) and the kernel's
    /// share of it.
    pub fn by_program(&self) -> String {
        let mut parts: Vec<String> = self
            .programs
            .iter()
            .take(10)
            .map(|p| format!("{} {:.2}", p.program, p.cores))
            .collect();
        parts.push(format!("busy in all {:.2}", self.busy_cores()));
        let mut line = parts.join(", ");
        if self.machine_cores > 0.0 {
            line.push_str(&format!(
                " ({:.0} % of it in the kernel)",
                100.0 * self.kernel_cores / self.machine_cores
            ));
        }
        line
    }

    /// "postgres 19.9 KB, nats-server 2.6 KB": what the programs that wrote to storage wrote, per
    /// `rows`, the most first; `None` when none wrote 0.1 KB a row (or none could be read).
    pub fn written_per(&self, rows: u64) -> Option<String> {
        let rows = rows.max(1) as f64;
        let mut writers: Vec<(&str, u64)> = self
            .programs
            .iter()
            .filter_map(|p| Some((p.program.as_str(), p.written_bytes?)))
            // Under 50 bytes a row would print as 0.0 KB: a program that wrote its own log.
            .filter(|(_, bytes)| *bytes as f64 / rows >= 50.0)
            .collect();
        if writers.is_empty() {
            return None;
        }
        writers.sort_by_key(|w| std::cmp::Reverse(w.1));
        Some(
            writers
                .iter()
                .take(5)
                .map(|(program, bytes)| format!("{program} {:.1} KB", *bytes as f64 / rows / 1e3))
                .collect::<Vec<_>>()
                .join(", "),
        )
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
        let mut by_program: HashMap<String, (f64, Option<u64>)> = HashMap::new();
        for (pid, process) in &now.processes {
            // Matched by pid alone, and counted under one name: a kernel worker's name changes
            // with what it works on.
            let before = self.processes.get(pid);
            let program = if process.program.starts_with("kworker") {
                "kworker"
            } else {
                process.program.as_str()
            };
            let seconds = process.cpu_seconds - before.map_or(0.0, |b| b.cpu_seconds);
            let written = process
                .written
                .map(|w| w.saturating_sub(before.and_then(|b| b.written).unwrap_or(0)));
            let entry = by_program.entry(program.to_string()).or_default();
            entry.0 += seconds.max(0.0);
            if let Some(w) = written {
                entry.1 = Some(entry.1.unwrap_or(0) + w);
            }
        }
        let mut programs: Vec<ProgramUsage> = by_program
            .into_iter()
            .map(|(program, (seconds, written_bytes))| ProgramUsage {
                program,
                cores: seconds / wall,
                written_bytes,
            })
            .filter(|p| p.cores >= 0.01)
            .collect();
        programs.sort_by(|a, b| b.cores.total_cmp(&a.cores));
        let (machine_cores, kernel_cores, switches) = match (self.machine, now.machine) {
            (Some(before), Some(after)) => (
                (after.busy - before.busy).max(0.0) / wall,
                (after.kernel - before.kernel).max(0.0) / wall,
                after
                    .switches
                    .zip(before.switches)
                    .map_or(0, |(a, b)| a.saturating_sub(b)),
            ),
            _ => (0.0, 0.0, 0),
        };
        Usage {
            machine_cores,
            kernel_cores,
            switches_per_second: switches as f64 / wall,
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
    fn the_kernel_share_is_system_and_interrupt_time() {
        // user nice system idle iowait irq softirq steal
        let stat = "cpu  600 0 300 5000 70 20 80 9 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n\
                    intr 123 4 5\nctxt 987654\nbtime 1700000000\n";
        let time = machine_time(stat).expect("parsed");
        assert!((time.busy - 10.0).abs() < 1e-9, "{time:?}");
        assert!((time.kernel - 4.0).abs() < 1e-9, "{time:?}");
        assert_eq!(time.switches, Some(987_654));
        let without = machine_time("cpu  1 0 1 5 0 0 0 0 0 0\n").expect("parsed");
        assert_eq!(without.switches, None);
    }

    #[test]
    fn an_io_file_gives_the_bytes_written_to_storage_not_the_bytes_passed_to_write() {
        let io = "rchar: 4096\nwchar: 900000\nsyscr: 3\nsyscw: 40\nread_bytes: 0\n\
                  write_bytes: 53248\ncancelled_write_bytes: 4096\n";
        assert_eq!(io_written(io), Some(53_248));
        assert_eq!(io_written("rchar: 1\n"), None);
    }

    #[test]
    fn writes_a_row_name_the_writers_the_most_first_and_leave_out_the_rest() {
        let program = |name: &str, written: Option<u64>| ProgramUsage {
            program: name.to_string(),
            cores: 0.5,
            written_bytes: written,
        };
        let usage = Usage {
            machine_cores: 1.6,
            kernel_cores: 0.4,
            switches_per_second: 0.0,
            programs: vec![
                program("nats-server", Some(20_000_000)),
                program("postgres", Some(300_000_000)),
                program("herald-bench", Some(4_000)),
                program("unreadable", None),
            ],
        };
        assert_eq!(
            usage.written_per(100_000).as_deref(),
            Some("postgres 3.0 KB, nats-server 0.2 KB")
        );
        assert!(usage.by_program().ends_with("(25 % of it in the kernel)"));
        let none = Usage {
            programs: vec![program("x", None)],
            ..usage
        };
        assert_eq!(none.written_per(10), None);
    }

    #[test]
    fn writing_a_file_shows_as_this_process_writing_to_storage() {
        let me = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| program_seconds(&s))
            .map(|(name, _)| name)
            .expect("own stat");
        let Some(before) = written_bytes(std::process::id()) else {
            panic!("/proc/self/io cannot be read: the kernel lacks task I/O accounting");
        };
        // On a disk, not an in-memory /tmp: those pages never go to storage.
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).expect("temp dir");
        std::fs::write(dir.path().join("written"), vec![7u8; 1 << 20]).expect("write");
        let after = written_bytes(std::process::id()).expect("own io");
        assert!(
            after - before >= 1 << 20,
            "{me} wrote 1 MiB to a file: {before} → {after}"
        );
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
