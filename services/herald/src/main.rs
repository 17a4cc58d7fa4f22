//! `herald`: talk to a running Herald over gRPC.

mod backfill;
mod commands;
mod demo;
mod dlq;
mod output;
mod up;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(version, about = "Herald: show the business what IT is worth")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// One gRPC address for every API (what `herald up` serves); overrides --spotlight, --scoring,
    /// --notify and --ingest.
    #[arg(long, global = true, env = "HERALD_URL")]
    url: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum PeriodArg {
    Week,
    Month,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ScopeArg {
    Person,
    Team,
    Service,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum StatusArg {
    Pending,
    Delivered,
    Failed,
}

#[derive(Subcommand)]
enum Command {
    /// Run all of Herald in this process: the embedded bus and SQLite in --data-dir, one HTTP and one
    /// gRPC listener. With --demo: the sample organisation and a month of events.
    Up {
        /// The herald.toml to read (sources, catalog, channels, routes); [nats] and [database] are
        /// not used: everything lives in --data-dir.
        #[arg(long, short)]
        config: Option<std::path::PathBuf>,
        /// Where the bus and the databases are kept.
        #[arg(long, env = "HERALD_DATA_DIR", default_value = "herald-data")]
        data_dir: std::path::PathBuf,
        /// Load the sample organisation and channels and replay a month of ITSM events.
        #[arg(long)]
        demo: bool,
        /// HTTP listener: webhooks, dashboard, health, metrics.
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: std::net::SocketAddr,
        /// gRPC listener: every API.
        #[arg(long, default_value = "127.0.0.1:9090")]
        grpc: std::net::SocketAddr,
    },
    /// Top people, teams or business services by value in a week or month.
    Leaderboard {
        #[arg(long, value_enum, default_value = "week")]
        period: PeriodArg,
        /// A day inside the period (YYYY-MM-DD or RFC 3339); today when absent.
        #[arg(long)]
        at: Option<String>,
        #[arg(long, value_enum, default_value = "person")]
        scope: ScopeArg,
        #[arg(long, default_value_t = 10)]
        limit: u32,
        /// Spotlight's gRPC address.
        #[arg(
            long,
            env = "HERALD_SPOTLIGHT_URL",
            default_value = "http://127.0.0.1:9092"
        )]
        spotlight: String,
    },
    /// The value delivered in a week or month, by label.
    Value {
        #[arg(long, value_enum, default_value = "month")]
        period: PeriodArg,
        #[arg(long)]
        at: Option<String>,
        #[arg(
            long,
            env = "HERALD_SPOTLIGHT_URL",
            default_value = "http://127.0.0.1:9092"
        )]
        spotlight: String,
    },
    /// How a win's number was computed: formula, inputs with their sources, label and credit.
    Explain {
        /// A win id (w-…) or the id of the event it came from.
        id: String,
        #[arg(
            long,
            env = "HERALD_SCORING_URL",
            default_value = "http://127.0.0.1:9091"
        )]
        scoring: String,
    },
    /// Deliveries to channels, newest first, with every attempt.
    Deliveries {
        #[arg(long)]
        announcement: Option<String>,
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(
            long,
            env = "HERALD_NOTIFY_URL",
            default_value = "http://127.0.0.1:9093"
        )]
        notify: String,
    },
    /// Import history: stream an export (JSON lines, or a ServiceNow CSV export) through ingest,
    /// resumable after an interruption, with progress and a summary.
    Backfill {
        /// servicenow (JSON lines of Herald's row body, or CSV) or cloudevents (JSON lines).
        #[arg(long)]
        source: String,
        /// The export to read.
        file: std::path::PathBuf,
        #[arg(long, value_enum, default_value = "auto")]
        format: backfill::Format,
        /// Table of CSV rows without a sys_class_name column.
        #[arg(long, default_value = "incident")]
        table: String,
        /// The source's shared secret: each row is signed (X-Herald-Signature).
        #[arg(long, env = "HERALD_SOURCE_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// The source's bearer token, for ingest configured with tokens instead of secrets.
        #[arg(
            long,
            env = "HERALD_SOURCE_TOKEN",
            hide_env_values = true,
            conflicts_with = "secret"
        )]
        token: Option<String>,
        /// Rows per acknowledged chunk (the unit of resumption).
        #[arg(long, default_value_t = 500)]
        chunk: usize,
        /// Ignore a checkpoint left by an interrupted run and start from the top.
        #[arg(long)]
        restart: bool,
        #[arg(
            long,
            env = "HERALD_INGEST_URL",
            default_value = "http://127.0.0.1:9090"
        )]
        ingest: String,
    },
    /// Send a delivery (a file, byte for byte) to ingest, signed like the source would sign it.
    Send {
        /// Source name: servicenow, cloudevents, …
        source: String,
        /// The body to send.
        file: std::path::PathBuf,
        /// Shared secret to sign with (X-Herald-Signature); unsigned when absent.
        #[arg(long, env = "HERALD_SOURCE_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// Content type of the body.
        #[arg(long, default_value = "application/json")]
        content_type: String,
        /// Ingest's gRPC address.
        #[arg(
            long,
            env = "HERALD_INGEST_URL",
            default_value = "http://127.0.0.1:9090"
        )]
        ingest: String,
    },
    /// Dead letters: messages a stage gave up on. List them; replay them once the fault is fixed.
    Dlq(dlq::DlqArgs),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let url = cli.url.clone();
    let pick = move |own: String| url.clone().unwrap_or(own);
    let result = match cli.command {
        Command::Up {
            config,
            data_dir,
            demo,
            http,
            grpc,
        } => {
            up::up(up::UpArgs {
                config,
                data_dir,
                demo,
                http,
                grpc,
            })
            .await
        }
        Command::Leaderboard {
            period,
            at,
            scope,
            limit,
            spotlight,
        } => {
            commands::leaderboard(
                &pick(spotlight),
                period,
                at.as_deref(),
                scope,
                limit,
                cli.json,
            )
            .await
        }
        Command::Value {
            period,
            at,
            spotlight,
        } => commands::value(&pick(spotlight), period, at.as_deref(), cli.json).await,
        Command::Explain { id, scoring } => commands::explain(&pick(scoring), &id, cli.json).await,
        Command::Deliveries {
            announcement,
            status,
            limit,
            notify,
        } => commands::deliveries(&pick(notify), announcement, status, limit, cli.json).await,
        Command::Backfill {
            source,
            file,
            format,
            table,
            secret,
            token,
            chunk,
            restart,
            ingest,
        } => backfill::run(backfill::Args {
            url: pick(ingest),
            source,
            file,
            format,
            table,
            secret,
            token,
            chunk,
            restart,
            json: cli.json,
        })
        .await
        .map(|_| ()),
        Command::Send {
            source,
            file,
            secret,
            content_type,
            ingest,
        } => {
            commands::send(
                &pick(ingest),
                &source,
                &file,
                secret.as_deref(),
                &content_type,
                cli.json,
            )
            .await
        }
        Command::Dlq(args) => dlq::run(&pick(args.ingest.clone()), args, cli.json).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("herald: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
