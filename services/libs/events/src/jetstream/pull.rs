//! A durable consumer read through Herald's own pull requests.
//!
//! async-nats's `Consumer::stream()` sends its pull requests from a task of its own and learns that
//! a request went out through a channel, while the stream counts the replies. On a busy machine the
//! replies to a request can be counted before the request is: the stream then believes messages
//! are still on their way that the server has already sent, asks for no more, and the consumer
//! sits idle with thousands of messages waiting until a missed heartbeat opens it again. Seen with
//! the server's own figures (`/jsz`: no waiting request, nothing unacknowledged, every request
//! delivered in full) in 3 of 16 100,000-row backfills on nats-server 2.15.1 and 1 of 6 on 2.9.10,
//! each stall about 4 s (BENCHMARKS.md, twenty-eighth sitting). Here a request is counted in the
//! same step that sends it, before any reply to it can be read.

use std::time::Duration;

use async_nats::{StatusCode, Subscriber, jetstream};
use bytes::Bytes;
use futures::StreamExt;

use crate::Cause;

/// How one subscription asks for messages.
#[derive(Debug, Clone, Copy)]
pub(super) struct PullSettings {
    /// Messages one pull request asks for; another is sent once half of them have arrived.
    pub batch: usize,
    /// How long the server keeps a request waiting for messages.
    pub expires: Duration,
    /// How often the server says a waiting request is alive; two missed in a row end the
    /// subscription.
    pub heartbeat: Duration,
}

/// What reading the next message gave.
#[allow(clippy::large_enum_variant)] // returned once a message and matched at once; a box would allocate for each
pub(super) enum Pulled {
    Message(jetstream::Message),
    /// The subscription cannot go on (missed heartbeats, the inbox closed, a request that could
    /// not be sent or that the server refused); the caller opens a new one, which backs off while
    /// the bus stays away instead of asking again at once.
    Ended(String),
}

/// Messages asked for that have neither arrived nor been given up by the server.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Outstanding(usize);

impl Outstanding {
    /// Whether to ask for another batch: at most half of the last one is still to come, so the
    /// next arrives before this one runs out.
    fn wants_more(self, batch: usize) -> bool {
        self.0 <= batch / 2
    }

    fn asked(&mut self, batch: usize) {
        self.0 = self.0.saturating_add(batch);
    }

    fn arrived(&mut self) {
        self.0 = self.0.saturating_sub(1);
    }

    /// A request ended with `left` of its messages never sent (it expired, or the server ended it).
    fn given_up(&mut self, left: usize) {
        self.0 = self.0.saturating_sub(left);
    }
}

/// One subscription: an inbox, and the pull requests that fill it.
pub(super) struct Pull {
    client: async_nats::Client,
    context: jetstream::Context,
    /// `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`.
    next_subject: String,
    inbox: String,
    subscriber: Subscriber,
    request: Bytes,
    settings: PullSettings,
    outstanding: Outstanding,
}

impl Pull {
    pub(super) async fn open(
        context: jetstream::Context,
        stream: &str,
        consumer: &str,
        settings: PullSettings,
    ) -> Result<Self, Cause> {
        let client = context.client();
        let inbox = client.new_inbox();
        let subscriber = client.subscribe(inbox.clone()).await?;
        let request = serde_json::to_vec(&serde_json::json!({
            "batch": settings.batch,
            "expires": nanos(settings.expires),
            "idle_heartbeat": nanos(settings.heartbeat),
        }))?;
        Ok(Self {
            client,
            context,
            next_subject: format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"),
            inbox,
            subscriber,
            request: Bytes::from(request),
            settings,
            outstanding: Outstanding::default(),
        })
    }

    pub(super) async fn next(&mut self) -> Pulled {
        loop {
            if self.outstanding.wants_more(self.settings.batch) {
                if let Err(e) = self
                    .client
                    .publish_with_reply(
                        self.next_subject.clone(),
                        self.inbox.clone(),
                        self.request.clone(),
                    )
                    .await
                {
                    return Pulled::Ended(format!("cannot send a pull request: {e}"));
                }
                self.outstanding.asked(self.settings.batch);
            }
            // Counted from when this call starts waiting, not from the last message: a caller busy
            // for longer than two heartbeats must not mistake its own absence for the server's.
            let message =
                match tokio::time::timeout(self.settings.heartbeat * 2, self.subscriber.next())
                    .await
                {
                    Err(_) => return Pulled::Ended("missed idle heartbeat".into()),
                    Ok(None) => return Pulled::Ended("the inbox subscription closed".into()),
                    Ok(Some(message)) => message,
                };
            match message.status.unwrap_or(StatusCode::OK) {
                StatusCode::OK => {
                    self.outstanding.arrived();
                    return Pulled::Message(jetstream::Message {
                        message,
                        context: self.context.clone(),
                    });
                }
                StatusCode::IDLE_HEARTBEAT => {}
                StatusCode::TIMEOUT | StatusCode::REQUEST_TERMINATED => {
                    match left_unsent(&message) {
                        Some(left) => self.outstanding.given_up(left),
                        // Ended without saying how much of it was left: not a request of ours
                        // running out but the server refusing (the consumer deleted or changed).
                        None => return Pulled::Ended(refusal(&message)),
                    }
                }
                _ => return Pulled::Ended(refusal(&message)),
            }
        }
    }
}

/// How many messages of the request a status reply ends were never sent
/// (`Nats-Pending-Messages`), if it says.
fn left_unsent(message: &async_nats::Message) -> Option<usize> {
    message
        .headers
        .as_ref()?
        .get("Nats-Pending-Messages")?
        .as_str()
        .parse()
        .ok()
}

fn refusal(message: &async_nats::Message) -> String {
    let status = message.status.map_or(0, |s| s.as_u16());
    match message.description.as_deref() {
        Some(description) => {
            format!("the server answered a pull request with {status} {description}")
        }
        None => format!("the server answered a pull request with {status}"),
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use async_nats::{HeaderMap, StatusCode};

    use super::{Outstanding, left_unsent, refusal};

    fn status(code: u16, description: &str, pending: Option<&str>) -> async_nats::Message {
        let headers = pending.map(|n| {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Pending-Messages", n);
            headers
        });
        async_nats::Message {
            subject: "_INBOX.x".into(),
            reply: None,
            payload: bytes::Bytes::new(),
            headers,
            status: StatusCode::from_u16(code).ok(),
            description: Some(description.to_string()),
            length: 0,
        }
    }

    #[test]
    fn an_expired_request_says_how_much_of_it_was_never_sent() {
        assert_eq!(
            left_unsent(&status(408, "Request Timeout", Some("70"))),
            Some(70)
        );
        // Without the count the request's end cannot be accounted for: the subscription ends.
        let deleted = status(409, "Consumer Deleted", None);
        assert_eq!(left_unsent(&deleted), None);
        assert_eq!(
            refusal(&deleted),
            "the server answered a pull request with 409 Consumer Deleted"
        );
    }

    #[test]
    fn a_batch_is_asked_for_once_half_of_the_last_has_arrived() {
        let mut outstanding = Outstanding::default();
        assert!(outstanding.wants_more(100));
        outstanding.asked(100);
        for _ in 0..49 {
            outstanding.arrived();
        }
        assert!(!outstanding.wants_more(100), "51 still to come");
        outstanding.arrived();
        assert!(outstanding.wants_more(100), "50 still to come");
    }

    #[test]
    fn a_request_that_expires_stops_being_waited_for() {
        let mut outstanding = Outstanding::default();
        outstanding.asked(100);
        outstanding.asked(100);
        for _ in 0..30 {
            outstanding.arrived();
        }
        // The first request expired with 70 of its messages never sent: 100 are still to come.
        outstanding.given_up(70);
        assert_eq!(outstanding, Outstanding(100));
        assert!(!outstanding.wants_more(100));
        outstanding.given_up(100);
        assert!(outstanding.wants_more(100));
    }

    #[test]
    fn more_arrivals_than_asked_for_never_wrap() {
        let mut outstanding = Outstanding::default();
        outstanding.arrived();
        outstanding.given_up(5);
        assert_eq!(outstanding, Outstanding(0));
    }
}
