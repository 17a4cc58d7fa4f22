//! Slack incoming webhooks: Block Kit within Slack's limits (50 blocks, 150 characters in a header,
//! 3000 in a section, 10 elements in a context block), with a plain `text` fallback for
//! notifications.

use herald_proto::v1::{Card, ValueLabel};
use serde_json::{Value, json};

use super::truncate;

const MAX_BLOCKS: usize = 50;
const HEADER_CHARS: usize = 150;
const SECTION_CHARS: usize = 3000;
const CONTEXT_ELEMENTS: usize = 10;

/// Slack's mrkdwn treats these three as control characters.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A link's target inside `<…|…>`: web addresses only (a `slack://` or `javascript:` link from
/// ITSM data is dropped), with the characters that would end or split the link encoded.
fn link_target(raw: &str) -> Option<String> {
    let url = url::Url::parse(raw).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    Some(
        url.as_str()
            .replace('&', "&amp;")
            .replace('|', "%7C")
            .replace('<', "%3C")
            .replace('>', "%3E"),
    )
}

/// `text` escaped and cut to `max` characters without splitting an entity: the raw text is cut
/// first, and cut further while its escaped form is still too long.
fn escaped_within(text: &str, max: usize) -> String {
    let mut keep = max;
    loop {
        let escaped = escape(&truncate(text, keep));
        if escaped.chars().count() <= max || keep == 0 {
            return escaped;
        }
        keep -= (escaped.chars().count() - max).min(keep);
    }
}

fn section(text: &str) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": truncate(text, SECTION_CHARS) } })
}

fn context(texts: &[String]) -> Value {
    let elements: Vec<Value> = texts
        .iter()
        .take(CONTEXT_ELEMENTS)
        .map(|t| json!({ "type": "mrkdwn", "text": truncate(t, SECTION_CHARS) }))
        .collect();
    json!({ "type": "context", "elements": elements })
}

pub fn render(card: &Card) -> Value {
    let mut blocks = vec![json!({
        "type": "header",
        // Slack decodes the three entities in plain text too, so escaping costs nothing there
        // and keeps every field inert, whatever the ticket's title says.
        "text": { "type": "plain_text", "text": escaped_within(&card.title, HEADER_CHARS), "emoji": true }
    })];
    if !card.summary.is_empty() {
        blocks.push(section(&escape(&card.summary)));
    }
    for line in &card.value_lines {
        let label = ValueLabel::try_from(line.label).unwrap_or(ValueLabel::Unspecified);
        blocks.push(section(&format!("*{}*", escape(&line.text))));
        blocks.push(context(&[format!(
            "_{}_ · How: {}",
            escape(label.meaning()),
            escape(&line.formula)
        )]));
    }
    if !card.people.is_empty() || !card.teams.is_empty() {
        let people: Vec<String> = card
            .people
            .iter()
            .map(|p| format!("{} ({})", escape(&p.name), escape(&p.role)))
            .collect();
        let mut text = String::new();
        if !card.teams.is_empty() {
            text.push_str(&format!("*Thank you, {}*", escape(&card.teams.join(", "))));
        }
        if !people.is_empty() {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&format!("Credited: {}", people.join(", ")));
        }
        blocks.push(section(&text));
    }
    let links: Vec<String> = card
        .links
        .iter()
        .filter_map(|l| Some(format!("<{}|{}>", link_target(&l.url)?, escape(&l.title))))
        .collect();
    if !links.is_empty() {
        blocks.push(context(&links));
    }
    blocks.truncate(MAX_BLOCKS);

    // The fallback `text` is mrkdwn too (it is what notifications and screen readers show), so
    // it is escaped like every other field: a ticket title must never become `<!channel>`.
    let fallback = match card.value_lines.first() {
        Some(line) => format!("{}: {}", escape(&card.title), escape(&line.text)),
        None => escape(&card.title),
    };
    json!({ "text": truncate(&fallback, SECTION_CHARS), "blocks": blocks })
}

#[cfg(test)]
mod tests {
    use herald_proto::v1::{CreditedPerson, Link, ValueLine};

    use super::*;

    fn card() -> Card {
        Card {
            title: "Warehouse Management restored in 1 h 12 min".into(),
            summary: "RF scanners <down> & out (INC0048213).".into(),
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
                url: "https://x.example/a?b=1|2".into(),
            }],
            business_service: Some("Warehouse Management".into()),
        }
    }

    #[test]
    fn renders_header_value_people_and_links_with_escaping() {
        let v = render(&card());
        let text = v.to_string();
        assert_eq!(v["blocks"][0]["type"], "header");
        assert!(text.contains("&lt;down&gt; &amp; out"), "{text}");
        assert!(text.contains("*€216,475 of lost work avoided*"));
        assert!(text.contains("avoided: cost that did not have to be paid"));
        assert!(text.contains("Platform &amp; SRE"));
        assert!(text.contains("<https://x.example/a?b=1%7C2|Open INC0048213>"));
        assert!(v["text"].as_str().unwrap_or("").contains("€216,475"));
    }

    /// Every string in the message, wherever it sits.
    fn strings(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(s) => out.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
            Value::Object(map) => map.values().for_each(|v| strings(v, out)),
            _ => {}
        }
    }

    #[test]
    fn hostile_ticket_data_is_inert_in_every_field() {
        let hostile = "<!channel> <!here> <@U024BE7LH> <https://evil.example|click> *bold* & more";
        let mut card = card();
        card.title = hostile.into();
        card.summary = hostile.into();
        card.value_lines[0].text = hostile.into();
        card.value_lines[0].formula = hostile.into();
        card.people[0].name = hostile.into();
        card.people[0].role = hostile.into();
        card.teams = vec![hostile.into()];
        card.links = vec![
            Link {
                title: hostile.into(),
                url: "https://x.example/a?b=<!channel>|x>y&z".into(),
            },
            Link {
                title: "run me".into(),
                url: "javascript:alert(1)".into(),
            },
        ];
        for priority_low in [false, true] {
            if priority_low {
                // A card with no value line uses the title alone as the fallback text.
                card.value_lines.clear();
            }
            let message = render(&card);
            let mut all = Vec::new();
            strings(&message, &mut all);
            assert!(
                message["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("&lt;!channel&gt;"))
            );
            for text in &all {
                for control in ["<!channel>", "<!here>", "<@U024BE7LH>", "<https://evil"] {
                    assert!(!text.contains(control), "{control} live in {text:?}");
                }
                assert!(!text.contains("javascript:"), "{text:?}");
                // The only `<` left opens Herald's own link to the record.
                for (i, _) in text.match_indices('<') {
                    assert!(
                        text[i..]
                            .starts_with("<https://x.example/a?b=%3C!channel%3E%7Cx%3Ey&amp;z|"),
                        "unexpected control sequence in {text:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn stays_within_slack_limits_however_long_the_card() {
        let mut long = card();
        long.title = "T".repeat(400);
        long.summary = "S".repeat(10_000);
        long.value_lines = (0..60).map(|_| long.value_lines[0].clone()).collect();
        long.people = (0..500)
            .map(|i| CreditedPerson {
                name: format!("Person {i}"),
                role: "worked on it".into(),
                anonymised: false,
            })
            .collect();
        let v = render(&long);
        let blocks = v["blocks"].as_array().expect("blocks");
        assert!(blocks.len() <= 50);
        assert!(
            blocks[0]["text"]["text"]
                .as_str()
                .unwrap_or("")
                .chars()
                .count()
                <= 150
        );
        for block in blocks {
            if let Some(t) = block["text"]["text"].as_str() {
                assert!(t.chars().count() <= 3000);
            }
            if let Some(e) = block["elements"].as_array() {
                assert!(e.len() <= 10);
            }
        }
    }
}
