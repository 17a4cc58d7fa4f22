//! Where an event's time goes: the services export their spans to a receiver in the benchmark, and
//! each event's trace (one from the webhook to the delivery) is cut into the stages between its
//! spans. Percentiles per stage, and the same stages for the slowest 1 % alone, so a tail can be
//! laid at one stage's door.

use std::collections::HashMap;

use herald_testkit::{OtlpReceiver, ReceivedSpan};
use serde::Serialize;

/// One stage's share of the events' time, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    pub name: &'static str,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The mean of this stage over the traces whose whole time is at or above the whole's p99.
    pub tail_mean_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Breakdown {
    /// Traces that held every stage's span (the others were still being exported, or lost).
    pub traces: usize,
    /// Traces that began at the webhook in the measurement, complete or not.
    pub begun: usize,
    /// Spans received in the measurement, per mark, in [`MARKS`]' order.
    pub spans: [usize; 5],
    pub stages: Vec<Stage>,
    /// When each trace of the slowest 1 % began, in seconds after the first complete trace did:
    /// a tail bunched at one moment is a stall, one spread out is queueing.
    pub tail_began_s: Vec<f64>,
    /// The tenth of a second in which most of the slowest 1 % began, when three or more did: a
    /// stall, cut into stages, so it can be laid at one stage's door (or at every stage's, when
    /// the machine stopped them all).
    pub biggest_bunch: Option<Bunch>,
}

/// The slowest traces that began in one tenth of a second, and their stages' means.
#[derive(Debug, Clone, Serialize)]
pub struct Bunch {
    /// Seconds after the first complete trace began, to the tenth.
    pub at_s: f64,
    /// The same moment on the wall clock (Unix seconds), to line it up with other logs.
    pub at_unix_s: f64,
    pub traces: usize,
    /// Each stage's mean over the bunch, in [`STAGES`]' order, in milliseconds.
    pub stage_means_ms: Vec<(&'static str, f64)>,
}

/// Fewer slow traces than this in one tenth of a second are not called a bunch.
const BUNCH: usize = 3;

/// The spans that bound the stages, in the order an event passes them.
const MARKS: [&str; 5] = [
    "ingest.receive",
    "score.publish",
    "announce",
    "notify.queue",
    "notify.deliver",
];

/// Where a stage starts or ends: the beginning or the end of one of the marked spans.
#[derive(Debug, Clone, Copy)]
struct Point {
    span: usize,
    end: bool,
}

const fn begins(span: usize) -> Point {
    Point { span, end: false }
}

const fn ends(span: usize) -> Point {
    Point { span, end: true }
}

/// One stage of a trace: its name and the points it runs between.
#[derive(Debug, Clone, Copy)]
struct Cut {
    name: &'static str,
    from: Point,
    to: Point,
}

impl Cut {
    /// Saturating: scoring can publish a win before ingest's span for its event has closed (the
    /// 202 is on its way, the span not yet ended), and that stage is then nothing, not negative.
    fn of(&self, marks: &[(u64, u64); 5]) -> u64 {
        let at = |p: Point| {
            let (start, end) = marks[p.span];
            if p.end { end } else { start }
        };
        at(self.to).saturating_sub(at(self.from))
    }
}

const fn stage(name: &'static str, from: Point, to: Point) -> Cut {
    Cut { name, from, to }
}

/// From the webhook's arrival to the announcement's delivery: what the slowest 1 % is chosen by.
const WHOLE: Cut = stage("whole: received → delivered", begins(0), ends(4));

/// The stages, in the order an event passes them, and the whole.
const STAGES: [Cut; 7] = [
    stage("ingest: webhook received → 202", begins(0), ends(0)),
    stage("202 → scored (win published)", ends(0), begins(1)),
    stage(
        "scored → counted (announcement published)",
        begins(1),
        begins(2),
    ),
    stage("counted → notify has it", begins(2), begins(3)),
    stage("notify has it → attempt begins", begins(3), begins(4)),
    stage("attempt (POST to the receiver)", begins(4), ends(4)),
    WHOLE,
];

pub struct StageTimer {
    receiver: OtlpReceiver,
}

impl StageTimer {
    pub async fn start() -> anyhow::Result<Self> {
        Ok(Self {
            receiver: OtlpReceiver::start().await?,
        })
    }

    /// What each service needs to export its spans here, promptly and without dropping any.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "HERALD_TELEMETRY__OTLP_ENDPOINT".into(),
                self.receiver.endpoint(),
            ),
            // Only the spans the stages are cut at (and what is logged inside them): exporting
            // every span and log line cost the services more than the stages themselves.
            (
                "RUST_LOG".into(),
                std::iter::once("warn".to_string())
                    .chain(MARKS.iter().map(|m| format!("[{m}]=info")))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("OTEL_BSP_SCHEDULE_DELAY".into(), "200".into()),
            ("OTEL_BSP_MAX_QUEUE_SIZE".into(), "262144".into()),
        ]
    }

    /// How many spans have arrived: the start of a measurement.
    pub fn mark(&self) -> usize {
        self.receiver.spans().len()
    }

    /// The stages of every complete trace that began after `since`.
    pub fn breakdown(&self, since: usize) -> Breakdown {
        let spans = self.receiver.spans();
        cut(spans.get(since..).unwrap_or_default())
    }
}

fn cut(spans: &[ReceivedSpan]) -> Breakdown {
    let mut traces: HashMap<&str, [Option<(u64, u64)>; 5]> = HashMap::new();
    let mut counts = [0; 5];
    for span in spans {
        let Some(at) = MARKS.iter().position(|m| *m == span.name) else {
            continue;
        };
        counts[at] += 1;
        let marks = traces.entry(span.trace_id.as_str()).or_default();
        // The first attempt is the one that counts; a retry would come later.
        let times = (span.start_unix_nanos, span.end_unix_nanos);
        marks[at] = Some(marks[at].map_or(times, |t| t.min(times)));
    }
    let begun = traces.values().filter(|m| m[0].is_some()).count();
    let complete: Vec<[(u64, u64); 5]> = traces
        .into_values()
        .filter_map(|marks| {
            let m: Vec<(u64, u64)> = marks.into_iter().collect::<Option<_>>()?;
            let m: [(u64, u64); 5] = m.try_into().ok()?;
            // Each mark begins no earlier than the one before it (one machine's clock).
            m.windows(2).all(|w| w[0].0 <= w[1].0).then_some(m)
        })
        .collect();
    let mut wholes: Vec<u64> = complete.iter().map(|m| WHOLE.of(m)).collect();
    wholes.sort_unstable();
    let tail_from = percentile(&wholes, 99.0).unwrap_or(u64::MAX);
    let tail: Vec<&[(u64, u64); 5]> = complete
        .iter()
        .filter(|m| WHOLE.of(m) >= tail_from)
        .collect();
    let first = complete.iter().map(|m| m[0].0).min().unwrap_or(0);
    let mut tail_began_s: Vec<f64> = tail
        .iter()
        .map(|m| m[0].0.saturating_sub(first) as f64 / 1e9)
        .collect();
    tail_began_s.sort_by(f64::total_cmp);
    let biggest_bunch = biggest_bunch(&tail, first);
    let stages = STAGES
        .iter()
        .map(|stage| {
            let mut values: Vec<u64> = complete.iter().map(|m| stage.of(m)).collect();
            values.sort_unstable();
            let tail_sum: u64 = tail.iter().map(|m| stage.of(m)).sum();
            Stage {
                name: stage.name,
                p50_ms: ms(percentile(&values, 50.0)),
                p99_ms: ms(percentile(&values, 99.0)),
                tail_mean_ms: ms(Some(tail_sum / tail.len().max(1) as u64)),
            }
        })
        .collect();
    Breakdown {
        traces: complete.len(),
        begun,
        spans: counts,
        stages,
        tail_began_s,
        biggest_bunch,
    }
}

fn biggest_bunch(tail: &[&[(u64, u64); 5]], first: u64) -> Option<Bunch> {
    // Rounded to the nearest tenth, as [`moments`] lists them.
    let tenth = |m: &[(u64, u64); 5]| (m[0].0.saturating_sub(first) + 50_000_000) / 100_000_000;
    let mut by_tenth: HashMap<u64, Vec<&[(u64, u64); 5]>> = HashMap::new();
    for m in tail {
        by_tenth.entry(tenth(m)).or_default().push(m);
    }
    // The earliest of equal bunches, so the choice does not depend on the map's order.
    let (at, bunch) = by_tenth
        .into_iter()
        .filter(|(_, b)| b.len() >= BUNCH)
        .max_by(|(ta, a), (tb, b)| a.len().cmp(&b.len()).then(tb.cmp(ta)))?;
    let stage_means_ms = STAGES
        .iter()
        .map(|stage| {
            let sum: u64 = bunch.iter().map(|m| stage.of(m)).sum();
            (stage.name, sum as f64 / bunch.len() as f64 / 1e6)
        })
        .collect();
    Some(Bunch {
        at_s: at as f64 / 10.0,
        at_unix_s: (first + at * 100_000_000) as f64 / 1e9,
        traces: bunch.len(),
        stage_means_ms,
    })
}

fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

fn ms(nanos: Option<u64>) -> f64 {
    nanos.map_or(f64::NAN, |n| n as f64 / 1e6)
}

/// The breakdown as a Markdown table.
pub fn table(rate: f64, breakdown: &Breakdown) -> String {
    let mut out = format!(
        "| where the time went at {rate}/s ({} complete traces of {} begun) | p50 | p99 | mean of the slowest 1 % |\n|---|---|---|---|\n",
        breakdown.traces, breakdown.begun
    );
    for stage in &breakdown.stages {
        out.push_str(&format!(
            "| {} | {:.1} ms | {:.1} ms | {:.1} ms |\n",
            stage.name, stage.p50_ms, stage.p99_ms, stage.tail_mean_ms
        ));
    }
    if !breakdown.tail_began_s.is_empty() {
        out.push_str(&format!(
            "\nThe slowest 1 % began at (s into the run, how many when more than one): {}.\n",
            moments(&breakdown.tail_began_s)
        ));
    }
    if let Some(bunch) = &breakdown.biggest_bunch {
        let stages: Vec<String> = bunch
            .stage_means_ms
            .iter()
            .map(|(name, ms)| format!("{name} {ms:.1} ms"))
            .collect();
        out.push_str(&format!(
            "\nThe biggest bunch, {} traces beginning at {:.1} s (Unix {:.1}), stage by stage (means): {}.\n",
            bunch.traces,
            bunch.at_s,
            bunch.at_unix_s,
            stages.join("; ")
        ));
    }
    if breakdown.traces < breakdown.begun {
        let received: Vec<String> = MARKS
            .iter()
            .zip(breakdown.spans)
            .map(|(m, n)| format!("{m} {n}"))
            .collect();
        out.push_str(&format!("\nSpans received: {}.\n", received.join(", ")));
    }
    out
}

/// "4.6 (7), 4.7 (50), 6.1": seconds to the tenth, each with how many began then, so a stall's
/// hundred events read as one moment.
fn moments(began_s: &[f64]) -> String {
    let mut tenths: Vec<i64> = began_s.iter().map(|s| (s * 10.0).round() as i64).collect();
    tenths.sort_unstable();
    let mut out: Vec<String> = Vec::new();
    for run in tenths.chunk_by(|a, b| a == b) {
        let at = run[0] as f64 / 10.0;
        out.push(match run.len() {
            1 => format!("{at:.1}"),
            n => format!("{at:.1} ({n})"),
        });
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(trace: &str, name: &str, start_ms: u64, end_ms: u64) -> ReceivedSpan {
        ReceivedSpan {
            service: String::new(),
            name: name.into(),
            trace_id: trace.into(),
            span_id: String::new(),
            parent_span_id: String::new(),
            start_unix_nanos: start_ms * 1_000_000,
            end_unix_nanos: end_ms * 1_000_000,
        }
    }

    #[test]
    fn a_trace_is_cut_at_its_spans_and_an_incomplete_one_is_left_out() {
        let spans = vec![
            span("a", "ingest.receive", 0, 2),
            span("a", "score.publish", 5, 5),
            span("a", "announce", 9, 9),
            span("a", "notify.queue", 10, 10),
            span("a", "notify.deliver", 14, 16),
            // A retry of the attempt, later: the first one counts.
            span("a", "notify.deliver", 100, 101),
            span("a", "consume_batch", 0, 50),
            // Incomplete.
            span("b", "ingest.receive", 0, 1),
            span("b", "score.publish", 3, 3),
            // Published before ingest's span closed: that stage is nothing, not negative.
            span("c", "ingest.receive", 0, 9),
            span("c", "score.publish", 5, 5),
            span("c", "announce", 9, 9),
            span("c", "notify.queue", 10, 10),
            span("c", "notify.deliver", 14, 16),
        ];
        let one = cut(&spans[..7]);
        assert_eq!((one.traces, one.begun), (1, 1));
        let got: Vec<f64> = one.stages.iter().map(|s| s.p50_ms).collect();
        assert_eq!(got, vec![2.0, 3.0, 4.0, 1.0, 4.0, 2.0, 16.0]);
        let tail: Vec<f64> = one.stages.iter().map(|s| s.tail_mean_ms).collect();
        assert_eq!(tail, got);

        let all = cut(&spans);
        assert_eq!((all.traces, all.begun), (2, 3));
        assert_eq!(all.spans, [3, 3, 2, 2, 3]);
        let early = all.stages.iter().find(|s| s.name.starts_with("202"));
        assert_eq!(early.map(|s| s.p50_ms), Some(0.0), "{all:?}");
    }

    #[test]
    fn the_slowest_traces_are_placed_in_the_run() {
        let trace = |id: &str, start: u64, whole: u64| {
            vec![
                span(id, "ingest.receive", start, start + 1),
                span(id, "score.publish", start + 2, start + 2),
                span(id, "announce", start + 3, start + 3),
                span(id, "notify.queue", start + 4, start + 4),
                span(id, "notify.deliver", start + 5, start + whole),
            ]
        };
        let spans: Vec<ReceivedSpan> = [("a", 500, 10), ("b", 2_500, 50), ("c", 1_500, 10)]
            .into_iter()
            .flat_map(|(id, start, whole)| trace(id, start, whole))
            .collect();
        assert_eq!(cut(&spans).tail_began_s, vec![2.0]);
        assert!(
            cut(&spans).biggest_bunch.is_none(),
            "one slow trace is no bunch"
        );
    }

    #[test]
    fn a_stall_is_cut_into_the_stages_of_the_traces_it_held() {
        // Ninety quick traces, and ten held 40 ms between counted and notify, begun within
        // 0.2 s of each other: the most of them in one tenth of a second make the bunch.
        let trace = |id: String, start: u64, held: u64| {
            vec![
                span(&id, "ingest.receive", start, start + 1),
                span(&id, "score.publish", start + 2, start + 2),
                span(&id, "announce", start + 3, start + 3),
                span(&id, "notify.queue", start + 4 + held, start + 4 + held),
                span(&id, "notify.deliver", start + 5 + held, start + 6 + held),
            ]
        };
        let spans: Vec<ReceivedSpan> = (0..100u64)
            .flat_map(|i| {
                let stalled = (40..50).contains(&i);
                trace(
                    format!("t{i}"),
                    1_000 + i * 20,
                    if stalled { 40 } else { 0 },
                )
            })
            .collect();
        let got = cut(&spans);
        let bunch = got
            .biggest_bunch
            .as_ref()
            .expect("ten slow traces in 0.2 s");
        assert!(bunch.traces >= BUNCH, "{bunch:?}");
        assert!((0.8..=0.9).contains(&bunch.at_s), "{bunch:?}");
        let held = bunch
            .stage_means_ms
            .iter()
            .find(|(name, _)| name.starts_with("counted"))
            .map(|(_, ms)| *ms);
        assert_eq!(held, Some(41.0), "{bunch:?}");
        assert!(table(200.0, &got).contains("The biggest bunch,"));
    }

    #[test]
    fn the_slowest_traces_moments_are_counted_to_the_tenth() {
        assert_eq!(
            moments(&[4.71, 4.6, 6.1, 4.68, 4.74, 9.96]),
            "4.6, 4.7 (3), 6.1, 10.0"
        );
        assert_eq!(moments(&[]), "");
    }
}
