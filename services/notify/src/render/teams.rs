//! Microsoft Teams through a Workflows webhook: an Adaptive Card 1.5 in a `message` envelope,
//! within 28 KB. Every `TextBlock` and fact is escaped for the card's Markdown subset, so a title
//! can never become a link or emphasis; links are web addresses only.

use herald_proto::v1::{Card, ValueLabel};
use serde_json::{Value, json};

use super::{Markdown, escape_markdown, fit, web_link};

/// The most a Workflows webhook accepts for one message.
pub const MAX_BYTES: usize = 28 * 1024;

fn escape(text: &str) -> String {
    escape_markdown(text, Markdown::AdaptiveCard)
}

/// How much of the card to keep: the first size that fits 28 KB wins. The last is small enough
/// for any card (at most a few hundred characters of the worst kind to encode).
#[derive(Clone, Copy)]
struct Caps {
    title: usize,
    summary: usize,
    value_lines: usize,
    value_text: usize,
    formula: usize,
    people: usize,
    name: usize,
    teams: usize,
    links: usize,
}

const CAPS: [Caps; 4] = [
    Caps {
        title: 300,
        summary: 3000,
        value_lines: 10,
        value_text: 300,
        formula: 600,
        people: 40,
        name: 120,
        teams: 600,
        links: 10,
    },
    Caps {
        title: 200,
        summary: 1200,
        value_lines: 5,
        value_text: 200,
        formula: 300,
        people: 20,
        name: 80,
        teams: 300,
        links: 5,
    },
    Caps {
        title: 150,
        summary: 400,
        value_lines: 3,
        value_text: 150,
        formula: 150,
        people: 10,
        name: 60,
        teams: 150,
        links: 3,
    },
    Caps {
        title: 100,
        summary: 150,
        value_lines: 1,
        value_text: 100,
        formula: 100,
        people: 3,
        name: 40,
        teams: 60,
        links: 1,
    },
];

fn text_block(text: String) -> Value {
    json!({ "type": "TextBlock", "text": text, "wrap": true })
}

fn card_with(card: &Card, caps: Caps) -> Value {
    let mut title = text_block(fit(&card.title, caps.title, escape));
    title["size"] = json!("Large");
    title["weight"] = json!("Bolder");
    let mut body = vec![title];
    if !card.summary.is_empty() {
        body.push(text_block(fit(&card.summary, caps.summary, escape)));
    }
    for line in card.value_lines.iter().take(caps.value_lines) {
        let label = ValueLabel::try_from(line.label).unwrap_or(ValueLabel::Unspecified);
        let mut value = text_block(fit(&line.text, caps.value_text, escape));
        value["weight"] = json!("Bolder");
        value["color"] = json!("Good");
        value["spacing"] = json!("Medium");
        body.push(value);
        let mut how = text_block(format!(
            "_{}_ · How: {}",
            escape(label.meaning()),
            fit(&line.formula, caps.formula, escape)
        ));
        how["isSubtle"] = json!(true);
        how["size"] = json!("Small");
        how["spacing"] = json!("None");
        body.push(how);
    }
    if !card.teams.is_empty() {
        let mut thanks = text_block(format!(
            "**Thank you**, {}",
            fit(&card.teams.join(", "), caps.teams, escape)
        ));
        thanks["spacing"] = json!("Medium");
        body.push(thanks);
    }
    if !card.people.is_empty() {
        let facts: Vec<Value> = card
            .people
            .iter()
            .take(caps.people)
            .map(|p| {
                json!({
                    "title": fit(&p.name, caps.name, escape),
                    "value": fit(&p.role, caps.name, escape),
                })
            })
            .collect();
        body.push(json!({ "type": "FactSet", "facts": facts }));
        let more = card.people.len().saturating_sub(caps.people);
        if more > 0 {
            body.push(text_block(format!("and {more} more")));
        }
    }
    let links: Vec<String> = card
        .links
        .iter()
        .filter_map(|l| {
            Some(format!(
                "[{}]({})",
                fit(&l.title, 100, escape),
                web_link(&l.url)?
            ))
        })
        .take(caps.links)
        .collect();
    if !links.is_empty() {
        body.push(text_block(links.join(" · ")));
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.5",
                "msteams": { "width": "Full" },
                "body": body,
            },
        }],
    })
}

pub fn render(card: &Card) -> Value {
    super::largest_that_fits(CAPS, MAX_BYTES, |caps| card_with(card, caps))
}

#[cfg(test)]
mod tests {
    use herald_proto::v1::{CreditedPerson, Link, ValueLine};

    use super::*;

    fn card() -> Card {
        Card {
            title: "Warehouse Management restored".into(),
            summary: "RF scanners cannot confirm picks.".into(),
            value_lines: vec![ValueLine {
                label: ValueLabel::Avoided as i32,
                text: "€216,475 of lost work avoided".into(),
                formula: "people × share × hours × rate".into(),
            }],
            people: vec![CreditedPerson {
                name: "Ingrid Lindqvist".into(),
                role: "resolved it".into(),
                anonymised: false,
            }],
            teams: vec!["Platform & SRE".into()],
            links: vec![Link {
                title: "Open INC0048213".into(),
                url: "https://x.example/inc".into(),
            }],
            business_service: None,
        }
    }

    #[test]
    fn an_adaptive_card_in_a_message_envelope() {
        let v = render(&card());
        assert_eq!(v["type"], "message");
        let attachment = &v["attachments"][0];
        assert_eq!(
            attachment["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        let content = &attachment["content"];
        assert_eq!(content["type"], "AdaptiveCard");
        assert_eq!(content["version"], "1.5");
        let body = content["body"].as_array().expect("body");
        assert_eq!(body[0]["text"], "Warehouse Management restored");
        let text = v.to_string();
        assert!(text.contains("€216,475 of lost work avoided"), "{text}");
        assert!(
            text.contains("avoided\\\\: cost that did not have to be paid"),
            "{text}"
        );
        assert!(text.contains("Platform \\\\& SRE"), "{text}");
        assert!(text.contains("\"title\":\"Ingrid Lindqvist\""), "{text}");
        assert!(
            text.contains("[Open INC0048213](https://x.example/inc)"),
            "{text}"
        );
    }

    #[test]
    fn stays_within_28_kb_whatever_the_text() {
        let mut long = card();
        // Control characters are the costliest to encode in JSON (six bytes each).
        let worst = "\u{1}\\\"<&".repeat(3000);
        long.title = worst.clone();
        long.summary = worst.clone();
        long.value_lines = (0..30)
            .map(|_| ValueLine {
                label: ValueLabel::Cash as i32,
                text: worst.clone(),
                formula: worst.clone(),
            })
            .collect();
        long.people = (0..40)
            .map(|_| CreditedPerson {
                name: worst.clone(),
                role: worst.clone(),
                anonymised: false,
            })
            .collect();
        long.teams = vec![worst.clone(); 10];
        long.links = (0..20)
            .map(|_| Link {
                title: worst.clone(),
                url: format!("https://x.example/{}", "a".repeat(2000)),
            })
            .collect();
        let bytes = serde_json::to_vec(&render(&long)).expect("json");
        assert!(bytes.len() <= MAX_BYTES, "{} bytes", bytes.len());
    }
}
