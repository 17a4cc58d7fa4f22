//! The Bus abstraction: what Herald needs from a durable message bus, whichever implements it.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::{BusError, StreamFamily, header, topology::ConsumerSpec};

/// Message headers, in order. Names compare case-insensitively.
pub type Headers = Vec<(String, String)>;

/// A message to publish.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    pub subject: String,
    /// The idempotency key: a second publish with the same id is dropped by the bus.
    pub msg_id: String,
    pub payload: Bytes,
    pub headers: Headers,
    /// The publisher publishes this message again, under the same id, if the message that
    /// produced it is delivered again, and acknowledges that message only after this publish. A
    /// bus that syncs each publish to disk may then confirm this one before it is on disk: a power
    /// cut that loses it loses the later acknowledgement with it, and the redelivery publishes it
    /// again (see [`OutgoingMessage::republished_on_redelivery`]).
    pub republished_on_redelivery: bool,
}

impl OutgoingMessage {
    pub fn new(
        subject: impl Into<String>,
        msg_id: impl Into<String>,
        payload: impl Into<Bytes>,
    ) -> Self {
        Self {
            subject: subject.into(),
            msg_id: msg_id.into(),
            payload: payload.into(),
            headers: Vec::new(),
            republished_on_redelivery: false,
        }
    }

    /// Marks a stage's output that its input's redelivery publishes again. Only for a publisher
    /// that has committed what it made of the input before publishing, publishes the same message
    /// id again when the input comes back, and acknowledges the input after the publish: the
    /// embedded bus then stores it without waiting for the disk, which took two of the six fsyncs
    /// an event cost `herald up` on its way to a webhook. JetStream ignores it.
    pub fn republished_on_redelivery(mut self) -> Self {
        self.republished_on_redelivery = true;
        self
    }

    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Messages with the same ordering key are handled in order by consumers.
    pub fn with_ordering_key(self, key: impl Into<String>) -> Self {
        self.with_header(header::ORDERING_KEY, key)
    }

    /// The headers as stored: the given ones with `Nats-Msg-Id` set to the message id (replacing
    /// any the caller put there).
    pub fn stored_headers(&self) -> Headers {
        let mut headers = self.headers.clone();
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case(header::MSG_ID));
        headers.push((header::MSG_ID.to_string(), self.msg_id.clone()));
        headers
    }

    /// Adds the current span's trace context.
    pub fn with_trace_context(mut self) -> Self {
        crate::trace::inject_current(&mut self.headers);
        self
    }
}

/// What the bus answered to a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishReceipt {
    /// The message id was seen before: nothing new was stored.
    pub duplicate: bool,
    /// Position in the stream.
    pub sequence: u64,
}

/// Acknowledgement of one delivery, implemented by each bus.
#[async_trait]
pub trait Acker: Send + Sync {
    /// Done: never deliver this message to this consumer again.
    async fn ack(&self) -> Result<(), BusError>;
    /// Not done: deliver it again after `delay`.
    async fn nak(&self, delay: Duration) -> Result<(), BusError>;
    /// Still working: restart the acknowledgement timer.
    async fn in_progress(&self) -> Result<(), BusError>;
}

/// One delivery of a message to a durable consumer.
pub struct IncomingMessage {
    pub subject: String,
    pub payload: Bytes,
    pub headers: Headers,
    /// 1 on the first delivery, counting every redelivery after a nak or a timeout.
    pub delivered: u32,
    /// Position in the stream.
    pub sequence: u64,
    acker: Box<dyn Acker>,
}

impl std::fmt::Debug for IncomingMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncomingMessage")
            .field("subject", &self.subject)
            .field("msg_id", &self.msg_id())
            .field("delivered", &self.delivered)
            .field("sequence", &self.sequence)
            .field("bytes", &self.payload.len())
            .finish()
    }
}

impl IncomingMessage {
    pub fn new(
        subject: String,
        payload: Bytes,
        headers: Headers,
        delivered: u32,
        sequence: u64,
        acker: Box<dyn Acker>,
    ) -> Self {
        Self {
            subject,
            payload,
            headers,
            delivered,
            sequence,
            acker,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        crate::trace::header(&self.headers, name)
    }

    pub fn msg_id(&self) -> Option<&str> {
        self.header(header::MSG_ID)
    }

    /// What orders this message against others: the ordering key, else the message id, else the
    /// subject.
    pub fn ordering_key(&self) -> &str {
        self.header(header::ORDERING_KEY)
            .or_else(|| self.msg_id())
            .unwrap_or(&self.subject)
    }

    pub async fn ack(&self) -> Result<(), BusError> {
        self.acker.ack().await
    }

    pub async fn nak(&self, delay: Duration) -> Result<(), BusError> {
        self.acker.nak(delay).await
    }

    pub async fn in_progress(&self) -> Result<(), BusError> {
        self.acker.in_progress().await
    }
}

/// A message as the bus keeps it in a stream, read outside any consumer (to inspect or repair it:
/// dead letters are listed, replayed and removed this way).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    /// Position in the stream; what [`Bus::delete_stored`] takes.
    pub sequence: u64,
    pub subject: String,
    pub headers: Headers,
    pub payload: Bytes,
    /// When the bus stored it.
    pub stored_at: DateTime<Utc>,
}

impl StoredMessage {
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::trace::header(&self.headers, name)
    }
}

/// How far a durable consumer is behind, as an operator scales on it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Stored and not yet delivered to any replica.
    pub pending: u64,
    /// Delivered and not yet acknowledged (in hand, or waiting for redelivery).
    pub ack_pending: u64,
}

/// A stream of deliveries from one durable consumer.
#[async_trait]
pub trait Subscription: Send {
    /// The next delivery; `None` when the subscription has ended and must be opened again.
    async fn next(&mut self) -> Option<Result<IncomingMessage, BusError>>;
}

/// A durable message bus with JetStream's semantics: streams per family, durable consumers shared by
/// replicas, explicit ack, nak with delay, delivery counts, de-duplication by message id.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Creates or updates the streams and the given durable consumers. Idempotent.
    async fn ensure_topology(&self, consumers: &[ConsumerSpec]) -> Result<(), BusError>;

    /// Publishes and waits until the bus has stored the message (or recognised it as a duplicate).
    async fn publish(&self, message: OutgoingMessage) -> Result<PublishReceipt, BusError>;

    /// Publishes `messages` so the bus stores them in this order, and waits until each is stored:
    /// one answer per message, in order. This default publishes one at a time; JetStream and the
    /// embedded bus send them all before waiting for the first acknowledgement, so a batch costs
    /// about one round trip (or one group commit) rather than one per message.
    async fn publish_in_order(
        &self,
        messages: Vec<OutgoingMessage>,
    ) -> Vec<Result<PublishReceipt, BusError>> {
        let mut answers = Vec::with_capacity(messages.len());
        for message in messages {
            answers.push(self.publish(message).await);
        }
        answers
    }

    /// Opens a subscription on a durable consumer created by [`Bus::ensure_topology`].
    async fn subscribe(&self, consumer: &ConsumerSpec) -> Result<Box<dyn Subscription>, BusError>;

    /// Messages stored in `family`'s stream with a sequence above `after_sequence`, oldest first, at
    /// most `limit`; only those whose subject matches `subject_filter` (NATS wildcards) when given.
    /// Removed and expired messages are skipped.
    async fn list_stored(
        &self,
        family: StreamFamily,
        subject_filter: Option<&str>,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, BusError>;

    /// The message at `sequence` in `family`'s stream, if it is still stored.
    async fn get_stored(
        &self,
        family: StreamFamily,
        sequence: u64,
    ) -> Result<Option<StoredMessage>, BusError> {
        let found = self
            .list_stored(family, None, sequence.saturating_sub(1), 1)
            .await?;
        Ok(found.into_iter().find(|m| m.sequence == sequence))
    }

    /// Removes the message at `sequence` from `family`'s stream. `false` when there was none (already
    /// removed or expired), so removing twice is harmless.
    async fn delete_stored(&self, family: StreamFamily, sequence: u64) -> Result<bool, BusError>;

    /// Whether the bus is reachable and its streams exist.
    async fn check_ready(&self) -> Result<(), BusError>;

    /// How far `consumer` is behind.
    async fn backlog(&self, consumer: &ConsumerSpec) -> Result<Backlog, BusError>;

    /// The largest payload the bus accepts, in bytes.
    fn max_payload(&self) -> usize;

    /// Sends whatever is buffered (acks, publishes) before the process exits.
    async fn flush(&self) -> Result<(), BusError>;
}
