//! Channels with neither a pace nor merging (webhooks, the console, files by default) are sent to
//! as a stream: each delivery goes out as soon as it is in hand and one of the channel's places is
//! free, and the attempts are logged in groups while the next ones are sent. Sent in rounds (claim,
//! send the round, log it), a delivery queued during a round waited for the whole round before it
//! was even claimed.
//!
//! A stream is fed by the dispatcher (what it claims: retries, held deliveries, anything queued
//! while the stream was full) and by the notify stage itself, which queues a delivery due now to a
//! channel that recognises a repeat already claimed and hands it over after its commit. The
//! hand-over is in memory; if the process stops first, the lease runs out and the delivery is sent
//! again under the same id, which such a channel recognises (ADR 0001).

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::{StreamExt, stream::FuturesUnordered};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    attempt::AttemptOutcome,
    config::{ChannelConfig, NotifySettings},
    dispatcher::{Dispatcher, attempt_span},
    store::{Claimed, Finished},
};

/// Requests in flight at once to one stream's channel.
pub const IN_FLIGHT: usize = 32;

/// Deliveries a stream holds in hand beyond those in flight: room for the dispatcher's claim and
/// the stage's hand-overs at once, and little enough to be sent well inside a lease.
const WAITING: usize = 512;

/// Room a stream must have before the dispatcher claims for it: one claim's worth.
pub const CLAIM_ROOM: usize = 128;

/// The ways into every stream, by channel name. Cheap to clone.
#[derive(Clone, Default)]
pub struct Streams {
    by_channel: Arc<HashMap<String, Entry>>,
}

struct Entry {
    tx: mpsc::Sender<Claimed>,
    /// Whether the stage may queue this channel's deliveries already claimed: only where a repeat
    /// after a stop is recognised, since a claimed delivery not yet sent looks, after a stop, like
    /// an attempt that may have gone out.
    takes_claimed: bool,
    /// Set when the dispatcher found no room: the stream says when it has room again.
    starved: Arc<AtomicBool>,
}

/// A stream's own end, for [`run`].
pub struct Inlet {
    pub channel: String,
    rx: mpsc::Receiver<Claimed>,
    starved: Arc<AtomicBool>,
}

impl Inlet {
    /// The next delivery handed to this stream, if one is waiting.
    pub fn try_recv(&mut self) -> Option<Claimed> {
        self.rx.try_recv().ok()
    }
}

/// Places reserved in one stream: each sends one delivery without waiting.
pub type Places<'a> = mpsc::PermitIterator<'a, Claimed>;

impl Streams {
    /// One stream per channel that has neither a pace nor merging.
    pub fn of(settings: &NotifySettings) -> (Self, Vec<Inlet>) {
        let mut by_channel = HashMap::new();
        let mut inlets = Vec::new();
        for channel in settings.channels.iter().filter(|c| is_unpaced(c)) {
            let (tx, rx) = mpsc::channel(WAITING);
            let starved = Arc::new(AtomicBool::new(false));
            by_channel.insert(
                channel.name.clone(),
                Entry {
                    tx,
                    takes_claimed: channel.kind.recognises_repeats(),
                    starved: starved.clone(),
                },
            );
            inlets.push(Inlet {
                channel: channel.name.clone(),
                rx,
                starved,
            });
        }
        (
            Self {
                by_channel: Arc::new(by_channel),
            },
            inlets,
        )
    }

    /// Places for `n` deliveries the stage queues already claimed, if `channel` takes them and
    /// has the room; `None` leaves them to be queued pending, for the dispatcher.
    pub fn reserve_claimed(&self, channel: &str, n: usize) -> Option<Places<'_>> {
        let entry = self.by_channel.get(channel).filter(|e| e.takes_claimed)?;
        entry.tx.try_reserve_many(n).ok()
    }

    /// Room for one claim of the dispatcher's in every stream that has it, by channel; and the
    /// streams too full for one, which are told to say when they have room again.
    pub fn reserve_claims(&self) -> (HashMap<&str, Places<'_>>, Vec<String>) {
        let mut places = HashMap::new();
        let mut full = Vec::new();
        for (channel, entry) in self.by_channel.iter() {
            match entry.tx.try_reserve_many(CLAIM_ROOM) {
                Ok(room) => {
                    places.insert(channel.as_str(), room);
                }
                Err(_) => {
                    entry.starved.store(true, Ordering::Release);
                    full.push(channel.clone());
                }
            }
        }
        (places, full)
    }
}

/// Whether a channel is sent to as a stream.
pub fn is_unpaced(channel: &ChannelConfig) -> bool {
    channel.min_interval().is_zero() && channel.burst() == 0
}

/// Sends one channel's stream until `shutdown`; then lets what is in flight finish, gives back
/// what waits (untried, due at once) and logs every attempt.
pub async fn run(
    dispatcher: Arc<Dispatcher>,
    inlet: Inlet,
    freed: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let Inlet {
        channel: name,
        mut rx,
        starved,
    } = inlet;
    let Some(channel) = dispatcher.settings.channel(&name).cloned() else {
        return;
    };
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let logger = tokio::spawn(log_attempts(dispatcher.clone(), name.clone(), done_rx));
    let mut in_flight = FuturesUnordered::new();
    // A correction waiting for what went into the stream before it.
    let mut held: Option<Claimed> = None;
    loop {
        if in_flight.is_empty()
            && let Some(correction) = held.take()
        {
            in_flight.push(send(&dispatcher, &channel, correction));
        }
        if starved.load(Ordering::Acquire) && rx.capacity() >= CLAIM_ROOM {
            starved.store(false, Ordering::Release);
            freed.notify_one();
        }
        let room = held.is_none() && in_flight.len() < IN_FLIGHT;
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                let _ = done_tx.send(done);
            }
            Some(claimed) = rx.recv(), if room => {
                if outlived(&dispatcher, &claimed) {
                    give_back(&dispatcher, &name, vec![claimed]).await;
                } else if claimed.is_correction() && !in_flight.is_empty() {
                    // Out only once nothing that entered before it is in flight: a receiver never
                    // reads a correction before what it corrects.
                    held = Some(claimed);
                } else {
                    in_flight.push(send(&dispatcher, &channel, claimed));
                }
            }
        }
    }
    // No more hand-overs; those already given a place arrive within the drain below.
    rx.close();
    let mut waiting: Vec<Claimed> = held.into_iter().collect();
    let drain = async {
        while let Some(claimed) = rx.recv().await {
            waiting.push(claimed);
        }
    };
    if tokio::time::timeout(dispatcher.settings.request_timeout, drain)
        .await
        .is_err()
    {
        tracing::warn!(channel = %name, "a hand-over did not arrive before the stop; its lease runs out and it is sent again under the same id");
    }
    give_back(&dispatcher, &name, waiting).await;
    while let Some(done) = in_flight.next().await {
        let _ = done_tx.send(done);
    }
    drop(done_tx);
    if let Err(e) = logger.await {
        tracing::error!(channel = %name, error = %e, "the attempt log of a channel failed");
    }
}

/// Whether a delivery's claim would run out before an attempt begun now could end.
fn outlived(dispatcher: &Dispatcher, claimed: &Claimed) -> bool {
    claimed.claimed_at.elapsed() + dispatcher.settings.request_timeout >= dispatcher.lease()
}

/// Returns deliveries to the queue, untried, and wakes the dispatcher to claim them again.
async fn give_back(dispatcher: &Dispatcher, channel: &str, claimed: Vec<Claimed>) {
    if claimed.is_empty() {
        return;
    }
    tracing::info!(channel = %channel, deliveries = claimed.len(), "deliveries given back untried, to be claimed again");
    if let Err(e) = dispatcher.store.release(&claimed).await {
        tracing::warn!(channel = %channel, error = %e, "cannot give deliveries back; they are sent again when their claim runs out");
    }
    dispatcher.wake.notify_one();
}

async fn send(
    dispatcher: &Dispatcher,
    channel: &ChannelConfig,
    claimed: Claimed,
) -> (Claimed, AttemptOutcome, Duration) {
    let (outcome, duration) = match &claimed.announcement {
        Some(announcement) => {
            dispatcher
                .sender
                .send(channel, &claimed.id, announcement)
                .instrument(attempt_span(&claimed, &channel.name))
                .await
        }
        None => (
            AttemptOutcome::Failed {
                status: None,
                error: "the stored announcement cannot be decoded".into(),
            },
            Duration::ZERO,
        ),
    };
    (claimed, outcome, duration)
}

/// Logs ended attempts in one transaction for as many as have ended while the last one committed:
/// the log keeps up with the sends without a commit for each.
async fn log_attempts(
    dispatcher: Arc<Dispatcher>,
    channel: String,
    mut done: mpsc::UnboundedReceiver<(Claimed, AttemptOutcome, Duration)>,
) {
    let mut ended = Vec::new();
    while done.recv_many(&mut ended, 1024).await > 0 {
        let finished: Vec<Finished<'_>> = ended
            .iter()
            .map(|(claimed, outcome, duration)| {
                let next = dispatcher.next(claimed.try_number, outcome);
                dispatcher.log(claimed, &channel, outcome, &next, *duration);
                Finished {
                    claimed,
                    outcome,
                    duration: *duration,
                    next,
                }
            })
            .collect();
        if let Err(e) = dispatcher.store.finish_attempts(&finished).await {
            // The leases run out and the deliveries are tried again: at worst a repeat the
            // receiver recognises by its webhook-id.
            tracing::error!(channel = %channel, deliveries = finished.len(), error = %e, "cannot record the attempts");
        }
        ended.clear();
    }
}
