//! The Bus on NATS JetStream.

use std::time::Duration;

mod pull;

use async_nats::jetstream::{self, AckKind, consumer, stream};
use async_trait::async_trait;

use crate::{
    Acker, Backlog, Bus, BusError, Cause, Headers, IncomingMessage, OutgoingMessage,
    PublishReceipt, StoredMessage, StreamFamily, Subscription, topology::ConsumerSpec,
    topology::StreamSettings,
};

/// An error about `spec`'s consumer, naming its stream and durable name.
fn consumer_error(spec: &ConsumerSpec) -> impl Fn(Cause) -> BusError + '_ {
    move |source| BusError::Consumer {
        stream: spec.family.stream_name().to_string(),
        consumer: spec.durable.clone(),
        source,
    }
}

/// The oldest nats-server Herald runs on: nak with delay and consumer backoff arrived in 2.7, and
/// 2.9 is what Debian ships.
const MIN_SERVER: (u64, u64) = (2, 9);

/// How to reach NATS.
#[derive(Debug, Clone)]
pub struct JetStreamOptions {
    pub url: String,
    /// The client name shown in `nats server report connections`.
    pub client_name: String,
    pub streams: StreamSettings,
    pub connect_timeout: Duration,
    /// How long to wait, once connected, for the server's JetStream API to answer.
    pub ready_timeout: Duration,
}

impl JetStreamOptions {
    pub fn new(url: impl Into<String>, client_name: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            client_name: client_name.into(),
            streams: StreamSettings::default(),
            connect_timeout: Duration::from_secs(5),
            ready_timeout: Duration::from_secs(30),
        }
    }
}

/// The servers of `url`: one address, or a cluster's addresses separated by commas (the client also
/// learns the others from the first it reaches).
fn servers(url: &str) -> Result<Vec<async_nats::ServerAddr>, std::io::Error> {
    url.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| {
            u.parse::<async_nats::ServerAddr>().map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{u:?}: {e}"))
            })
        })
        .collect()
}

/// Asks the server for its JetStream account until it answers or `ready_timeout` passes.
///
/// A server that has only just started (or restarted with a large store) accepts connections a
/// while before its JetStream API answers; on a busy machine that first answer can take seconds.
/// Waiting here keeps a service that starts beside its server from failing its first start. A
/// server without JetStream says so at once ("no responders" or an error answer), and that is not
/// waited on.
async fn probe_jetstream(
    client: &async_nats::Client,
    ready_timeout: Duration,
) -> Result<(), BusError> {
    // A raw API request: the typed account query does not parse 2.9's answer.
    let deadline = tokio::time::Instant::now() + ready_timeout;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let request = async_nats::Request::new().timeout(Some(JETSTREAM_PROBE_TIMEOUT));
        match client.send_request("$JS.API.INFO", request).await {
            Ok(reply) => {
                let text = String::from_utf8_lossy(&reply.payload);
                if text.contains("\"error\"") {
                    return Err(BusError::JetStreamUnavailable(text.into_owned()));
                }
                return Ok(());
            }
            Err(e)
                if e.kind() == async_nats::client::RequestErrorKind::TimedOut
                    && tokio::time::Instant::now() + JETSTREAM_PROBE_TIMEOUT <= deadline =>
            {
                tracing::warn!(
                    attempt,
                    "the JetStream API has not answered yet; asking again"
                );
            }
            Err(e) => return Err(BusError::JetStreamUnavailable(e.to_string())),
        }
    }
}

/// How long one JetStream readiness question may take before it is asked again.
const JETSTREAM_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A connected JetStream bus.
#[derive(Clone)]
pub struct JetStreamBus {
    client: async_nats::Client,
    js: jetstream::Context,
    options: JetStreamOptions,
}

impl std::fmt::Debug for JetStreamBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamBus")
            .field("url", &self.options.url)
            .finish()
    }
}

impl JetStreamBus {
    /// Connects and checks that the server is recent enough and has JetStream.
    pub async fn connect(options: JetStreamOptions) -> Result<Self, BusError> {
        let connect_error = |source: Cause| BusError::Connect {
            url: options.url.clone(),
            source,
        };
        let client = async_nats::ConnectOptions::new()
            .name(&options.client_name)
            .connection_timeout(options.connect_timeout)
            // After the first connection, reconnect for ever: a NATS restart must not kill services.
            .max_reconnects(None)
            .connect(servers(&options.url).map_err(|e| connect_error(e.into()))?)
            .await
            .map_err(|e| connect_error(e.into()))?;

        let info = client.server_info();
        check_version(&info.version)?;
        probe_jetstream(&client, options.ready_timeout).await?;
        let js = jetstream::new(client.clone());
        Ok(Self {
            client,
            js,
            options,
        })
    }

    fn stream_config(&self, family: StreamFamily) -> stream::Config {
        let settings = &self.options.streams;
        stream::Config {
            name: family.stream_name().to_string(),
            subjects: vec![family.wildcard().to_string()],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            max_age: settings.max_age(family),
            duplicate_window: settings.duplicate_window,
            num_replicas: settings.replicas,
            description: Some(format!("Herald {family:?}")),
            ..Default::default()
        }
    }

    /// Creates a stream only when it is missing and updates it only when it differs, retrying a
    /// few times: when every service starts at once against an empty server they race to create
    /// the same streams, and concurrent conflicting writes have crashed nats-server 2.9.
    async fn ensure_stream(&self, family: StreamFamily) -> Result<(), BusError> {
        let wanted = self.stream_config(family);
        let stream_error = |source: Cause| BusError::Stream {
            stream: family.stream_name().to_string(),
            source,
        };
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result = match self.js.get_stream(family.stream_name()).await {
                Ok(mut stream) => match stream.info().await {
                    Ok(info) if stream_matches(&info.config, &wanted) => return Ok(()),
                    Ok(_) => self
                        .js
                        .update_stream(wanted.clone())
                        .await
                        .map(|_| ())
                        .map_err(Cause::from),
                    Err(e) => Err(Cause::from(e)),
                },
                // Missing: create it. If another service created it meanwhile, the next round
                // finds it and compares.
                Err(_) => self
                    .js
                    .create_stream(wanted.clone())
                    .await
                    .map(|_| ())
                    .map_err(Cause::from),
            };
            match result {
                Ok(()) => return Ok(()),
                Err(e) if attempt < 5 => {
                    let wait = Duration::from_millis(50 * u64::from(attempt))
                        + Duration::from_millis(rand::random_range(0..100));
                    tracing::debug!(stream = family.stream_name(), error = %e, attempt, "stream not ready yet; trying again");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(stream_error(e)),
            }
        }
    }

    fn consumer_config(spec: &ConsumerSpec) -> consumer::pull::Config {
        consumer::pull::Config {
            durable_name: Some(spec.durable.clone()),
            description: Some(format!("Herald {} stage", spec.durable)),
            filter_subject: spec.filter_subject.clone(),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: spec.ack_wait,
            // The worker counts deliveries and dead-letters; the server must never drop a message
            // silently after a maximum of its own.
            max_deliver: -1,
            max_ack_pending: spec.max_ack_pending,
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        }
    }
}

/// The settings Herald sets on a stream, compared with what the server has.
fn stream_matches(current: &stream::Config, wanted: &stream::Config) -> bool {
    current.subjects == wanted.subjects
        && current.storage == wanted.storage
        && current.retention == wanted.retention
        && current.max_age == wanted.max_age
        && current.duplicate_window == wanted.duplicate_window
        && current.num_replicas == wanted.num_replicas
}

/// The settings Herald sets on a durable consumer, compared with what the server has.
fn consumer_matches(current: &consumer::Config, wanted: &consumer::pull::Config) -> bool {
    current.durable_name == wanted.durable_name
        && current.filter_subject == wanted.filter_subject
        && current.ack_policy == wanted.ack_policy
        && current.ack_wait == wanted.ack_wait
        && current.max_deliver == wanted.max_deliver
        && current.max_ack_pending == wanted.max_ack_pending
}

fn stored_error(family: StreamFamily, e: impl Into<Cause>) -> BusError {
    BusError::Stored {
        stream: family.stream_name().to_string(),
        source: e.into(),
    }
}

fn stored_message(message: jetstream::message::StreamMessage) -> StoredMessage {
    let nanos = message.time.unix_timestamp_nanos();
    StoredMessage {
        sequence: message.sequence,
        subject: message.subject.to_string(),
        headers: from_header_map(Some(&message.headers)),
        payload: message.payload,
        stored_at: chrono::DateTime::from_timestamp_nanos(i64::try_from(nanos).unwrap_or(i64::MAX)),
    }
}

fn check_version(version: &str) -> Result<(), BusError> {
    let mut parts = version
        .trim_start_matches('v')
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if found < MIN_SERVER {
        return Err(BusError::ServerVersion {
            found: version.to_string(),
            required: format!("{}.{}", MIN_SERVER.0, MIN_SERVER.1),
        });
    }
    Ok(())
}

fn to_header_map(headers: &Headers) -> async_nats::HeaderMap {
    let mut map = async_nats::HeaderMap::new();
    for (name, value) in headers {
        map.append(name.as_str(), value.as_str());
    }
    map
}

fn from_header_map(map: Option<&async_nats::HeaderMap>) -> Headers {
    let Some(map) = map else {
        return Vec::new();
    };
    map.iter()
        .flat_map(|(name, values)| {
            values
                .iter()
                .map(move |value| (name.to_string(), value.as_str().to_string()))
        })
        .collect()
}

#[async_trait]
impl Bus for JetStreamBus {
    async fn ensure_topology(&self, consumers: &[ConsumerSpec]) -> Result<(), BusError> {
        for family in StreamFamily::ALL {
            self.ensure_stream(family).await?;
        }
        for spec in consumers {
            let stream_name = spec.family.stream_name();
            let consumer_error = consumer_error(spec);
            let stream = self
                .js
                .get_stream(stream_name)
                .await
                .map_err(|e| consumer_error(e.into()))?;
            let wanted = Self::consumer_config(spec);
            // Services starting together would all write the same consumer; only write it when
            // it is missing or differs, so the usual start reads and writes nothing.
            if let Ok(info) = stream.consumer_info(&spec.durable).await
                && consumer_matches(&info.config, &wanted)
            {
                continue;
            }
            // Creating a durable with an existing name updates its editable settings (ack wait,
            // max ack pending); a change the server cannot apply is reported with what to do.
            stream
                .create_consumer(Self::consumer_config(spec))
                .await
                .map_err(|e| {
                    consumer_error(
                        format!(
                            "{e}; if its filter changed, delete it with `nats consumer rm {stream_name} {}` and restart",
                            spec.durable
                        )
                        .into(),
                    )
                })?;
        }
        Ok(())
    }

    async fn publish(&self, message: OutgoingMessage) -> Result<PublishReceipt, BusError> {
        let (subject, sent) = self.send(message).await;
        self.stored(subject, sent?).await
    }

    async fn publish_in_order(
        &self,
        messages: Vec<OutgoingMessage>,
    ) -> Vec<Result<PublishReceipt, BusError>> {
        // Every message is sent before the first acknowledgement is awaited: one connection
        // keeps them in order, and the acknowledgements arrive while later ones are still sent.
        let mut sent = Vec::with_capacity(messages.len());
        for message in messages {
            sent.push(self.send(message).await);
        }
        let mut answers = Vec::with_capacity(sent.len());
        for (subject, ack) in sent {
            answers.push(match ack {
                Ok(ack) => self.stored(subject, ack).await,
                Err(e) => Err(e),
            });
        }
        answers
    }

    async fn subscribe(&self, spec: &ConsumerSpec) -> Result<Box<dyn Subscription>, BusError> {
        let receive_error = |source: Cause| BusError::Receive {
            consumer: spec.durable.clone(),
            source,
        };
        // Asked once, so a consumer that is missing is an error here rather than a subscription
        // that never receives anything.
        let _: consumer::PullConsumer = self
            .js
            .get_stream_no_info(spec.family.stream_name())
            .await
            .map_err(|e| receive_error(e.into()))?
            .get_consumer(&spec.durable)
            .await
            .map_err(&receive_error)?;
        let pull = pull::Pull::open(
            self.js.clone(),
            spec.family.stream_name(),
            &spec.durable,
            PULL,
        )
        .await
        .map_err(receive_error)?;
        Ok(Box::new(JetStreamSubscription {
            consumer: spec.durable.clone(),
            pull,
        }))
    }

    async fn list_stored(
        &self,
        family: StreamFamily,
        subject_filter: Option<&str>,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, BusError> {
        let stream = self
            .js
            .get_stream_no_info(family.stream_name())
            .await
            .map_err(|e| stored_error(family, e))?;
        let filter = subject_filter.unwrap_or(family.wildcard());
        let mut found = Vec::new();
        let mut next = after_sequence.saturating_add(1);
        // One "first message at or after this sequence on this subject" request per message: the
        // server skips removed sequences and other subjects itself, and answers "no message found"
        // past the end. (The plain API with `next_by_subj`, not direct get, which the streams do not
        // enable.)
        while found.len() < limit {
            match stream.get_first_raw_message_by_subject(filter, next).await {
                Ok(message) => {
                    next = message.sequence.saturating_add(1);
                    found.push(stored_message(message));
                }
                Err(e) if e.kind() == jetstream::stream::RawMessageErrorKind::NoMessageFound => {
                    break;
                }
                Err(e) => return Err(stored_error(family, e)),
            }
        }
        Ok(found)
    }

    async fn get_stored(
        &self,
        family: StreamFamily,
        sequence: u64,
    ) -> Result<Option<StoredMessage>, BusError> {
        let stream = self
            .js
            .get_stream_no_info(family.stream_name())
            .await
            .map_err(|e| stored_error(family, e))?;
        match stream.get_raw_message(sequence).await {
            Ok(message) => Ok(Some(stored_message(message))),
            Err(e) if e.kind() == jetstream::stream::RawMessageErrorKind::NoMessageFound => {
                Ok(None)
            }
            Err(e) => Err(stored_error(family, e)),
        }
    }

    async fn delete_stored(&self, family: StreamFamily, sequence: u64) -> Result<bool, BusError> {
        let stream = self
            .js
            .get_stream_no_info(family.stream_name())
            .await
            .map_err(|e| stored_error(family, e))?;
        match stream.delete_message(sequence).await {
            Ok(removed) => Ok(removed),
            Err(e) => match e.kind() {
                // Already removed, expired, or never there: nothing left to remove.
                jetstream::stream::DeleteMessageErrorKind::JetStream(error)
                    if error.error_code() == jetstream::ErrorCode::SEQUENCE_NOT_FOUND
                        || error.error_code() == jetstream::ErrorCode::NO_MESSAGE_FOUND =>
                {
                    Ok(false)
                }
                _ => Err(stored_error(family, e)),
            },
        }
    }

    async fn check_ready(&self) -> Result<(), BusError> {
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Err(BusError::NotReady(format!(
                "not connected to NATS at {}",
                self.options.url
            )));
        }
        for family in StreamFamily::ALL {
            self.js
                .get_stream_no_info(family.stream_name())
                .await
                .map_err(|e| {
                    BusError::NotReady(format!("stream {} missing: {e}", family.stream_name()))
                })?;
        }
        Ok(())
    }

    async fn backlog(&self, consumer: &ConsumerSpec) -> Result<Backlog, BusError> {
        let stream_name = consumer.family.stream_name();
        let consumer_error = consumer_error(consumer);
        let stream = self
            .js
            .get_stream_no_info(stream_name)
            .await
            .map_err(|e| consumer_error(e.into()))?;
        let info = stream
            .consumer_info(&consumer.durable)
            .await
            .map_err(|e| consumer_error(e.into()))?;
        Ok(Backlog {
            pending: info.num_pending,
            ack_pending: u64::try_from(info.num_ack_pending).unwrap_or_default(),
        })
    }

    fn max_payload(&self) -> usize {
        self.client.server_info().max_payload
    }

    async fn flush(&self) -> Result<(), BusError> {
        self.client
            .flush()
            .await
            .map_err(|e| BusError::NotReady(format!("flush failed: {e}")))
    }
}

/// How a subscription asks for messages. A heartbeat every 2 s bounds how long a consumer can sit
/// idle with messages waiting should the server lose its requests (two missed in a row open the
/// subscription again).
const PULL: pull::PullSettings = pull::PullSettings {
    batch: 100,
    expires: Duration::from_secs(30),
    heartbeat: Duration::from_secs(2),
};

struct JetStreamSubscription {
    consumer: String,
    pull: pull::Pull,
}

struct JetStreamAcker(jetstream::message::Acker);

#[async_trait]
impl Acker for JetStreamAcker {
    async fn ack(&self) -> Result<(), BusError> {
        self.0.ack().await.map_err(BusError::Ack)
    }

    async fn nak(&self, delay: Duration) -> Result<(), BusError> {
        self.0
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(BusError::Ack)
    }

    async fn in_progress(&self) -> Result<(), BusError> {
        self.0
            .ack_with(AckKind::Progress)
            .await
            .map_err(BusError::Ack)
    }
}

#[async_trait]
impl Subscription for JetStreamSubscription {
    async fn next(&mut self) -> Option<Result<IncomingMessage, BusError>> {
        let message = match self.pull.next().await {
            pull::Pulled::Message(message) => message,
            // Whatever the old subscription received was already handed on; what the server may
            // still send to its inbox goes unacknowledged and comes back after the ack wait, like
            // any delivery a worker never answered: late, not lost.
            pull::Pulled::Ended(why) => {
                tracing::warn!(
                    consumer = %self.consumer,
                    reason = %why,
                    "the server stopped answering this subscription's pull requests; opening it again"
                );
                return None;
            }
        };
        let (delivered, sequence) = match message.info() {
            Ok(info) => (
                u32::try_from(info.delivered).unwrap_or(u32::MAX),
                info.stream_sequence,
            ),
            Err(e) => {
                return Some(Err(BusError::Receive {
                    consumer: self.consumer.clone(),
                    source: format!("delivery without JetStream metadata: {e}").into(),
                }));
            }
        };
        let (message, acker) = message.split();
        Some(Ok(IncomingMessage::new(
            message.subject.to_string(),
            message.payload,
            from_header_map(message.headers.as_ref()),
            delivered,
            sequence,
            Box::new(JetStreamAcker(acker)),
        )))
    }
}

impl JetStreamBus {
    /// Sends a message (async-nats refuses an oversized one here, before sending); the
    /// acknowledgement is awaited separately.
    async fn send(
        &self,
        message: OutgoingMessage,
    ) -> (
        String,
        Result<jetstream::context::PublishAckFuture, BusError>,
    ) {
        let headers = message.stored_headers();
        let map = to_header_map(&headers);
        let subject = message.subject;
        let size = message.payload.len();
        let sent = self
            .js
            .publish_with_headers(subject.clone(), map, message.payload)
            .await
            .map_err(|e| match e.kind() {
                jetstream::context::PublishErrorKind::MaxPayloadExceeded => BusError::TooLarge {
                    size,
                    limit: self.max_payload(),
                },
                _ => BusError::Publish {
                    subject: subject.clone(),
                    source: e.into(),
                },
            });
        (subject, sent)
    }

    /// Waits until JetStream has stored a sent message.
    async fn stored(
        &self,
        subject: String,
        ack: jetstream::context::PublishAckFuture,
    ) -> Result<PublishReceipt, BusError> {
        let ack = ack.await.map_err(|e| BusError::Publish {
            subject,
            source: e.into(),
        })?;
        Ok(PublishReceipt {
            duplicate: ack.duplicate,
            sequence: ack.sequence,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_before_2_9_are_refused() {
        assert!(check_version("2.9.10").is_ok());
        assert!(check_version("v2.10.4").is_ok());
        assert!(check_version("3.0.0").is_ok());
        let err = check_version("2.8.4").expect_err("too old");
        assert!(err.to_string().contains("2.8.4"), "{err}");
    }
}
