//! `herald-bench` (run it with `scripts/bench`): in one run on one machine, the machine's limits
//! (JetStream publish with pipelined acks, the bus alone relaying through three streams in the
//! shape of Herald's pipeline, a bare HTTP server behind the same driver), ingest alone with
//! nothing downstream, then for each run mode — the four services distributed, `herald up`, and
//! the floor of what Herald's guarantees alone cost (`herald-floor`) — ingest's 202s per second
//! and the event-to-delivery pipeline at saturation (events spread like a real organisation's,
//! and the worst case where every win credits the same service, team and person), latency
//! percentiles at fixed rates, duplicates, CPU and memory; then, on a fresh start of each Herald
//! mode, the backfill of a generated ServiceNow export through `herald backfill` (and the floor's
//! of the same rows, stored straight on its first stream). Prints a table, writes it as JSON and
//! Markdown.
#![allow(clippy::print_stdout)] // printing the figures is this program's job

use herald_bench::{
    backfill, cpu, database, events, export, files, floor_backfill, load, neighbours, queries, raw,
    rss, sink, stages, targets, write_back,
};

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use clap::Parser;
use serde::Serialize;

use events::{Generator, Spread};
use load::{Request, Sent, drive, percentile_ms};
use sink::Sink;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    Distributed,
    Standalone,
    /// Prometheus Alertmanager, the tool an IT department might use instead, for comparison.
    Alertmanager,
    /// Herald's shape with only what its guarantees cost (`herald-floor`): what this machine
    /// leaves for a pipeline that keeps them.
    Floor,
    /// The floor with each stage keeping every message's body too, as Herald keeps the event, the
    /// win and the announcement: what keeping the content costs.
    FloorKeepingBodies,
}

impl Mode {
    /// Whether it is Herald (rather than a tool or a floor beside it): only Herald keeps rollups,
    /// whose worst case is worth its own run, and a history to backfill.
    fn is_herald(self) -> bool {
        matches!(self, Mode::Distributed | Mode::Standalone)
    }
}

/// Herald's benchmark: the machine's limits, ingest, and the pipeline in both run modes.
#[derive(Parser)]
struct Args {
    /// Events per saturation run.
    #[arg(long, default_value_t = 20_000)]
    events: u64,
    /// Fixed rates (events per second) for the latency runs.
    #[arg(long, value_delimiter = ',', default_value = "50,200,1000")]
    rates: Vec<f64>,
    /// Seconds each fixed rate is held.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Keep-alive connections the driver uses.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Which run modes to measure (default: distributed and standalone, and Alertmanager beside
    /// them when it is installed).
    #[arg(long, value_enum, value_delimiter = ',')]
    modes: Option<Vec<Mode>>,
    /// A short run to check the benchmark itself: 1,000 events, 50 and 200 events/s for 5 s,
    /// 100,000 wins stored, 2,000 rows backfilled.
    #[arg(long)]
    quick: bool,
    /// How long to wait for the last deliveries of a run.
    #[arg(long, default_value_t = 600)]
    drain_seconds: u64,
    /// Wins stored for the query timings (leaderboards, value summary, dashboard), one run each;
    /// `--query-wins` with no value for none. Each count is at least 1, so a run is refused at its
    /// start rather than failing at its end, its figures unwritten.
    #[arg(
        long,
        value_delimiter = ',',
        num_args = 0..,
        default_value = "1000000,10000000",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    query_wins: Vec<u64>,
    /// How many times each query is timed.
    #[arg(long, default_value_t = 200)]
    query_samples: usize,
    /// Only the query timings: no limits, no pipeline runs, no backfill.
    #[arg(long, conflicts_with = "backfill_only")]
    queries_only: bool,
    /// Rows of the generated ServiceNow export each mode backfills (on a fresh start); 0 for no
    /// backfill.
    #[arg(long, default_value_t = 1_000_000)]
    backfill_rows: u64,
    /// Only the backfill: no limits, no pipeline runs, no query timings.
    #[arg(long)]
    backfill_only: bool,
    /// Where the JSON and Markdown results go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Also cut each fixed-rate event's time into stages, from the spans the services export to
    /// the benchmark (costs the services some time of their own: compare runs with like runs).
    #[arg(long)]
    stages: bool,
}

#[derive(Debug, Serialize)]
struct Limits {
    jetstream_256b_per_s: f64,
    jetstream_7kb_per_s: f64,
    jetstream_7kb_16_in_flight_per_s: f64,
    /// 7 KB messages through three streams in a row, each hop consumed and republished with no
    /// work between: the bus alone in the shape of Herald's pipeline.
    jetstream_7kb_three_hops_per_s: f64,
    /// The machine while the three hops ran: whether the bus alone fills it.
    jetstream_three_hops_machine: cpu::Usage,
    bare_http_per_s: f64,
}

#[derive(Debug, Serialize)]
struct Saturation {
    spread: String,
    sent: u64,
    accepted: u64,
    /// Answered with an error status, or not answered at all.
    refused: u64,
    errors: u64,
    accepted_per_s: f64,
    delivered: u64,
    delivered_per_s: f64,
    /// Seconds from the last POST to the last delivery.
    last_delivery_after_last_post_s: f64,
    /// CPU seconds per wall second of Herald's own processes while posting (1.0 = one core):
    /// PostgreSQL's backends and nats-server are not among them.
    cpu_cores_while_posting: f64,
    /// The whole machine while posting, and each program's share.
    machine_while_posting: cpu::Usage,
}

#[derive(Debug, Serialize)]
struct Fixed {
    rate: f64,
    sent: u64,
    accepted: u64,
    delivered: u64,
    p50_ms: Option<f64>,
    p95_ms: Option<f64>,
    p99_ms: Option<f64>,
    /// The largest process's peak memory during this rate (all of Herald under `herald up`).
    peak_rss_mib: Option<(String, f64)>,
    /// Where the time went, when the run exported its spans (`--stages`).
    stages: Option<stages::Breakdown>,
    /// The whole machine while sending at this rate, and each program's share: at a low rate
    /// what a small batch costs shows here, where latency only shows that it waited.
    machine_while_sending: cpu::Usage,
    /// How long the disk took to catch up with the runs before this rate, before it began.
    write_back_s: f64,
    /// What it was asked to do: PostgreSQL's `CHECKPOINT` where the target has a database, then
    /// `sync`.
    write_back_by: &'static str,
    /// Other programs on the machine while sending: the moments they took a share of a core.
    neighbours: neighbours::Neighbours,
    /// The p99 of the events sent outside those moments, beside the p99 of all.
    p99_clear_ms: Option<f64>,
    /// How many delivered events were sent in those moments.
    delivered_while_taken: usize,
}

impl Fixed {
    /// The machine's CPU an event, in milliseconds.
    fn cpu_ms_an_event(&self) -> f64 {
        self.machine_while_sending.busy_cores() / self.rate.max(1e-9) * 1000.0
    }

    /// The machine's context switches an event, where `/proc/stat` counted them.
    fn switches_an_event(&self) -> Option<f64> {
        let switches = self.machine_while_sending.switches_per_second;
        (switches > 0.0).then(|| switches / self.rate.max(1e-9))
    }
}

/// Ingest's 202s at saturation with nothing downstream of it (distributed only: `herald up` runs
/// its stages in the same process).
#[derive(Debug, Serialize)]
struct IngestAlone {
    sent: u64,
    accepted: u64,
    /// Answered with an error status, or not answered at all.
    refused: u64,
    errors: u64,
    accepted_per_s: f64,
    /// The whole machine while posting, and each program's share.
    machine_while_posting: cpu::Usage,
}

#[derive(Debug, Serialize)]
struct ModeReport {
    mode: String,
    ingest_alone: Option<IngestAlone>,
    idle_rss_mib: Vec<(String, f64)>,
    peak_rss_mib: Vec<(String, f64)>,
    saturation: Vec<Saturation>,
    fixed: Vec<Fixed>,
    duplicates: u64,
}

impl ModeReport {
    /// The run at a fixed `rate`, where one was held.
    fn at_rate(&self, rate: f64) -> Option<&Fixed> {
        self.fixed.iter().find(|f| f.rate == rate)
    }
}

#[derive(Debug, Serialize)]
struct Report {
    started: String,
    machine: String,
    /// How the distributed mode's PostgreSQL commits (to disk, or not).
    database: Option<String>,
    /// How the distributed mode's nats-server syncs JetStream's files.
    bus: String,
    /// Where `herald up` keeps its files, when it is among the modes: on a disk, or in memory.
    herald_up_files: Option<String>,
    connections: usize,
    limits: Option<Limits>,
    modes: Vec<ModeReport>,
    backfill: Vec<backfill::BackfillReport>,
    /// The floor's backfill of the same export, when the floor is among the modes.
    floor_backfill: Option<floor_backfill::FloorBackfillReport>,
    queries: Vec<queries::QueryReport>,
}

/// Hands out event indices, so every event of the run has its own record number.
struct Events {
    next: u64,
}

impl Events {
    /// `count` events: signed ServiceNow webhooks for Herald, or alerts for Alertmanager.
    fn requests(
        &mut self,
        generator: &Generator,
        count: u64,
        alerts: bool,
    ) -> anyhow::Result<(u64, Arc<Vec<Request>>)> {
        let first = self.next;
        let mut out = Vec::with_capacity(count as usize);
        for i in first..first + count {
            if alerts {
                out.push((generator.alert(i)?, Vec::new()));
            } else {
                let (body, signature) = generator.event(i)?;
                out.push((body, vec![("x-herald-signature", signature)]));
            }
        }
        self.next += count;
        Ok((first, Arc::new(out)))
    }
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or_else(String::new, |kib| {
            format!(", {:.0} GiB", kib / 1024.0 / 1024.0)
        });
    format!("{cores} cores{memory}")
}

/// Waits until every accepted event of `sent` arrived at the sink, or `timeout` passed.
async fn drained(sink: &Sink, sent: &Sent, timeout: Duration) -> u64 {
    let range = sent.first..sent.first + sent.sent_at.len() as u64;
    let deadline = Instant::now() + timeout;
    let mut last = 0;
    loop {
        let arrived = sink.arrived(range.clone());
        if arrived >= sent.accepted || Instant::now() > deadline {
            return arrived;
        }
        if arrived != last {
            last = arrived;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The machine's CPU at a fixed rate, by program, and what one event cost it: at a low rate a
/// pipeline that works in sets pays each set's fixed cost for one or two events, and each hand-off
/// between processes wakes a thread (a context switch) that a busy pipeline's batches share.
fn while_sending(f: &Fixed) -> String {
    let mut per_event = format!("{:.2} ms of CPU", f.cpu_ms_an_event());
    if let Some(switches) = f.switches_an_event() {
        per_event.push_str(&format!(" and {switches:.0} context switches"));
    }
    format!(
        "{} ({per_event} an event)",
        f.machine_while_sending.by_program()
    )
}

/// The other programs' moments at a fixed rate, and the tail without the events sent in them.
fn beside_neighbours(f: &Fixed) -> String {
    let mut line = f.neighbours.summary();
    if f.delivered_while_taken > 0 {
        line.push_str(&format!(
            "; p99 of the events sent outside those moments {:.1} ms ({} of {} delivered were sent in them)",
            f.p99_clear_ms.unwrap_or(f64::NAN),
            f.delivered_while_taken,
            f.delivered
        ));
    }
    line
}

fn cpu_of(pids: &[(String, u32)]) -> f64 {
    pids.iter()
        .filter_map(|(_, pid)| cpu::cpu_seconds(*pid))
        .sum()
}

async fn saturation(
    target: &targets::Target,
    sink: &Sink,
    events: &mut Events,
    spread: Spread,
    args: &Args,
) -> anyhow::Result<Saturation> {
    let generator = Generator::new(spread)?;
    let (first, requests) = events.requests(&generator, args.events, target.alerts)?;
    let pids = target.pids();
    let cpu_before = cpu_of(&pids);
    let machine_before = cpu::Snapshot::take();
    let sent = drive(&target.ingest_url, first, requests, args.connections, None).await?;
    let machine = machine_before.usage_since();
    let cpu = (cpu_of(&pids) - cpu_before) / sent.elapsed.as_secs_f64().max(1e-9);
    let delivered = drained(sink, &sent, Duration::from_secs(args.drain_seconds)).await;
    let range = first..first + sent.sent_at.len() as u64;
    let last_arrival = range
        .clone()
        .filter_map(|i| sink.arrival(i))
        .max()
        .unwrap_or(sent.started);
    let pipeline = last_arrival.saturating_duration_since(sent.started);
    Ok(Saturation {
        spread: match spread {
            Spread::Organisation => "organisation".into(),
            Spread::WorstCase => "worst case".into(),
        },
        sent: sent.sent_at.len() as u64,
        accepted: sent.accepted,
        refused: sent.refused,
        errors: sent.errors,
        accepted_per_s: sent.accepted_per_second(),
        delivered,
        delivered_per_s: delivered as f64 / pipeline.as_secs_f64().max(1e-9),
        last_delivery_after_last_post_s: last_arrival
            .saturating_duration_since(sent.last_sent())
            .as_secs_f64(),
        cpu_cores_while_posting: cpu,
        machine_while_posting: machine,
    })
}

async fn fixed(
    target: &targets::Target,
    sink: &Sink,
    events: &mut Events,
    rate: f64,
    args: &Args,
    timer: Option<&stages::StageTimer>,
) -> anyhow::Result<Fixed> {
    let generator = Generator::new(Spread::Organisation)?;
    let write_back = write_back::settle(target.database_url()).await?;
    let spans_before = timer.map(stages::StageTimer::mark);
    let count = (rate * args.seconds as f64).round() as u64;
    let (first, requests) = events.requests(&generator, count, target.alerts)?;
    let sampler = rss::PeakSampler::start(target.pids());
    let machine_before = cpu::Snapshot::take();
    let pids: Vec<u32> = target.pids().into_iter().map(|(_, pid)| pid).collect();
    let neighbours = neighbours::Sampler::start(&pids);
    let sent = drive(
        &target.ingest_url,
        first,
        requests,
        args.connections,
        Some(rate),
    )
    .await?;
    let machine_while_sending = machine_before.usage_since();
    let neighbours = neighbours.finish();
    let delivered = drained(sink, &sent, Duration::from_secs(args.drain_seconds)).await;
    let peak_rss_mib = sampler
        .finish()
        .into_iter()
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let timed: Vec<(Duration, bool)> = sent
        .sent_at
        .iter()
        .enumerate()
        .filter_map(|(i, at)| {
            let took = sink
                .arrival(first + i as u64)?
                .saturating_duration_since(*at);
            Some((took, neighbours.took_cores_at(*at)))
        })
        .collect();
    let mut latencies: Vec<Duration> = timed.iter().map(|(took, _)| *took).collect();
    latencies.sort();
    let mut clear: Vec<Duration> = timed
        .iter()
        .filter(|(_, taken)| !taken)
        .map(|(took, _)| *took)
        .collect();
    clear.sort();
    let stages = match (timer, spans_before) {
        (Some(timer), Some(since)) => {
            // The services export every few hundred milliseconds.
            tokio::time::sleep(Duration::from_secs(2)).await;
            Some(timer.breakdown(since))
        }
        _ => None,
    };
    Ok(Fixed {
        rate,
        sent: count,
        accepted: sent.accepted,
        delivered,
        p50_ms: percentile_ms(&latencies, 50.0),
        p95_ms: percentile_ms(&latencies, 95.0),
        p99_ms: percentile_ms(&latencies, 99.0),
        peak_rss_mib,
        stages,
        machine_while_sending,
        write_back_s: write_back.took.as_secs_f64(),
        write_back_by: write_back.by,
        p99_clear_ms: percentile_ms(&clear, 99.0),
        delivered_while_taken: latencies.len() - clear.len(),
        neighbours,
    })
}

/// Ingest by itself, at saturation, on fresh servers: the same events and driver as the pipeline
/// runs, nothing consuming what it stores.
async fn ingest_alone(
    sink: &Sink,
    events: &mut Events,
    args: &Args,
) -> anyhow::Result<IngestAlone> {
    let target = targets::ingest_alone(&sink.url("/hooks/herald")).await?;
    let result = async {
        let generator = Generator::new(Spread::Organisation)?;
        let (first, warm) = events.requests(&generator, 50, false)?;
        let warm = drive(&target.ingest_url, first, warm, args.connections, None).await?;
        anyhow::ensure!(
            warm.accepted == 50,
            "ingest alone accepted {} of the warm-up's 50 events\n{}",
            warm.accepted,
            target.logs()
        );
        let (first, requests) = events.requests(&generator, args.events, false)?;
        let machine_before = cpu::Snapshot::take();
        let sent = drive(&target.ingest_url, first, requests, args.connections, None).await?;
        Ok(IngestAlone {
            sent: sent.sent_at.len() as u64,
            accepted: sent.accepted,
            refused: sent.refused,
            errors: sent.errors,
            accepted_per_s: sent.accepted_per_second(),
            machine_while_posting: machine_before.usage_since(),
        })
    }
    .await;
    target.stop().await;
    result
}

async fn measure(
    mode: Mode,
    sink: &Sink,
    events: &mut Events,
    args: &Args,
    timer: Option<&stages::StageTimer>,
) -> anyhow::Result<ModeReport> {
    let webhook = sink.url("/hooks/herald");
    let ingest_alone = match mode {
        Mode::Distributed => {
            let alone = ingest_alone(sink, events, args).await?;
            println!(
                "ingest alone: saturation: {:.0} accepted/s, {}/{} accepted\n  CPU while posting: {}",
                alone.accepted_per_s,
                alone.accepted,
                alone.sent,
                alone.machine_while_posting.by_program()
            );
            Some(alone)
        }
        _ => None,
    };
    let target = match mode {
        Mode::Distributed => targets::distributed(&webhook).await?,
        Mode::Standalone => targets::standalone(&webhook).await?,
        Mode::Alertmanager => targets::alertmanager(&webhook).await?,
        Mode::Floor => targets::floor(&webhook, false).await?,
        Mode::FloorKeepingBodies => targets::floor(&webhook, true).await?,
    };
    println!("{}: started", target.name);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss_mib = target
        .pids()
        .into_iter()
        .filter_map(|(name, pid)| Some((name, rss::rss_mib(pid)?)))
        .collect();
    // A warm-up, so the first figures are not a cold start's.
    let (first, warm) =
        events.requests(&Generator::new(Spread::Organisation)?, 50, target.alerts)?;
    let sent = drive(&target.ingest_url, first, warm, args.connections, None).await?;
    if drained(sink, &sent, Duration::from_secs(60)).await < sent.accepted || sent.accepted == 0 {
        let logs = target.logs();
        target.stop().await;
        anyhow::bail!(
            "the warm-up's 50 events were not all delivered ({} accepted)\n{logs}",
            sent.accepted
        );
    }
    let sampler = rss::PeakSampler::start(target.pids());
    let duplicates_before = sink.duplicates();
    let mut report = ModeReport {
        mode: target.name.to_string(),
        ingest_alone,
        idle_rss_mib,
        peak_rss_mib: Vec::new(),
        saturation: Vec::new(),
        fixed: Vec::new(),
        duplicates: 0,
    };
    // Only Herald keeps rollups: elsewhere the worst case is the organisation case.
    let spreads: &[Spread] = if mode.is_herald() {
        &[Spread::Organisation, Spread::WorstCase]
    } else {
        &[Spread::Organisation]
    };
    for &spread in spreads {
        let s = saturation(&target, sink, events, spread, args).await?;
        println!(
            "{}: saturation ({}): {:.0} accepted/s, {:.0} delivered/s, {}/{} delivered, last {:.1} s after the last POST\n  CPU while posting: {}",
            target.name,
            s.spread,
            s.accepted_per_s,
            s.delivered_per_s,
            s.delivered,
            s.accepted,
            s.last_delivery_after_last_post_s,
            s.machine_while_posting.by_program()
        );
        if s.delivered < s.accepted {
            println!(
                "{}: not every accepted event was delivered; the services' last lines:\n{}",
                target.name,
                target.logs()
            );
        }
        report.saturation.push(s);
    }
    for rate in &args.rates {
        let timer = timer.filter(|_| target.exports_spans);
        let f = fixed(&target, sink, events, *rate, args, timer).await?;
        println!(
            "{}: {} events/s: {}/{} delivered, p50 {:.1} ms, p99 {:.1} ms",
            target.name,
            f.rate,
            f.delivered,
            f.sent,
            f.p50_ms.unwrap_or(f64::NAN),
            f.p99_ms.unwrap_or(f64::NAN)
        );
        println!(
            "  CPU while sending: {}; the disk caught up with the runs before in {:.1} s ({}) before it began\n  {}",
            while_sending(&f),
            f.write_back_s,
            f.write_back_by,
            beside_neighbours(&f)
        );
        if let Some(breakdown) = &f.stages {
            println!("{}", stages::table(f.rate, breakdown));
        }
        report.fixed.push(f);
    }
    let mut peaks: Vec<(String, f64)> = sampler.finish().into_iter().collect();
    peaks.sort_by(|a, b| a.0.cmp(&b.0));
    report.peak_rss_mib = peaks;
    report.duplicates = sink.duplicates() - duplicates_before;
    target.stop().await;
    Ok(report)
}

/// What the floor is, its delivered/s and p99 at 200/s, and each other mode's delivered/s as a
/// share of its, when it ran: how much of what the guarantees leave on this machine Herald's own
/// work takes.
fn against_floor(report: &Report) -> String {
    let Some(floor) = report.modes.iter().find(|m| m.mode == targets::FLOOR) else {
        return String::new();
    };
    let delivered = |m: &ModeReport| m.saturation.first().map(|s| s.delivered_per_s);
    let p99 = |m: &ModeReport| m.at_rate(200.0).and_then(|f| f.p99_ms);
    let herald: Vec<String> = report
        .modes
        .iter()
        .filter(|m| m.mode != targets::FLOOR && m.mode != "Alertmanager")
        .filter_map(|m| {
            let share = delivered(m)? / delivered(floor)?.max(1e-9);
            Some(format!("{} delivers {share:.2}× its rate", m.mode))
        })
        .collect();
    let mut out = format!(
        "**The floor** is Herald's shape with only what its guarantees cost (`herald-floor`): the \
         signed webhook stored on a stream before its 202, three stages that each record a pull's \
         keys in PostgreSQL in one statement and pass it on without doubling, each delivery \
         recorded before and after it is sent; nothing parsed, scored, ranked or rendered. It \
         delivered {}/s at saturation, p99 at 200/s {} ms",
        delivered(floor).map_or_else(|| "–".into(), |v| format!("{v:.0}")),
        opt(p99(floor)),
    );
    if !herald.is_empty() {
        out.push_str(&format!("; against it, {}", herald.join(", ")));
    }
    out.push_str(".\n\n");
    out
}

/// The headline figures of every mode in one table, each beside Alertmanager's when it ran.
fn side_by_side(report: &Report) -> String {
    let baseline = report.modes.iter().find(|m| m.mode == "Alertmanager");
    // Latencies to the tenth: a p99 of 9.7 and one of 10.4 ms are either side of a target.
    let cell = |value: Option<f64>, base: Option<f64>, unit: &str| {
        let digits = usize::from(unit == " ms");
        match (value, base) {
            (Some(v), Some(b)) if b > 0.0 => format!("{v:.digits$}{unit} ({:.2}×)", v / b),
            (Some(v), _) => format!("{v:.digits$}{unit}"),
            (None, _) => "–".into(),
        }
    };
    type Figure = fn(&ModeReport) -> Option<f64>;
    let rows: [(&str, Figure, &str); 10] = [
        (
            "delivered/s at saturation",
            |m| m.saturation.first().map(|s| s.delivered_per_s),
            "",
        ),
        (
            "accepted/s at saturation",
            |m| m.saturation.first().map(|s| s.accepted_per_s),
            "",
        ),
        (
            // Alertmanager's ingest is its accepted rate: it has no stages of its own to leave out.
            "ingest alone, accepted/s at saturation (Alertmanager: accepted/s)",
            |m| match &m.ingest_alone {
                Some(alone) => Some(alone.accepted_per_s),
                None if m.mode == "Alertmanager" => m.saturation.first().map(|s| s.accepted_per_s),
                None => None,
            },
            "",
        ),
        (
            "last delivery after the last POST",
            |m| {
                m.saturation
                    .first()
                    .map(|s| s.last_delivery_after_last_post_s * 1000.0)
            },
            " ms",
        ),
        (
            "p50 at 200 events/s",
            |m| m.at_rate(200.0).and_then(|f| f.p50_ms),
            " ms",
        ),
        (
            "p99 at 200 events/s",
            |m| m.at_rate(200.0).and_then(|f| f.p99_ms),
            " ms",
        ),
        (
            "p99 at 200 events/s, leaving out events sent while other programs were busy",
            |m| m.at_rate(200.0).and_then(|f| f.p99_clear_ms),
            " ms",
        ),
        (
            "the machine's CPU an event at 200 events/s",
            |m| m.at_rate(200.0).map(Fixed::cpu_ms_an_event),
            " ms",
        ),
        (
            "the machine's context switches an event at 200 events/s",
            |m| m.at_rate(200.0).and_then(Fixed::switches_an_event),
            "",
        ),
        (
            "largest process's RSS at 1,000 events/s",
            |m| {
                m.at_rate(1000.0)
                    .and_then(|f| f.peak_rss_mib.as_ref().map(|(_, v)| *v))
            },
            " MiB",
        ),
    ];
    let mut out = String::from("| side by side |");
    for m in &report.modes {
        out.push_str(&format!(" {} |", m.mode));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(report.modes.len()));
    out.push('\n');
    for (label, figure, unit) in rows {
        out.push_str(&format!("| {label} |"));
        for m in &report.modes {
            let base = baseline.filter(|b| b.mode != m.mode).and_then(figure);
            out.push_str(&format!(" {} |", cell(figure(m), base, unit)));
        }
        out.push('\n');
    }
    out.push_str(
        "\nRatios are against Alertmanager in the same run (for times, below 1× is faster).\n\n",
    );
    out
}

/// " (3 refused, 1 unanswered)" after a count of sent events, or nothing when all were answered
/// with a success.
fn refused(refused: u64, unanswered: u64) -> String {
    if refused + unanswered > 0 {
        format!(" ({refused} refused, {unanswered} unanswered)")
    } else {
        String::new()
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.1}"))
}

fn markdown(report: &Report) -> String {
    let mut out = format!(
        "Run {} on {} ({} connections).\n\n",
        report.started, report.machine, report.connections
    );
    if let Some(database) = &report.database {
        out.push_str(&format!("{database}\n\n"));
    }
    out.push_str(&format!("{}\n\n", report.bus));
    if let Some(files) = &report.herald_up_files {
        out.push_str(&format!("{files}\n\n"));
    }
    if let Some(l) = &report.limits {
        out.push_str(&format!(
            "| the machine's limits | per second |\n|---|---|\n\
             | JetStream publish, acks pipelined, 256 B | {:.0} |\n| JetStream publish, acks pipelined, 7 KB | {:.0} |\n\
             | JetStream publish, 16 in flight, 7 KB | {:.0} |\n\
             | JetStream, 7 KB through three streams in a row (consumed, republished, acked; no work) | {:.0} |\n\
             | bare HTTP 200, same driver, 6 KB bodies | {:.0} |\n\n",
            l.jetstream_256b_per_s,
            l.jetstream_7kb_per_s,
            l.jetstream_7kb_16_in_flight_per_s,
            l.jetstream_7kb_three_hops_per_s,
            l.bare_http_per_s
        ));
        out.push_str(&format!(
            "CPU while the three streams relayed, in cores: {}.\n\n",
            l.jetstream_three_hops_machine.by_program()
        ));
    }
    if !report.modes.is_empty() {
        out.push_str(&side_by_side(report));
        out.push_str(&against_floor(report));
    }
    let bare_http = report.limits.as_ref().map_or(0.0, |l| l.bare_http_per_s);
    let jetstream = report
        .limits
        .as_ref()
        .map_or(0.0, |l| l.jetstream_7kb_per_s);
    for m in &report.modes {
        if let Some(alone) = &m.ingest_alone {
            out.push_str(&format!(
                "**Ingest alone** (nothing downstream): {} of {} accepted{}, **{:.0}/s** \
                 ({:.2}× bare HTTP, {:.2}× JetStream 7 KB publishes with acks pipelined). \
                 CPU while posting: {}.\n\n",
                alone.accepted,
                alone.sent,
                refused(alone.refused, alone.errors),
                alone.accepted_per_s,
                alone.accepted_per_s / bare_http.max(1e-9),
                alone.accepted_per_s / jetstream.max(1e-9),
                alone.machine_while_posting.by_program()
            ));
        }
        out.push_str(&format!(
            "**{}**\n\n| saturation | sent | accepted/s | delivered | delivered/s | last delivery after last POST | CPU cores while posting: Herald's processes / whole machine |\n|---|---|---|---|---|---|---|\n",
            m.mode
        ));
        for s in &m.saturation {
            out.push_str(&format!(
                "| {} | {}{} | {:.0} ({:.2}× bare HTTP) | {} | {:.0} | {:.1} s | {:.2} / {:.2} |\n",
                s.spread,
                s.sent,
                refused(s.refused, s.errors),
                s.accepted_per_s,
                s.accepted_per_s / bare_http.max(1e-9),
                s.delivered,
                s.delivered_per_s,
                s.last_delivery_after_last_post_s,
                s.cpu_cores_while_posting,
                s.machine_while_posting.machine_cores
            ));
        }
        for s in &m.saturation {
            out.push_str(&format!(
                "\nCPU while posting ({}), in cores of the machine's {}: {}.\n",
                s.spread,
                std::thread::available_parallelism().map_or(0, |n| n.get()),
                s.machine_while_posting.by_program()
            ));
        }
        out.push_str(
            "\n| fixed rate | delivered / sent | p50 | p95 | p99 | largest RSS |\n|---|---|---|---|---|---|\n",
        );
        for f in &m.fixed {
            out.push_str(&format!(
                "| {}/s | {} / {} ({} accepted) | {} ms | {} ms | {} ms | {} |\n",
                f.rate,
                f.delivered,
                f.sent,
                f.accepted,
                opt(f.p50_ms),
                opt(f.p95_ms),
                opt(f.p99_ms),
                f.peak_rss_mib
                    .as_ref()
                    .map(|(n, v)| format!("{n} {v:.0} MiB"))
                    .unwrap_or_else(|| "–".into())
            ));
        }
        for f in &m.fixed {
            out.push_str(&format!(
                "\nCPU while sending {}/s: {}. On the machine beside it, {}.\n",
                f.rate,
                while_sending(f),
                beside_neighbours(f)
            ));
        }
        for f in &m.fixed {
            if let Some(breakdown) = &f.stages {
                out.push('\n');
                out.push_str(&stages::table(f.rate, breakdown));
            }
        }
        let rss = |list: &[(String, f64)]| {
            list.iter()
                .map(|(n, v)| format!("{n} {v:.0} MiB"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "\nDuplicates: {}. RSS idle: {}. RSS peak under load: {}.\n\n",
            m.duplicates,
            rss(&m.idle_rss_mib),
            rss(&m.peak_rss_mib)
        ));
    }
    out.push_str(&backfill::markdown(&report.backfill));
    if let Some(floor) = &report.floor_backfill {
        out.push_str(&floor_backfill::markdown(floor, &report.backfill));
    }
    out.push_str(&query_table(&report.queries));
    out
}

/// The backfill in each Herald mode chosen, each on a fresh start, all from one export; and the
/// floor's of the same export when the floor is chosen.
async fn backfills(
    chosen: &[Mode],
    sink: &Sink,
    rows: u64,
) -> anyhow::Result<(
    Vec<backfill::BackfillReport>,
    Option<floor_backfill::FloorBackfillReport>,
)> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("incident.csv");
    let started = Instant::now();
    // Seconds of file writing for a million rows: off the runtime's worker threads.
    let export =
        tokio::task::spawn_blocking(move || export::write(&path, rows, chrono::Utc::now()))
            .await??;
    println!(
        "backfill: {rows} rows written to a {:.0} MB ServiceNow export in {:.1} s",
        export.bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    let webhook = sink.url("/hooks/herald");
    let mut runs = Vec::new();
    let mut floor = None;
    for mode in chosen {
        let target = match mode {
            Mode::Distributed => targets::distributed(&webhook).await?,
            Mode::Standalone => targets::standalone(&webhook).await?,
            Mode::Floor => {
                let target = targets::floor(&webhook, false).await?;
                println!("{}: backfilling {rows} rows", target.name);
                let run = floor_backfill::measure(&target, &export).await;
                target.stop().await;
                let run = run?;
                println!(
                    "{}: backfill: rows stored after {:.1} s, recorded after {}",
                    targets::FLOOR,
                    run.stored_s,
                    run.done_s.map_or_else(
                        || format!("never: {} lost", run.lost),
                        |s| format!("{s:.1} s")
                    )
                );
                floor = Some(run);
                continue;
            }
            // Alertmanager keeps no history to backfill; keeping bodies changes nothing the
            // floor's backfill bounds.
            Mode::Alertmanager | Mode::FloorKeepingBodies => continue,
        };
        println!("{}: backfilling {rows} rows", target.name);
        let run = backfill::measure(&target, &export).await;
        target.stop().await;
        let run = run?;
        println!(
            "{}: backfill: CLI done after {:.1} s, wins and leaderboards after {}, {} lost",
            run.mode,
            run.cli_exit_s,
            run.done_s
                .map_or_else(|| "never".to_string(), |s| format!("{s:.1} s")),
            run.lost
        );
        runs.push(run);
    }
    Ok((runs, floor))
}

/// The query timings, one column per number of wins stored.
fn query_table(runs: &[queries::QueryReport]) -> String {
    let Some(first) = runs.first() else {
        return String::new();
    };
    let mut out = String::from("| query (p50 / p99) |");
    for run in runs {
        out.push_str(&format!(" {} wins stored |", run.wins));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(runs.len()));
    out.push('\n');
    for (i, time) in first.times.iter().enumerate() {
        out.push_str(&format!("| {} |", time.query));
        for run in runs {
            match run.times.get(i) {
                Some(t) => out.push_str(&format!(" {:.1} / {:.1} ms |", t.p50_ms, t.p99_ms)),
                None => out.push_str(" – |"),
            }
        }
        out.push('\n');
    }
    out.push_str("| dashboard figures made (once for every screen, every few seconds at most) |");
    for run in runs {
        out.push_str(&format!(
            " {:.1} ms ({} times) |",
            run.dashboard_build_mean_ms, run.dashboard_builds
        ));
    }
    out.push('\n');
    out.push_str(&format!(
        "\nEach query asked {} times in a row after 5 to warm up; the wins were generated in the \
         database ({}).\n\n",
        first.samples,
        runs.iter()
            .map(|r| format!("{} in {:.0} s", r.wins, r.seed_seconds))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Stopping the run drops what it started: the services, NATS and the receivers are killed
    // with it (the test kit starts each with kill-on-drop), so nothing is left polling.
    tokio::select! {
        result = run() => result,
        signal = interrupted() => anyhow::bail!("{signal}: stopped, with everything the run had started"),
    }
}

/// Waits for Ctrl-C or SIGTERM, and names which came (never, where neither can be caught).
async fn interrupted() -> &'static str {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        return tokio::select! {
            () = ctrl_c => "interrupted",
            _ = term.recv() => "terminated",
        };
    }
    ctrl_c.await;
    "interrupted"
}

async fn run() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.quick {
        args.events = 1_000;
        args.rates = vec![50.0, 200.0];
        args.seconds = 5;
        args.query_wins = vec![100_000];
        args.query_samples = 50;
        args.backfill_rows = 2_000;
    }
    // Each part runs unless another was asked for alone.
    let pipeline = !args.queries_only && !args.backfill_only;
    herald_runtime::install_tls_provider();
    let started = chrono::Utc::now();
    let sink = Sink::start().await?;

    let count = args.events.max(1_000);
    let limits = if !pipeline {
        None
    } else {
        println!("the machine's limits");
        let (three_hops, three_hops_machine) = raw::jetstream_relay(count, 7 * 1024, 3).await?;
        Some(Limits {
            jetstream_256b_per_s: raw::jetstream_publish(count, 256, 1024).await?,
            jetstream_7kb_per_s: raw::jetstream_publish(count, 7 * 1024, 1024).await?,
            jetstream_7kb_16_in_flight_per_s: raw::jetstream_publish(count, 7 * 1024, 16).await?,
            jetstream_7kb_three_hops_per_s: three_hops,
            jetstream_three_hops_machine: three_hops_machine,
            bare_http_per_s: {
                let generator = Generator::new(Spread::Organisation)?;
                let mut bare = Events { next: 0 };
                let (_, requests) = bare.requests(&generator, count, false)?;
                drive(&sink.url("/bare"), 0, requests, args.connections, None)
                    .await?
                    .accepted_per_second()
            },
        })
    };
    if let Some(limits) = &limits {
        println!(
            "JetStream 7 KB publishes {:.0}/s (16 in flight {:.0}/s), through three streams in a row {:.0}/s \
             (CPU meanwhile: {}), bare HTTP {:.0}/s",
            limits.jetstream_7kb_per_s,
            limits.jetstream_7kb_16_in_flight_per_s,
            limits.jetstream_7kb_three_hops_per_s,
            limits.jetstream_three_hops_machine.by_program(),
            limits.bare_http_per_s
        );
    }

    let mut events = Events { next: 0 };
    let mut modes = Vec::new();
    let chosen = match &args.modes {
        Some(modes) => modes.clone(),
        None if herald_testkit::alertmanager().is_some() => {
            vec![
                Mode::Distributed,
                Mode::Standalone,
                Mode::Floor,
                Mode::Alertmanager,
            ]
        }
        None => {
            println!(
                "Alertmanager is not installed, so there is no side-by-side run \
                 (apt-get install prometheus-alertmanager, or set HERALD_ALERTMANAGER)"
            );
            vec![Mode::Distributed, Mode::Standalone, Mode::Floor]
        }
    };
    if pipeline {
        // The receiver keeps every span it is sent: the pipeline runs' only, not the backfill's
        // millions.
        let timer = if args.stages {
            let timer = stages::StageTimer::start().await?;
            targets::set_extra_env(timer.env());
            Some(timer)
        } else {
            None
        };
        for mode in &chosen {
            modes.push(measure(*mode, &sink, &mut events, &args, timer.as_ref()).await?);
        }
        targets::set_extra_env(Vec::new());
    }
    let (backfill, floor_backfill) = if !args.queries_only && args.backfill_rows > 0 {
        backfills(&chosen, &sink, args.backfill_rows).await?
    } else {
        (Vec::new(), None)
    };
    let query_wins = if args.backfill_only {
        &[][..]
    } else {
        &args.query_wins[..]
    };
    let mut query_runs = Vec::new();
    for wins in query_wins {
        println!("queries with {wins} wins stored");
        query_runs.push(queries::measure(*wins, args.query_samples).await?);
    }
    let report = Report {
        started: started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        machine: machine(),
        database: database::commits().await,
        bus: herald_testkit::nats::jetstream_sync(),
        herald_up_files: chosen.contains(&Mode::Standalone).then(files::described),
        connections: args.connections,
        limits,
        modes,
        backfill,
        floor_backfill,
        queries: query_runs,
    };
    std::fs::create_dir_all(&args.out)?;
    let stamp = started.format("%Y%m%dT%H%M%SZ");
    let json = args.out.join(format!("bench-{stamp}.json"));
    std::fs::write(&json, serde_json::to_vec_pretty(&report)?)?;
    let md = markdown(&report);
    let md_path = args.out.join(format!("bench-{stamp}.md"));
    std::fs::write(&md_path, &md)?;
    println!("\n{md}");
    println!("written: {} and {}", json.display(), md_path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Args;

    #[test]
    fn query_timings_are_skipped_with_an_empty_list() -> Result<(), clap::Error> {
        let none = Args::try_parse_from(["herald-bench", "--query-wins"])?;
        assert!(none.query_wins.is_empty());
        let some = Args::try_parse_from(["herald-bench", "--query-wins", "1000,20000"])?;
        assert_eq!(some.query_wins, [1_000, 20_000]);
        let zero = Args::try_parse_from(["herald-bench", "--query-wins", "0"])
            .err()
            .expect("no query run of 0 wins");
        assert!(zero.to_string().contains("0 is not in 1.."), "{zero}");
        let default = Args::try_parse_from(["herald-bench"])?;
        assert_eq!(default.query_wins, [1_000_000, 10_000_000]);
        Ok(())
    }
}
