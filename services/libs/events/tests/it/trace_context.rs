//! W3C trace context travels in message headers: a consumer's span continues the publisher's trace.

use herald_events::{OutgoingMessage, header, trace};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::{propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

#[test]
fn a_published_message_carries_the_trace_and_the_consumer_continues_it() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    tracing::subscriber::with_default(subscriber, || {
        let publisher = tracing::info_span!("ingest.receive");
        let message = publisher.in_scope(|| {
            OutgoingMessage::new("herald.events.servicenow.incident_resolved", "id-1", "x")
                .with_trace_context()
        });
        let traceparent =
            trace::header(&message.headers, header::TRACEPARENT).expect("a traceparent header");
        let trace_id = publisher.context().span().span_context().trace_id();
        assert!(traceparent.starts_with("00-"), "{traceparent}");
        assert!(
            traceparent.contains(&trace_id.to_string()),
            "{traceparent} is not trace {trace_id}"
        );

        let consumer = tracing::info_span!("consume");
        trace::set_parent_from(&consumer, &message.headers);
        assert_eq!(
            consumer.context().span().span_context().trace_id(),
            trace_id
        );
    });
    let _ = provider.shutdown();
}

#[test]
fn without_tracing_no_header_is_invented() {
    let message = OutgoingMessage::new("herald.events.x.y", "id", "x").with_trace_context();
    assert!(trace::header(&message.headers, header::TRACEPARENT).is_none());
}
