//! What every source's fuzz target does with one input: the first line is used as the value of
//! the source's signature header(s), the rest as the body. Both are checked for authenticity (with
//! keys, and open), then the whole input and the body alone are normalised as a verified delivery
//! would be. Any panic is a finding; errors are the expected answer to junk.

use std::{collections::BTreeMap, sync::OnceLock};

use chrono::{DateTime, TimeZone, Utc};
use herald_catalog::Catalog;
use herald_ingest::{
    sources::{self, Context, SourceHandler},
    verify::Keys,
};
use herald_runtime::Secret;
use http::{HeaderMap, HeaderName, HeaderValue};

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        Catalog::from_toml_str(include_str!("../../tests/fixtures/catalog.toml"))
            .expect("the fixture catalog loads")
    })
}

fn handler(source: &str) -> Box<dyn SourceHandler> {
    sources::handlers(&BTreeMap::new())
        .into_iter()
        .find(|h| h.source().token() == source)
        .expect("a source Herald knows")
}

fn keys() -> Keys {
    Keys {
        secrets: vec![Secret::new("herald-test-secret"), Secret::new("previous")],
        tokens: vec![Secret::new("herald-test-secret")],
        ..Keys::default()
    }
}

/// The fixtures' era, so Zendesk timestamps can fall inside the window.
fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(1_741_770_000, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

pub fn exercise(source: &str, signature_headers: &[&str], fixed: &[(&str, &str)], data: &[u8]) {
    let (head, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&data[..0], data),
    };
    let mut headers = HeaderMap::new();
    for name in signature_headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(head),
        ) {
            headers.insert(name, value);
        }
    }
    for (name, value) in fixed {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    let handler = handler(source);
    let at = now();
    let _ = handler.verify(&headers, body, &keys(), at);
    let _ = handler.verify(&headers, body, &Keys::default(), at);
    let ctx = Context {
        catalog: catalog(),
        received_at: at,
    };
    let _ = handler.normalise(&ctx, &headers, data);
    let _ = handler.normalise(&ctx, &headers, body);
}
