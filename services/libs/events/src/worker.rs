//! The consume loop every stage runs.
//!
//! Deliveries are spread over a fixed number of lanes by their ordering key, so messages about the
//! same record are handled in order while different records proceed in parallel. A handler answers
//! `Ok` (ack), [`HandleError::Retry`] (nak with backoff, until the delivery limit) or
//! [`HandleError::Reject`] (never going to work: dead-letter now). A message that was delivered more
//! often than the limit without ever finishing (its handler crashed the process each time) is
//! dead-lettered without running it again. A dead letter is acked only once it is stored, so nothing
//! is ever dropped.

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
    sync::Arc,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use herald_proto::v1::DeadLetter;
use prost::Message;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, warn};

use crate::{
    Bus, BusError, Cause, IncomingMessage, OutgoingMessage, backoff::Backoff, header, subjects,
    topology::ConsumerSpec,
};

/// Why a handler did not finish a message.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// A passing fault (database or bus unavailable): try again later.
    #[error(transparent)]
    Retry(Cause),
    /// The message can never be processed as it is (undecodable, invalid): dead-letter it now.
    #[error(transparent)]
    Reject(Cause),
    /// Something the stage depends on is down (database or bus unreachable): nothing is wrong with
    /// the message, so waiting for the dependency does not consume its delivery budget.
    #[error(transparent)]
    Unavailable(Cause),
}

impl HandleError {
    pub fn retry(cause: impl Into<Cause>) -> Self {
        HandleError::Retry(cause.into())
    }

    pub fn reject(cause: impl Into<Cause>) -> Self {
        HandleError::Reject(cause.into())
    }

    pub fn unavailable(cause: impl Into<Cause>) -> Self {
        HandleError::Unavailable(cause.into())
    }

    /// The same kind of error with the same reason: for answering each message of a batch that
    /// failed as a whole.
    pub fn for_each_message(&self) -> Self {
        match self {
            HandleError::Retry(_) => HandleError::retry(self.reason()),
            HandleError::Reject(_) => HandleError::reject(self.reason()),
            HandleError::Unavailable(_) => HandleError::unavailable(self.reason()),
        }
    }

    /// The error and every cause under it, on one line.
    pub fn reason(&self) -> String {
        let (HandleError::Retry(cause)
        | HandleError::Reject(cause)
        | HandleError::Unavailable(cause)) = self;
        let mut text = cause.to_string();
        let mut source = cause.source();
        while let Some(next) = source {
            let next_text = next.to_string();
            // thiserror messages often repeat their source; show each piece once.
            if !text.contains(&next_text) {
                text.push_str(": ");
                text.push_str(&next_text);
            }
            source = next.source();
        }
        text
    }
}

/// What a stage does with one message. It must be idempotent: redelivery happens.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, delivery: &IncomingMessage) -> Result<(), HandleError>;

    /// Whether [`Handler::handle_batch`] does better than one message at a time; a lane then
    /// hands it every message it has waiting (in order) instead of one.
    fn batches(&self) -> bool {
        false
    }

    /// Handles `batch` in its order, answering for each message. A stage writing a batch in one
    /// transaction must keep the order of messages that share an ordering key.
    async fn handle_batch(&self, batch: &[IncomingMessage]) -> Vec<Result<(), HandleError>> {
        let mut out = Vec::with_capacity(batch.len());
        for delivery in batch {
            out.push(self.handle(delivery).await);
        }
        out
    }
}

/// Messages a lane hands a batching handler at most, unless the stage's configuration says
/// (`[<stage>.consumer] batch`).
///
/// A distributed stage's batch is one PostgreSQL transaction, and half of a scoring transaction's
/// time in a backfill was the round trips between its statements: with 256 rather than 64 a 100k
/// distributed backfill took 14 % less time (six alternating pairs, medians 16.0 and 18.6 s).
/// `herald up` keeps 64 (BENCHMARKS.md, twenty-eighth sitting).
pub const DEFAULT_BATCH: usize = 256;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The stage name: `scoring`, `spotlight`, `notify`. Names the dead-letter subject.
    pub stage: String,
    /// Parallel lanes; messages with the same ordering key always share a lane.
    pub lanes: usize,
    /// Messages a lane hands a batching handler at most.
    pub batch: usize,
    /// Deliveries before a failing message is dead-lettered.
    pub max_deliveries: u32,
    pub backoff: Backoff,
    /// How long to wait for in-flight messages at shutdown before nak-ing them.
    pub drain_timeout: Duration,
}

impl WorkerOptions {
    pub fn new(stage: impl Into<String>) -> Self {
        Self {
            stage: stage.into(),
            lanes: 8,
            batch: DEFAULT_BATCH,
            max_deliveries: 5,
            backoff: Backoff::default(),
            drain_timeout: Duration::from_secs(10),
        }
    }

    /// Messages the lanes can hold at once when the stage batches: each lane a batch in hand and
    /// one waiting in its queue ([`run`] sizes the queue so).
    pub fn messages_held(&self) -> usize {
        self.lanes.saturating_mul(self.batch).saturating_mul(2)
    }
}

/// Runs until `shutdown` is cancelled: pulls from the durable consumer, dispatches to lanes, and at
/// shutdown finishes what is in hand (or naks it) before returning.
pub async fn run(
    bus: Arc<dyn Bus>,
    spec: ConsumerSpec,
    handler: Arc<dyn Handler>,
    options: WorkerOptions,
    shutdown: CancellationToken,
) {
    let options = Arc::new(options);
    let lanes_count = options.lanes.max(1);
    let stopping = CancellationToken::new();
    let mut senders = Vec::with_capacity(lanes_count);
    let mut lanes = tokio::task::JoinSet::new();
    for lane in 0..lanes_count {
        // One batch waiting while the lane works on the last (a batching handler takes all of it
        // at once; `WorkerOptions::messages_held` counts on it); a lane handling one message at a
        // time needs only a few. What is held at shutdown is naked and comes back at once.
        let capacity = if handler.batches() {
            options.batch.max(1)
        } else {
            4
        };
        let (tx, rx) = mpsc::channel::<IncomingMessage>(capacity);
        senders.push(tx);
        let ctx = LaneContext {
            bus: bus.clone(),
            handler: handler.clone(),
            options: options.clone(),
            ack_wait: spec.ack_wait,
            stopping: stopping.clone(),
            waited: std::sync::Mutex::default(),
        };
        lanes.spawn(run_lane(lane, rx, ctx));
    }

    info!(stage = %options.stage, consumer = %spec.durable, lanes = lanes_count, "worker started");
    let backlog = tokio::spawn(report_backlog(
        bus.clone(),
        spec.clone(),
        options.stage.clone(),
        shutdown.clone(),
    ));
    let retry = Backoff {
        base: Duration::from_millis(250),
        max: Duration::from_secs(10),
    };
    let mut failures = 0u32;
    'outer: while !shutdown.is_cancelled() {
        let mut subscription = tokio::select! {
            _ = shutdown.cancelled() => break,
            result = bus.subscribe(&spec) => match result {
                Ok(subscription) => { failures = 0; subscription }
                Err(e) => {
                    failures += 1;
                    warn!(stage = %options.stage, error = %e, "cannot subscribe; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(retry.delay(failures)) => continue,
                    }
                }
            }
        };
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => break 'outer,
                next = subscription.next() => next,
            };
            match next {
                Some(Ok(delivery)) => {
                    let lane = lane_of(delivery.ordering_key(), lanes_count);
                    if senders[lane].send(delivery).await.is_err() {
                        error!(stage = %options.stage, lane, "lane stopped unexpectedly");
                        break 'outer;
                    }
                }
                Some(Err(e)) => {
                    // Missed heartbeats and the like: the subscription usually recovers by itself.
                    warn!(stage = %options.stage, error = %e, "receive error");
                    metrics::counter!("herald_bus_receive_errors_total", "stage" => options.stage.clone())
                        .increment(1);
                }
                None => {
                    warn!(stage = %options.stage, "subscription ended; opening it again");
                    break;
                }
            }
        }
    }

    // Shutdown: stop taking new work, let each lane finish the message in hand, nak the rest.
    backlog.abort();
    drop(senders);
    stopping.cancel();
    let drain = async { while lanes.join_next().await.is_some() {} };
    if tokio::time::timeout(options.drain_timeout, drain)
        .await
        .is_err()
    {
        warn!(stage = %options.stage, "in-flight messages did not finish in time; they will be redelivered");
        lanes.abort_all();
    }
    if let Err(e) = bus.flush().await {
        warn!(stage = %options.stage, error = %e, "flush at shutdown failed; unacked messages will be redelivered");
    }
    info!(stage = %options.stage, "worker stopped");
}

/// How often the consumer's backlog gauges are read from the bus.
const BACKLOG_EVERY: Duration = Duration::from_secs(5);

/// Keeps `herald_consumer_pending` and `herald_consumer_ack_pending` for this stage current, so
/// an operator (or an autoscaler reading `/metrics`) sees the lag without asking NATS.
async fn report_backlog(
    bus: Arc<dyn Bus>,
    spec: ConsumerSpec,
    stage: String,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(BACKLOG_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        match bus.backlog(&spec).await {
            Ok(backlog) => {
                // Gauges are f64; a backlog beyond 2^53 messages is not a concern.
                metrics::gauge!("herald_consumer_pending", "stage" => stage.clone(), "consumer" => spec.durable.clone())
                    .set(backlog.pending as f64);
                metrics::gauge!("herald_consumer_ack_pending", "stage" => stage.clone(), "consumer" => spec.durable.clone())
                    .set(backlog.ack_pending as f64);
            }
            Err(e) => debug!(stage = %stage, error = %e, "cannot read the consumer's backlog"),
        }
    }
}

fn lane_of(key: &str, lanes: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    // The modulo keeps the value below `lanes`, which is a usize, so the cast back cannot truncate.
    (hasher.finish() % lanes as u64) as usize
}

struct LaneContext {
    bus: Arc<dyn Bus>,
    handler: Arc<dyn Handler>,
    options: Arc<WorkerOptions>,
    ack_wait: Duration,
    stopping: CancellationToken,
    /// Deliveries of each message spent waiting for an unavailable dependency, which do not count
    /// toward its dead-letter limit. Kept per lane (a message always returns to the same lane) and
    /// in memory: after a restart a message may spend at most one more budget.
    waited: std::sync::Mutex<HashMap<String, u32>>,
}

impl LaneContext {
    fn waited(&self, msg_id: Option<&str>) -> u32 {
        msg_id
            .and_then(|id| self.waited.lock().ok()?.get(id).copied())
            .unwrap_or(0)
    }

    fn wait_once_more(&self, msg_id: Option<&str>) -> u32 {
        let (Some(id), Ok(mut waited)) = (msg_id, self.waited.lock()) else {
            return 1;
        };
        let count = waited.entry(id.to_string()).or_insert(0);
        *count += 1;
        *count
    }

    fn forget(&self, msg_id: Option<&str>) {
        if let (Some(id), Ok(mut waited)) = (msg_id, self.waited.lock()) {
            waited.remove(id);
        }
    }
}

async fn run_lane(lane: usize, mut rx: mpsc::Receiver<IncomingMessage>, ctx: LaneContext) {
    let stage = ctx.options.stage.clone();
    // A lane's time is either waiting for its next message or working (a message or a batch,
    // acks included): their sums say how close a stage is to its limit, which the backlog alone
    // does not (a stage can be saturated before anything is pending, or take its time over a
    // backlog while its lanes wait on the bus).
    let waits = metrics::histogram!("herald_worker_lane_wait_seconds", "stage" => stage.clone());
    let work = metrics::histogram!("herald_worker_lane_work_seconds", "stage" => stage.clone());
    let batch_sizes = metrics::histogram!("herald_worker_batch_messages", "stage" => stage);
    let mut waiting = Instant::now();
    loop {
        // A long wait is recorded a slice at a time, so an idle stage shows as idle while it is.
        let delivery = match tokio::time::timeout(WAIT_SLICE, rx.recv()).await {
            Ok(Some(delivery)) => delivery,
            Ok(None) => break,
            Err(_) => {
                let now = Instant::now();
                waits.record(now.duration_since(waiting).as_secs_f64());
                waiting = now;
                continue;
            }
        };
        let working = Instant::now();
        waits.record(working.duration_since(waiting).as_secs_f64());
        lane_turn(lane, &mut rx, &ctx, &batch_sizes, delivery).await;
        waiting = Instant::now();
        work.record(waiting.duration_since(working).as_secs_f64());
    }
}

/// The longest wait of a lane recorded as one: about a scrape interval's worth at most.
const WAIT_SLICE: Duration = Duration::from_secs(1);

/// One turn of a lane: `delivery`, with whatever else is already waiting when the stage batches.
async fn lane_turn(
    lane: usize,
    rx: &mut mpsc::Receiver<IncomingMessage>,
    ctx: &LaneContext,
    batch_sizes: &metrics::Histogram,
    delivery: IncomingMessage,
) {
    if ctx.stopping.is_cancelled() {
        // Not started: hand it back so another replica (or the next start) takes it promptly.
        if let Err(e) = delivery.nak(Duration::ZERO).await {
            debug!(lane, error = %e, "nak at shutdown failed; the message will time out and return");
        }
        return;
    }
    if !ctx.handler.batches() {
        process(ctx, delivery).await;
        return;
    }
    // Whatever else is already waiting goes with it; nothing waits for more to arrive.
    let mut batch = vec![delivery];
    while batch.len() < ctx.options.batch {
        match rx.try_recv() {
            Ok(next) => batch.push(next),
            Err(_) => break,
        }
    }
    batch_sizes.record(batch.len() as f64);
    if batch.len() == 1 {
        if let Some(one) = batch.pop() {
            process(ctx, one).await;
        }
    } else {
        process_batch(ctx, batch).await;
    }
}

/// Several messages through [`Handler::handle_batch`], each then finished as [`process`] would:
/// dead-lettered first when it already used up its deliveries, acked, naked or dead-lettered
/// after by its own outcome.
async fn process_batch(ctx: &LaneContext, batch: Vec<IncomingMessage>) {
    let stage = ctx.options.stage.as_str();
    let span = tracing::info_span!("consume_batch", stage, messages = batch.len());
    async {
        let mut runnable = Vec::with_capacity(batch.len());
        for delivery in batch {
            let msg_id = delivery.msg_id().map(str::to_string);
            if let Some(reason) = used_up(ctx, &delivery, msg_id.as_deref()) {
                dead_letter(ctx, &delivery, &reason).await;
                ctx.forget(msg_id.as_deref());
            } else {
                runnable.push(delivery);
            }
        }
        if runnable.is_empty() {
            return;
        }
        let started = Instant::now();
        let outcomes =
            with_progress_all(&runnable, ctx.ack_wait, ctx.handler.handle_batch(&runnable)).await;
        let each = started.elapsed().as_secs_f64() / runnable.len() as f64;
        let mut outcomes = outcomes.into_iter();
        // Finished together, not one after the other: on the embedded bus each ack is a write
        // of its own, and acks queued at once are committed as one group instead of one commit
        // each (a batch of 64 was 64 commits of the same few pages).
        let finishing = runnable.iter().map(|delivery| {
            metrics::histogram!("herald_message_duration_seconds", "stage" => stage.to_string())
                .record(each);
            let outcome = outcomes.next().unwrap_or_else(|| {
                Err(HandleError::retry(
                    "the stage answered for fewer messages than it was given",
                ))
            });
            finish(ctx, delivery, outcome)
        });
        futures::future::join_all(finishing).await;
    }
    .instrument(span)
    .await;
}

/// Why a message is dead-lettered without running it again, if it is: delivered more often than
/// allowed (not counting deliveries spent waiting for a dependency) without ever finishing.
fn used_up(ctx: &LaneContext, delivery: &IncomingMessage, msg_id: Option<&str>) -> Option<String> {
    let attempts = delivery.delivered.saturating_sub(ctx.waited(msg_id));
    (attempts > ctx.options.max_deliveries).then(|| {
        format!(
            "delivered {} times without finishing (the process stopped or timed out while handling it)",
            delivery.delivered
        )
    })
}

async fn process(ctx: &LaneContext, delivery: IncomingMessage) {
    let stage = ctx.options.stage.as_str();
    let span = tracing::info_span!(
        "consume",
        stage,
        subject = %delivery.subject,
        msg_id = delivery.msg_id().unwrap_or(""),
        attempt = delivery.delivered,
    );
    crate::trace::set_parent_from(&span, &delivery.headers);
    async {
        let msg_id = delivery.msg_id().map(str::to_string);
        if let Some(reason) = used_up(ctx, &delivery, msg_id.as_deref()) {
            dead_letter(ctx, &delivery, &reason).await;
            ctx.forget(msg_id.as_deref());
            return;
        }
        let started = Instant::now();
        let outcome = with_progress(&delivery, ctx.ack_wait, ctx.handler.handle(&delivery)).await;
        metrics::histogram!("herald_message_duration_seconds", "stage" => stage.to_string())
            .record(started.elapsed().as_secs_f64());
        finish(ctx, &delivery, outcome).await;
    }
    .instrument(span)
    .await;
}

/// Acks, naks or dead-letters a message by its handler's outcome.
async fn finish(ctx: &LaneContext, delivery: &IncomingMessage, outcome: Result<(), HandleError>) {
    let stage = ctx.options.stage.as_str();
    let max = ctx.options.max_deliveries;
    let msg_id = delivery.msg_id().map(str::to_string);
    let msg_id = msg_id.as_deref();
    // Deliveries spent waiting for a dependency are not the message's fault.
    let attempts = delivery.delivered.saturating_sub(ctx.waited(msg_id));
    if !matches!(outcome, Err(HandleError::Unavailable(_))) {
        ctx.forget(msg_id);
    }
    match outcome {
        Ok(()) => {
            count(stage, "ok");
            if let Err(e) = delivery.ack().await {
                // The work is done and idempotent: a redelivery will find it done.
                warn!(error = %e, "ack failed; the message will be redelivered and skipped");
            }
        }
        Err(e @ HandleError::Unavailable(_)) => {
            let waits = ctx.wait_once_more(msg_id);
            let delay = ctx.options.backoff.delay(waits);
            warn!(reason = %e.reason(), retry_in_ms = delay.as_millis() as u64, waits,
                "a dependency is unavailable; waiting without using up the message's deliveries");
            count(stage, "unavailable");
            if let Err(e) = delivery.nak(delay).await {
                warn!(error = %e, "nak failed; the message will return after the ack wait");
            }
        }
        Err(e @ HandleError::Retry(_)) if attempts < max => {
            let reason = e.reason();
            let delay = ctx.options.backoff.delay(attempts);
            warn!(%reason, retry_in_ms = delay.as_millis() as u64, "handling failed; will retry");
            count(stage, "retry");
            if let Err(e) = delivery.nak(delay).await {
                warn!(error = %e, "nak failed; the message will return after the ack wait");
            }
        }
        Err(e @ HandleError::Retry(_)) => {
            let reason = format!("{} (gave up after {attempts} attempts)", e.reason());
            dead_letter(ctx, delivery, &reason).await;
        }
        Err(e @ HandleError::Reject(_)) => dead_letter(ctx, delivery, &e.reason()).await,
    }
}

/// Runs the handler while telling the bus every third of the ack wait that work is in progress, so
/// a slow but healthy handler is not mistaken for a dead one.
async fn with_progress<F>(delivery: &IncomingMessage, ack_wait: Duration, work: F) -> F::Output
where
    F: std::future::Future,
{
    with_progress_all(std::slice::from_ref(delivery), ack_wait, work).await
}

/// [`with_progress`] for a batch: every message in it is kept in progress while the work runs.
async fn with_progress_all<F>(batch: &[IncomingMessage], ack_wait: Duration, work: F) -> F::Output
where
    F: std::future::Future,
{
    let period = (ack_wait / 3).max(Duration::from_millis(100));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tokio::pin!(work);
    loop {
        tokio::select! {
            output = &mut work => return output,
            _ = ticker.tick() => {
                for delivery in batch {
                    if let Err(e) = delivery.in_progress().await {
                        debug!(error = %e, "progress signal failed");
                    }
                }
            }
        }
    }
}

fn count(stage: &str, outcome: &'static str) {
    metrics::counter!("herald_messages_total", "stage" => stage.to_string(), "outcome" => outcome)
        .increment(1);
}

async fn dead_letter(ctx: &LaneContext, delivery: &IncomingMessage, reason: &str) {
    let stage = ctx.options.stage.as_str();
    let letter = DeadLetter {
        stage: stage.to_string(),
        original_subject: delivery.subject.clone(),
        original_msg_id: delivery.msg_id().unwrap_or_default().to_string(),
        original_payload: delivery.payload.to_vec(),
        original_headers: delivery.headers.iter().cloned().collect(),
        reason: reason.to_string(),
        deliveries: delivery.delivered,
        failed_at: Some(herald_proto::time::to_timestamp(chrono::Utc::now())),
    };
    // The stream sequence makes a retried dead-letter publish a duplicate, while a replayed message
    // (new sequence) that fails again gets a dead letter of its own.
    let msg_id = format!("dlq:{stage}:{}", delivery.sequence);
    let message =
        OutgoingMessage::new(subjects::dead_letter(stage), msg_id, letter.encode_to_vec())
            .with_header(header::DLQ_REASON, single_line(reason))
            .with_trace_context();
    match ctx.bus.publish(message).await {
        Ok(_) => {
            error!(%reason, deliveries = delivery.delivered, "message dead-lettered");
            count(stage, "dead_lettered");
            if let Err(e) = delivery.ack().await {
                warn!(error = %e, "ack after dead-lettering failed; a duplicate dead letter may follow");
            }
        }
        Err(e) => {
            error!(error = %e, %reason, "could not store the dead letter; will try again");
            if let Err(e) = delivery
                .nak(ctx.options.backoff.delay(delivery.delivered))
                .await
            {
                warn!(error = %e, "nak failed; the message will return after the ack wait");
            }
        }
    }
}

/// Header values cannot hold line breaks.
fn single_line(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    line.chars().take(512).collect()
}

/// Decodes a protobuf payload, rejecting (dead-lettering) what cannot be decoded.
pub fn decode<M: Message + Default>(delivery: &IncomingMessage) -> Result<M, HandleError> {
    M::decode(delivery.payload.as_ref()).map_err(|e| {
        HandleError::reject(format!(
            "payload on {} is not a valid {}: {e}",
            delivery.subject,
            std::any::type_name::<M>()
                .rsplit("::")
                .next()
                .unwrap_or("message")
        ))
    })
}

/// A bus that cannot be reached or written to is a dependency down, not a bad message.
impl From<BusError> for HandleError {
    fn from(e: BusError) -> Self {
        match e {
            // What the stage made of this message will never fit: that is the message's problem.
            BusError::TooLarge { .. } => HandleError::reject(e),
            _ => HandleError::unavailable(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_without_lanes_configured_runs_one_a_core_from_2_to_8() {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        let unset = StageSettings::default().worker_options("scoring");
        assert_eq!(unset.lanes, cores.clamp(2, 8));
        let set = StageSettings {
            lanes: Some(3),
            ..StageSettings::default()
        };
        assert_eq!(set.worker_options("scoring").lanes, 3);
        let zero = StageSettings {
            lanes: Some(0),
            ..StageSettings::default()
        };
        assert_eq!(zero.worker_options("scoring").lanes, 1, "never no lane");
    }

    #[test]
    fn a_consumer_holds_at_least_what_its_lanes_can() {
        let base = ConsumerSpec::scoring();
        let few = StageSettings {
            lanes: Some(2),
            batch: Some(64),
            ..StageSettings::default()
        };
        assert_eq!(
            few.consumer(base.clone()).max_ack_pending,
            1000,
            "never below the base"
        );
        let many = StageSettings {
            lanes: Some(8),
            batch: Some(128),
            ..StageSettings::default()
        };
        assert_eq!(many.consumer(base).max_ack_pending, 2048);
    }

    #[test]
    fn a_lane_takes_256_messages_at_most_unless_configured_and_never_none() {
        let unset = StageSettings::default().worker_options("scoring");
        assert_eq!(unset.batch, 256);
        let set = StageSettings {
            batch: Some(32),
            ..StageSettings::default()
        };
        assert_eq!(set.worker_options("scoring").batch, 32);
        let zero = StageSettings {
            batch: Some(0),
            ..StageSettings::default()
        };
        assert_eq!(zero.worker_options("scoring").batch, 1);
    }

    #[test]
    fn the_same_key_always_lands_in_the_same_lane() {
        for lanes in 1..16 {
            let a = lane_of("servicenow:incident:abc", lanes);
            assert_eq!(a, lane_of("servicenow:incident:abc", lanes));
            assert!(a < lanes);
        }
    }

    #[test]
    fn keys_spread_over_lanes() {
        let used: std::collections::HashSet<usize> =
            (0..200).map(|i| lane_of(&format!("key-{i}"), 8)).collect();
        assert_eq!(used.len(), 8);
    }

    #[test]
    fn reasons_become_single_header_lines() {
        assert_eq!(single_line("a\nb\r\tc"), "a b  c");
        assert_eq!(single_line(&"x".repeat(2000)).len(), 512);
    }
}

/// How a stage consumes, as written in its configuration section (`[scoring.consumer]`, …).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StageSettings {
    /// Parallel lanes; messages about one record always share a lane. Absent: as many as the
    /// machine has cores, from 2 to 8 ([`default_lanes`]); `herald up` sets its own.
    pub lanes: Option<usize>,
    /// Messages a lane records in one transaction at most. Absent: [`DEFAULT_BATCH`]; `herald up`
    /// sets its own.
    pub batch: Option<usize>,
    /// Deliveries before a failing message is dead-lettered.
    pub max_deliveries: u32,
    /// How long a delivery may go unacknowledged before another replica gets it.
    #[serde(with = "humantime_serde")]
    pub ack_wait: Duration,
}

impl Default for StageSettings {
    fn default() -> Self {
        Self {
            lanes: None,
            batch: None,
            max_deliveries: 5,
            ack_wait: Duration::from_secs(30),
        }
    }
}

/// A stage's lanes when its configuration names none: one a core of the machine (or of the
/// container's CPU quota), at least 2 and at most 8.
///
/// Each lane of a distributed stage holds a transaction of its own in PostgreSQL. On a small
/// machine more lanes than cores do not add work done, they split each pull into smaller batches
/// (more statements and commits an event) that wait for each other: on two cores, at saturation,
/// 2 lanes a stage delivered 1,100–1,500 events/s where 8 delivered 730–910, PostgreSQL spending
/// half the CPU an event (BENCHMARKS.md, eighth sitting).
pub fn default_lanes() -> usize {
    std::thread::available_parallelism()
        .map_or(2, std::num::NonZeroUsize::get)
        .clamp(2, 8)
}

impl StageSettings {
    pub fn worker_options(&self, stage: &str) -> WorkerOptions {
        WorkerOptions {
            lanes: self.lanes.unwrap_or_else(default_lanes).max(1),
            batch: self.batch.unwrap_or(DEFAULT_BATCH).max(1),
            max_deliveries: self.max_deliveries.max(1),
            ..WorkerOptions::new(stage)
        }
    }

    /// The stage's durable consumer: `base` with this stage's ack wait, holding at least as many
    /// unacknowledged messages as its lanes can (each a batch in hand and one waiting). Holding
    /// fewer leaves lanes waiting for each other's acks: under `herald up`, eight lanes of 128 under
    /// a cap of 1,000 took 25 s for a 100k backfill where four lanes of 128 took 17 s
    /// (BENCHMARKS.md, thirty-third sitting).
    pub fn consumer(&self, base: ConsumerSpec) -> ConsumerSpec {
        let lanes_hold =
            i64::try_from(self.worker_options(&base.durable).messages_held()).unwrap_or(i64::MAX);
        ConsumerSpec {
            ack_wait: self.ack_wait,
            max_ack_pending: base.max_ack_pending.max(lanes_hold),
            ..base
        }
    }
}
