//! From one event to (at most) one win.

use herald_catalog::Catalog;
use herald_proto::{
    time::opt_from_timestamp,
    v1::{ItsmEvent, LessonStory, Source, Win},
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
        digest_only: valuation.digest_only,
        rules_version: RULES_VERSION.to_string(),
        // Verification fills in the status and its windows when the win is recorded.
        ..Default::default()
    };
    Ok(Scored { win, outcome_key })
}

/// Everything scoring makes of one event: at most one win, and the stories and facts beside it.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub result: Result<Scored, NoValue>,
    /// A blameless lesson (a failed change or a major incident with a postmortem).
    pub lesson: Option<Scored>,
    /// A requester's praise, to attach to the rated ticket's win.
    pub praise: Option<value::Praise>,
    /// A deployment or merge, counted for delivery metrics.
    pub delivery: Option<value::DeliveryMetric>,
}

impl Outcome {
    /// An event with only a scoring result (nothing beside it).
    pub fn only(result: Result<Scored, NoValue>) -> Self {
        Self {
            result,
            lesson: None,
            praise: None,
            delivery: None,
        }
    }
}

pub fn outcome(event: &ItsmEvent, catalog: &Catalog, settings: &ScoringSettings) -> Outcome {
    Outcome {
        result: score(event, catalog, settings),
        lesson: value::lesson(event, catalog, settings).map(|lesson| lesson_win(event, lesson)),
        praise: value::praise(event, catalog, settings),
        delivery: value::delivery_metric(event),
    }
}

/// A lesson travels as a win with no value and the story attached, so it shares the wins' stream,
/// idempotency and explain; spotlight announces it and counts it nowhere.
fn lesson_win(event: &ItsmEvent, lesson: value::Lesson) -> Scored {
    let outcome_key = format!("{}:lesson", outcome_key(event));
    let digest = Sha256::digest(outcome_key.as_bytes());
    Scored {
        win: Win {
            id: format!("l-{}", hex::encode(&digest[..8])),
            event_id: event.id.clone(),
            source: event.source,
            kind: event.kind,
            occurred_at: event.occurred_at,
            record_number: lesson.record_number.clone(),
            record_url: event.record.as_ref().and_then(|r| r.url.clone()),
            record_title: event.record.as_ref().and_then(|r| r.title.clone()),
            business_service: event
                .record
                .as_ref()
                .and_then(|r| r.business_service.clone()),
            team: lesson.team.clone(),
            credits: lesson.credits,
            headline: lesson.title.clone(),
            origin: event.origin,
            received_at: event.received_at,
            rules_version: RULES_VERSION.to_string(),
            lesson: Some(LessonStory {
                title: lesson.title,
                story: lesson.story,
                postmortem_url: lesson.postmortem_url,
                public: lesson.audience == value::Audience::Public,
            }),
            ..Default::default()
        },
        outcome_key,
    }
}
