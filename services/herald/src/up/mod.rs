//! `herald up`: ingest, scoring, spotlight and notify in one process, on the embedded bus and SQLite
//! in a data directory, behind one HTTP and one gRPC listener. The same service code as the
//! distributed deployment; only the dependencies differ.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::Context;
use herald_events::{Bus, EmbeddedBus};
use herald_ingest::{Ingest, IngestConfig};
use herald_notify::{Notify, NotifyConfig};
use herald_runtime::{
    ConfigLoader, Listeners, Secret,
    boot::Boot,
    component::{Component, Deps},
    db,
    service::Service,
    shutdown, telemetry,
};
use herald_scoring::{Scoring, ScoringConfig};
use herald_spotlight::{Spotlight, SpotlightConfig};
use tokio_util::sync::CancellationToken;

use crate::demo;

mod banner;

/// Run all of Herald in this process: the embedded bus and SQLite in --data-dir, one HTTP and one
/// gRPC listener. With --demo: the sample organisation, a key for every source and a month of
/// events.
#[derive(clap::Args)]
pub struct Args {
    /// The herald.toml to read (sources, catalog, channels, routes); [nats] and [database] are
    /// not used: everything lives in --data-dir. Without it every source refuses deliveries until
    /// given a key (HERALD_SOURCES__<NAME>__SECRET).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Where the bus and the databases are kept.
    #[arg(long, env = "HERALD_DATA_DIR", default_value = "herald-data")]
    data_dir: PathBuf,
    /// Load the sample organisation and channels, configure a key for every source, and replay a
    /// month of ITSM events (once: a restart on the same --data-dir adds nothing).
    #[arg(long)]
    demo: bool,
    /// With --demo: also announce headlines to this Microsoft Teams Workflows webhook. Prefer the
    /// environment variable: a URL on the command line is visible to everyone on the machine.
    #[arg(
        long,
        env = "HERALD_DEMO_TEAMS_URL",
        hide_env_values = true,
        requires = "demo"
    )]
    teams_url: Option<String>,
    /// With --demo: also mail headlines through this relay:
    /// smtp://[user:password@]host[:port]?from=herald@example.com&to=it-wins@example.com
    /// (smtps:// for TLS from the first byte, smtp+plain:// for a local relay without TLS).
    #[arg(
        long,
        env = "HERALD_DEMO_SMTP",
        hide_env_values = true,
        requires = "demo"
    )]
    smtp: Option<String>,
    /// HTTP listener: webhooks, dashboard, health, metrics.
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// gRPC listener: every API.
    #[arg(long, default_value = "127.0.0.1:9090")]
    grpc: SocketAddr,
}

/// Lanes a stage of `herald up` runs when the configuration names none.
const STANDALONE_LANES: usize = 8;

/// Messages a lane of `herald up` records in one transaction at most when the configuration names
/// none. The stages share SQLite's single writer: with 256 (the distributed default) and eight
/// lanes a 100k `herald up` backfill took 25.3–26.7 s where 64 took 20.4–22.0 s (three alternating
/// pairs).
const STANDALONE_BATCH: usize = 64;

/// Scoring's batch under `herald up`: its transactions are the longest, and fewer, larger ones
/// recorded a million-row backfill in 238.9 s where batches of 64 took 275.2 s (four lanes of 128
/// against eight of 64). Its consumer holds what eight lanes of 128 can (2,048), so the lanes do
/// not wait on each other's acks (BENCHMARKS.md, thirty-third sitting).
const STANDALONE_SCORING_BATCH: usize = 128;

/// The four services' configurations, read from one file (or the demo's).
struct Configs {
    ingest: IngestConfig,
    scoring: ScoringConfig,
    spotlight: SpotlightConfig,
    notify: NotifyConfig,
}

impl Configs {
    fn load(loader: &ConfigLoader, data_dir: &Path) -> anyhow::Result<Self> {
        let mut configs = Self {
            ingest: IngestConfig::load(loader)?,
            scoring: ScoringConfig::load(loader)?,
            spotlight: SpotlightConfig::load(loader)?,
            notify: NotifyConfig::load(loader)?,
        };
        // One process's stages share SQLite's single writer, and more lanes keep its commits
        // coming: with 2 a stage `herald up` delivered a fifth less than with 8 on two cores.
        // Scoring, whose transactions are the longest, does better with larger ones.
        for (consumer, batch) in [
            (
                &mut configs.scoring.scoring.consumer,
                STANDALONE_SCORING_BATCH,
            ),
            (&mut configs.spotlight.spotlight.consumer, STANDALONE_BATCH),
            (&mut configs.notify.notify.consumer, STANDALONE_BATCH),
        ] {
            consumer.lanes.get_or_insert(STANDALONE_LANES);
            consumer.batch.get_or_insert(batch);
        }
        // One process keeps everything in its data directory, whatever [database] says.
        let url = Secret::new(format!("sqlite://{}", data_dir.display()));
        for shared in [
            &mut configs.ingest.shared,
            &mut configs.scoring.shared,
            &mut configs.spotlight.shared,
            &mut configs.notify.shared,
        ] {
            shared.database.url = url.clone();
        }
        Ok(configs)
    }
}

/// Connects a service to its SQLite file and builds its component.
async fn component<S: Service>(
    config: S::Config,
    bus: &Arc<dyn Bus>,
    boot: &mut Boot,
    shutdown: &CancellationToken,
) -> anyhow::Result<Component> {
    let shared = S::shared(&config);
    let database = db::connect(&shared.database, S::NAME).await?;
    db::migrate(&database, S::NAME, &S::migrations()).await?;
    let deps = Deps {
        bus: bus.clone(),
        db: database,
    };
    boot.adopt(S::NAME, &deps);
    S::build(config, deps, shutdown.clone()).await
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            args.data_dir.display()
        )
    })?;
    let data_dir = args.data_dir.canonicalize()?;
    let loader = match (&args.config, args.demo) {
        (None, true) => demo::config_loader(
            &data_dir,
            &demo::DemoChannels {
                teams_url: args.teams_url.clone(),
                smtp: args.smtp.clone(),
            },
        )?,
        (Some(_), true) if args.teams_url.is_some() || args.smtp.is_some() => {
            anyhow::bail!(
                "--teams-url and --smtp add channels to the demo's configuration; with --config, configure them in that file"
            )
        }
        (path, _) => ConfigLoader::load(path.as_deref())?,
    };
    let configs = Configs::load(&loader, &data_dir)?;
    let telemetry = telemetry::init("herald", &configs.ingest.shared.telemetry)?;
    let result = serve(args, data_dir, configs).await;
    if let Err(e) = &result {
        tracing::error!(error = %format!("{e:#}"), "herald up failed");
    }
    telemetry.shutdown();
    result
}

async fn serve(args: Args, data_dir: PathBuf, configs: Configs) -> anyhow::Result<()> {
    let listeners = Listeners::bind(args.http, args.grpc).await?.with_tls(
        herald_runtime::tls::Tls::from_config(&configs.ingest.shared.tls)?,
    );
    let http = listeners.http_addr()?;
    let grpc = listeners.grpc_addr()?;
    let shutdown = shutdown::on_signals();

    let bus: Arc<dyn Bus> =
        Arc::new(EmbeddedBus::open(&data_dir, configs.ingest.shared.nats.streams.clone()).await?);
    let consumers: Vec<_> = [
        Scoring::consumers(&configs.scoring),
        Spotlight::consumers(&configs.spotlight),
        Notify::consumers(&configs.notify),
    ]
    .concat();
    bus.ensure_topology(&consumers).await?;

    let auth = herald_runtime::Auth::from_config(&configs.ingest.shared.auth, http, grpc)?;
    if args.demo && auth.enforced() {
        anyhow::bail!(
            "--demo replays its month through the API without a token; run the demo without [auth] tokens (herald up serves on 127.0.0.1 only)"
        );
    }
    let mut boot = Boot::start("herald", listeners, auth, &shutdown);
    // The demo signs each source's deliveries with that source's key, as the tools would.
    let keys = demo::replay::Keys::from_sources(&configs.ingest.sources);
    let verification = &configs.scoring.scoring.verification;
    let incident_window = verification.window(herald_proto::v1::EventKind::IncidentResolved);
    let banner = banner::Banner::new(
        &data_dir,
        (http, grpc),
        args.config.as_deref(),
        args.demo,
        &configs.ingest.sources,
    )
    .with_verification(
        incident_window.hold_back.to_std().unwrap_or_default(),
        incident_window.revoke_within.to_std().unwrap_or_default(),
    )
    .with_channels(&configs.notify.notify.channels);
    let components = vec![
        component::<Ingest>(configs.ingest, &bus, &mut boot, &shutdown).await?,
        component::<Scoring>(configs.scoring, &bus, &mut boot, &shutdown).await?,
        component::<Spotlight>(configs.spotlight, &bus, &mut boot, &shutdown).await?,
        component::<Notify>(configs.notify, &bus, &mut boot, &shutdown).await?,
    ];

    eprintln!("{}", banner.render());
    if args.demo {
        let grpc_url = format!("http://{grpc}");
        let stop = shutdown.clone();
        let demo_dir = data_dir.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                result = demo::replay(&grpc_url, &keys, &demo_dir) => match result {
                    Ok(replayed) => eprintln!("{}", demo::replay::report(&grpc_url, &replayed).await),
                    Err(e) => eprintln!("demo replay failed: {e:#}"),
                }
            }
        });
    }
    boot.serve(components).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn herald_up_runs_eight_lanes_a_stage_of_128_messages_for_scoring_and_64_for_the_others()
    -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let loader = demo::config_loader(
            dir.path(),
            &demo::DemoChannels {
                teams_url: None,
                smtp: None,
            },
        )?;
        let configs = Configs::load(&loader, dir.path())?;
        let lanes_and_batch = |consumer: &herald_events::worker::StageSettings| {
            let options = consumer.worker_options("stage");
            (options.lanes, options.batch)
        };
        assert_eq!(lanes_and_batch(&configs.scoring.scoring.consumer), (8, 128));
        assert_eq!(
            lanes_and_batch(&configs.spotlight.spotlight.consumer),
            (8, 64)
        );
        assert_eq!(lanes_and_batch(&configs.notify.notify.consumer), (8, 64));
        Ok(())
    }
}
