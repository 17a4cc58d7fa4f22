//! Sends due deliveries: per channel in order and paced to the channel's rate, channels in
//! parallel; retries with exponential backoff and jitter (or when the receiver says, via
//! Retry-After); every attempt logged.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::Utc;
use futures::future::join_all;
use herald_events::backoff::Backoff;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{
    attempt::AttemptOutcome,
    config::NotifySettings,
    send::Sender,
    store::{Claimed, Next, Store},
};

const BATCH: i64 = 50;

pub struct Dispatcher {
    pub store: Store,
    pub sender: Sender,
    pub settings: NotifySettings,
    /// Woken when new deliveries are queued, so they go out at once.
    pub wake: Arc<Notify>,
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

    /// Runs until `shutdown`; an attempt under way is finished first.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut last_sent: HashMap<String, tokio::time::Instant> = HashMap::new();
        let lease = self.settings.request_timeout * 2 + Duration::from_secs(5);
        while !shutdown.is_cancelled() {
            match self.store.take_interrupted(lease).await {
                Ok(interrupted) => {
                    for claimed in interrupted {
                        self.settle_interrupted(&claimed).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read interrupted deliveries; will try again")
                }
            }
            match self.store.claim_due(BATCH, lease).await {
                Ok(claimed) if !claimed.is_empty() => {
                    self.send_batch(claimed, &mut last_sent).await;
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read due deliveries; will try again"),
            }
            let wait = match self.store.next_due().await {
                Ok(Some(due)) => (due - Utc::now()).to_std().unwrap_or(Duration::ZERO),
                _ => self.settings.poll_interval,
            }
            .clamp(Duration::from_millis(10), self.settings.poll_interval);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        tracing::info!("dispatcher stopped");
    }

    async fn send_batch(
        &self,
        claimed: Vec<Claimed>,
        last_sent: &mut HashMap<String, tokio::time::Instant>,
    ) {
        let mut by_channel: HashMap<String, Vec<Claimed>> = HashMap::new();
        for c in claimed {
            by_channel.entry(c.channel.clone()).or_default().push(c);
        }
        let runs = by_channel.into_iter().map(|(channel, deliveries)| {
            let previous = last_sent.get(&channel).copied();
            async move {
                let sent = self.send_channel(&channel, deliveries, previous).await;
                (channel, sent)
            }
        });
        for (channel, sent) in join_all(runs).await {
            if let Some(at) = sent {
                last_sent.insert(channel, at);
            }
        }
    }

    /// Sends one channel's deliveries in order, paced; returns when the last was sent.
    async fn send_channel(
        &self,
        channel_name: &str,
        deliveries: Vec<Claimed>,
        mut previous: Option<tokio::time::Instant>,
    ) -> Option<tokio::time::Instant> {
        let channel = self.settings.channel(channel_name);
        for claimed in deliveries {
            let (outcome, duration) = match (channel, &claimed.announcement) {
                (None, _) => (
                    AttemptOutcome::Failed {
                        status: None,
                        error: format!("channel {channel_name} is no longer configured"),
                    },
                    Duration::ZERO,
                ),
                (Some(_), None) => (
                    AttemptOutcome::Failed {
                        status: None,
                        error: "the stored announcement cannot be decoded".into(),
                    },
                    Duration::ZERO,
                ),
                (Some(channel), Some(announcement)) => {
                    if let Some(previous) = previous {
                        tokio::time::sleep_until(previous + channel.min_interval()).await;
                    }
                    let result = self.sender.send(channel, &claimed.id, announcement).await;
                    previous = Some(tokio::time::Instant::now());
                    result
                }
            };
            let next = self.next(claimed.attempt, &outcome);
            match &next {
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
            metrics::counter!("herald_notify_attempts_total", "channel" => channel_name.to_string(), "result" => result)
                .increment(1);
            if let Err(e) = self
                .store
                .finish_attempt(&claimed, &outcome, duration, next)
                .await
            {
                // The lease runs out and the delivery is tried again: at worst a repeat the
                // receiver can recognise by its webhook-id.
                tracing::error!(delivery = %claimed.id, error = %e, "cannot record the attempt");
            }
        }
        previous
    }
}
