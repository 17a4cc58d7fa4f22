//! W3C trace context in message headers, so one trace runs from the webhook that brought an event to
//! the message that announced it.

use opentelemetry::propagation::{Extractor, Injector};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::Headers;

struct HeaderInjector<'a>(&'a mut Headers);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
        self.0.push((key.to_string(), value));
    }
}

struct HeaderExtractor<'a>(&'a Headers);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        header(self.0, key)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }
}

/// Writes the current span's trace context (`traceparent`, `tracestate`) into `headers`. Does
/// nothing when tracing export is off, because there is then no valid span context.
pub fn inject_current(headers: &mut Headers) {
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&cx, &mut HeaderInjector(headers));
    });
}

/// The current span's `traceparent`, when there is a trace to carry on (tracing export is on): for
/// work stored now and done later, outside any message.
pub fn current_traceparent() -> Option<String> {
    let mut headers = Headers::new();
    inject_current(&mut headers);
    header(&headers, crate::header::TRACEPARENT).map(str::to_string)
}

/// Makes `span` a child of the trace context carried in `headers`, when there is one.
pub fn set_parent_from(span: &tracing::Span, headers: &Headers) {
    let cx = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    });
    // Failing here only loses the link to the parent trace; the work itself goes on.
    if let Err(error) = span.set_parent(cx) {
        tracing::debug!(%error, "could not attach the message's trace context");
    }
}

/// Makes `span` a child of the trace context among `pairs` (an HTTP request's headers, a gRPC
/// call's metadata), when there is one: a tool or caller that traces gets Herald's spans in its
/// trace.
pub fn set_parent_from_pairs<'a>(
    span: &tracing::Span,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    let headers: Headers = pairs
        .into_iter()
        .filter(|(k, _)| {
            k.eq_ignore_ascii_case(crate::header::TRACEPARENT)
                || k.eq_ignore_ascii_case("tracestate")
        })
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if !headers.is_empty() {
        set_parent_from(span, &headers);
    }
}

/// Reads a header case-insensitively.
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}
