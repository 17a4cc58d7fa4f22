//! Backfilling history: `herald backfill` of a generated ServiceNow CSV export into a fresh Herald,
//! run as an operator runs it (a child process, the secret in its environment). Measured from the
//! CLI's start until every row is a win counted in the value totals and on the leaderboards, as
//! spotlight's gRPC API answers them; the CLI's own time to exit; the peak memory of the CLI and of
//! each service while it runs. Rows that never become wins are counted and reported, never hidden.
#![allow(clippy::print_stdout)] // progress of a long run, for the person running the benchmark

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use anyhow::Context;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use herald_proto::{
    time::to_timestamp,
    v1::{
        GetLeaderboardRequest, GetValueSummaryRequest, ListWinsRequest, Period, PeriodKind, Scope,
        WinStatus, scoring_client::ScoringClient, spotlight_client::SpotlightClient,
    },
};
use herald_testkit::ServiceProcess;
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;

use crate::{cpu, events::SECRET, export::Export, row_cost, rss, targets::Target};

/// The targets: this many rows to wins and leaderboards within these times, with the
/// CLI's memory flat under this many megabytes (10^6 bytes) whatever the file's size.
pub const TARGET_ROWS: u64 = 1_000_000;
pub const TARGET_DISTRIBUTED_S: f64 = 100.0;
pub const TARGET_STANDALONE_S: f64 = 200.0;
pub const TARGET_CLI_RSS_MB: f64 = 100.0;

/// How long the counts may stand still after the CLI has exited before the rows still missing are
/// called lost: far longer than any pause of a working pipeline, short enough to end a broken run.
const STALLED_AFTER: Duration = Duration::from_secs(120);
/// How often spotlight is asked: often enough for a tenth of a second's precision on a run of
/// minutes, rarely enough that the asking costs the services nothing measurable.
const POLL_EVERY: Duration = Duration::from_millis(250);
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Serialize)]
pub struct BackfillReport {
    pub mode: String,
    pub rows: u64,
    pub file_bytes: u64,
    /// The CLI's summary: rows published, already there, valid but not outcomes, refused.
    pub accepted: u64,
    pub duplicates: u64,
    pub not_published: u64,
    pub rejected: u64,
    /// Seconds from the CLI's start to its exit.
    pub cli_exit_s: f64,
    pub cli_rows_per_s: f64,
    /// Seconds from the CLI's start until every row was a win in the totals and on the
    /// leaderboards; `None` when some never became one.
    pub done_s: Option<f64>,
    /// Rows per second end to end (rows over `done_s`).
    pub rows_per_s: Option<f64>,
    /// Confirmed wins scoring recorded.
    pub wins_recorded: u64,
    /// Wins in spotlight's value totals, over every quarter the rows fall in.
    pub wins_counted: u64,
    /// Wins on the team leaderboards, over the same quarters.
    pub wins_on_leaderboards: u64,
    /// Rows that did not become a win recorded, counted and on the leaderboards.
    pub lost: u64,
    pub cli_peak_rss_mib: f64,
    /// The CLI's peak in the first and the second half of its run: flat memory keeps them equal.
    pub cli_first_half_peak_rss_mib: f64,
    pub cli_second_half_peak_rss_mib: f64,
    pub services_peak_rss_mib: Vec<(String, f64)>,
    /// The machine's CPU from the CLI's start until every row was counted (or the wait ended).
    pub machine: cpu::Usage,
    /// What PostgreSQL wrote for each row, where the mode stores in it.
    pub postgres: Option<row_cost::PostgresCost>,
}

/// The summary `herald backfill --json` prints.
#[derive(Debug, Deserialize)]
struct Summary {
    rows: u64,
    accepted: u64,
    duplicates: u64,
    not_published: u64,
    rejected: u64,
}

/// Wins spotlight has counted so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counted {
    totals: u64,
    leaderboards: u64,
}

impl Counted {
    fn least(self) -> u64 {
        self.totals.min(self.leaderboards)
    }
}

/// Backfills `export` into `target` (fresh, nothing counted yet) and measures it.
pub async fn measure(target: &Target, export: &Export) -> anyhow::Result<BackfillReport> {
    let spotlight = Spotlight::connect(target.grpc_url("spotlight")?, export).await?;
    let before = spotlight.counted().await?;
    anyhow::ensure!(
        before == Counted::default(),
        "{} already counts wins before the backfill ({before:?}): it must start fresh",
        target.name
    );
    let database = match target.database_url() {
        Some(url) => Some(
            row_cost::Before::take(url)
                .await
                .context("reading PostgreSQL's counters before the backfill")?,
        ),
        None => None,
    };
    let services = rss::PeakSampler::start(target.pids());
    let machine = cpu::Snapshot::take();
    let mut cli = Cli::start(target.grpc_url("ingest")?, export).await?;
    let waited = wait(&mut cli, &spotlight, export.rows).await;
    let machine = machine.usage_since();
    let mut services_peak: Vec<(String, f64)> = services.finish().into_iter().collect();
    services_peak.sort_by(|a, b| a.0.cmp(&b.0));
    let waited = waited.map_err(|e| anyhow::anyhow!("{e}\n{}", target.logs()))?;
    let summary = cli.summary()?;
    let wins_recorded = confirmed_wins(target.grpc_url("scoring")?).await?;
    let least = waited.counted.least().min(wins_recorded);
    let postgres = match &database {
        Some(before) => Some(
            before
                .cost(export.rows)
                .await
                .context("reading what PostgreSQL wrote for the backfill")?,
        ),
        None => None,
    };
    let report = BackfillReport {
        mode: target.name.to_string(),
        rows: export.rows,
        file_bytes: export.bytes,
        accepted: summary.accepted,
        duplicates: summary.duplicates,
        not_published: summary.not_published,
        rejected: summary.rejected,
        cli_exit_s: waited.cli_exit.as_secs_f64(),
        cli_rows_per_s: summary.rows as f64 / waited.cli_exit.as_secs_f64().max(1e-9),
        done_s: waited.done.map(|d| d.as_secs_f64()),
        rows_per_s: waited
            .done
            .map(|d| export.rows as f64 / d.as_secs_f64().max(1e-9)),
        wins_recorded,
        wins_counted: waited.counted.totals,
        wins_on_leaderboards: waited.counted.leaderboards,
        lost: export.rows.saturating_sub(least),
        cli_peak_rss_mib: cli.peak(..),
        cli_first_half_peak_rss_mib: cli.peak(..waited.cli_exit / 2),
        cli_second_half_peak_rss_mib: cli.peak(waited.cli_exit / 2..),
        services_peak_rss_mib: services_peak,
        machine,
        postgres,
    };
    if report.lost > 0 {
        println!(
            "{}: {} of {} rows did not become wins; the services' last lines:\n{}",
            report.mode,
            report.lost,
            report.rows,
            target.logs()
        );
    }
    Ok(report)
}

/// `herald backfill` running as a child process, its memory sampled while it runs.
struct Cli {
    process: ServiceProcess,
    started: Instant,
    /// When it exited and with which code.
    exited: Option<(Duration, Option<i32>)>,
    /// Resident memory in MiB by time since the start.
    rss: Vec<(Duration, f64)>,
}

impl Cli {
    async fn start(ingest: &str, export: &Export) -> anyhow::Result<Self> {
        let args: Vec<String> = vec![
            "backfill".into(),
            "--source".into(),
            "servicenow".into(),
            export.path.display().to_string(),
            "--format".into(),
            "csv".into(),
            // Named explicitly, so a HERALD_URL in the caller's environment cannot redirect it.
            "--url".into(),
            ingest.to_string(),
            // A checkpoint left by an interrupted run of the benchmark must not shorten this one.
            "--restart".into(),
            "--json".into(),
        ];
        let mut envs = crate::targets::env();
        // As an operator passes a secret: never on the command line, where `ps` shows it.
        envs.push(("HERALD_SOURCE_SECRET".into(), SECRET.into()));
        let started = Instant::now();
        let process = ServiceProcess::spawn("herald", &args, &envs).await?;
        Ok(Self {
            process,
            started,
            exited: None,
            rss: Vec::new(),
        })
    }

    /// Samples its memory and notes its exit.
    fn watch(&mut self) {
        if self.exited.is_some() {
            return;
        }
        let now = self.started.elapsed();
        if let Some(rss) = self.process.pid().and_then(rss::rss_mib) {
            self.rss.push((now, rss));
        }
        if let Some(code) = self.process.try_exit_code() {
            self.exited = Some((now, code));
        }
    }

    /// The highest sample in `range` of its run (0 before the first sample).
    fn peak(&self, range: impl std::ops::RangeBounds<Duration>) -> f64 {
        self.rss
            .iter()
            .filter(|(at, _)| range.contains(at))
            .map(|(_, rss)| *rss)
            .fold(0.0, f64::max)
    }

    /// The summary it printed last, once it has exited successfully.
    fn summary(&self) -> anyhow::Result<Summary> {
        let output = self.process.output();
        match self.exited {
            Some((_, Some(0))) => {}
            Some((_, code)) => anyhow::bail!(
                "herald backfill failed (exit code {code:?}):\n{}",
                tail(&output, 30)
            ),
            None => anyhow::bail!("herald backfill has not exited"),
        }
        output
            .lines()
            .rev()
            .find_map(|line| serde_json::from_str::<Summary>(line.trim()).ok())
            .with_context(|| {
                format!(
                    "herald backfill printed no JSON summary:\n{}",
                    tail(&output, 30)
                )
            })
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// What waiting for the rows saw.
struct Waited {
    cli_exit: Duration,
    /// When every row was counted, if it was.
    done: Option<Duration>,
    counted: Counted,
}

/// Follows the CLI and spotlight until every row is counted and the CLI has exited, or until the
/// counts stop moving short of what the CLI handed over.
async fn wait(cli: &mut Cli, spotlight: &Spotlight, rows: u64) -> anyhow::Result<Waited> {
    let mut counted = Counted::default();
    let mut reached = None;
    let mut failing: Option<anyhow::Error> = None;
    let mut moved = Instant::now();
    let mut asked = Instant::now();
    let mut progress = Instant::now();
    let mut handed_over = None;
    loop {
        cli.watch();
        if asked.elapsed() >= POLL_EVERY {
            asked = Instant::now();
            // A slow or refused answer is not the end: the next poll asks again.
            match spotlight.counted().await {
                Ok(latest) => {
                    failing = None;
                    if latest != counted {
                        counted = latest;
                        moved = Instant::now();
                    }
                }
                Err(e) => failing = Some(e),
            }
            // Taken once the answer is in, so the time is never earlier than the fact.
            if reached.is_none() && counted.least() >= rows {
                reached = Some(cli.started.elapsed());
            }
        }
        if progress.elapsed() >= Duration::from_secs(10) {
            progress = Instant::now();
            print_progress(cli, counted, rows);
        }
        let Some((cli_exit, _)) = cli.exited else {
            tokio::time::sleep(SAMPLE_EVERY).await;
            continue;
        };
        if let Some(done) = reached {
            return Ok(Waited {
                cli_exit,
                done: Some(done),
                counted,
            });
        }
        // Rows the CLI could not hand over never come; past those, only a stall ends the wait.
        let expected = match handed_over {
            Some(expected) => expected,
            None => {
                let summary = cli.summary()?;
                *handed_over.insert(summary.accepted + summary.duplicates)
            }
        };
        let stalled = moved.elapsed() >= STALLED_AFTER;
        if let (true, Some(e)) = (stalled, failing.take()) {
            return Err(e.context(format!(
                "spotlight stopped answering with {} of {rows} rows counted",
                counted.least()
            )));
        }
        if counted.least() >= expected || stalled {
            return Ok(Waited {
                cli_exit,
                done: None,
                counted,
            });
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
}

/// A line every few seconds with the pace so far, so whoever runs a million rows knows how long
/// it will take.
fn print_progress(cli: &Cli, counted: Counted, rows: u64) {
    let elapsed = cli.started.elapsed().as_secs_f64();
    let done = counted.least();
    let pace = done as f64 / elapsed.max(1e-9);
    let left = if pace > 0.0 {
        format!(
            ", about {:.0} s to go",
            rows.saturating_sub(done) as f64 / pace
        )
    } else {
        String::new()
    };
    println!(
        "  {elapsed:.0} s: {done} of {rows} rows counted ({pace:.0} rows/s{left}){}",
        if cli.exited.is_some() {
            ""
        } else {
            ", the CLI still sending"
        }
    );
}

/// Spotlight's public figures over the quarters an export's rows fall in.
struct Spotlight {
    client: SpotlightClient<Channel>,
    /// One instant inside each quarter to ask about.
    quarters: Vec<DateTime<Utc>>,
}

impl Spotlight {
    async fn connect(url: &str, export: &Export) -> anyhow::Result<Self> {
        let client = SpotlightClient::connect(url.to_string())
            .await
            .with_context(|| format!("cannot reach spotlight at {url}"))?;
        Ok(Self {
            client,
            quarters: quarters(export.oldest, export.newest),
        })
    }

    /// Wins in the value totals and on the team leaderboards (each win credits one team), summed
    /// over the quarters. Totals and rollups are small tables, so asking often is cheap.
    async fn counted(&self) -> anyhow::Result<Counted> {
        tokio::time::timeout(CALL_TIMEOUT, self.ask())
            .await
            .context("spotlight did not answer in time")?
    }

    async fn ask(&self) -> anyhow::Result<Counted> {
        let mut client = self.client.clone();
        let mut seen = HashSet::new();
        let mut counted = Counted::default();
        for at in &self.quarters {
            let period = Some(Period {
                kind: PeriodKind::Quarter as i32,
                at: Some(to_timestamp(*at)),
            });
            let summary = client
                .get_value_summary(GetValueSummaryRequest { period })
                .await?
                .into_inner();
            // The organisation's quarters are a few hours off UTC's: never count one twice.
            if !seen.insert(summary.period_start.clone()) {
                continue;
            }
            counted.totals += u64::from(summary.wins);
            let board = client
                .get_leaderboard(GetLeaderboardRequest {
                    period,
                    scope: Scope::Team as i32,
                    limit: 100,
                })
                .await?
                .into_inner();
            counted.leaderboards += board.entries.iter().map(|e| u64::from(e.wins)).sum::<u64>();
        }
        Ok(counted)
    }
}

/// The middle of each UTC quarter from a day before `oldest` to a day after `newest`: with that
/// margin the organisation's own quarters, hours off UTC's, are all asked about.
fn quarters(oldest: DateTime<Utc>, newest: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let margin = chrono::Duration::days(1);
    let start_of = |at: DateTime<Utc>| {
        NaiveDate::from_ymd_opt(at.year(), (at.month0() / 3) * 3 + 1, 1).unwrap_or_default()
    };
    let (mut quarter, last) = (start_of(oldest - margin), start_of(newest + margin));
    let mut out = Vec::new();
    while quarter <= last {
        out.push(
            (quarter + chrono::Duration::days(45))
                .and_time(Default::default())
                .and_utc(),
        );
        quarter = quarter
            .checked_add_months(chrono::Months::new(3))
            .unwrap_or(chrono::NaiveDate::MAX);
    }
    out
}

/// Confirmed wins scoring holds.
async fn confirmed_wins(url: &str) -> anyhow::Result<u64> {
    let mut scoring = ScoringClient::connect(url.to_string())
        .await
        .with_context(|| format!("cannot reach scoring at {url}"))?;
    let listed = scoring
        .list_wins(ListWinsRequest {
            status: WinStatus::Confirmed as i32,
            limit: 1,
        })
        .await
        .context("scoring's ListWins")?
        .into_inner();
    Ok(listed.total)
}

/// The backfill runs as a table, then each target beside what was measured.
pub fn markdown(runs: &[BackfillReport]) -> String {
    let Some(first) = runs.first() else {
        return String::new();
    };
    let mut out = format!(
        "**Backfill** of a generated ServiceNow CSV export ({} resolved incidents over a year, \
         {:.0} MB) with `herald backfill`, each mode started fresh. Times from the CLI's start; \
         rows/s end to end; the CLI's peak RSS also in the first and second half of its run.\n\n\
         | mode | rows | CLI done after | wins + leaderboards done after | rows/s | CLI peak RSS | services' peak RSS |\n\
         |---|---|---|---|---|---|---|\n",
        count(first.rows),
        first.file_bytes as f64 / 1e6
    );
    for r in runs {
        out.push_str(&format!(
            "| {} | {} | {:.1} s ({} rows/s) | {} | {} | {:.0} MiB ({:.0} / {:.0}) | {} |\n",
            r.mode,
            count(r.rows),
            r.cli_exit_s,
            rate(r.cli_rows_per_s),
            r.done_s.map_or_else(
                || format!("never: {} rows lost", count(r.lost)),
                |s| format!("{s:.1} s")
            ),
            r.rows_per_s.map_or_else(|| "–".into(), rate),
            r.cli_peak_rss_mib,
            r.cli_first_half_peak_rss_mib,
            r.cli_second_half_peak_rss_mib,
            r.services_peak_rss_mib
                .iter()
                .map(|(n, v)| format!("{n} {v:.0} MiB"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out.push('\n');
    for r in runs {
        out.push_str(&rows_check(r));
    }
    for r in runs {
        out.push_str(&cpu_line(r));
        if let Some(cost) = &r.postgres {
            out.push_str(&row_cost::markdown(&r.mode, cost));
        }
    }
    out.push_str(&verdicts(runs));
    out
}

/// A row count as people read it: 1,000,000.
pub(crate) fn count(n: u64) -> String {
    herald_catalog::thousands(n as f64)
}

/// A rate in whole units with its thousands grouped, as the counts beside it are.
pub(crate) fn rate(per_s: f64) -> String {
    herald_catalog::thousands(per_s.round())
}

/// The machine's CPU over a mode's backfill, and what a row cost it.
fn cpu_line(r: &BackfillReport) -> String {
    let per_row = r
        .done_s
        .map(|s| {
            format!(
                ", {:.0} µs of CPU a row",
                r.machine.busy_cores() * s * 1e6 / r.rows.max(1) as f64
            )
        })
        .unwrap_or_default();
    let written = r
        .machine
        .written_per(r.rows)
        .map(|w| format!(" Written to storage, a row: {w}."))
        .unwrap_or_default();
    format!(
        "{}: CPU over the backfill, in cores: {}{per_row}.{written}\n\n",
        r.mode,
        r.machine.by_program()
    )
}

/// Where every row went, one line per mode.
fn rows_check(r: &BackfillReport) -> String {
    let mut line = format!(
        "{}: the CLI accepted {} of {} rows ({} already there, {} not outcomes, {} rejected); \
         scoring recorded {} wins, the value totals count {}, the team leaderboards {}.",
        r.mode,
        count(r.accepted),
        count(r.rows),
        count(r.duplicates),
        count(r.not_published),
        count(r.rejected),
        count(r.wins_recorded),
        count(r.wins_counted),
        count(r.wins_on_leaderboards)
    );
    if r.lost > 0 {
        line.push_str(&format!(" **{} rows lost.**", count(r.lost)));
    }
    line.push_str("\n\n");
    line
}

/// The targets, each beside its measurement: the time target as the pace it needs (rows
/// per second), so a run of fewer rows is compared fairly, and the CLI's memory as it is.
fn verdicts(runs: &[BackfillReport]) -> String {
    let mut out =
        String::from("| target | needed | measured | ratio | verdict |\n|---|---|---|---|---|\n");
    for r in runs {
        let seconds = if r.mode == "distributed" {
            TARGET_DISTRIBUTED_S
        } else {
            TARGET_STANDALONE_S
        };
        let needed = TARGET_ROWS as f64 / seconds;
        let (measured, ratio, verdict) = match (r.done_s, r.rows_per_s) {
            (Some(done), Some(pace)) if r.lost == 0 => (
                format!(
                    "{done:.1} s for {} rows, {} rows/s",
                    count(r.rows),
                    rate(pace)
                ),
                format!("{:.2}×", pace / needed),
                if pace >= needed { "met" } else { "missed" },
            ),
            _ => (format!("{} rows lost", count(r.lost)), "–".into(), "missed"),
        };
        out.push_str(&format!(
            "| {} rows to wins and leaderboards, {} | ≤ {seconds:.0} s ({} rows/s) | {measured} | {ratio} | {verdict} |\n",
            count(TARGET_ROWS), r.mode, count(needed.round() as u64)
        ));
        let limit_mib = TARGET_CLI_RSS_MB * 1e6 / (1024.0 * 1024.0);
        out.push_str(&format!(
            "| the CLI's RSS flat, {} | ≤ {TARGET_CLI_RSS_MB:.0} MB ({limit_mib:.1} MiB) | {:.1} MiB peak ({:.1} first half, {:.1} second) | {:.2}× | {} |\n",
            r.mode,
            r.cli_peak_rss_mib,
            r.cli_first_half_peak_rss_mib,
            r.cli_second_half_peak_rss_mib,
            r.cli_peak_rss_mib / limit_mib,
            if r.cli_peak_rss_mib <= limit_mib { "met" } else { "missed" }
        ));
    }
    if runs.iter().any(|r| r.rows != TARGET_ROWS) {
        out.push_str(&format!(
            "\nThe time targets are for {} rows; this run had another number, so its pace is \
             compared, and start-up weighs more in a short run.\n",
            count(TARGET_ROWS)
        ));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_year_of_rows_is_asked_about_quarter_by_quarter() {
        let at = |y, m, d| {
            NaiveDate::from_ymd_opt(y, m, d)
                .unwrap_or_default()
                .and_time(Default::default())
                .and_utc()
        };
        let asked = quarters(at(2025, 3, 15), at(2026, 3, 14));
        let months: Vec<(i32, u32)> = asked.iter().map(|a| (a.year(), a.month())).collect();
        assert_eq!(
            months,
            [(2025, 2), (2025, 5), (2025, 8), (2025, 11), (2026, 2)]
        );
        // A row on the last day of a quarter may count in the next one where the organisation is.
        assert_eq!(quarters(at(2025, 6, 30), at(2025, 6, 30)).len(), 2);
    }
}
