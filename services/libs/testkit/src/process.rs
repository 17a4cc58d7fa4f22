//! Herald's binaries run as real processes, for tests that kill and restart them.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Mutex, OnceLock},
    time::Duration,
};

use anyhow::{Context, bail};

/// The path of one of the workspace's binaries.
///
/// The workspace test build (`scripts/test`) already builds every service binary, because each
/// service package has integration tests. Only when a binary is missing or older than the sources
/// (a single test run after an edit) is `cargo build --workspace --bins` run, once per process (a
/// copy of the binaries outside the target directory is used as it is);
/// building a single package instead would resolve features differently and rebuild dependencies.
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Mutex<Option<Result<(), String>>>> = OnceLock::new();
    let exe = std::env::current_exe()?;
    // Test binaries live in target/<profile>/deps; the service binaries (and a tool such as the
    // benchmark that starts them) in target/<profile>.
    let parent = exe
        .parent()
        .context("cannot tell the target directory from the binary's path")?;
    let profile_dir = if parent.file_name().is_some_and(|n| n == "deps") {
        parent
            .parent()
            .context("cannot tell the target directory from the test binary's path")?
    } else {
        parent
    }
    .to_path_buf();
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let path = profile_dir.join(name);
    if is_copy(&profile_dir) && path.is_file() {
        return Ok(path);
    }
    let Some(why) = stale(&path) else {
        return Ok(path);
    };
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    let result = built.get_or_insert_with(|| {
        // On stderr, which a test shows when it fails: a build after a change to a shared crate
        // takes minutes, and a test that timed out meanwhile should say why.
        eprintln!(
            "building Herald's binaries with `cargo build --workspace --bins` ({why}); after a \
             change to a crate they share this takes minutes (`scripts/test` builds them first)"
        );
        let mut cargo = std::process::Command::new(env!("CARGO"));
        cargo
            .current_dir(crate::repo_root())
            .args(["build", "--quiet", "--workspace", "--bins"]);
        // Called from a process cargo did not start (the benchmark, the fault suite), rustup's
        // `rustc` would pick its toolchain from each dependency's directory, and some pin one of
        // their own: keep the toolchain this cargo belongs to.
        if std::env::var_os("RUSTUP_TOOLCHAIN").is_none()
            && let Some(toolchain) = toolchain_of(Path::new(env!("CARGO")))
        {
            cargo.env("RUSTUP_TOOLCHAIN", toolchain);
        }
        if release {
            cargo.arg("--release");
        }
        match cargo.status() {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => Err(format!(
                "`cargo build --workspace --bins` failed ({status})"
            )),
            Err(e) => Err(format!("cannot run cargo to build the binaries: {e}")),
        }
    });
    if let Err(e) = result {
        bail!("{e}");
    }
    if !path.is_file() {
        bail!("{} was not built", path.display());
    }
    Ok(path)
}

/// The rustup toolchain a tool belongs to, from its path (`…/toolchains/<name>/bin/cargo`).
fn toolchain_of(tool: &Path) -> Option<String> {
    let mut parts = tool.components().map(|c| c.as_os_str().to_string_lossy());
    parts.find(|p| p == "toolchains")?;
    parts.next().map(|name| name.into_owned())
}

/// Binaries copied out of the workspace's target directory (two builds kept side by side for an
/// A/B comparison) are run as they are: a build would write to the target directory, not to the
/// copy, and only take the machine from the measurement.
fn is_copy(profile_dir: &Path) -> bool {
    let in_target = |dir: &Path| profile_dir.starts_with(dir);
    let target_dir = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from);
    let target_dir = match target_dir {
        Some(dir) if dir.is_relative() => std::env::current_dir().ok().map(|cwd| cwd.join(dir)),
        other => other,
    };
    !(in_target(&crate::repo_root().join("target"))
        || target_dir.is_some_and(|dir| in_target(&dir)))
}

/// Why `binary` needs building: it is missing, or a file it could be built from is newer. `None`
/// when it is up to date. A package's integration tests (`tests/`) and its docs are not built into
/// a binary: after a test is edited, every test process would otherwise run cargo, one at a time
/// behind its lock, to rebuild nothing.
fn stale(binary: &Path) -> Option<String> {
    stale_in(&crate::repo_root(), binary)
}

/// [`stale`] for the workspace at `root`.
fn stale_in(root: &Path, binary: &Path) -> Option<String> {
    let Ok(built) = binary.metadata().and_then(|m| m.modified()) else {
        return Some(format!("{} is missing", binary.display()));
    };
    let mut pending = vec![
        root.join("services"),
        root.join("proto"),
        root.join("bench"),
        // The demo's catalog, built into `herald`.
        root.join("deploy").join("catalog.toml"),
        root.join("Cargo.toml"),
        root.join("Cargo.lock"),
    ];
    while let Some(path) = pending.pop() {
        let Ok(meta) = path.metadata() else { continue };
        if meta.is_dir() {
            if path
                .file_name()
                .is_some_and(|n| n == "target" || n == "tests")
            {
                continue;
            }
            if let Ok(entries) = std::fs::read_dir(&path) {
                pending.extend(entries.filter_map(|e| e.ok().map(|e| e.path())));
            }
        } else if path.extension().is_some_and(|e| e == "md") {
            continue;
        } else if meta.modified().is_ok_and(|m| m > built) {
            return Some(format!(
                "{} is newer than {}",
                path.strip_prefix(root).unwrap_or(&path).display(),
                binary.display()
            ));
        }
    }
    None
}

/// A service binary running as a child process, its output captured to a log file.
pub struct ServiceProcess {
    name: String,
    child: Option<tokio::process::Child>,
    log_path: PathBuf,
    _log_dir: tempfile::TempDir,
    program: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
}

impl ServiceProcess {
    /// Builds (if needed) and starts `binary` with `args` and extra environment.
    pub async fn spawn(
        binary_name: &str,
        args: &[String],
        envs: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let program = binary(binary_name)?;
        Self::spawn_program(binary_name, program, args, envs).await
    }

    /// Starts another program (a tool to compare Herald with) the same way, named `binary_name`.
    pub async fn spawn_program(
        binary_name: &str,
        program: PathBuf,
        args: &[String],
        envs: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let log_dir = tempfile::Builder::new()
            .prefix(&format!("{binary_name}-"))
            .tempdir()?;
        let mut process = Self {
            name: binary_name.to_string(),
            child: None,
            log_path: log_dir.path().join("output.log"),
            _log_dir: log_dir,
            program,
            args: args.to_vec(),
            envs: envs.to_vec(),
        };
        process.start()?;
        Ok(process)
    }

    fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)?;
        let child = tokio::process::Command::new(&self.program)
            .args(&self.args)
            .envs(self.envs.iter().cloned())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", self.program.display()))?;
        self.child = Some(child);
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    /// SIGKILL: the process gets no chance to clean up, as in a crash.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// SIGTERM, then wait up to `timeout` for a clean exit; returns the exit code.
    pub async fn terminate(&mut self, timeout: Duration) -> anyhow::Result<Option<i32>> {
        let Some(mut child) = self.child.take() else {
            return Ok(None);
        };
        if let Some(pid) = child.id() {
            signal(pid, "-TERM")?;
        }
        match tokio::time::timeout(timeout, child.wait()).await {
            Ok(status) => Ok(status?.code()),
            Err(_) => {
                child.kill().await?;
                bail!("{} did not exit within {timeout:?} of SIGTERM", self.name)
            }
        }
    }

    /// Starts the same binary again with the same arguments, appending to the same log.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill().await?;
        self.start()
    }

    /// Whether the process has exited, and how.
    pub fn try_exit_code(&mut self) -> Option<Option<i32>> {
        let child = self.child.as_mut()?;
        child.try_wait().ok().flatten().map(|s| s.code())
    }

    /// Everything the process wrote so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The arguments of `herald up` with `config`, in `data_dir`, listening on 127.0.0.1 at `http` and
/// `grpc`.
pub fn herald_up_args(config: &Path, data_dir: &Path, http: u16, grpc: u16) -> Vec<String> {
    vec![
        "up".into(),
        "--config".into(),
        config.display().to_string(),
        "--data-dir".into(),
        data_dir.display().to_string(),
        "--http".into(),
        format!("127.0.0.1:{http}"),
        "--grpc".into(),
        format!("127.0.0.1:{grpc}"),
    ]
}

/// Sends `pid` a signal (`-TERM`, `-STOP`, `-CONT`…) with `kill`, as the tests' own shell would.
pub fn signal(pid: u32, name: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill")
        .args([name, &pid.to_string()])
        .status()?;
    anyhow::ensure!(status.success(), "kill {name} {pid} failed: {status}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::{
        fs::{self, File},
        time::{Duration, SystemTime},
    };

    use super::stale_in;

    /// Writes `path` (under `root`) as last changed at `at`.
    fn file_at(root: &std::path::Path, path: &str, at: SystemTime) -> anyhow::Result<()> {
        let path = root.join(path);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        fs::write(&path, "x")?;
        File::options().write(true).open(&path)?.set_modified(at)?;
        Ok(())
    }

    #[test]
    fn a_binary_is_stale_only_after_what_it_is_built_from_changed() -> anyhow::Result<()> {
        let root = tempfile::tempdir()?;
        let root = root.path();
        let built = SystemTime::now() - Duration::from_secs(3_600);
        let (before, after) = (
            built - Duration::from_secs(60),
            built + Duration::from_secs(60),
        );
        file_at(root, "services/scoring/src/lib.rs", before)?;
        file_at(root, "deploy/catalog.toml", before)?;
        file_at(root, "target/release/herald-scoring", built)?;
        let binary = root.join("target/release/herald-scoring");
        assert_eq!(stale_in(root, &binary), None, "nothing changed since");

        // Neither a package's integration tests nor its docs are built into the binary.
        file_at(root, "services/scoring/tests/it/stage.rs", after)?;
        file_at(root, "services/scoring/README.md", after)?;
        assert_eq!(stale_in(root, &binary), None, "a test and a doc changed");

        // The demo's catalog is, into `herald`.
        file_at(root, "deploy/catalog.toml", after)?;
        let why = stale_in(root, &binary).expect("the catalog changed");
        assert!(
            why.starts_with("deploy/catalog.toml is newer than"),
            "{why}"
        );

        file_at(root, "deploy/catalog.toml", before)?;
        file_at(root, "services/scoring/src/lib.rs", after)?;
        let why = stale_in(root, &binary).expect("a source changed");
        assert!(
            why.starts_with("services/scoring/src/lib.rs is newer"),
            "{why}"
        );

        let missing = root.join("target/release/herald-notify");
        assert!(stale_in(root, &missing).is_some_and(|why| why.ends_with("is missing")));
        Ok(())
    }
}
