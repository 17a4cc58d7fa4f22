//! The thread that owns the embedded bus's SQLite connection. Every operation of the process on the
//! bus (publishes, acknowledgements, claims, reads) is a job queued to it; the thread takes whatever
//! has gathered, runs it all in one transaction (at most one fsync) and only then answers each
//! caller. A job that arrives alone commits at once; under load, the jobs that arrive during one
//! commit share the next. A publish is confirmed only once it is on disk. Claims and
//! acknowledgements are confirmed once written to the file without waiting for the disk
//! ([`Committer::call_unsynced`]): a power cut may undo the last of them, which only delivers those
//! messages again, as a crash before the acknowledgement would; the next synced commit puts them on
//! disk too, since the log is written in order. So are the publishes a stage makes again from a
//! redelivered input ([`OutgoingMessage::republished_on_redelivery`]): the stage's
//! acknowledgement comes after them in the log, so a power cut that undoes one undoes that
//! acknowledgement too.
//!
//! [`OutgoingMessage::republished_on_redelivery`]: crate::OutgoingMessage::republished_on_redelivery
//!
//! Why a thread of its own rather than sqlx: through an async driver every statement is a hand-off
//! to the connection's thread and back (a claim was nine), and `herald up`'s profile was mostly
//! those hand-offs. Here a job is one hand-off whatever it runs, and its statements are prepared
//! once and kept.

use std::{
    fs::File,
    path::Path,
    thread::{self, JoinHandle},
    time::Duration,
};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::Checkpointer;
use crate::Cause;

/// Jobs per transaction at most, so one commit never holds the file for long.
const MAX_GROUP: usize = 512;
/// Prepared statements kept: every statement the bus runs has a fixed text.
const STATEMENT_CACHE: usize = 64;

/// One queued piece of work and the caller waiting for its answer.
trait Job: Send {
    /// Whether its group's commit must reach the disk before anyone is answered.
    fn synced(&self) -> bool;
    /// Runs inside the group's transaction, in a savepoint of its own, and keeps its answer.
    /// `Err` when the transaction can no longer be trusted (see [`Broken`]).
    fn run(&mut self, conn: &Connection) -> Result<(), Broken>;
    /// Answers the caller: its own result if the group committed, the commit's error if not.
    fn answer(self: Box<Self>, committed: Result<(), &str>);
}

struct Call<F, R> {
    synced: bool,
    work: Option<F>,
    result: Option<Result<R, Cause>>,
    reply: oneshot::Sender<Result<R, Cause>>,
}

impl<F, R> Job for Call<F, R>
where
    F: FnOnce(&Connection) -> Result<R, Cause> + Send,
    R: Send,
{
    fn synced(&self) -> bool {
        self.synced
    }

    fn run(&mut self, conn: &Connection) -> Result<(), Broken> {
        // A caller that stopped waiting (a subscription dropped at shutdown) would never learn
        // what its job did: a claim run for nobody would hold its messages for the ack wait.
        if self.reply.is_closed() {
            return Ok(());
        }
        let Some(work) = self.work.take() else {
            return Ok(());
        };
        let (result, broken) = in_savepoint(conn, work);
        self.result = Some(result);
        broken.map_or(Ok(()), Err)
    }

    fn answer(self: Box<Self>, committed: Result<(), &str>) {
        let answer = match (committed, self.result) {
            (Err(e), _) => Err(e.into()),
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err("the embedded bus did not run this operation".into()),
        };
        // A caller that stopped waiting has nothing to be told.
        let _ = self.reply.send(answer);
    }
}

/// The group's transaction can no longer be trusted: SQLite rolled all of it back (it may, on a
/// full disk or an I/O error), or a failed job's writes could not be undone. Nothing of the group
/// may be confirmed, and no later job may run outside a transaction.
#[derive(Debug)]
struct Broken(String);

/// Runs `work` so that, if it fails, what it wrote is undone and the group's other jobs still
/// commit. A panic inside `work` is a failure of that job alone: the thread serves every stage of
/// the process, and ending it would stop them all.
fn in_savepoint<R>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> Result<R, Cause>,
) -> (Result<R, Cause>, Option<Broken>) {
    if let Err(e) = conn.execute_batch("SAVEPOINT job") {
        let broken = Broken(format!("cannot open a savepoint: {e}"));
        return (Err(e.into()), Some(broken));
    }
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(conn))).unwrap_or_else(
        |_| Err("the embedded bus failed inside this operation; it was undone".into()),
    );
    let result = ran.and_then(|r| {
        conn.execute_batch("RELEASE job")?;
        Ok(r)
    });
    let broken = if conn.is_autocommit() {
        Some(Broken("SQLite rolled the transaction back".into()))
    } else if result.is_err() {
        // Undone, then closed; if the undo fails, releasing would keep the failed writes.
        conn.execute_batch("ROLLBACK TO job")
            .and_then(|()| conn.execute_batch("RELEASE job"))
            .err()
            .map(|e| Broken(format!("cannot undo a failed operation: {e}")))
    } else {
        None
    };
    (result, broken)
}

/// The queue in front of the connection's thread. Dropping it lets the thread finish what is
/// queued, close the file and release the data directory's lock before the drop returns, so the
/// directory can be opened again at once.
pub(crate) struct Committer {
    jobs: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
    /// Copies the log back beside the commits; stopped first, so the lock goes last.
    checkpointer: Option<Checkpointer>,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer").finish_non_exhaustive()
    }
}

impl Committer {
    /// Opens (creating if needed) the SQLite file at `path` and starts its thread, which holds
    /// `lock` for as long as the file is open.
    pub(crate) async fn open(path: &Path, lock: File) -> Result<Self, Cause> {
        let (jobs, queue) = mpsc::channel::<Box<dyn Job>>(4 * MAX_GROUP);
        let (opened, connected) = oneshot::channel::<Result<(), Cause>>();
        let file = path.to_path_buf();
        // Opened on its own thread: opening may recover a WAL or wait on SQLite's busy timeout,
        // which must not hold up a runtime worker.
        let thread = thread::Builder::new()
            .name("herald-bus".into())
            .spawn(move || {
                let _lock = lock;
                match connect(&file) {
                    Ok(conn) => {
                        let _ = opened.send(Ok(()));
                        serve(&conn, queue);
                    }
                    Err(e) => {
                        let _ = opened.send(Err(e));
                    }
                }
            })?;
        let mut committer = Self {
            jobs: Some(jobs),
            thread: Some(thread),
            checkpointer: None,
        };
        connected
            .await
            .map_err(|_| Cause::from("the embedded bus's thread ended while opening the file"))??;
        committer.checkpointer = Some(Checkpointer::start(path)?);
        Ok(committer)
    }

    /// Runs `work` in the next group's transaction and answers once that has committed and is
    /// on disk.
    pub(crate) async fn call<R, F>(&self, work: F) -> Result<R, Cause>
    where
        F: FnOnce(&Connection) -> Result<R, Cause> + Send + 'static,
        R: Send + 'static,
    {
        self.enqueue(work).await?.await
    }

    /// Runs `work` in the next group's transaction and answers once that has committed, without
    /// waiting for the disk unless another job of the group does: for writes whose loss in a power
    /// cut only means a message is delivered again (claims, acknowledgements). At a low rate each
    /// message's claim and ack were a commit and an fsync of their own, two of every three.
    pub(crate) async fn call_unsynced<R, F>(&self, work: F) -> Result<R, Cause>
    where
        F: FnOnce(&Connection) -> Result<R, Cause> + Send + 'static,
        R: Send + 'static,
    {
        self.queue(false, work).await?.await
    }

    /// Queues `work` and returns at once with a way to wait for its answer: work queued one after
    /// another runs in that order, so a caller can queue several in order and then wait for all.
    pub(crate) async fn enqueue<R, F>(
        &self,
        work: F,
    ) -> Result<impl Future<Output = Result<R, Cause>> + use<R, F>, Cause>
    where
        F: FnOnce(&Connection) -> Result<R, Cause> + Send + 'static,
        R: Send + 'static,
    {
        self.queue(true, work).await
    }

    /// Queues `work` for a group that syncs its commit if `synced` (or another of its jobs is).
    pub(crate) async fn queue<R, F>(
        &self,
        synced: bool,
        work: F,
    ) -> Result<impl Future<Output = Result<R, Cause>> + use<R, F>, Cause>
    where
        F: FnOnce(&Connection) -> Result<R, Cause> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Call {
            synced,
            work: Some(work),
            result: None,
            reply,
        });
        let Some(jobs) = self.jobs.as_ref() else {
            return Err("the embedded bus is shutting down".into());
        };
        jobs.send(job)
            .await
            .map_err(|_| "the embedded bus is shutting down")?;
        Ok(async move {
            answer
                .await
                .map_err(|_| Cause::from("the embedded bus stopped before answering"))?
        })
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.checkpointer.take();
        // Closing the queue ends the thread once it has answered what was queued.
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn connect(path: &Path) -> Result<Connection, Cause> {
    let conn =
        Connection::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("{} cannot use write-ahead logging ({mode})", path.display()).into());
    }
    // A publish is on disk before it is confirmed: nothing accepted is lost. Each group sets
    // what it needs (see `sync_as_needed`); FULL until then.
    conn.execute_batch("PRAGMA synchronous = FULL")?;
    conn.execute_batch(&format!(
        "PRAGMA wal_autocheckpoint = {}",
        super::SQLITE_CHECKPOINT_PAGES
    ))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

fn serve(conn: &Connection, mut queue: mpsc::Receiver<Box<dyn Job>>) {
    let mut syncing = true;
    while let Some(first) = queue.blocking_recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let committed =
            sync_as_needed(conn, &group, &mut syncing).and_then(|()| run_group(conn, &mut group));
        metrics::histogram!("herald_embedded_bus_group_size").record(group.len() as f64);
        for job in group {
            job.answer(committed.as_ref().map(|_| ()).map_err(String::as_str));
        }
    }
}

/// Sets the connection to sync the coming commit if any job of the group needs it. In write-ahead
/// mode NORMAL writes the commit to the log without an fsync (the log is synced at checkpoints and
/// by the next FULL commit, which covers everything written before it); FULL syncs every commit.
fn sync_as_needed(
    conn: &Connection,
    group: &[Box<dyn Job>],
    syncing: &mut bool,
) -> Result<(), String> {
    let wanted = group.iter().any(|job| job.synced());
    if wanted != *syncing {
        let pragma = if wanted {
            "PRAGMA synchronous = FULL"
        } else {
            "PRAGMA synchronous = NORMAL"
        };
        conn.execute_batch(pragma)
            .map_err(|e| format!("embedded bus: cannot set how commits are synced: {e}"))?;
        *syncing = wanted;
    }
    Ok(())
}

/// Runs a group in one transaction. A job that fails alone gets its error and the others still
/// commit; if the transaction breaks or the commit fails, every job of the group gets that error
/// and none is confirmed.
fn run_group(conn: &Connection, group: &mut [Box<dyn Job>]) -> Result<(), String> {
    if !conn.is_autocommit() {
        // Left open by a failure SQLite could not roll back then; start clean.
        let _ = conn.execute_batch("ROLLBACK");
    }
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| format!("embedded bus: cannot begin a transaction: {e}"))?;
    for job in group.iter_mut() {
        if let Err(Broken(why)) = job.run(conn) {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            return Err(format!(
                "embedded bus: {why}; nothing of this group was stored"
            ));
        }
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(format!("embedded bus: commit failed: {e}"));
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use std::time::Duration;

    use super::Committer;
    use crate::Cause;

    /// A committer on a new file with an empty table `t`.
    async fn with_a_table() -> Result<(tempfile::TempDir, Committer), Cause> {
        let dir = tempfile::tempdir()?;
        let lock = std::fs::File::create(dir.path().join("lock"))?;
        let db = Committer::open(&dir.path().join("t.sqlite"), lock).await?;
        db.call(|c| Ok(c.execute_batch("CREATE TABLE t (v TEXT NOT NULL)")?))
            .await?;
        Ok((dir, db))
    }

    /// Keeps the thread busy for a moment, returning once it has started: whatever is queued
    /// after this call shares the next transaction.
    pub(in crate::embedded) async fn occupied(
        db: &Committer,
    ) -> Result<impl Future<Output = Result<(), Cause>> + use<>, Cause> {
        let (started, running) = tokio::sync::oneshot::channel();
        let busy = db
            .enqueue(move |_| {
                let _ = started.send(());
                std::thread::sleep(Duration::from_millis(200));
                Ok(())
            })
            .await?;
        running.await?;
        Ok(busy)
    }

    fn values(c: &rusqlite::Connection) -> Result<Vec<String>, Cause> {
        let mut select = c.prepare("SELECT v FROM t ORDER BY rowid")?;
        let rows = select.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    #[tokio::test]
    async fn a_job_that_fails_undoes_only_its_own_writes() -> Result<(), Cause> {
        let (_dir, db) = with_a_table().await?;
        // Queued while the thread is busy: the two share the next transaction.
        let busy = occupied(&db).await?;
        let failing = db
            .enqueue(|c| {
                c.execute("INSERT INTO t VALUES ('from the failing job')", [])?;
                Err::<(), Cause>("this job fails after writing".into())
            })
            .await?;
        let passing = db
            .enqueue(|c| {
                c.execute("INSERT INTO t VALUES ('from the passing job')", [])?;
                Ok(())
            })
            .await?;
        busy.await?;
        let failed = failing.await;
        passing.await?;
        assert_eq!(
            failed.map_err(|e| e.to_string()),
            Err("this job fails after writing".to_string())
        );
        assert_eq!(db.call(values).await?, ["from the passing job"]);
        Ok(())
    }

    #[tokio::test]
    async fn a_job_that_panics_fails_alone_and_the_thread_goes_on() -> Result<(), Cause> {
        let (_dir, db) = with_a_table().await?;
        let panicked = db
            .call(|c| {
                c.execute("INSERT INTO t VALUES ('before the panic')", [])?;
                panic!("a bug inside a job");
                #[allow(unreachable_code)]
                Ok(())
            })
            .await;
        assert!(panicked.is_err(), "the job's caller is told it failed");
        db.call(|c| Ok(c.execute("INSERT INTO t VALUES ('after')", [])?))
            .await?;
        assert_eq!(
            db.call(values).await?,
            ["after"],
            "the panicking job's write was undone"
        );
        Ok(())
    }

    #[tokio::test]
    async fn when_sqlite_drops_the_transaction_no_job_of_the_group_is_stored() -> Result<(), Cause>
    {
        let (_dir, db) = with_a_table().await?;
        let busy = occupied(&db).await?;
        let insert = |v: &'static str| {
            move |c: &rusqlite::Connection| -> Result<(), Cause> {
                c.execute("INSERT INTO t VALUES (?1)", [v])?;
                Ok(())
            }
        };
        let before = db.enqueue(insert("before")).await?;
        // What SQLite may do on a full disk or an I/O error: roll back the whole transaction.
        let dropped = db.enqueue(|c| Ok(c.execute_batch("ROLLBACK")?)).await?;
        let after = db.enqueue(insert("after")).await?;
        busy.await?;
        assert!(
            before.await.is_err(),
            "rolled back with the rest: not confirmed"
        );
        assert!(dropped.await.is_err());
        assert!(after.await.is_err(), "never run outside a transaction");
        assert!(
            db.call(values).await?.is_empty(),
            "nothing of the group stored"
        );
        db.call(insert("next group")).await?;
        assert_eq!(db.call(values).await?, ["next group"]);
        Ok(())
    }

    /// SQLite's `synchronous` as a job of the group sees it: 2 is FULL (the commit is synced),
    /// 1 NORMAL (written to the log only).
    pub(in crate::embedded) fn sync_level(c: &rusqlite::Connection) -> Result<i64, Cause> {
        Ok(c.query_row("PRAGMA synchronous", [], |row| row.get(0))?)
    }

    #[tokio::test]
    async fn a_group_is_synced_when_any_of_its_jobs_must_be() -> Result<(), Cause> {
        let (_dir, db) = with_a_table().await?;
        assert_eq!(db.call(sync_level).await?, 2, "a publish's group");
        assert_eq!(
            db.call_unsynced(sync_level).await?,
            1,
            "a group of acknowledgements only"
        );
        // One of each in the same group: the group syncs.
        let busy = occupied(&db).await?;
        let unsynced = db.queue(false, sync_level).await?;
        let synced = db.enqueue(sync_level).await?;
        busy.await?;
        assert_eq!((unsynced.await?, synced.await?), (2, 2));
        assert_eq!(db.call_unsynced(sync_level).await?, 1, "and back");
        Ok(())
    }

    #[tokio::test]
    async fn the_log_is_copied_back_only_once_it_holds_the_agreed_pages() -> Result<(), Cause> {
        let (_dir, db) = with_a_table().await?;
        let pages: i64 = db
            .call(|c| Ok(c.query_row("PRAGMA wal_autocheckpoint", [], |row| row.get(0))?))
            .await?;
        assert_eq!(pages, i64::from(super::super::SQLITE_CHECKPOINT_PAGES));
        Ok(())
    }

    #[tokio::test]
    async fn a_job_whose_caller_stopped_waiting_is_not_run() -> Result<(), Cause> {
        let (_dir, db) = with_a_table().await?;
        let busy = occupied(&db).await?;
        let abandoned = db
            .enqueue(|c| Ok(c.execute("INSERT INTO t VALUES ('nobody asked')", [])?))
            .await?;
        drop(abandoned);
        busy.await?;
        assert!(db.call(values).await?.is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn dropping_it_closes_the_file_and_frees_the_lock() -> Result<(), Cause> {
        let dir = tempfile::tempdir()?;
        let lock_path = dir.path().join("lock");
        let lock = std::fs::File::create(&lock_path)?;
        lock.try_lock()?;
        let db = Committer::open(&dir.path().join("t.sqlite"), lock).await?;
        db.call(|c| Ok(c.execute_batch("SELECT 1")?)).await?;
        drop(db);
        let again = std::fs::File::create(&lock_path)?;
        assert!(
            again.try_lock().is_ok(),
            "the lock is free once the drop returned"
        );
        Ok(())
    }

    /// `.cargo/config.toml` builds SQLite so the connections of one process share no lock over
    /// their page caches or their allocations; without it a `herald up` backfill was 13 % slower
    /// (BENCHMARKS.md, thirty-third sitting).
    #[tokio::test]
    async fn sqlite_is_built_without_the_locks_its_connections_would_share() -> Result<(), Cause> {
        let (_dir, db) = with_a_table().await?;
        let options: Vec<String> = db
            .call(|c| {
                let mut statement = c.prepare("PRAGMA compile_options")?;
                let rows = statement.query_map([], |row| row.get(0))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await?;
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "one page cache lock for every connection: {options:?}"
        );
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "allocation statistics behind a global lock: {options:?}"
        );
        Ok(())
    }
}
