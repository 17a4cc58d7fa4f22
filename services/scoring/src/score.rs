//! From one event to (at most) one win.

use herald_catalog::Catalog;
use herald_proto::{
    time::opt_from_timestamp,
    v1::{ItsmEvent, Source, Win},
};
use sha2::{Digest, Sha256};

use crate::{
    config::ScoringSettings,
    credit,
    value::{self, NoValue},
};

/// The version of the scoring rules a win was computed with, shown by `herald explain` so a number
/// can be traced to the rules that made it. Bump it when a formula or a credit rule changes.
pub const RULES_VERSION: &str = "2026.11-verified";

/// A win and the key of the outcome it credits.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub win: Win,
    /// Identifies the outcome, not the event: the "resolved" and later "closed" pushes of one
    /// incident carry the same resolution and must credit it once.
    pub outcome_key: String,
}

/// The outcome an event describes: source, record, kind and when it was resolved.
pub fn outcome_key(event: &ItsmEvent) -> String {
    let record = event.record.clone().unwrap_or_default();
    let at = opt_from_timestamp(record.resolved_at.as_ref())
        .or_else(|| opt_from_timestamp(event.occurred_at.as_ref()))
        .map(|t| t.to_rfc3339())
        .unwrap_or_default();
    let source = Source::try_from(event.source)
        .map(|s| s.token())
        .unwrap_or("unknown");
    let kind = herald_proto::v1::EventKind::try_from(event.kind)
        .map(|k| k.token())
        .unwrap_or("unknown");
    format!("{source}:{}:{kind}:{at}", record.number)
}

/// A short stable id for `herald explain`.
pub fn win_id(outcome_key: &str) -> String {
    let digest = Sha256::digest(outcome_key.as_bytes());
    format!("w-{}", hex::encode(&digest[..8]))
}

pub fn score(
    event: &ItsmEvent,
    catalog: &Catalog,
    settings: &ScoringSettings,
) -> Result<Scored, NoValue> {
    let valuation = value::value(event, catalog, settings)?;
    let record = event.record.clone().unwrap_or_default();
    let outcome_key = outcome_key(event);
    let kind = herald_proto::v1::EventKind::try_from(event.kind).unwrap_or_default();
    let credits = credit::credits(kind, &record, valuation.value.amount, catalog, settings);
    let team = credits
        .iter()
        .find(|c| c.subject == herald_proto::v1::CreditSubject::Team as i32)
        .map(|c| c.id.clone());
    let win = Win {
        id: win_id(&outcome_key),
        event_id: event.id.clone(),
        source: event.source,
        kind: event.kind,
        occurred_at: event.occurred_at,
        record_number: record.number.clone(),
        record_url: record.url.clone(),
        record_title: record.title.clone(),
        business_service: record.business_service.clone(),
        team,
        value: Some(valuation.value),
        credits,
        headline: valuation.headline,
        priority: record.priority,
        origin: event.origin,
        received_at: event.received_at,
        rules_version: RULES_VERSION.to_string(),
        // Verification fills in the status and its windows when the win is recorded.
        ..Default::default()
    };
    Ok(Scored { win, outcome_key })
}
