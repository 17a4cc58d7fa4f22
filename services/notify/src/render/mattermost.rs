//! Mattermost incoming webhooks: the card as one Markdown `text`, within 4,000 characters (the
//! post size every Mattermost server accepts; newer ones take 16,383). Text is escaped so that
//! neither Markdown nor the Slack-style `<!channel>` Mattermost also understands can come out of it,
//! and `@` never starts a mention.

use herald_proto::v1::{Card, ValueLabel};
use serde_json::{Value, json};

use super::{Markdown, escape_markdown, fit, web_link};

pub const TEXT_CHARS: usize = 4000;
const TITLE_CHARS: usize = 300;
const SUMMARY_CHARS: usize = 1500;

fn escape(text: &str) -> String {
    escape_markdown(text, Markdown::Mattermost)
}

/// Text built from parts, each added whole while it fits and cut to fit when it does not.
struct Post {
    text: String,
    room: usize,
}

impl Post {
    fn used(&self) -> usize {
        self.text.chars().count()
    }

    /// Adds `part` (already escaped) if it fits whole; says whether it did.
    fn push(&mut self, part: &str) -> bool {
        if self.used() + part.chars().count() > self.room {
            return false;
        }
        self.text.push_str(part);
        true
    }

    /// Adds `prefix` and as much of `raw` as fits, escaped.
    fn push_cut(&mut self, prefix: &str, raw: &str, max: usize) -> bool {
        let room = self
            .room
            .saturating_sub(self.used() + prefix.chars().count());
        if room < 2 {
            return false;
        }
        let part = format!("{prefix}{}", fit(raw, room.min(max), escape));
        self.push(&part)
    }
}

pub fn render(card: &Card) -> Value {
    let mut post = Post {
        text: String::new(),
        room: TEXT_CHARS,
    };
    post.push_cut("#### ", &card.title, TITLE_CHARS);
    if !card.summary.is_empty() {
        post.push_cut("\n", &card.summary, SUMMARY_CHARS);
    }
    for line in &card.value_lines {
        let label = ValueLabel::try_from(line.label).unwrap_or(ValueLabel::Unspecified);
        let part = format!(
            "\n\n**{}**\n_{}_ · How: {}",
            fit(&line.text, 300, escape),
            escape(label.meaning()),
            fit(&line.formula, 600, escape)
        );
        if !post.push(&part) {
            break;
        }
    }
    if !card.teams.is_empty() {
        post.push_cut("\n\n**Thank you**, ", &card.teams.join(", "), 500);
    }
    if !card.people.is_empty() {
        let people: Vec<String> = card
            .people
            .iter()
            .map(|p| format!("{} ({})", p.name, p.role))
            .collect();
        post.push_cut("\nCredited: ", &people.join(", "), 1200);
    }
    let mut first = true;
    for link in &card.links {
        let Some(target) = web_link(&link.url) else {
            continue;
        };
        let separator = if first { "\n\n" } else { " · " };
        let part = format!("{separator}[{}]({target})", fit(&link.title, 100, escape));
        if !post.push(&part) {
            break;
        }
        first = false;
    }
    json!({ "text": post.text })
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
                label: ValueLabel::Capacity as i32,
                text: "312 hours given back".into(),
                formula: "people × hours".into(),
            }],
            people: vec![CreditedPerson {
                name: "a member of Platform & SRE".into(),
                role: "worked on it".into(),
                anonymised: true,
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
    fn renders_markdown_with_the_value_its_label_and_the_people() {
        let text = render(&card())["text"].as_str().unwrap_or("").to_string();
        assert!(
            text.starts_with("#### Warehouse Management restored"),
            "{text}"
        );
        assert!(text.contains("**312 hours given back**"), "{text}");
        assert!(text.contains("capacity\\: working time released"), "{text}");
        assert!(
            text.contains("a member of Platform &amp; SRE \\(worked on it\\)"),
            "{text}"
        );
        assert!(
            text.contains("[Open INC0048213](https://x.example/inc)"),
            "{text}"
        );
    }

    #[test]
    fn stays_within_the_post_size_however_long_the_card() {
        let mut long = card();
        long.title = "<".repeat(5000);
        long.summary = "&".repeat(10_000);
        long.value_lines = (0..30).map(|_| long.value_lines[0].clone()).collect();
        long.people = (0..40)
            .map(|i| CreditedPerson {
                name: format!("Person {i}"),
                role: "worked on it".into(),
                anonymised: false,
            })
            .collect();
        let text = render(&long)["text"].as_str().unwrap_or("").to_string();
        assert!(
            text.chars().count() <= TEXT_CHARS,
            "{}",
            text.chars().count()
        );
        assert!(text.starts_with("#### &lt;"), "the title comes first");
    }
}
