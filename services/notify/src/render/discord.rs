//! Discord webhooks (execute webhook): one embed within Discord's limits (title 256, description
//! 4096, 25 fields of name 256 and value 1024, footer 2048, 6000 across the embeds, content 2000),
//! Markdown escaped in every field, and `allowed_mentions` empty so nothing can ping anyone.

use herald_proto::v1::{Card, ValueLabel};
use serde_json::{Value, json};

use super::{Markdown, escape_markdown, fit, web_link};

pub const CONTENT_CHARS: usize = 2000;
pub const TITLE_CHARS: usize = 256;
pub const DESCRIPTION_CHARS: usize = 4096;
pub const MAX_FIELDS: usize = 25;
pub const FIELD_NAME_CHARS: usize = 256;
pub const FIELD_VALUE_CHARS: usize = 1024;
pub const FOOTER_CHARS: usize = 2048;
pub const EMBED_TOTAL_CHARS: usize = 6000;

/// Herald's green, for the embed's side bar.
const COLOUR: u32 = 0x2E_A0_43;
/// At most this many value lines get a field of their own; people, teams and links take the rest.
const VALUE_FIELDS: usize = 20;

fn escape(text: &str) -> String {
    escape_markdown(text, Markdown::Discord)
}

fn field(name: &str, value: &str) -> Value {
    json!({ "name": name, "value": value, "inline": false })
}

/// Discord refuses an empty title or field name.
fn non_empty<'a>(text: &'a str, instead: &'a str) -> &'a str {
    if text.trim().is_empty() {
        instead
    } else {
        text
    }
}

fn chars(value: &Value) -> usize {
    value.as_str().map_or(0, |s| s.chars().count())
}

/// The characters Discord counts towards the 6000 across embeds.
pub fn embed_chars(embed: &Value) -> usize {
    let fields: usize = embed["fields"]
        .as_array()
        .map(|f| {
            f.iter()
                .map(|f| chars(&f["name"]) + chars(&f["value"]))
                .sum()
        })
        .unwrap_or(0);
    chars(&embed["title"])
        + chars(&embed["description"])
        + chars(&embed["footer"]["text"])
        + chars(&embed["author"]["name"])
        + fields
}

pub fn render(card: &Card) -> Value {
    let title = fit(non_empty(&card.title, "Herald"), TITLE_CHARS, escape);
    let mut fields = Vec::new();
    for line in card.value_lines.iter().take(VALUE_FIELDS) {
        let label = ValueLabel::try_from(line.label).unwrap_or(ValueLabel::Unspecified);
        let how = format!("_{}_ · How: ", escape(label.meaning()));
        let room = FIELD_VALUE_CHARS.saturating_sub(how.chars().count());
        fields.push(field(
            &fit(non_empty(&line.text, "Value"), FIELD_NAME_CHARS, escape),
            &format!("{how}{}", fit(&line.formula, room, escape)),
        ));
    }
    if !card.teams.is_empty() {
        fields.push(field(
            "Thank you",
            &fit(&card.teams.join(", "), FIELD_VALUE_CHARS, escape),
        ));
    }
    if !card.people.is_empty() {
        let people: Vec<String> = card
            .people
            .iter()
            .map(|p| format!("{} ({})", p.name, p.role))
            .collect();
        fields.push(field(
            "Credited",
            &fit(&people.join(", "), FIELD_VALUE_CHARS, escape),
        ));
    }
    let mut links = String::new();
    for link in &card.links {
        let Some(target) = web_link(&link.url) else {
            continue;
        };
        let item = format!("[{}]({target})", fit(&link.title, 100, escape));
        if links.chars().count() + item.chars().count() + 3 > FIELD_VALUE_CHARS {
            break;
        }
        if !links.is_empty() {
            links.push_str(" · ");
        }
        links.push_str(&item);
    }
    if !links.is_empty() {
        fields.push(field("Links", &links));
    }
    fields.truncate(MAX_FIELDS);

    let mut embed = json!({
        "title": title,
        "color": COLOUR,
        "fields": fields,
    });
    if let Some(url) = card.links.iter().find_map(|l| web_link(&l.url)) {
        embed["url"] = json!(url);
    }
    if let Some(service) = card.business_service.as_deref().filter(|s| !s.is_empty()) {
        embed["footer"] = json!({ "text": fit(service, FOOTER_CHARS, escape) });
    }
    // Many long value lines give way (last field first) so that the summary keeps some room.
    let reserve = card.summary.chars().count().min(1000);
    while embed_chars(&embed) + reserve > EMBED_TOTAL_CHARS {
        match embed["fields"].as_array_mut() {
            Some(fields) if !fields.is_empty() => {
                fields.pop();
            }
            _ => break,
        }
    }
    // The summary takes what is left of the 6000, within its own 4096.
    let room = EMBED_TOTAL_CHARS.saturating_sub(embed_chars(&embed));
    if !card.summary.is_empty() && room > 1 {
        embed["description"] = json!(fit(&card.summary, room.min(DESCRIPTION_CHARS), escape));
    }
    let mut message = json!({
        "embeds": [embed],
        "allowed_mentions": { "parse": [] },
    });
    // The headline figure as the message text, which is what a notification shows.
    if let Some(line) = card
        .value_lines
        .first()
        .filter(|l| !l.text.trim().is_empty())
    {
        message["content"] = json!(fit(&line.text, CONTENT_CHARS.min(TITLE_CHARS), escape));
    }
    message
}

#[cfg(test)]
mod tests {
    use herald_proto::v1::{CreditedPerson, Link, ValueLine};

    use super::*;

    fn card() -> Card {
        Card {
            title: "Warehouse Management restored in 1 h 12 min".into(),
            summary: "RF scanners cannot confirm picks (INC0048213).".into(),
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
                url: "https://x.example/incident.do?sys_id=1".into(),
            }],
            business_service: Some("Warehouse Management".into()),
        }
    }

    #[test]
    fn renders_title_value_people_and_links_as_an_embed() {
        let v = render(&card());
        let embed = &v["embeds"][0];
        assert_eq!(
            embed["title"],
            "Warehouse Management restored in 1 h 12 min"
        );
        assert_eq!(v["allowed_mentions"], json!({ "parse": [] }));
        let text = v.to_string();
        assert!(text.contains("€216,475 of lost work avoided"), "{text}");
        assert!(
            text.contains("avoided\\\\: cost that did not have to be paid"),
            "{text}"
        );
        assert!(
            text.contains("Ingrid Lindqvist \\\\(resolved it\\\\)"),
            "{text}"
        );
        assert!(
            text.contains("[Open INC0048213](https://x.example/incident.do?sys_id=1)"),
            "{text}"
        );
        assert_eq!(embed["footer"]["text"], "Warehouse Management");
    }

    #[test]
    fn stays_within_discord_limits_however_long_the_card() {
        let mut long = card();
        long.title = "T".repeat(5000);
        long.summary = "S ".repeat(5000);
        long.value_lines = (0..40).map(|_| long.value_lines[0].clone()).collect();
        long.value_lines[0].formula = "f*".repeat(3000);
        long.people = (0..40)
            .map(|i| CreditedPerson {
                name: format!("Person_{i} with a long name"),
                role: "worked on it".into(),
                anonymised: false,
            })
            .collect();
        long.business_service = Some("B".repeat(3000));
        let v = render(&long);
        assert!(chars(&v["content"]) <= CONTENT_CHARS);
        let embed = &v["embeds"][0];
        assert!(chars(&embed["title"]) <= TITLE_CHARS);
        assert!(chars(&embed["description"]) <= DESCRIPTION_CHARS);
        assert!(chars(&embed["footer"]["text"]) <= FOOTER_CHARS);
        let fields = embed["fields"].as_array().expect("fields");
        assert!(fields.len() <= MAX_FIELDS);
        for f in fields {
            assert!(chars(&f["name"]) <= FIELD_NAME_CHARS);
            assert!(chars(&f["value"]) <= FIELD_VALUE_CHARS);
        }
        assert!(embed_chars(embed) <= EMBED_TOTAL_CHARS);
    }
}
