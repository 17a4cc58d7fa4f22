//! Herald's bus contracts, shared by every service.
//!
//! - [`subjects`]: subject names (`herald.events.<source>.<kind>`, …) and the four stream families.
//! - [`topology`]: the streams and durable consumers each deployment needs, created or updated
//!   idempotently at start-up.
//! - [`Bus`]: publish with a message id (de-duplicated), pull through a durable consumer with explicit
//!   ack, nak with delay, and a delivery count; read and remove stored messages by sequence (how
//!   dead letters are listed and replayed). [`JetStreamBus`] implements it on NATS JetStream,
//!   [`EmbeddedBus`] in one SQLite file for `herald up`.
//! - [`worker`]: the consume loop every stage runs: ordered lanes per key, retries with backoff, a
//!   bounded number of deliveries and then a dead letter on `herald.dlq.<stage>` with the reason.
//! - [`trace`]: W3C trace context carried in message headers.

pub mod backoff;
mod bus;
pub mod embedded;
mod error;
mod jetstream;
pub mod subjects;
pub mod topology;
pub mod trace;
pub mod worker;

pub use bus::{
    Acker, Backlog, Bus, Headers, IncomingMessage, OutgoingMessage, PublishReceipt, StoredMessage,
    Subscription,
};
pub use embedded::EmbeddedBus;
pub use error::{BusError, Cause};
pub use jetstream::{JetStreamBus, JetStreamOptions};
pub use subjects::StreamFamily;
pub use topology::ConsumerSpec;

/// Header names Herald sets on bus messages.
pub mod header {
    /// The idempotency key: JetStream drops a second publish with the same id in its window.
    pub const MSG_ID: &str = "Nats-Msg-Id";
    /// Messages with the same key are processed in order by one lane of a worker.
    pub const ORDERING_KEY: &str = "Herald-Key";
    /// Why a message was dead-lettered.
    pub const DLQ_REASON: &str = "Herald-Dlq-Reason";
    /// On a replayed message: the dead letter it came from (`<stage>/<sequence>`).
    pub const REPLAY_OF: &str = "Herald-Replay-Of";
    /// W3C trace context.
    pub const TRACEPARENT: &str = "traceparent";
    pub const TRACESTATE: &str = "tracestate";
}
