//! `herald backfill`: streams an export (JSON lines, or a ServiceNow CSV export) through ingest's
//! `SubmitBatch`, the same verify → normalise → publish path as a webhook.
//!
//! Rows go in chunks; after each chunk is acknowledged, the position in the file and the running
//! totals are saved next to the file, so an interrupted run picks up where it stopped (rows of the
//! chunk in flight come back as duplicates). Memory holds one chunk, whatever the file's size.

use std::{
    collections::{BTreeMap, HashMap},
    fs::File,
    io::{BufRead, BufReader, IsTerminal, Read, Seek, SeekFrom},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context;
use herald_proto::v1::{SubmitRequest, ingest_client::IngestClient, submit_result::Outcome};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::commands::{channel, herald_signature};

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

pub struct Args {
    pub url: String,
    pub source: String,
    pub file: PathBuf,
    pub format: Format,
    pub table: String,
    pub secret: Option<String>,
    pub token: Option<String>,
    pub chunk: usize,
    pub restart: bool,
    pub json: bool,
}

/// Why rows were refused: a count and the first few line numbers, so memory stays bounded.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct Reason {
    pub count: u64,
    pub message: String,
    pub lines: Vec<u64>,
}

const EXAMPLE_LINES: usize = 5;

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct Totals {
    pub rows: u64,
    pub accepted: u64,
    pub duplicates: u64,
    /// Valid rows that are not outcomes (still open, canceled): nothing to publish.
    pub not_published: u64,
    pub rejected: u64,
    /// By error code.
    pub reasons: BTreeMap<String, Reason>,
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

/// One row ready to send, and where it came from.
struct Row {
    line: u64,
    body: Vec<u8>,
}

/// Reads rows from a position, JSON lines or CSV.
enum Reader {
    Lines {
        reader: BufReader<File>,
        offset: u64,
        line: u64,
    },
    Csv {
        reader: csv::Reader<File>,
        base: u64,
        header: Vec<String>,
        table: String,
        line: u64,
    },
}

impl Reader {
    /// Offset and line number of the next row.
    fn position(&self) -> (u64, u64) {
        match self {
            Reader::Lines { offset, line, .. } => (*offset, *line),
            Reader::Csv {
                reader, base, line, ..
            } => (base + reader.position().byte(), *line),
        }
    }

    /// The next row; `Err` for a row that cannot be read (counted as rejected, not fatal).
    fn next_row(&mut self) -> anyhow::Result<Option<Result<Row, (u64, String)>>> {
        match self {
            Reader::Lines {
                reader,
                offset,
                line,
            } => loop {
                let mut buf = Vec::new();
                let n = reader.read_until(b'\n', &mut buf)?;
                if n == 0 {
                    return Ok(None);
                }
                *offset += n as u64;
                *line += 1;
                while matches!(buf.last(), Some(b'\n' | b'\r')) {
                    buf.pop();
                }
                if buf.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Ok(Some(Ok(Row {
                    line: *line,
                    body: buf,
                })));
            },
            Reader::Csv {
                reader,
                header,
                table,
                line,
                ..
            } => {
                let mut record = csv::StringRecord::new();
                match reader.read_record(&mut record) {
                    Ok(false) => Ok(None),
                    Ok(true) => {
                        *line += 1;
                        Ok(Some(
                            csv_body(header, table, &record)
                                .map(|body| Row { line: *line, body })
                                .map_err(|message| (*line, message)),
                        ))
                    }
                    Err(e) => {
                        *line += 1;
                        Ok(Some(Err((*line, format!("unreadable CSV row: {e}")))))
                    }
                }
            }
        }
    }
}

/// A CSV row as Herald's ServiceNow body: every column a string field of `record`, as the Table
/// API gives them.
fn csv_body(header: &[String], table: &str, record: &csv::StringRecord) -> Result<Vec<u8>, String> {
    let mut row = serde_json::Map::new();
    for (name, value) in header.iter().zip(record.iter()) {
        row.insert(name.clone(), serde_json::Value::String(value.to_string()));
    }
    let field = |name: &str| {
        row.get(name)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    let sys_id = field("sys_id").ok_or("the row has no sys_id")?;
    let mod_count = field("sys_mod_count").ok_or("the row has no sys_mod_count")?;
    let table = field("sys_class_name")
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| table.to_string());
    serde_json::to_vec(&serde_json::json!({
        "table": table,
        "sys_id": sys_id,
        "sys_mod_count": mod_count,
        "record": row,
    }))
    .map_err(|e| e.to_string())
}

fn open(args: &Args, resume: Option<&Checkpoint>) -> anyhow::Result<(Reader, Option<Vec<String>>)> {
    let mut file =
        File::open(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let csv_format = match args.format {
        Format::Csv => true,
        Format::Jsonl => false,
        Format::Auto => args
            .file
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv")),
    };
    if !csv_format {
        let (offset, line) = resume.map_or((0, 0), |c| (c.offset, c.line));
        file.seek(SeekFrom::Start(offset))?;
        return Ok((
            Reader::Lines {
                reader: BufReader::with_capacity(256 * 1024, file),
                offset,
                line,
            },
            None,
        ));
    }
    if args.source != "servicenow" {
        anyhow::bail!("CSV exports are read as ServiceNow rows: use --source servicenow");
    }
    let (header, base, line) = match resume.and_then(|c| c.csv_header.clone().map(|h| (h, c))) {
        Some((header, c)) => (header, c.offset, c.line),
        None => {
            let mut reader = csv::ReaderBuilder::new().from_reader(&mut file);
            let header: Vec<String> = reader
                .headers()
                .context("the CSV file has no header row")?
                .iter()
                .map(str::to_string)
                .collect();
            let base = reader.position().byte();
            (header, base, 1)
        }
    };
    for needed in ["sys_id", "sys_mod_count"] {
        if !header.iter().any(|h| h == needed) {
            anyhow::bail!(
                "the CSV export has no {needed} column: export with the sys_id and sys_mod_count columns (and the fields Herald reads: number, state, priority, opened_at, resolved_at, …)"
            );
        }
    }
    file.seek(SeekFrom::Start(base))?;
    let reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(file);
    Ok((
        Reader::Csv {
            reader,
            base,
            header: header.clone(),
            table: args.table.clone(),
            line,
        },
        Some(header),
    ))
}

fn headers(args: &Args, body: &[u8]) -> anyhow::Result<HashMap<String, String>> {
    let mut headers = HashMap::from([("content-type".to_string(), "application/json".to_string())]);
    if let Some(secret) = &args.secret {
        headers.insert("x-herald-signature".into(), herald_signature(secret, body)?);
    } else if let Some(token) = &args.token {
        headers.insert("authorization".into(), format!("Bearer {token}"));
    }
    Ok(headers)
}

fn tally(totals: &mut Totals, line: u64, code: &str, message: &str) {
    totals.rejected += 1;
    let reason = totals.reasons.entry(code.to_string()).or_default();
    reason.count += 1;
    if reason.message.is_empty() {
        reason.message = message.to_string();
    }
    if reason.lines.len() < EXAMPLE_LINES {
        reason.lines.push(line);
    }
}

/// Sends one chunk, retrying while ingest cannot store events; answers only once every row of the
/// chunk has an outcome.
async fn send_chunk(
    client: &mut IngestClient<tonic::transport::Channel>,
    args: &Args,
    rows: &[Row],
    totals: &mut Totals,
) -> anyhow::Result<()> {
    let mut requests = Vec::with_capacity(rows.len());
    for row in rows {
        requests.push(SubmitRequest {
            source: args.source.clone(),
            body: row.body.clone(),
            headers: headers(args, &row.body)?,
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

pub async fn run(args: Args) -> anyhow::Result<Totals> {
    if !matches!(args.source.as_str(), "servicenow" | "cloudevents") {
        anyhow::bail!(
            "backfill reads exports of servicenow (JSON lines or CSV) and cloudevents (JSON lines); {:?} sends webhooks only",
            args.source
        );
    }
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
            if checkpoint.fingerprint != print || checkpoint.source != args.source {
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
    let (mut reader, csv_header) = open(&args, resume.as_ref())?;
    let mut totals = resume.map(|c| c.totals).unwrap_or_default();
    let start_rows = totals.rows;
    let mut client = IngestClient::new(channel(&args.url, "ingest").await?)
        .max_decoding_message_size(64 * 1024 * 1024);
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
        send_chunk(&mut client, &args, &rows, &mut totals).await?;
        let (offset, line) = reader.position();
        save(
            &state_path,
            &Checkpoint {
                fingerprint: print.clone(),
                source: args.source.clone(),
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
    crate::output::backfill_summary(&totals, start_rows, progress.started.elapsed(), args.json);
    Ok(totals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_become_servicenow_bodies() {
        let header: Vec<String> = ["sys_id", "sys_mod_count", "number", "state"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let record = csv::StringRecord::from(vec!["abc", "7", "INC1", "6"]);
        let body: serde_json::Value =
            serde_json::from_slice(&csv_body(&header, "incident", &record).expect("body"))
                .expect("json");
        assert_eq!(body["table"], "incident");
        assert_eq!(body["sys_id"], "abc");
        assert_eq!(body["sys_mod_count"], "7");
        assert_eq!(body["record"]["state"], "6");
        let short = csv::StringRecord::from(vec!["abc"]);
        assert!(csv_body(&header, "incident", &short).is_err());
    }

    #[test]
    fn rejections_keep_a_few_example_lines() {
        let mut totals = Totals::default();
        for line in 1..=20 {
            tally(&mut totals, line, "unusable_event", "missing sys_id");
        }
        let reason = &totals.reasons["unusable_event"];
        assert_eq!(reason.count, 20);
        assert_eq!(reason.lines, vec![1, 2, 3, 4, 5]);
        assert_eq!(totals.rejected, 20);
    }
}
