//! A PostgreSQL database per test.
//!
//! With `DATABASE_URL` set (as `scripts/test` does, pointing at a throwaway cluster), each test creates
//! its own database on that server. Without it, the first test of the process starts a throwaway
//! cluster with `initdb` and `postgres` in a temporary directory; a watchdog stops it when the test
//! process exits.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::OnceLock,
    time::Duration,
};

use anyhow::{Context, bail};
use sqlx::{Connection, Executor, PgConnection};

use crate::locate::{find_program, postgres_bin_dirs};

/// Settings added to the throwaway cluster's own, from `HERALD_TEST_PG_SETTINGS` (whitespace-separated
/// `name=value` pairs).
fn extra_settings() -> Vec<String> {
    std::env::var("HERALD_TEST_PG_SETTINGS")
        .map(|v| v.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The throwaway cluster's locale: `C` unless `HERALD_TEST_PG_LOCALE` names another (e.g.
/// `en_US.UTF-8`, what many production clusters are created with), so a run can measure what a
/// user's collation costs.
fn locale() -> String {
    std::env::var("HERALD_TEST_PG_LOCALE").unwrap_or_else(|_| "C".to_string())
}

const INSTALL_HINT: &str = "PostgreSQL's initdb/postgres were not found and DATABASE_URL is not set. \
     Either set DATABASE_URL to a server where the user may CREATE DATABASE \
     (e.g. postgres://postgres@127.0.0.1:5432/postgres), or install PostgreSQL \
     (Debian/Ubuntu: `apt-get install postgresql`; macOS: `brew install postgresql`). \
     `scripts/test` does this for you.";

/// A database of its own for one test. Dropped (with its connections) when this value is dropped.
pub struct TestDatabase {
    url: String,
    name: String,
    admin_url: String,
}

impl TestDatabase {
    /// Creates an empty database named `herald_t_<random>`.
    pub async fn create() -> anyhow::Result<Self> {
        Self::create_on(&admin_url().await?).await
    }

    /// The same, on the server at `admin_url` (a cluster the caller controls, e.g. to stop it).
    pub async fn create_on(admin_url: &str) -> anyhow::Result<Self> {
        let admin_url = admin_url.to_string();
        let name = format!("herald_t_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .with_context(|| format!("cannot connect to PostgreSQL at {}", redact(&admin_url)))?;
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .with_context(|| format!("cannot create database {name}"))?;
        admin.close().await.ok();
        let url = with_database(&admin_url, &name)?;
        Ok(Self {
            url,
            name,
            admin_url,
        })
    }

    /// A connection URL for this database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A pool on this database, for assertions.
    pub async fn pool(&self) -> anyhow::Result<sqlx::PgPool> {
        Ok(sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect(&self.url)
            .await?)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop may run inside an async test: do the blocking work on a thread of its own.
        let handle = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                    let _ = admin
                        .execute(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = handle.join();
    }
}

fn with_database(url: &str, database: &str) -> anyhow::Result<String> {
    let mut parsed =
        url::Url::parse(url).with_context(|| format!("DATABASE_URL {url:?} is not a URL"))?;
    parsed.set_path(&format!("/{database}"));
    Ok(parsed.to_string())
}

fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

static CLUSTER: OnceLock<Result<ThrowawayCluster, String>> = OnceLock::new();

/// The URL of a server where databases may be created.
async fn admin_url() -> anyhow::Result<String> {
    if let Ok(url) = std::env::var("DATABASE_URL")
        && !url.trim().is_empty()
    {
        return Ok(url);
    }
    let cluster = tokio::task::spawn_blocking(|| {
        CLUSTER
            .get_or_init(|| ThrowawayCluster::start().map_err(|e| format!("{e:#}")))
            .as_ref()
            .map(|c| c.url.clone())
            .map_err(Clone::clone)
    })
    .await?;
    cluster.map_err(|e| anyhow::anyhow!(e))
}

/// A PostgreSQL cluster in a temporary directory, for as long as this process lives.
pub struct ThrowawayCluster {
    url: String,
    /// While this file exists the watchdog keeps the server stopped (see [`ThrowawayCluster::stop`]).
    stopped_marker: PathBuf,
    // Kept so the watchdog is not reaped early; it stops the server when this process exits.
    _watchdog: std::process::Child,
}

/// Whether a throwaway cluster's commits reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commits {
    /// `fsync`, `synchronous_commit` and `full_page_writes` off: what a test suite needs, and
    /// nothing survives a crash of the machine.
    Fast,
    /// PostgreSQL's own defaults, as in production: a commit returns once it is on disk. What a
    /// benchmark must measure.
    Durable,
}

impl ThrowawayCluster {
    /// Runs `initdb` and starts `postgres` on a free port, with [`Commits::Fast`]. As root, runs
    /// them as the `postgres` user, because PostgreSQL refuses to run as root.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(Commits::Fast)
    }

    /// [`ThrowawayCluster::start`] with the commits chosen.
    pub fn start_with(commits: Commits) -> anyhow::Result<Self> {
        let dirs = postgres_bin_dirs();
        let dirs: Vec<&str> = dirs.iter().map(String::as_str).collect();
        let initdb = find_program("initdb", "HERALD_INITDB", &dirs).context(INSTALL_HINT)?;
        let postgres = initdb.with_file_name("postgres");
        if !postgres.is_file() {
            bail!(
                "found {} but no postgres beside it. {INSTALL_HINT}",
                initdb.display()
            );
        }
        let run_as = if is_root() { Some("postgres") } else { None };

        let dir = std::env::temp_dir().join(format!("herald-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        if let Some(user) = run_as {
            let status = Command::new("chown").arg(user).arg(&dir).status()?;
            if !status.success() {
                bail!(
                    "cannot hand {} to the {user} user (is there one?)",
                    dir.display()
                );
            }
        }
        let data = dir.join("data");
        let output = as_user(run_as, &initdb)
            .args(["-D"])
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                &format!("--locale={}", locale()),
                "--no-sync",
            ])
            .output()
            .with_context(|| format!("cannot run {}", initdb.display()))?;
        if !output.status.success() {
            bail!(
                "initdb failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }

        let mut last_error = String::new();
        for _ in 0..5 {
            let port = crate::free_port()?;
            let mut server = vec![
                postgres.display().to_string(),
                "-D".into(),
                data.display().to_string(),
                "-p".into(),
                port.to_string(),
                "-k".into(),
                dir.display().to_string(),
            ];
            let fast: &[&str] = match commits {
                Commits::Fast => &[
                    "fsync=off",
                    "synchronous_commit=off",
                    "full_page_writes=off",
                ],
                Commits::Durable => &[],
            };
            for setting in ["listen_addresses=127.0.0.1", "max_connections=500"]
                .iter()
                .chain(fast)
            {
                server.push("-c".into());
                server.push((*setting).into());
            }
            // For profiling: e.g. `HERALD_TEST_PG_SETTINGS="shared_preload_libraries=pg_stat_statements"`
            // to see which statements a benchmark's database spends its time on.
            for setting in extra_settings() {
                server.push("-c".into());
                server.push(setting);
            }
            let log = dir.join(format!("postgres-{port}.log"));
            let watchdog = spawn_watchdog(run_as, &server, &log, &dir)?;
            let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
            match wait_until_accepting(&url, Duration::from_secs(30)) {
                Ok(()) => {
                    return Ok(Self {
                        url,
                        stopped_marker: dir.join("stopped"),
                        _watchdog: watchdog,
                    });
                }
                Err(e) => {
                    last_error = format!(
                        "{e:#}\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
        }
        bail!("postgres did not start: {last_error}")
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops the server (a fast shutdown: connections are cut) until [`ThrowawayCluster::start_again`],
    /// as an outage would; returns once it no longer accepts connections.
    pub fn stop(&self) -> anyhow::Result<()> {
        std::fs::write(&self.stopped_marker, b"")?;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while wait_until_accepting(&self.url, Duration::from_millis(200)).is_ok() {
            if std::time::Instant::now() > deadline {
                bail!("postgres at {} did not stop", self.url);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Starts the server stopped by [`ThrowawayCluster::stop`] again, on the same port and data.
    pub fn start_again(&self) -> anyhow::Result<()> {
        std::fs::remove_file(&self.stopped_marker)?;
        wait_until_accepting(&self.url, Duration::from_secs(30))
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn as_user(user: Option<&str>, program: &Path) -> Command {
    match user {
        Some(user) => {
            let mut command = Command::new("setpriv");
            command
                .arg(format!("--reuid={user}"))
                .arg(format!("--regid={user}"))
                .arg("--init-groups")
                .arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// Starts postgres under a small shell that stops it (fast shutdown) as soon as this process is
/// gone and then deletes its directory, so neither the server nor its data outlives the tests.
fn spawn_watchdog(
    user: Option<&str>,
    server: &[String],
    log: &Path,
    dir: &Path,
) -> anyhow::Result<std::process::Child> {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut command: Vec<String> = Vec::new();
    if let Some(user) = user {
        command.extend([
            "setpriv".to_string(),
            format!("--reuid={user}"),
            format!("--regid={user}"),
            "--init-groups".to_string(),
        ]);
    }
    command.extend(server.iter().cloned());
    let command = command
        .iter()
        .map(|s| quote(s))
        .collect::<Vec<_>>()
        .join(" ");
    // The server runs while this process lives; a `stopped` file in its directory stops it (fast
    // shutdown) until the file is removed, for outage tests.
    let script = format!(
        "{command} >>{log} 2>&1 & pg=$!\n\
         held=\n\
         while kill -0 {parent} 2>/dev/null; do\n\
           if [ -e {stopped} ]; then\n\
             if [ -z \"$held\" ]; then kill -INT $pg; wait $pg; held=1; fi\n\
           elif [ -n \"$held\" ]; then\n\
             {command} >>{log} 2>&1 & pg=$!; held=\n\
           elif ! kill -0 $pg 2>/dev/null; then\n\
             break\n\
           fi\n\
           sleep 0.2\n\
         done\n\
         kill -INT $pg 2>/dev/null; wait $pg; rm -rf {dir}",
        log = quote(&log.display().to_string()),
        dir = quote(&dir.display().to_string()),
        stopped = quote(&dir.join("stopped").display().to_string()),
        parent = std::process::id(),
    );
    use std::os::unix::process::CommandExt;
    Ok(Command::new("sh")
        .arg("-c")
        .arg(script)
        // A group of its own: a Ctrl-C in the terminal must not stop the database under services
        // that are still draining; the watchdog stops it once this process is gone.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

fn wait_until_accepting(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match PgConnection::connect(url).await {
                Ok(conn) => {
                    let _ = conn.close().await;
                    return Ok(());
                }
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    bail!("postgres not accepting connections at {url}: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
}
