/// A failure talking to the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to NATS at {url}: {message}")]
    Connect { url: String, message: String },
    #[error(
        "nats-server {found} is too old: Herald needs {required} or newer with JetStream enabled (-js)"
    )]
    ServerVersion { found: String, required: String },
    #[error("JetStream is not available on the server: {0} (start nats-server with -js)")]
    JetStreamUnavailable(String),
    #[error("stream {stream} could not be created or updated: {message}")]
    Stream { stream: String, message: String },
    #[error("consumer {consumer} on {stream} could not be created or updated: {message}")]
    Consumer {
        stream: String,
        consumer: String,
        message: String,
    },
    #[error("publish to {subject} failed: {message}")]
    Publish { subject: String, message: String },
    #[error("message of {size} bytes is larger than the server's limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("receiving from consumer {consumer} failed: {message}")]
    Receive { consumer: String, message: String },
    #[error("acknowledging a message failed: {0}")]
    Ack(String),
    #[error("reading or removing stored messages of {stream} failed: {message}")]
    Stored { stream: String, message: String },
    #[error("the bus is not ready: {0}")]
    NotReady(String),
}
