/// What went wrong underneath, kept whole so the chain reaches the log.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failure talking to the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: Cause,
    },
    #[error(
        "nats-server {found} is too old: Herald needs {required} or newer with JetStream enabled (-js)"
    )]
    ServerVersion { found: String, required: String },
    #[error("JetStream is not available on the server: {0} (start nats-server with -js)")]
    JetStreamUnavailable(String),
    #[error("stream {stream} could not be created or updated: {source}")]
    Stream {
        stream: String,
        #[source]
        source: Cause,
    },
    #[error("consumer {consumer} on {stream} could not be created or updated: {source}")]
    Consumer {
        stream: String,
        consumer: String,
        #[source]
        source: Cause,
    },
    #[error("publish to {subject} failed: {source}")]
    Publish {
        subject: String,
        #[source]
        source: Cause,
    },
    #[error("message of {size} bytes is larger than the server's limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("receiving from consumer {consumer} failed: {source}")]
    Receive {
        consumer: String,
        #[source]
        source: Cause,
    },
    #[error("acknowledging a message failed: {0}")]
    Ack(#[source] Cause),
    #[error("reading or removing stored messages of {stream} failed: {source}")]
    Stored {
        stream: String,
        #[source]
        source: Cause,
    },
    #[error("the bus is not ready: {0}")]
    NotReady(String),
}
