//! `herald`: run Herald in one process (`herald up`), or talk to a running Herald over gRPC. Each
//! subcommand is its own module with its own arguments; this file only dispatches.

mod backfill;
mod client;
mod deliveries;
mod demo;
mod dlq;
mod explain;
mod format;
mod leaderboard;
mod ledger;
mod migrate;
mod period;
mod recognition;
mod report;
mod rescore;
mod send;
mod send_test;
mod source;
mod up;
mod value;
mod wins;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "Herald: show the business what IT is worth")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print JSON (also accepted after the subcommand, where it applies).
    #[arg(long, hide = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    Up(up::Args),
    Leaderboard(leaderboard::Args),
    Recognition(recognition::Args),
    Value(value::Args),
    Explain(explain::Args),
    Deliveries(deliveries::Args),
    SendTest(send_test::Args),
    Backfill(backfill::Args),
    Send(send::Args),
    Dlq(dlq::DlqArgs),
    Wins(wins::Args),
    Ledger(ledger::Args),
    Rescore(rescore::Args),
    Report(report::Args),
    Migrate(migrate::Args),
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    // `herald --json <command>` still works for the commands that print.
    let json = cli.json;
    match cli.command {
        Command::Up(args) => up::run(args).await,
        Command::Leaderboard(mut args) => {
            args.json |= json;
            leaderboard::run(args).await
        }
        Command::Recognition(mut args) => {
            args.json |= json;
            recognition::run(args).await
        }
        Command::Value(mut args) => {
            args.json |= json;
            value::run(args).await
        }
        Command::Explain(mut args) => {
            args.json |= json;
            explain::run(args).await
        }
        Command::Deliveries(mut args) => {
            args.json |= json;
            deliveries::run(args).await
        }
        Command::SendTest(mut args) => {
            args.json |= json;
            send_test::run(args).await
        }
        Command::Report(args) => report::run(args).await,
        Command::Migrate(args) => migrate::run(args).await,
        Command::Backfill(mut args) => {
            args.json |= json;
            backfill::run(args).await
        }
        Command::Send(mut args) => {
            args.json |= json;
            send::run(args).await
        }
        Command::Dlq(mut args) => {
            args.json |= json;
            dlq::run(args).await
        }
        Command::Wins(mut args) => {
            args.set_json(json);
            wins::run(args).await
        }
        Command::Ledger(mut args) => {
            args.set_json(json);
            ledger::run(args).await
        }
        Command::Rescore(mut args) => {
            args.json |= json;
            rescore::run(args).await
        }
    }
}

/// `herald deliveries | head` closes the pipe early; Rust ignores SIGPIPE, so the next `println!`
/// panics. A closed standard output is the reader saying "enough": end quietly, as `ls | head`
/// would, with the status a shell gives a process that SIGPIPE ended.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("herald: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("herald: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A multi-threaded runtime with tokio's worker threads: one a core, or `TOKIO_WORKER_THREADS`.
/// `herald up` ran on half the cores for a while, because its bus and SQLite files have busy
/// threads of their own; since its stores stopped sharing SQLite's locks and returning a row an
/// insert, one worker a core backfills 100,000 rows in 13.7–14.5 s where half took 15.4–16.3 s,
/// and delivers about 8 % more a second at saturation, with the same p99 at 200 events a second
/// (BENCHMARKS.md, thirty-seventh sitting).
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("herald").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn unknown_enum_values_are_refused() {
        for args in [
            &["dlq", "list", "--stage", "bogus"][..],
            &["dlq", "replay", "--stage", "bogus"],
            &["send", "bogus", "f.json"],
            &["backfill", "--source", "jira", "f.jsonl"],
            &["backfill", "--source", "servicenow", "--format", "xml", "f"],
            &["leaderboard", "--scope", "galaxy"],
            &["leaderboard", "--period", "decade"],
            &["value", "--period", "year"],
            &["deliveries", "--status", "lost"],
            &["wins", "list", "--status", "lost"],
            &["ledger", "check"],
        ] {
            assert!(parse(args).is_err(), "{args:?} was accepted");
        }
        assert!(parse(&["dlq", "list", "--stage", "notify"]).is_ok());
        assert!(parse(&["send", "opsgenie", "f.json", "--token", "t"]).is_ok());
        assert!(parse(&["wins", "list", "--status", "revoked", "--limit", "5"]).is_ok());
        assert!(parse(&["ledger", "rebuild", "--check"]).is_ok());
        assert!(parse(&["rescore", "--catalog", "c.toml", "--dry-run", "--json"]).is_ok());
    }

    #[test]
    fn up_shows_only_its_own_options() {
        let mut command = Cli::command();
        let up = command
            .find_subcommand_mut("up")
            .expect("an up subcommand")
            .render_long_help()
            .to_string();
        for foreign in ["--url", "--json", "--ingest", "--scoring", "--secret"] {
            assert!(!up.contains(foreign), "`up --help` shows {foreign}:\n{up}");
        }
        for own in ["--config", "--data-dir", "--demo", "--http", "--grpc"] {
            assert!(up.contains(own), "`up --help` lacks {own}:\n{up}");
        }
    }

    #[test]
    fn backfill_help_documents_its_exit_status() {
        let mut command = Cli::command();
        let help = command
            .find_subcommand_mut("backfill")
            .expect("a backfill subcommand")
            .render_long_help()
            .to_string();
        assert!(help.contains("Exit status"), "{help}");
    }
}
