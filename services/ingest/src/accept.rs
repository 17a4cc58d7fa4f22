//! The path every delivery takes, whether it came over HTTP or gRPC: verify, normalise, publish,
//! and answer only once the bus has stored the event.

use std::{collections::HashMap, sync::Arc};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use herald_catalog::CatalogHandle;
use herald_events::{Bus, BusError, OutgoingMessage, PublishReceipt, subjects};
use herald_proto::{
    time::to_timestamp,
    v1::{EventKind, ItsmEvent, Origin, RawEncoding, Source},
};
use herald_runtime::{ApiError, ErrorKind, payload::pack_raw};
use http::HeaderMap;
use prost::Message;

use crate::{
    sources::{Context, Normalised, SourceHandler},
    verify::Keys,
};

/// `herald_ingest_events_total{source, outcome}`: every event of a delivery by what it became
/// (published, duplicate, ignored), or the delivery by why it was refused.
fn count_events(source: &str, result: &Result<Accepted, ApiError>) {
    fn each(source: &str, accepted: &Accepted) {
        let outcome = match accepted {
            Accepted::Published {
                duplicate: false, ..
            } => "published",
            Accepted::Published {
                duplicate: true, ..
            } => "duplicate",
            Accepted::Ignored { .. } => "ignored",
            Accepted::Batch(items) => {
                items.iter().for_each(|item| each(source, item));
                return;
            }
        };
        metrics::counter!("herald_ingest_events_total", "source" => source.to_string(), "outcome" => outcome)
            .increment(1);
    }
    match result {
        Ok(accepted) => each(source, accepted),
        Err(e) => {
            let outcome = match e.kind {
                ErrorKind::Unauthenticated => "unauthenticated",
                ErrorKind::Unavailable | ErrorKind::Internal => "unavailable",
                _ => "refused",
            };
            metrics::counter!("herald_ingest_events_total", "source" => source.to_string(), "outcome" => outcome)
                .increment(1);
        }
    }
}

/// What an accepted delivery became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    Published {
        id: String,
        duplicate: bool,
    },
    Ignored {
        id: Option<String>,
        note: String,
    },
    /// One result per event of a batched delivery, in order.
    Batch(Vec<Accepted>),
}

impl Accepted {
    pub fn body(&self) -> serde_json::Value {
        match self {
            Accepted::Published { id, duplicate } => {
                serde_json::json!({ "id": id, "duplicate": duplicate, "published": true })
            }
            Accepted::Ignored { id, note } => {
                serde_json::json!({ "id": id, "duplicate": false, "published": false, "note": note })
            }
            Accepted::Batch(items) => serde_json::json!({
                "published": items.iter().any(|i| matches!(i, Accepted::Published { .. })),
                "events": items.iter().map(Accepted::body).collect::<Vec<_>>(),
            }),
        }
    }
}

/// Where "now" comes from: the wall clock, or a fixed instant in tests of signed timestamps.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

struct SourceEntry {
    handler: Box<dyn SourceHandler>,
    keys: Keys,
}

/// Verifies, normalises and publishes deliveries.
pub struct Ingestor {
    sources: HashMap<&'static str, SourceEntry>,
    /// Read once per delivery: the catalog file may be reloaded meanwhile.
    catalog: CatalogHandle,
    bus: Arc<dyn Bus>,
    clock: Clock,
}

/// Room left for headers and framing when deciding whether the raw payload still fits.
const PAYLOAD_HEADROOM: usize = 16 * 1024;

impl Ingestor {
    pub fn new(
        handlers: Vec<Box<dyn SourceHandler>>,
        keys: impl Fn(Source) -> Keys,
        catalog: impl Into<CatalogHandle>,
        bus: Arc<dyn Bus>,
    ) -> Self {
        let sources = handlers
            .into_iter()
            .map(|handler| {
                let source = handler.source();
                (
                    source.token(),
                    SourceEntry {
                        keys: keys(source),
                        handler,
                    },
                )
            })
            .collect();
        Self {
            sources,
            catalog: catalog.into(),
            bus,
            clock: Arc::new(Utc::now),
        }
    }

    /// Replaces the wall clock (signature timestamp windows and `received_at`).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Source names this ingest accepts, sorted.
    pub fn source_names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.sources.keys().copied().collect();
        names.sort_unstable();
        names
    }

    /// 404 unless `name` is a source this ingest accepts.
    pub fn check_source(&self, name: &str) -> Result<(), ApiError> {
        self.entry(name).map(|_| ())
    }

    fn entry(&self, name: &str) -> Result<&SourceEntry, ApiError> {
        self.sources.get(name).ok_or_else(|| {
            ApiError::new(
                ErrorKind::NotFound,
                "unknown_source",
                format!(
                    "no source named {name:?}; send to one of /v1/events/{{{}}}",
                    self.source_names().join(",")
                ),
            )
        })
    }

    /// Sources that refuse every delivery because no key is configured for them.
    pub fn unconfigured_sources(&self) -> Vec<&'static str> {
        let mut closed: Vec<_> = self
            .sources
            .iter()
            .filter(|(_, e)| e.keys.is_empty() && !e.keys.allow_unsigned)
            .map(|(name, _)| *name)
            .collect();
        closed.sort_unstable();
        closed
    }

    /// Sources that accept deliveries without any authentication (`allow_unsigned`).
    pub fn open_sources(&self) -> Vec<&'static str> {
        let mut open: Vec<_> = self
            .sources
            .iter()
            .filter(|(_, e)| e.keys.is_open())
            .map(|(name, _)| *name)
            .collect();
        open.sort_unstable();
        open
    }

    /// Runs one live delivery through verify → normalise → publish.
    pub async fn accept(
        &self,
        source: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Accepted, ApiError> {
        self.accept_from(source, headers, body, Origin::Live).await
    }

    /// The same, for a delivery whose origin the caller knows (`herald backfill` sends history).
    pub async fn accept_from(
        &self,
        source: &str,
        headers: &HeaderMap,
        body: Bytes,
        origin: Origin,
    ) -> Result<Accepted, ApiError> {
        let mut answers = self
            .accept_many(vec![Delivery {
                source,
                headers,
                body,
                origin,
            }])
            .await;
        answers.pop().unwrap_or_else(|| Err(no_answer()))
    }

    /// Runs several deliveries through verify → normalise → publish, answering each in order. Their
    /// events are published together, in order (the bus stores them in that order), so the
    /// deliveries share one wait for the bus rather than wait one after another.
    pub async fn accept_many(
        &self,
        deliveries: Vec<Delivery<'_>>,
    ) -> Vec<Result<Accepted, ApiError>> {
        let prepared: Vec<(&str, Result<Prepared, ApiError>)> = deliveries
            .into_iter()
            .map(|d| {
                let prepared = self.entry(d.source).and_then(|entry| {
                    entry.keys.require_configured(d.source)?;
                    let received_at = self.now();
                    entry
                        .handler
                        .verify(d.headers, &d.body, &entry.keys, received_at)?;
                    self.prepare(entry, d.headers, d.body, received_at, d.origin)
                });
                (d.source, prepared)
            })
            .collect();
        self.deliver(prepared).await
    }

    /// Runs a body Herald fetched itself (the ServiceNow poller) through normalise → publish: there
    /// is no sender to authenticate.
    pub async fn accept_pulled(
        &self,
        source: &str,
        headers: &HeaderMap,
        body: Bytes,
        origin: Origin,
    ) -> Result<Accepted, ApiError> {
        let prepared = self
            .entry(source)
            .and_then(|entry| self.prepare(entry, headers, body, self.now(), origin));
        let mut answers = self.deliver(vec![(source, prepared)]).await;
        answers.pop().unwrap_or_else(|| Err(no_answer()))
    }

    /// Normalises a verified delivery into the messages it publishes.
    fn prepare(
        &self,
        entry: &SourceEntry,
        headers: &HeaderMap,
        body: Bytes,
        received_at: DateTime<Utc>,
        origin: Origin,
    ) -> Result<Prepared, ApiError> {
        let catalog = self.catalog.current();
        let ctx = Context {
            catalog: &catalog,
            received_at,
        };
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        match entry.handler.normalise(&ctx, headers, &body)? {
            Normalised::Batch(items) => Ok(Prepared {
                batch: true,
                slots: items
                    .into_iter()
                    .map(|(item, raw)| self.slot(item, raw, &content_type, received_at, origin))
                    .collect::<Result<_, _>>()?,
            }),
            single => Ok(Prepared {
                batch: false,
                slots: vec![self.slot(
                    single,
                    body.to_vec(),
                    &content_type,
                    received_at,
                    origin,
                )?],
            }),
        }
    }

    fn slot(
        &self,
        normalised: Normalised,
        raw: Vec<u8>,
        content_type: &str,
        received_at: DateTime<Utc>,
        origin: Origin,
    ) -> Result<Slot, ApiError> {
        let (mut event, ordering_key) = match normalised {
            Normalised::Ignored { id, note } => {
                return Ok(Slot::Done(Accepted::Ignored { id, note }));
            }
            Normalised::Event {
                event,
                ordering_key,
            } => (event, ordering_key),
            Normalised::Batch(_) => {
                return Err(ApiError::new(
                    ErrorKind::Unprocessable,
                    "nested_batch",
                    "a batch cannot contain another batch",
                ));
            }
        };
        event.received_at = Some(to_timestamp(received_at));
        event.origin = origin as i32;
        event.raw_content_type = content_type.to_string();
        event.raw_payload = raw;
        Ok(Slot::Publish {
            id: event.id.clone(),
            message: self.message(event, &ordering_key),
        })
    }

    /// The event as the bus carries it: its raw bytes compressed, or left out if even then the
    /// message would pass the bus's limit.
    fn message(&self, mut event: Box<ItsmEvent>, ordering_key: &str) -> OutgoingMessage {
        let source = Source::try_from(event.source).unwrap_or(Source::Unspecified);
        let kind = EventKind::try_from(event.kind).unwrap_or(EventKind::Unspecified);
        // Before the size check: a delivery that fits once compressed keeps its raw bytes.
        pack_raw(&mut event);
        let mut payload = event.encode_to_vec();
        let limit = self.bus.max_payload().saturating_sub(PAYLOAD_HEADROOM);
        if payload.len() > limit {
            // The normalised event still travels; the raw bytes are left out rather than refuse a
            // delivery the vendor would retry for ever.
            tracing::warn!(id = %event.id, compressed_bytes = event.raw_payload.len(), limit, "raw payload left out of the event: larger than the bus allows, even compressed");
            event.raw_payload = Vec::new();
            event.raw_payload_encoding = RawEncoding::Identity as i32;
            event.raw_payload_omitted = true;
            payload = event.encode_to_vec();
        }
        OutgoingMessage::new(subjects::event(source, kind), event.id.clone(), payload)
            .with_ordering_key(ordering_key)
            .with_trace_context()
    }

    /// Publishes the messages of every prepared delivery in one ordered call to the bus, then
    /// answers each delivery: a batched delivery fails as a whole if any of its events could not
    /// be stored (the sender retries it; events already stored come back as duplicates).
    async fn deliver(
        &self,
        prepared: Vec<(&str, Result<Prepared, ApiError>)>,
    ) -> Vec<Result<Accepted, ApiError>> {
        let mut messages = Vec::new();
        let mut layouts = Vec::with_capacity(prepared.len());
        for (source, delivery) in prepared {
            layouts.push((
                source,
                delivery.map(|p| {
                    let slots: Vec<Either> = p
                        .slots
                        .into_iter()
                        .map(|slot| match slot {
                            Slot::Done(accepted) => Either::Done(accepted),
                            Slot::Publish { id, message } => {
                                messages.push(message);
                                Either::Sent(id)
                            }
                        })
                        .collect();
                    (p.batch, slots)
                }),
            ));
        }
        let mut receipts = self.bus.publish_in_order(messages).await.into_iter();
        layouts
            .into_iter()
            .map(|(source, layout)| {
                let result = layout.and_then(|(batch, slots)| {
                    let mut items = Vec::with_capacity(slots.len());
                    let mut failed = None;
                    for slot in slots {
                        match slot {
                            Either::Done(accepted) => items.push(accepted),
                            Either::Sent(id) => match answer(&id, receipts.next()) {
                                Ok(duplicate) => items.push(Accepted::Published { id, duplicate }),
                                Err(e) => {
                                    failed.get_or_insert(e);
                                }
                            },
                        }
                    }
                    if let Some(e) = failed {
                        return Err(e);
                    }
                    if batch {
                        Ok(Accepted::Batch(items))
                    } else {
                        items.pop().ok_or_else(no_answer)
                    }
                });
                count_events(source, &result);
                result
            })
            .collect()
    }
}

/// A delivery the bus gave no receipt for: a broken promise of [`Bus::publish_in_order`], never a
/// fault of the sender.
pub(crate) fn no_answer() -> ApiError {
    ApiError::new(
        ErrorKind::Internal,
        "no_answer",
        "the delivery got no answer",
    )
}

/// One delivery for [`Ingestor::accept_many`].
pub struct Delivery<'a> {
    pub source: &'a str,
    pub headers: &'a HeaderMap,
    pub body: Bytes,
    pub origin: Origin,
}

/// A delivery verified and normalised: what each of its events becomes.
struct Prepared {
    batch: bool,
    slots: Vec<Slot>,
}

enum Slot {
    /// Answered without publishing (a state or type Herald does not score).
    Done(Accepted),
    Publish {
        id: String,
        message: OutgoingMessage,
    },
}

/// A slot once its message, if any, has been handed to the bus.
enum Either {
    Done(Accepted),
    Sent(String),
}

/// What the bus's receipt for event `id` means for its sender.
fn answer(id: &str, receipt: Option<Result<PublishReceipt, BusError>>) -> Result<bool, ApiError> {
    match receipt {
        Some(Ok(receipt)) => Ok(receipt.duplicate),
        Some(Err(e @ BusError::TooLarge { .. })) => Err(ApiError::new(
            ErrorKind::TooLarge,
            "event_too_large",
            format!("the normalised event is too large for the bus: {e}"),
        )),
        Some(Err(e)) => {
            tracing::error!(error = %e, id, "publish failed; answering 503 so the sender retries");
            Err(ApiError::new(
                ErrorKind::Unavailable,
                "bus_unavailable",
                "the event could not be stored right now and was not accepted; retry later",
            ))
        }
        None => Err(ApiError::new(
            ErrorKind::Unavailable,
            "bus_unavailable",
            "the bus gave no answer for the event; retry later",
        )),
    }
}
