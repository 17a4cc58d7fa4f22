//! `herald backfill`: streams an export (JSON lines, or a ServiceNow CSV export) through ingest's
//! `SubmitBatch`, the same verify → normalise → publish path as a webhook.
//!
//! Rows go in chunks; after each chunk is acknowledged, the position in the file and the running
//! totals are saved next to the file, so an interrupted run picks up where it stopped (rows of the
//! chunk in flight come back as duplicates). Memory holds one chunk, whatever the file's size.

mod reader;
mod summary;

use std::{
    collections::HashMap,
    fs::File,
    io::{IsTerminal, Read},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context;
use herald_proto::v1::{SubmitRequest, ingest_client::IngestClient, submit_result::Outcome};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use herald_ingest::sign::{self, Credential};

use self::{
    reader::{Row, open},
    summary::{Totals, tally},
};
use crate::client::IngestAddress;

/// How the rows of the file are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Decided by the file name: `.csv` is CSV, anything else JSON lines.
    Auto,
    /// One delivery body per line, exactly as the source would send it.
    Jsonl,
    /// A ServiceNow list export with a header row (`sys_id` and `sys_mod_count` columns needed).
    Csv,
}

/// The sources whose exports backfill reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackfillSource {
    /// JSON lines of Herald's row body, or a CSV list export.
    Servicenow,
    /// JSON lines of structured CloudEvents.
    Cloudevents,
}

impl BackfillSource {
    fn token(self) -> &'static str {
        match self {
            BackfillSource::Servicenow => "servicenow",
            BackfillSource::Cloudevents => "cloudevents",
        }
    }
}

/// Import history: stream an export (JSON lines, or a ServiceNow CSV export) through ingest,
/// resumable after an interruption, with progress and a summary.
///
/// Exit status: 0 when the run finished and at least one row was accepted or found already there
/// (or nothing was rejected); 1 when rows were rejected and none was accepted or a duplicate (a
/// wrong secret, the wrong source), or when the run could not finish.
#[derive(clap::Args)]
pub struct Args {
    #[arg(long, value_enum)]
    source: BackfillSource,
    /// The export to read.
    file: PathBuf,
    #[arg(long, value_enum, default_value = "auto")]
    format: Format,
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
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    address: IngestAddress,
}

/// What is saved after every acknowledged chunk.
#[derive(Debug, Serialize, Deserialize)]
struct Checkpoint {
    /// The file this checkpoint belongs to: its size and the hash of its first 64 KiB.
    fingerprint: String,
    source: String,
    /// Byte offset of the first row not yet acknowledged.
    offset: u64,
    /// Line number of that row (1-based, the CSV header counts as line 1).
    line: u64,
    /// CSV header, so a resumed run can read rows without going back to it.
    csv_header: Option<Vec<String>>,
    totals: Totals,
}

fn checkpoint_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".herald-backfill");
    file.with_file_name(name)
}

fn fingerprint(file: &Path) -> anyhow::Result<String> {
    let mut f = File::open(file)?;
    let size = f.metadata()?.len();
    let mut head = vec![0u8; 64 * 1024];
    let n = f.read(&mut head)?;
    let digest = sha2::Sha256::digest(&head[..n]);
    Ok(format!("{size}:{}", hex_lower(&digest)))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn save(path: &Path, checkpoint: &Checkpoint) -> anyhow::Result<()> {
    // Written aside and renamed, so a crash never leaves half a checkpoint.
    let tmp = path.with_extension("herald-backfill.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(checkpoint)?)?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot write the checkpoint {}", path.display()))
}

fn headers(args: &Args, body: &[u8]) -> HashMap<String, String> {
    let mut headers = HashMap::from([("content-type".to_string(), "application/json".to_string())]);
    let credential = match (&args.secret, &args.token) {
        (Some(secret), _) => Some(Credential::Secret(secret)),
        (None, Some(token)) => Some(Credential::Token(token)),
        (None, None) => None,
    };
    // Both sources use Herald's own scheme, which takes a secret or a token.
    let (name, value) = match credential {
        Some(credential) => sign::herald(credential, body),
        None => return headers,
    };
    headers.insert(name.to_string(), value);
    headers
}

/// Sends one chunk, retrying while ingest cannot store events; answers only once every row of the
/// chunk has an outcome.
async fn send_chunk(
    client: &mut IngestClient<crate::client::Connection>,
    args: &Args,
    rows: &[Row],
    totals: &mut Totals,
) -> anyhow::Result<()> {
    let mut requests = Vec::with_capacity(rows.len());
    for row in rows {
        requests.push(SubmitRequest {
            // History: counted in its period, never announced as news.
            historical: true,
            source: args.source.token().to_string(),
            body: row.body.clone(),
            headers: headers(args, &row.body),
        });
    }
    let mut attempt = 0u32;
    let response = loop {
        match client
            .submit_batch(futures::stream::iter(requests.clone()))
            .await
        {
            Ok(response) => break response.into_inner(),
            Err(status)
                if matches!(
                    status.code(),
                    tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
                ) && attempt < 8 =>
            {
                attempt += 1;
                let wait = Duration::from_millis(250 * 2u64.pow(attempt.min(6)));
                eprintln!(
                    "ingest cannot store events right now ({}); retrying in {:.1}s",
                    status.message(),
                    wait.as_secs_f64()
                );
                tokio::time::sleep(wait).await;
            }
            Err(status) => anyhow::bail!(
                "ingest refused the batch: {} ({:?}); the checkpoint is kept, run the same command to resume",
                status.message(),
                status.code()
            ),
        }
    };
    anyhow::ensure!(
        response.results.len() == rows.len(),
        "ingest answered {} results for {} rows",
        response.results.len(),
        rows.len()
    );
    for (row, result) in rows.iter().zip(response.results) {
        totals.rows += 1;
        match result.outcome {
            Some(Outcome::Response(r)) if !r.published => totals.not_published += 1,
            Some(Outcome::Response(r)) if r.duplicate => totals.duplicates += 1,
            Some(Outcome::Response(_)) => totals.accepted += 1,
            Some(Outcome::Error(e)) => tally(totals, row.line, &e.code, &e.message),
            None => tally(totals, row.line, "no_answer", "ingest gave no outcome"),
        }
    }
    Ok(())
}

/// Progress on a terminal as a bar with rate and ETA; elsewhere a line every few seconds.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    fn new(total: u64, at: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:30} {percent:>3}% {bytes}/{total_bytes} · {binary_bytes_per_sec} · ETA {eta} · {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_position(at);
            bar.reset_eta();
            bar
        });
        Self {
            bar,
            total,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }

    fn update(&mut self, at: u64, totals: &Totals, start_rows: u64) {
        let rows = totals.rows.saturating_sub(start_rows);
        let rate = rows as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        let message = format!(
            "{} rows · {:.0} rows/s · {} rejected",
            totals.rows, rate, totals.rejected
        );
        if let Some(bar) = &self.bar {
            bar.set_position(at);
            bar.set_message(message);
        } else if self.last_line.elapsed() >= Duration::from_secs(5) {
            self.last_line = Instant::now();
            let percent = at as f64 * 100.0 / self.total.max(1) as f64;
            eprintln!("backfill: {percent:.0}% · {message}");
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Runs the backfill; fails when rows were rejected and none was accepted (see [`Args`]).
pub async fn run(args: Args) -> anyhow::Result<()> {
    let totals = backfill(&args).await?;
    if totals.rejected > 0 && totals.accepted + totals.duplicates == 0 {
        anyhow::bail!(
            "nothing was accepted: {} of {} rows were rejected{}",
            totals.rejected,
            totals.rows,
            totals
                .reasons
                .iter()
                .next()
                .map(|(code, r)| format!(" ({code}: {})", r.message))
                .unwrap_or_default()
        );
    }
    Ok(())
}

async fn backfill(args: &Args) -> anyhow::Result<Totals> {
    anyhow::ensure!(
        (1..=10_000).contains(&args.chunk),
        "--chunk must be between 1 and 10000"
    );
    let state_path = checkpoint_path(&args.file);
    let print =
        fingerprint(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let resume = match std::fs::read(&state_path) {
        Ok(bytes) if !args.restart => {
            let checkpoint: Checkpoint = serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is not a backfill checkpoint; remove it or pass --restart",
                    state_path.display()
                )
            })?;
            if checkpoint.fingerprint != print || checkpoint.source != args.source.token() {
                anyhow::bail!(
                    "{} belongs to another file or source (the file changed since?); pass --restart to start over",
                    state_path.display()
                );
            }
            eprintln!(
                "resuming at line {} ({} rows done before)",
                checkpoint.line + 1,
                checkpoint.totals.rows
            );
            Some(checkpoint)
        }
        _ => None,
    };
    let (mut reader, csv_header) = open(args, resume.as_ref())?;
    let mut totals = resume.map(|c| c.totals).unwrap_or_default();
    let start_rows = totals.rows;
    let target = args.address.target();
    let mut client =
        IngestClient::new(target.connect().await?).max_decoding_message_size(64 * 1024 * 1024);
    let size = std::fs::metadata(&args.file)?.len();
    let mut progress = Progress::new(size, reader.position().0);
    let mut interrupted = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        let mut rows = Vec::with_capacity(args.chunk);
        while rows.len() < args.chunk {
            match reader.next_row()? {
                None => break,
                Some(Ok(row)) => rows.push(row),
                Some(Err((line, message))) => {
                    totals.rows += 1;
                    tally(&mut totals, line, "unreadable_row", &message);
                }
            }
        }
        if rows.is_empty() {
            break;
        }
        send_chunk(&mut client, args, &rows, &mut totals).await?;
        let (offset, line) = reader.position();
        save(
            &state_path,
            &Checkpoint {
                fingerprint: print.clone(),
                source: args.source.token().to_string(),
                offset,
                line,
                csv_header: csv_header.clone(),
                totals: totals.clone(),
            },
        )?;
        progress.update(offset, &totals, start_rows);
        // Stop between chunks: everything sent so far is acknowledged and saved.
        if futures::poll!(&mut interrupted).is_ready() {
            progress.finish();
            anyhow::bail!("interrupted at line {line}; run the same command to resume from there");
        }
    }
    progress.finish();
    // Done: a later run starts from the top again (and finds every event already there).
    let _ = std::fs::remove_file(&state_path);
    summary::print(&totals, start_rows, progress.started.elapsed(), args.json);
    Ok(totals)
}
