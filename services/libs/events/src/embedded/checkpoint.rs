//! Copying a SQLite file's write-ahead log back into the file on a thread of its own.
//!
//! Left to SQLite, the commit that takes the log past [`SQLITE_CHECKPOINT_PAGES`] copies it back
//! itself, and whoever waits on that commit waits for the copy. Here a thread of the file's own
//! copies the log back with a passive checkpoint, which never blocks a writer or a reader: every
//! [`EVERY_QUIET`] while few pages reach the log, so each pass's sync of the file is short, and
//! every [`EVERY`] while it is busy. Commits rarely find a long log, and then find the copy already
//! under way: a commit's own checkpoint gives up at once while another runs. After a pass that
//! caught up, the thread takes the writer's lock for the few pages written since, so the next
//! commit starts the log over (see [`restart`]).
//!
//! Once no other connection has committed to the file for [`EVERY`] and its log is fully copied
//! back, the thread also cuts the log to nothing (however often it passes, so a file written every
//! second or so is not cut and grown again between its writes): SQLite writes a log over again from
//! its start rather than shrink it, so after a backfill each busy file kept up to
//! [`SQLITE_CHECKPOINT_PAGES`] pages of log (about 160 MB) on disk until the next restart.
//!
//! [`SQLITE_CHECKPOINT_PAGES`]: super::SQLITE_CHECKPOINT_PAGES

use std::{
    path::{Path, PathBuf},
    sync::mpsc,
    thread::{self, JoinHandle},
    time::Duration,
};

use rusqlite::{Connection, OpenFlags};

use crate::Cause;

/// How often a busy log is copied back: seldom enough that a page many commits changed is copied
/// once, often enough that commits rarely reach
/// [`SQLITE_CHECKPOINT_PAGES`](super::SQLITE_CHECKPOINT_PAGES) in between (with both at 200 ms and
/// 4,000 pages, a backfill's commits were copying the log; a 100k `herald up` backfill took 9 %
/// longer with passes every 250 ms than every 2 s).
pub const EVERY: Duration = Duration::from_secs(2);

/// How often a log that few pages reach is copied back. Each pass ends with a sync of the file, and
/// on one disk the commits synced meanwhile wait for it: the fewer pages it copies, the shorter the
/// wait. At 200 events a second, `herald up`'s p99 was 6.5–6.9 ms with every pass 250 ms apart,
/// against 6.8–18.3 ms (median 10.5) 2 s apart and 14.5–26.1 ms 10 s apart (BENCHMARKS.md,
/// thirty-fifth sitting).
pub const EVERY_QUIET: Duration = Duration::from_millis(250);

/// A log written faster than this, in frames a second, is busy: copied back every [`EVERY`]. A
/// rate, because a pass finds what was written since the pass before: judged by its length, a log
/// past 10,000 frames was next looked at 2 s later, and at 200 events a second the bus writes
/// about 5,600 frames a second (11,200 in 2 s), so once a burst had made its log busy it stayed
/// busy (BENCHMARKS.md, forty-ninth sitting). A backfill writes about four frames a row to
/// scoring's log and two to spotlight's (thirty-third sitting), thousands of rows a second.
const BUSY_FRAMES_A_SECOND: f64 = 10_000.0;

/// How long a pass waits for the writer's lock to start the log over (see [`restart`]).
const RESTART_WAIT: Duration = Duration::from_millis(10);

/// The thread copying one file's log back; dropping it stops the thread and closes its
/// connection before the drop returns.
pub struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer").finish_non_exhaustive()
    }
}

impl Checkpointer {
    /// Starts copying back the log of the SQLite file at `path`, which must already exist and be
    /// in write-ahead mode.
    pub fn start(path: &Path) -> Result<Self, Cause> {
        // Without SQLite's create flag: a file that is not there is an error, not a new file.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(|e| format!("cannot open {} to checkpoint it: {e}", path.display()))?;
        // Never wait on another connection (rusqlite waits 5 s by default): cutting the log waits
        // for readers while it holds the write lock, so it gives up at once and tries a pass later.
        conn.busy_timeout(Duration::ZERO)
            .map_err(|e| format!("cannot set up {} to checkpoint it: {e}", path.display()))?;
        let (stop, stopped) = mpsc::channel::<()>();
        let file = path.to_path_buf();
        let thread = thread::Builder::new()
            .name("herald-checkpoint".into())
            .spawn(move || run(&conn, &file, &stopped))?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(conn: &Connection, file: &Path, stopped: &mpsc::Receiver<()>) {
    let mut failing = false;
    let mut last = Pass::default();
    let mut log = file.as_os_str().to_owned();
    log.push("-wal");
    let log = PathBuf::from(log);
    let mut wait = EVERY_QUIET;
    // The file's name without its extension: `bus`, `scoring`, ….
    let name = file
        .file_stem()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    // How long the passes have found nothing new committed, and what told them.
    let mut quiet = Duration::ZERO;
    let mut version = None;
    // Whether the pass before started the log over, so every frame found now is new.
    let mut started_over = false;
    // Nothing is ever sent: the sender's drop is the signal to stop.
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(wait) {
        let mut starts_over = false;
        let mut written = 0;
        let pass = checkpoint(conn, "PASSIVE").and_then(|pass| {
            // A log that starts over after each write can show the same frames at every pass, so
            // the frames alone do not tell a quiet file: SQLite's count of other connections'
            // commits does.
            let now = data_version(conn)?;
            let committed = version.replace(now) != Some(now);
            // A log started over keeps showing its old frames until the next write: nothing
            // committed since, nothing written.
            if committed {
                written = written_since(&last, started_over, &pass);
            }
            quiet = if pass.is_idle_since(&last) && !committed {
                quiet + wait
            } else {
                Duration::ZERO
            };
            if quiet >= EVERY && !log_is_empty(&log) {
                // Nothing was committed for a while and nothing is left to copy: the truncation
                // costs no copying, and holds up only a writer that arrives in its instant.
                starts_over = true;
                checkpoint(conn, "TRUNCATE")
            } else if pass.is_caught_up() && pass.frames > 0 {
                starts_over = restart(conn)?;
                let result = if starts_over { "done" } else { "held_up" };
                // Looked up each time: the bus opens before `herald up` installs its recorder.
                metrics::counter!("herald_sqlite_log_restarts_total", "file" => name.clone(), "result" => result)
                    .increment(1);
                Ok(pass)
            } else {
                Ok(pass)
            }
        });
        wait = next_wait(pass.as_ref().ok().map(|_| written), wait);
        started_over = starts_over;
        match pass {
            Ok(pass) => {
                metrics::gauge!("herald_sqlite_log_frames", "file" => name.clone())
                    .set(pass.frames as f64);
                failing = false;
                last = pass;
            }
            // Commits still copy the log back themselves, so nothing is lost; said once a spell.
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(file = %file.display(), error = %e,
                    "cannot checkpoint the write-ahead log; commits will copy it back themselves");
            }
            Err(_) => {}
        }
    }
}

/// How long until the next pass, after one that found `written` frames written over the `waited`
/// since the pass before (`None`: it failed, and is tried again at the busy pace).
fn next_wait(written: Option<i64>, waited: Duration) -> Duration {
    match written {
        Some(frames) if frames as f64 <= BUSY_FRAMES_A_SECOND * waited.as_secs_f64() => EVERY_QUIET,
        _ => EVERY,
    }
}

/// The frames written to the log between the pass before (`last`; `started_over`: it started the
/// log over) and `pass`. A log shorter than before was started over too, by a commit's own copy.
fn written_since(last: &Pass, started_over: bool, pass: &Pass) -> i64 {
    if started_over || pass.frames < last.frames {
        pass.frames
    } else {
        pass.frames - last.frames
    }
}

/// What one checkpoint found, as SQLite reports it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Pass {
    /// Another connection held a lock the checkpoint needed, so it did not finish.
    busy: bool,
    /// Frames in the log.
    frames: i64,
    /// Of those, frames copied back into the file.
    copied: i64,
}

impl Pass {
    /// Whether every frame of the log is copied back, and the log is the same as at the pass
    /// before: nothing was committed in between.
    fn is_idle_since(&self, before: &Self) -> bool {
        self.is_caught_up() && self == before
    }

    /// Whether every frame the log held when the pass began is copied back.
    fn is_caught_up(&self) -> bool {
        !self.busy && self.copied == self.frames
    }
}

/// Whether the log file holds nothing (or is not there), so there is nothing to cut.
fn log_is_empty(log: &Path) -> bool {
    std::fs::metadata(log).map_or(true, |m| m.len() == 0)
}

/// Lets the next commit write the log from its start again. SQLite starts a log over only when a
/// write begins with every frame copied back, and a file written to all the time never has that
/// moment after a passive pass: commits land while it copies. Its log then grew to
/// [`SQLITE_CHECKPOINT_PAGES`](super::SQLITE_CHECKPOINT_PAGES) and the commit that passed it
/// copied the rest back and synced the file itself: under `herald up` at 200 events a second the
/// bus's committer stopped for 11 ms every 8 s, and every event then in flight waited. Right after
/// a passive pass little is left to copy, so this holds the writer's lock for about one sync of a
/// few pages; it waits for that lock only [`RESTART_WAIT`] and gives up until the next pass if a
/// long transaction holds it. Returns whether it started the log over (`false`: a reader or the
/// writer held it up).
fn restart(conn: &Connection) -> rusqlite::Result<bool> {
    conn.busy_timeout(RESTART_WAIT)?;
    let restarted = checkpoint(conn, "RESTART");
    conn.busy_timeout(Duration::ZERO)?;
    restarted.map(|pass| pass.is_caught_up())
}

/// Changes whenever another connection commits to the file.
fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA data_version", [], |row| row.get(0))
}

fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<Pass> {
    // A mode from this file only, never from outside: the pragma takes no bound parameter.
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        Ok(Pass {
            busy: row.get::<_, i64>(0)? != 0,
            frames: row.get(1)?,
            copied: row.get(2)?,
        })
    })
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn file_size(path: &Path) -> Result<u64, Cause> {
        Ok(std::fs::metadata(path)?.len())
    }

    /// A write-ahead-mode file at `path` whose writer never copies its log back, holding 200 rows
    /// of 4,000 bytes in the log only: whatever reaches the file, a checkpointer copied.
    fn written_to_the_log_only(path: &Path) -> Result<Connection, Cause> {
        let writer = Connection::open(path)?;
        writer.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
        writer.execute_batch("PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (v BLOB NOT NULL)")?;
        for _ in 0..200 {
            writer.execute("INSERT INTO t VALUES (zeroblob(4000))", [])?;
        }
        Ok(writer)
    }

    #[test]
    fn what_commits_leave_in_the_log_reaches_the_file() -> Result<(), Cause> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("store.sqlite");
        let writer = written_to_the_log_only(&path)?;
        let before = file_size(&path)?;
        assert!(
            before < 100_000,
            "the rows are still only in the log ({before} bytes)"
        );

        let checkpointer = Checkpointer::start(&path)?;
        let deadline = Instant::now() + 20 * EVERY;
        while file_size(&path)? < 800_000 && Instant::now() < deadline {
            thread::sleep(EVERY / 4);
        }
        let after = file_size(&path)?;
        assert!(after >= 800_000, "the file holds the rows ({after} bytes)");

        drop(checkpointer);
        writer.execute("INSERT INTO t VALUES (zeroblob(4000))", [])?;
        let count: i64 = writer.query_row("SELECT count(*) FROM t", [], |row| row.get(0))?;
        assert_eq!(count, 201, "the writer went on alone");
        Ok(())
    }

    #[test]
    fn a_log_left_alone_is_cut_to_nothing_and_the_file_goes_on() -> Result<(), Cause> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("store.sqlite");
        let wal = dir.path().join("store.sqlite-wal");
        let writer = written_to_the_log_only(&path)?;
        let written = file_size(&wal)?;
        assert!(
            written > 800_000,
            "the log holds the rows ({written} bytes)"
        );

        let checkpointer = Checkpointer::start(&path)?;
        // One pass copies the log back, the next finds it unchanged and cuts it.
        let deadline = Instant::now() + 20 * EVERY;
        while file_size(&wal)? > 0 && Instant::now() < deadline {
            thread::sleep(EVERY / 4);
        }
        assert_eq!(file_size(&wal)?, 0, "the idle log was cut to nothing");
        assert!(file_size(&path)? >= 800_000, "the rows are in the file");

        writer.execute("INSERT INTO t VALUES (zeroblob(4000))", [])?;
        let count: i64 = writer.query_row("SELECT count(*) FROM t", [], |row| row.get(0))?;
        assert_eq!(count, 201, "the writer goes on after the cut");
        drop(checkpointer);
        Ok(())
    }

    #[test]
    fn a_log_written_to_all_the_time_starts_over_after_each_pass() -> Result<(), Cause> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("store.sqlite");
        // A writer that never copies its log back itself, committing every 2 ms: a passive pass
        // never finds the log still, so without the restart its log holds every frame written.
        let writer = written_to_the_log_only(&path)?;
        let checkpointer = Checkpointer::start(&path)?;
        let until = Instant::now() + EVERY * 5 / 2;
        let mut commits = 0_i64;
        while Instant::now() < until {
            writer.execute("INSERT INTO t VALUES (zeroblob(4000))", [])?;
            commits += 1;
            thread::sleep(Duration::from_millis(2));
        }
        drop(checkpointer);
        let (frames, rows): (i64, i64) = (
            writer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))?,
            writer.query_row("SELECT count(*) FROM t", [], |row| row.get(0))?,
        );
        assert_eq!(rows, 200 + commits, "every commit kept");
        // Each commit writes at least one frame, so a log that never started over holds more
        // frames than there were commits.
        assert!(
            frames < commits,
            "the log started over: {frames} frames in it after {commits} commits"
        );
        Ok(())
    }

    #[test]
    fn a_log_written_to_now_and_then_is_not_cut_between_writes() -> Result<(), Cause> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("store.sqlite");
        let wal = dir.path().join("store.sqlite-wal");
        let writer = written_to_the_log_only(&path)?;
        let checkpointer = Checkpointer::start(&path)?;
        // A write every 600 ms: more than two quiet passes apart, well inside `EVERY`.
        let gap = EVERY_QUIET * 12 / 5;
        assert!(gap < EVERY && gap > EVERY_QUIET * 2);
        let mut cut = 0;
        for _ in 0..6 {
            thread::sleep(gap);
            if file_size(&wal)? == 0 {
                cut += 1;
            }
            writer.execute("INSERT INTO t VALUES (zeroblob(4000))", [])?;
        }
        drop(checkpointer);
        assert_eq!(cut, 0, "the log was cut between writes {cut} times");
        Ok(())
    }

    #[test]
    fn a_log_still_written_to_is_not_idle() {
        let copied = |frames| Pass {
            busy: false,
            frames,
            copied: frames,
        };
        assert!(copied(10).is_idle_since(&copied(10)));
        assert!(!copied(12).is_idle_since(&copied(10)), "written since");
        assert!(
            copied(0).is_idle_since(&copied(0)),
            "started over and left alone"
        );
        assert!(!copied(0).is_idle_since(&copied(10)), "started over since");
        let behind = Pass {
            busy: false,
            frames: 10,
            copied: 4,
        };
        assert!(!behind.is_idle_since(&behind), "not all copied back");
        let busy = Pass {
            busy: true,
            ..copied(10)
        };
        assert!(!busy.is_idle_since(&busy), "a reader or writer in the way");
    }

    #[test]
    fn a_log_few_pages_reach_is_copied_back_more_often_than_a_busy_one() {
        // Frames a second: a quarter of a second's at the quiet pace, two seconds' at the busy one.
        let quiet = |a_second: f64| next_wait(Some((a_second / 4.0) as i64), EVERY_QUIET);
        let busy = |a_second: f64| next_wait(Some((a_second * 2.0) as i64), EVERY);
        assert_eq!(quiet(0.0), EVERY_QUIET, "idle");
        assert_eq!(
            quiet(5_600.0),
            EVERY_QUIET,
            "the bus at 200 events a second"
        );
        assert_eq!(quiet(BUSY_FRAMES_A_SECOND), EVERY_QUIET);
        assert_eq!(quiet(BUSY_FRAMES_A_SECOND + 8.0), EVERY, "busy");
        assert_eq!(quiet(24_000.0), EVERY, "a backfill");
        assert_eq!(busy(24_000.0), EVERY, "a backfill stays busy");
        // Found 11,200 frames after a busy pass's 2 s, the bus at 200 events a second stayed busy
        // when a log was judged by its length.
        assert_eq!(
            busy(5_600.0),
            EVERY_QUIET,
            "a burst over, the pace back to quiet"
        );
        assert_eq!(next_wait(None, EVERY_QUIET), EVERY, "a pass that failed");
        assert!(EVERY_QUIET < EVERY);
    }

    #[test]
    fn the_frames_written_count_from_where_the_log_started_over() {
        let at = |frames| Pass {
            busy: false,
            frames,
            copied: frames,
        };
        assert_eq!(written_since(&at(1_000), false, &at(1_500)), 500, "grown");
        assert_eq!(
            written_since(&at(1_000), true, &at(1_500)),
            1_500,
            "started over"
        );
        assert_eq!(
            written_since(&at(1_000), false, &at(300)),
            300,
            "started over by a commit"
        );
    }

    #[test]
    fn a_missing_file_is_named_in_the_error_and_not_created() -> Result<(), Cause> {
        let dir = tempfile::tempdir()?;
        let missing = dir.path().join("store.sqlite");
        let error = Checkpointer::start(&missing).err().map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains(&missing.display().to_string())),
            "{error:?}"
        );
        assert!(!missing.exists(), "no empty file left behind");
        Ok(())
    }
}
