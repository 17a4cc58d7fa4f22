//! Sends due deliveries: per channel in order and paced to the channel's rate (a pace shared by
//! every replica), a burst merged into one summary, each channel in a task of its own so a slow
//! channel holds up nobody else; retries with exponential backoff and jitter (or when the
//! receiver says, via Retry-After); every attempt logged.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use chrono::Utc;
use herald_events::backoff::Backoff;
use herald_proto::v1::AnnouncementKind;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    attempt::AttemptOutcome,
    config::{ChannelConfig, NotifySettings},
    merge::{self, Send},
    send::Sender,
    store::{Claimed, Next, Store},
    unpaced::{self, Inlet, Streams},
};

/// Deliveries claimed at once: what a stream keeps room for.
const BATCH: i64 = unpaced::CLAIM_ROOM as i64;

pub struct Dispatcher {
    pub store: Store,
    pub sender: Arc<Sender>,
    pub settings: NotifySettings,
    /// Woken when new deliveries are queued, so they go out at once.
    pub wake: Arc<Notify>,
    /// The unpaced channels' streams, which the stage also hands claimed deliveries to.
    pub streams: Streams,
    /// Their own ends, taken by [`Dispatcher::run`].
    pub inlets: Vec<Inlet>,
}

impl Dispatcher {
    fn backoff(&self) -> Backoff {
        Backoff {
            base: self.settings.retry_base,
            max: self.settings.retry_max,
        }
    }

    /// What comes after an attempt with this outcome.
    pub fn next(&self, attempt: u32, outcome: &AttemptOutcome) -> Next {
        match outcome {
            AttemptOutcome::Delivered { .. } => Next::Delivered,
            AttemptOutcome::Failed { .. } => Next::Failed,
            AttemptOutcome::Retry { .. } if attempt >= self.settings.max_attempts => Next::Failed,
            AttemptOutcome::Retry { after, .. } => {
                // The receiver's Retry-After wins, within our own ceiling.
                let wait = after
                    .map(|a| a.min(self.settings.retry_max))
                    .unwrap_or_else(|| self.backoff().delay(attempt));
                Next::RetryAt(Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default())
            }
        }
    }

    /// An attempt whose dispatcher died mid-send may or may not have reached the channel. Where the
    /// receiver recognises a repeat (a webhook's `webhook-id`, Google Chat's request id, a local
    /// channel) it is sent again under the same id; where a repeat would be a second post that
    /// everyone sees (Slack, Teams, Discord, Mattermost, e-mail) a possible miss that an operator
    /// can see and replay is better than a duplicate (ADR 0001): it is marked failed, saying why.
    /// Either way the interrupted attempt is logged.
    async fn settle_interrupted(&self, claimed: &Claimed) {
        let resend = self
            .settings
            .channel(&claimed.channel)
            .is_some_and(|c| c.kind.recognises_repeats());
        let (outcome, next) = if resend {
            (
                AttemptOutcome::Retry {
                    status: None,
                    error: "interrupted: the process stopped during this attempt; sent again under the same id, which the receiver recognises".into(),
                    after: None,
                },
                Next::RetryAt(Utc::now()),
            )
        } else {
            (
                AttemptOutcome::Failed {
                    status: None,
                    error: "interrupted: the process stopped during this attempt, which may or may not have been posted; not sent again to avoid a duplicate post (replay it if it never arrived)".into(),
                },
                Next::Failed,
            )
        };
        tracing::warn!(delivery = %claimed.id, route = %claimed.route, attempt = claimed.attempt, resend, "an attempt was interrupted by a stop");
        if let Err(e) = self
            .store
            .finish_attempt(claimed, &outcome, Duration::ZERO, next)
            .await
        {
            tracing::error!(delivery = %claimed.id, error = %e, "cannot record the interrupted attempt");
        }
    }

    /// Runs until `shutdown`; attempts under way are finished first. Each channel's deliveries
    /// go out in a task of their own, so a channel that is slow or hangs holds up only itself:
    /// while its task runs, claims leave that channel's deliveries for later.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let inlets = std::mem::take(&mut self.inlets);
        let this = Arc::new(self);
        let lease = this.lease();
        let busy: Arc<std::sync::Mutex<HashSet<String>>> = Arc::default();
        // Woken when a channel's task ends or a full stream has room again, so what waited for
        // that channel is claimed at once.
        let freed = Arc::new(Notify::new());
        let mut streams = tokio::task::JoinSet::new();
        for inlet in inlets {
            streams.spawn(unpaced::run(
                this.clone(),
                inlet,
                freed.clone(),
                shutdown.clone(),
            ));
        }
        let mut sending = tokio::task::JoinSet::new();
        // An interrupted attempt is found only once its lease has run out, so looking for one on
        // every turn of a busy loop bought nothing and cost a scan each time (the largest share of
        // PostgreSQL's time in the benchmark): once per poll interval is enough.
        let mut interrupted_checked: Option<tokio::time::Instant> = None;
        while !shutdown.is_cancelled() {
            while let Some(ended) = sending.try_join_next() {
                if let Err(e) = ended {
                    tracing::error!(error = %e, "a channel's sending task failed");
                }
            }
            if interrupted_checked.is_none_or(|at| at.elapsed() >= this.settings.poll_interval) {
                interrupted_checked = Some(tokio::time::Instant::now());
                match this.store.take_interrupted(lease).await {
                    Ok(interrupted) => {
                        for claimed in interrupted {
                            this.settle_interrupted(&claimed).await;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read interrupted deliveries; will try again")
                    }
                }
            }
            let mut busy_now: Vec<String> = busy_channels(&busy);
            // Room in each stream for what this claim may bring it; a full stream is left out.
            let (mut places, full) = this.streams.reserve_claims();
            busy_now.extend(full);
            // With every channel busy nothing can be claimed; asking anyway read every pending
            // row on each wake (a millisecond of PostgreSQL a time, thousands of times a minute
            // under load).
            let all_busy = !this.settings.channels.is_empty()
                && this
                    .settings
                    .channels
                    .iter()
                    .all(|c| busy_now.contains(&c.name));
            let claimed = if all_busy {
                Ok(Vec::new())
            } else {
                this.store.claim_due_except(&busy_now, BATCH, lease).await
            };
            let got_some = match claimed {
                Ok(claimed) if !claimed.is_empty() => {
                    let claimed_at = tokio::time::Instant::now();
                    for (channel, deliveries) in by_channel(claimed) {
                        if let Some(room) = places.get_mut(channel.as_str()) {
                            hand_over(&this, &channel, deliveries, room).await;
                            continue;
                        }
                        if let Ok(mut busy) = busy.lock() {
                            busy.insert(channel.clone());
                        }
                        let (this, busy, freed) = (this.clone(), busy.clone(), freed.clone());
                        sending.spawn(async move {
                            this.send_channel(channel.clone(), deliveries, claimed_at)
                                .await;
                            if let Ok(mut busy) = busy.lock() {
                                busy.remove(&channel);
                            }
                            freed.notify_one();
                        });
                    }
                    true
                }
                Ok(_) => false,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read due deliveries; will try again");
                    false
                }
            };
            // Room held past the claim would turn the stage's hand-overs away.
            drop(places);
            if got_some {
                continue;
            }
            // While a channel is busy, its own due deliveries would make the next due time "now":
            // wait for a wake, a channel coming free or the poll interval instead.
            let wait = if busy_now.is_empty() {
                match this.store.next_due().await {
                    Ok(Some(due)) => (due - Utc::now()).to_std().unwrap_or(Duration::ZERO),
                    _ => this.settings.poll_interval,
                }
            } else {
                this.settings.poll_interval
            }
            .clamp(Duration::from_millis(10), this.settings.poll_interval);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = this.wake.notified() => {}
                _ = freed.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        while let Some(ended) = sending.join_next().await {
            if let Err(e) = ended {
                tracing::error!(error = %e, "a channel's sending task failed");
            }
        }
        while let Some(ended) = streams.join_next().await {
            if let Err(e) = ended {
                tracing::error!(error = %e, "a channel's stream failed");
            }
        }
        tracing::info!("dispatcher stopped");
    }

    /// How long a claim holds: one attempt's timeout twice over, and some.
    pub fn lease(&self) -> Duration {
        lease(&self.settings)
    }

    /// Waits for this channel's next sending slot, shared with every other replica. `false` when
    /// the slot comes too late for the claim to still hold when the attempt ends.
    async fn wait_for_slot(
        &self,
        channel: &ChannelConfig,
        claimed_at: tokio::time::Instant,
    ) -> bool {
        let interval = channel.min_interval();
        if interval.is_zero() {
            return true;
        }
        let wait = match self.store.reserve_slot(&channel.name, interval).await {
            Ok(slot) => (slot - Utc::now()).to_std().unwrap_or(Duration::ZERO),
            Err(e) => {
                // Without the shared slot, keep this replica's own pace.
                tracing::warn!(channel = %channel.name, error = %e, "cannot reserve a sending slot; pacing locally");
                interval
            }
        };
        let latest = claimed_at + self.lease() - self.settings.request_timeout;
        let at = tokio::time::Instant::now() + wait;
        if at > latest {
            return false;
        }
        tokio::time::sleep_until(at).await;
        true
    }

    /// Sends one channel's deliveries in order, paced, with a burst merged.
    async fn send_channel(
        &self,
        channel_name: String,
        deliveries: Vec<Claimed>,
        claimed_at: tokio::time::Instant,
    ) {
        let Some(channel) = self.settings.channel(&channel_name) else {
            for claimed in deliveries {
                let outcome = AttemptOutcome::Failed {
                    status: None,
                    error: format!("channel {channel_name} is no longer configured"),
                };
                self.finish(&claimed, &channel_name, &outcome, Duration::ZERO)
                    .await;
            }
            return;
        };
        let burst = channel.burst();
        let mut waiting = self.readable(deliveries, &channel_name).await;
        // Wins of this burst already sent on their own.
        let mut alone = 0;
        while !waiting.is_empty() {
            if !self.wait_for_slot(channel, claimed_at).await {
                // The channel's pace will not reach these before their claim runs out: back to
                // the queue, untried, for the next round.
                tracing::info!(channel = %channel_name, deliveries = waiting.len(), "channel pace reached; the rest wait for the next round");
                if let Err(e) = self.store.release(&waiting).await {
                    tracing::warn!(channel = %channel_name, error = %e, "cannot release deliveries; they are retried when their claim runs out");
                }
                return;
            }
            if burst > 0 {
                // What arrived for this channel while it waited joins the burst.
                match self
                    .store
                    .claim_due_on(&channel_name, BATCH, self.lease())
                    .await
                {
                    Ok(more) => waiting.extend(self.readable(more, &channel_name).await),
                    Err(e) => {
                        tracing::warn!(channel = %channel_name, error = %e, "cannot gather more deliveries; sending what is claimed")
                    }
                }
            }
            let mut sends = merge::plan(std::mem::take(&mut waiting), burst, alone).into_iter();
            let Some(send) = sends.next() else { break };
            // The rest are planned again at the next slot, with whatever arrives meanwhile.
            waiting = sends.flat_map(Send::into_deliveries).collect();
            match send {
                Send::One(claimed) => {
                    let Some(announcement) = &claimed.announcement else {
                        continue;
                    };
                    if announcement.kind == AnnouncementKind::HeadlineWin as i32 {
                        alone += 1;
                    }
                    let (outcome, duration) = self
                        .sender
                        .send(channel, &claimed.id, announcement)
                        .instrument(attempt_span(&claimed, &channel_name))
                        .await;
                    self.finish(&claimed, &channel_name, &outcome, duration)
                        .await;
                }
                Send::Merged {
                    carrier,
                    others,
                    summary,
                } => {
                    let (outcome, duration) = self
                        .sender
                        .send(channel, &carrier.id, &summary)
                        .instrument(attempt_span(&carrier, &channel_name))
                        .await;
                    let next = self.next(carrier.try_number, &outcome);
                    self.log(&carrier, &channel_name, &outcome, &next, duration);
                    tracing::info!(delivery = %carrier.id, channel = %channel_name, merged = others.len() + 1, "a burst of wins went out as one summary");
                    metrics::counter!("herald_notify_merged_total", "channel" => channel_name.clone())
                        .increment(others.len() as u64 + 1);
                    if let Err(e) = self
                        .store
                        .finish_merged(&carrier, &others, &outcome, duration, next)
                        .await
                    {
                        tracing::error!(delivery = %carrier.id, error = %e, "cannot record the attempt");
                    }
                }
            }
        }
    }

    /// The claimed deliveries whose stored announcement can be read; each one that cannot is
    /// failed for good, saying so, rather than left claimed until its lease runs out.
    async fn readable(&self, deliveries: Vec<Claimed>, channel: &str) -> Vec<Claimed> {
        let (readable, unreadable): (Vec<Claimed>, Vec<Claimed>) = deliveries
            .into_iter()
            .partition(|c| c.announcement.is_some());
        for claimed in unreadable {
            let outcome = AttemptOutcome::Failed {
                status: None,
                error: "the stored announcement cannot be decoded".into(),
            };
            self.finish(&claimed, channel, &outcome, Duration::ZERO)
                .await;
        }
        readable
    }

    pub(crate) fn log(
        &self,
        claimed: &Claimed,
        channel: &str,
        outcome: &AttemptOutcome,
        next: &Next,
        duration: Duration,
    ) {
        match next {
            Next::Delivered => {
                tracing::info!(delivery = %claimed.id, route = %claimed.route, attempt = claimed.attempt, "delivered")
            }
            Next::RetryAt(at) => {
                tracing::warn!(delivery = %claimed.id, route = %claimed.route, attempt = claimed.attempt, error = outcome.error().unwrap_or(""), retry_at = %at, "delivery failed; will retry")
            }
            Next::Failed => {
                tracing::error!(delivery = %claimed.id, route = %claimed.route, attempt = claimed.attempt, error = outcome.error().unwrap_or(""), "delivery failed for good")
            }
        }
        let result = match next {
            Next::Delivered => "delivered",
            Next::RetryAt(_) => "retry",
            Next::Failed => "failed",
        };
        metrics::counter!("herald_notify_attempts_total", "channel" => channel.to_string(), "result" => result)
            .increment(1);
        metrics::histogram!("herald_notify_attempt_duration_seconds", "channel" => channel.to_string())
            .record(duration.as_secs_f64());
        if matches!(next, Next::Delivered | Next::Failed) {
            let status = if matches!(next, Next::Delivered) {
                "delivered"
            } else {
                "failed"
            };
            metrics::counter!("herald_notify_deliveries_total", "channel" => channel.to_string(), "status" => status)
                .increment(1);
        }
        // From the announcement's making to the channel's answer: what a reader waits.
        if matches!(next, Next::Delivered)
            && let Some(made) = claimed
                .announcement
                .as_ref()
                .and_then(|a| a.created_at.as_ref())
                .and_then(|t| {
                    chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
                })
        {
            let waited = (chrono::Utc::now() - made).to_std().unwrap_or_default();
            metrics::histogram!("herald_notify_announcement_to_delivery_seconds", "channel" => channel.to_string())
                .record(waited.as_secs_f64());
        }
    }

    /// Logs an attempt and moves its delivery on.
    async fn finish(
        &self,
        claimed: &Claimed,
        channel: &str,
        outcome: &AttemptOutcome,
        duration: Duration,
    ) {
        let next = self.next(claimed.try_number, outcome);
        self.log(claimed, channel, outcome, &next, duration);
        if let Err(e) = self
            .store
            .finish_attempt(claimed, outcome, duration, next)
            .await
        {
            // The lease runs out and the delivery is tried again: at worst a repeat the
            // receiver can recognise by its webhook-id.
            tracing::error!(delivery = %claimed.id, error = %e, "cannot record the attempt");
        }
    }
}

/// The span of one attempt, a child of the trace the delivery was queued in: the end of the trace
/// that began at the webhook.
pub(crate) fn attempt_span(claimed: &Claimed, channel: &str) -> tracing::Span {
    let span = tracing::info_span!(
        "notify.deliver",
        delivery = %claimed.id,
        channel,
        attempt = claimed.attempt
    );
    if let Some(traceparent) = &claimed.traceparent {
        herald_events::trace::set_parent_from(
            &span,
            &vec![(
                herald_events::header::TRACEPARENT.to_string(),
                traceparent.clone(),
            )],
        );
    }
    span
}

/// How long a claim holds: one attempt's timeout twice over, and some.
pub fn lease(settings: &NotifySettings) -> Duration {
    settings.request_timeout * 2 + Duration::from_secs(5)
}

/// Puts a channel's claimed deliveries into its stream, what they correct first: a correction
/// claimed with the announcement it corrects goes in after it. Each has its place reserved.
async fn hand_over(
    dispatcher: &Dispatcher,
    channel: &str,
    deliveries: Vec<Claimed>,
    room: &mut unpaced::Places<'_>,
) {
    let deliveries = dispatcher.readable(deliveries, channel).await;
    let (corrections, firsts): (Vec<Claimed>, Vec<Claimed>) =
        deliveries.into_iter().partition(Claimed::is_correction);
    let mut left = Vec::new();
    for claimed in firsts.into_iter().chain(corrections) {
        match room.next() {
            Some(place) => place.send(claimed),
            None => left.push(claimed),
        }
    }
    // A claim is never larger than the room reserved for it; should it be, the rest wait.
    if !left.is_empty()
        && let Err(e) = dispatcher.store.release(&left).await
    {
        tracing::warn!(channel = %channel, error = %e, "cannot give deliveries back; they are sent again when their claim runs out");
    }
}

/// The channels this replica is sending to now.
fn busy_channels(busy: &std::sync::Mutex<HashSet<String>>) -> Vec<String> {
    busy.lock()
        .map(|busy| busy.iter().cloned().collect())
        .unwrap_or_default()
}

/// Claimed deliveries per channel, each channel's in the order they were claimed.
fn by_channel(claimed: Vec<Claimed>) -> HashMap<String, Vec<Claimed>> {
    let mut by_channel: HashMap<String, Vec<Claimed>> = HashMap::new();
    for c in claimed {
        by_channel.entry(c.channel.clone()).or_default().push(c);
    }
    by_channel
}
