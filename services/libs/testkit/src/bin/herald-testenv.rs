//! Runs a command with a throwaway PostgreSQL cluster and `DATABASE_URL` pointing at it, so the whole
//! test suite shares one server instead of starting one per test process.
//!
//! `herald-testenv cargo nextest run --workspace`
//!
//! When `DATABASE_URL` is already set, the command runs against that server unchanged.
//!
//! `herald-testenv --durable COMMAND…` starts the cluster with PostgreSQL's own commit settings (a
//! commit is on disk before it returns, as in production) instead of the test suite's fast ones:
//! what a benchmark must use.

use std::process::{Command, ExitCode};

use herald_testkit::postgres::{Commits, ThrowawayCluster};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let commits = if args.first().is_some_and(|a| a == "--durable") {
        args.remove(0);
        Commits::Durable
    } else {
        Commits::Fast
    };
    if args.first().is_some_and(|a| a == "--") {
        args.remove(0);
    }
    let Some((program, rest)) = args.split_first() else {
        eprintln!("usage: herald-testenv [--durable] COMMAND [ARGS...]");
        return ExitCode::from(2);
    };
    let mut command = Command::new(program);
    command.args(rest);

    // Kept alive until the command finishes; its watchdog stops the server when we exit.
    let _cluster = if std::env::var("DATABASE_URL").is_ok_and(|u| !u.trim().is_empty()) {
        eprintln!("herald-testenv: using DATABASE_URL from the environment");
        None
    } else {
        match ThrowawayCluster::start_with(commits) {
            Ok(cluster) => {
                let how = match commits {
                    Commits::Durable => "commits to disk, as in production",
                    Commits::Fast => "fast commits, not crash-safe",
                };
                eprintln!(
                    "herald-testenv: throwaway PostgreSQL at {} ({how})",
                    cluster.url()
                );
                command.env("DATABASE_URL", cluster.url());
                Some(cluster)
            }
            Err(e) => {
                eprintln!("herald-testenv: {e:#}");
                return ExitCode::FAILURE;
            }
        }
    };

    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("herald-testenv: cannot run {program}: {e}");
            return ExitCode::FAILURE;
        }
    };
    forward_signals(child.id());
    match child.wait() {
        Ok(status) => status
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .map(ExitCode::from)
            .unwrap_or(ExitCode::FAILURE),
        Err(e) => {
            eprintln!("herald-testenv: lost track of {program}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// SIGINT and SIGTERM no longer end this process at once: the command is asked to stop (SIGTERM)
/// and this process waits for it, so the database outlives whatever is still shutting down.
fn forward_signals(child: u32) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        eprintln!("herald-testenv: cannot watch signals; Ctrl-C will stop the database at once");
        return;
    };
    std::thread::spawn(move || {
        for _ in signals.forever() {
            let _ = herald_testkit::process::signal(child, "-TERM");
        }
    });
}
