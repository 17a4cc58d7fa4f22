//! Google Chat incoming webhooks: one `cardsV2` card with a header and sections, within 32,000
//! bytes. Chat formats card text as a small subset of HTML, so `<`, `>` and `&` are escaped in
//! every text and the title goes in the body, where it can be escaped (a card header is plain text
//! Chat shows as it is). The announcement's id travels as `requestId` (see `send`), so a repeat
//! returns the message already created instead of posting a second one.

use herald_proto::v1::{Card, ValueLabel};
use serde_json::{Value, json};

use super::{fit, web_link};

/// Chat's limit for one message, text and cards together.
pub const MAX_BYTES: usize = 32_000;

/// Text for Chat's HTML subset.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An `href` value: a web address with `&` and quotes made safe inside the attribute.
fn href(target: &str) -> String {
    target.replace('&', "&amp;").replace('"', "%22")
}

#[derive(Clone, Copy)]
struct Caps {
    title: usize,
    summary: usize,
    value_lines: usize,
    text: usize,
    people: usize,
    links: usize,
}

const CAPS: [Caps; 4] = [
    Caps {
        title: 300,
        summary: 4000,
        value_lines: 10,
        text: 600,
        people: 2000,
        links: 10,
    },
    Caps {
        title: 200,
        summary: 1500,
        value_lines: 5,
        text: 300,
        people: 800,
        links: 5,
    },
    Caps {
        title: 150,
        summary: 500,
        value_lines: 3,
        text: 150,
        people: 300,
        links: 3,
    },
    Caps {
        title: 100,
        summary: 150,
        value_lines: 1,
        text: 100,
        people: 100,
        links: 1,
    },
];

fn paragraph(text: String) -> Value {
    json!({ "textParagraph": { "text": text } })
}

fn card_with(card: &Card, caps: Caps) -> Value {
    let mut sections = Vec::new();
    let mut widgets = vec![paragraph(format!(
        "<b>{}</b>",
        fit(&card.title, caps.title, escape)
    ))];
    if !card.summary.is_empty() {
        widgets.push(paragraph(fit(&card.summary, caps.summary, escape)));
    }
    sections.push(json!({ "widgets": widgets }));

    let values: Vec<Value> = card
        .value_lines
        .iter()
        .take(caps.value_lines)
        .map(|line| {
            let label = ValueLabel::try_from(line.label).unwrap_or(ValueLabel::Unspecified);
            json!({ "decoratedText": {
                "topLabel": escape(label.meaning()),
                "text": format!("<b>{}</b>", fit(&line.text, caps.text, escape)),
                "bottomLabel": format!("How: {}", fit(&line.formula, caps.text, escape)),
                "wrapText": true,
            }})
        })
        .collect();
    if !values.is_empty() {
        sections.push(json!({ "header": "Value", "widgets": values }));
    }

    let mut thanks = Vec::new();
    if !card.teams.is_empty() {
        thanks.push(paragraph(format!(
            "<b>Thank you</b>, {}",
            fit(&card.teams.join(", "), caps.text, escape)
        )));
    }
    if !card.people.is_empty() {
        let people: Vec<String> = card
            .people
            .iter()
            .map(|p| format!("{} ({})", p.name, p.role))
            .collect();
        thanks.push(paragraph(format!(
            "Credited: {}",
            fit(&people.join(", "), caps.people, escape)
        )));
    }
    if !thanks.is_empty() {
        sections.push(json!({ "header": "Credit", "widgets": thanks }));
    }

    let links: Vec<String> = card
        .links
        .iter()
        .filter_map(|l| {
            Some(format!(
                "<a href=\"{}\">{}</a>",
                href(&web_link(&l.url)?),
                fit(&l.title, 100, escape)
            ))
        })
        .take(caps.links)
        .collect();
    if !links.is_empty() {
        sections.push(json!({ "widgets": [paragraph(links.join(" · "))] }));
    }

    let mut header = json!({ "title": "Herald" });
    if let Some(service) = card.business_service.as_deref().filter(|s| !s.is_empty()) {
        // Plain text in a header: shown as it is, so nothing in it can format or link.
        header["subtitle"] = json!(super::truncate(service, 100));
    }
    json!({
        "cardsV2": [{
            "cardId": "herald-announcement",
            "card": { "header": header, "sections": sections },
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
            summary: "RF scanners <down> & out.".into(),
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
                url: "https://x.example/inc?a=1&b=2".into(),
            }],
            business_service: Some("Warehouse Management".into()),
        }
    }

    #[test]
    fn a_card_with_a_header_and_sections() {
        let v = render(&card());
        let card = &v["cardsV2"][0]["card"];
        assert_eq!(card["header"]["title"], "Herald");
        assert_eq!(card["header"]["subtitle"], "Warehouse Management");
        let sections = card["sections"].as_array().expect("sections");
        assert_eq!(
            sections[0]["widgets"][0]["textParagraph"]["text"],
            "<b>Warehouse Management restored</b>"
        );
        assert_eq!(
            sections[0]["widgets"][1]["textParagraph"]["text"],
            "RF scanners &lt;down&gt; &amp; out."
        );
        let value = &sections[1]["widgets"][0]["decoratedText"];
        assert_eq!(value["text"], "<b>€216,475 of lost work avoided</b>");
        assert!(
            value["topLabel"]
                .as_str()
                .unwrap_or("")
                .starts_with("avoided:")
        );
        let text = v.to_string();
        assert!(text.contains("Platform &amp; SRE"), "{text}");
        assert!(
            text.contains("<a href=\\\"https://x.example/inc?a=1&amp;b=2\\\">Open INC0048213</a>"),
            "{text}"
        );
    }

    #[test]
    fn stays_within_32000_bytes_whatever_the_text() {
        let mut long = card();
        let worst = "\u{1}<&\"".repeat(5000);
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
                role: "r".into(),
                anonymised: false,
            })
            .collect();
        long.teams = vec![worst.clone(); 5];
        long.business_service = Some(worst.clone());
        let bytes = serde_json::to_vec(&render(&long)).expect("json");
        assert!(bytes.len() <= MAX_BYTES, "{} bytes", bytes.len());
    }
}
