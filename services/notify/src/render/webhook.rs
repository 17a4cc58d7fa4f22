//! Generic webhooks: the announcement as JSON, for any receiver.

use herald_proto::{
    time::opt_from_timestamp,
    v1::{Announcement, AnnouncementKind, EventKind, ValueLabel},
};
use serde_json::{Value, json};

pub fn render(announcement: &Announcement, now: chrono::DateTime<chrono::Utc>) -> Value {
    let kind = AnnouncementKind::try_from(announcement.kind)
        .map(|k| k.token())
        .unwrap_or("unspecified");
    let card = announcement.card.clone().unwrap_or_default();
    json!({
        "type": format!("herald.announcement.{kind}"),
        "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "data": {
            "id": announcement.id,
            "kind": kind,
            "created_at": opt_from_timestamp(announcement.created_at.as_ref())
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            "win_id": announcement.win_id,
            "event_kind": EventKind::try_from(announcement.event_kind).map(|k| k.token()).unwrap_or("unspecified"),
            "business_service": announcement.business_service,
            "team": announcement.team,
            "value": { "amount": announcement.value_amount, "currency": announcement.currency },
            "card": {
                "title": card.title,
                "summary": card.summary,
                "business_service": card.business_service,
                "value_lines": card.value_lines.iter().map(|l| json!({
                    "label": ValueLabel::try_from(l.label).map(|l| l.token()).unwrap_or("unspecified"),
                    "text": l.text,
                    "formula": l.formula,
                })).collect::<Vec<_>>(),
                "people": card.people.iter().map(|p| json!({ "name": p.name, "role": p.role })).collect::<Vec<_>>(),
                "teams": card.teams,
                "links": card.links.iter().map(|l| json!({ "title": l.title, "url": l.url })).collect::<Vec<_>>(),
            },
        },
    })
}
