//! `herald migrate`: creates the JetStream streams and consumers and migrates every service's
//! database schema, once, before the services roll out (a Kubernetes Job, a one-shot container).
//! The services do the same at start, idempotently; running it first means they start against a
//! ready topology, and a schema migration that fails stops the rollout instead of four services.
#![allow(clippy::print_stdout)] // printing what was made ready is this module's job

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use herald_events::{Bus, JetStreamBus, JetStreamOptions};
use herald_ingest::Ingest;
use herald_notify::Notify;
use herald_runtime::{ConfigLoader, db, service::Service, startup};
use herald_scoring::Scoring;
use herald_spotlight::Spotlight;
use tokio_util::sync::CancellationToken;

/// Create the streams, consumers and database schemas the services need, then exit.
#[derive(clap::Args)]
pub struct Args {
    /// The herald.toml to read (default: $HERALD_CONFIG, then ./herald.toml).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Seconds to wait for NATS and PostgreSQL to answer before giving up.
    #[arg(long, default_value_t = 120)]
    wait_seconds: u64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let loader = ConfigLoader::load(args.config.as_deref())?;
    let give_up = CancellationToken::new();
    let cancel = give_up.clone();
    let wait = Duration::from_secs(args.wait_seconds);
    tokio::spawn(async move {
        tokio::time::sleep(wait).await;
        cancel.cancel();
    });
    prepare::<Ingest>(&loader, &give_up, wait).await?;
    prepare::<Scoring>(&loader, &give_up, wait).await?;
    prepare::<Spotlight>(&loader, &give_up, wait).await?;
    prepare::<Notify>(&loader, &give_up, wait).await?;
    println!("ready: every stream, consumer and schema exists");
    Ok(())
}

/// Service `S`'s streams, consumers and schema.
async fn prepare<S: Service>(
    loader: &ConfigLoader,
    give_up: &CancellationToken,
    wait: Duration,
) -> anyhow::Result<()> {
    let config = S::load(loader)?;
    let shared = S::shared(&config);
    let mut options = JetStreamOptions::new(shared.nats.url.clone(), "herald-migrate");
    options.streams = shared.nats.streams.clone();
    let bus = startup::retry("connecting to NATS", give_up, || {
        JetStreamBus::connect(options.clone())
    })
    .await
    .with_context(|| format!("NATS at {} did not answer within {wait:?}", shared.nats.url))?;
    let consumers = S::consumers(&config);
    bus.ensure_topology(&consumers)
        .await
        .with_context(|| format!("cannot create {}'s streams and consumers", S::NAME))?;
    let database = startup::retry("connecting to the database", give_up, || {
        db::connect(&shared.database, S::NAME)
    })
    .await
    .with_context(|| format!("the database did not answer within {wait:?}"))?;
    db::migrate(&database, S::NAME, &S::migrations()).await?;
    database.pool.close().await;
    let names: Vec<&str> = consumers.iter().map(|c| c.durable.as_str()).collect();
    println!(
        "{}: streams ready{}, schema migrated",
        S::NAME,
        if names.is_empty() {
            String::new()
        } else {
            format!(", consumer {}", names.join(", "))
        }
    );
    Ok(())
}
