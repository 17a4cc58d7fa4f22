//! E-mail: a subject, a plain-text part and an HTML part (multipart/alternative, text first) from
//! the one card. HTML is escaped in every text, links are web addresses only, and the subject is
//! one line, so a ticket title can neither add a header nor markup.

use herald_proto::v1::{Card, ValueLabel};

use super::{truncate, web_link};

const SUBJECT_CHARS: usize = 200;
const TEXT_CHARS: usize = 20_000;
const PEOPLE: usize = 100;

/// The parts of one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Email {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Text for HTML, in content and in attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One line, no control characters: what a header may carry.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn render(card: &Card) -> Email {
    let subject = truncate(&one_line(&card.title), SUBJECT_CHARS);
    let title = truncate(&card.title, 1000);
    let summary = truncate(&card.summary, TEXT_CHARS);
    let mut text = format!("{title}\n\n");
    let mut html = format!(
        "<!DOCTYPE html>\n<html><body style=\"font-family: sans-serif\">\n<h2>{}</h2>\n",
        escape_html(&title)
    );
    if !summary.is_empty() {
        text.push_str(&format!("{summary}\n\n"));
        html.push_str(&format!(
            "<p>{}</p>\n",
            escape_html(&summary).replace('\n', "<br>\n")
        ));
    }
    for line in card.value_lines.iter().take(20) {
        let label = ValueLabel::try_from(line.label).unwrap_or(ValueLabel::Unspecified);
        let (value, formula) = (truncate(&line.text, 500), truncate(&line.formula, 1000));
        text.push_str(&format!(
            "{value}\n  {}\n  How: {formula}\n\n",
            label.meaning()
        ));
        html.push_str(&format!(
            "<p><strong>{}</strong><br>\n<em>{}</em> · How: {}</p>\n",
            escape_html(&value),
            escape_html(label.meaning()),
            escape_html(&formula)
        ));
    }
    if !card.teams.is_empty() {
        let teams = truncate(&card.teams.join(", "), 2000);
        text.push_str(&format!("Thank you, {teams}\n"));
        html.push_str(&format!(
            "<p><strong>Thank you</strong>, {}</p>\n",
            escape_html(&teams)
        ));
    }
    if !card.people.is_empty() {
        let people: Vec<String> = card
            .people
            .iter()
            .take(PEOPLE)
            .map(|p| format!("{} ({})", truncate(&p.name, 200), truncate(&p.role, 200)))
            .collect();
        let more = card.people.len().saturating_sub(PEOPLE);
        let mut people = people.join(", ");
        if more > 0 {
            people.push_str(&format!(" and {more} more"));
        }
        text.push_str(&format!("Credited: {people}\n"));
        html.push_str(&format!("<p>Credited: {}</p>\n", escape_html(&people)));
    }
    let links: Vec<(String, String)> = card
        .links
        .iter()
        .filter_map(|l| Some((truncate(&l.title, 200), web_link(&l.url)?)))
        .take(10)
        .collect();
    if !links.is_empty() {
        text.push('\n');
        html.push_str("<p>");
        for (i, (title, target)) in links.iter().enumerate() {
            text.push_str(&format!("{title}: {target}\n"));
            if i > 0 {
                html.push_str(" · ");
            }
            html.push_str(&format!(
                "<a href=\"{}\">{}</a>",
                escape_html(target),
                escape_html(title)
            ));
        }
        html.push_str("</p>\n");
    }
    html.push_str("</body></html>\n");
    Email {
        subject,
        text,
        html,
    }
}

impl Email {
    /// The digest's way out for its recipient, at the foot of both parts.
    pub fn with_unsubscribe(mut self, url: &str) -> Self {
        self.text.push_str(&format!(
            "\nYou receive this digest from Herald. Unsubscribe: {url}\n"
        ));
        let footer = format!(
            "<p style=\"color: #666; font-size: small\">You receive this digest from Herald. <a href=\"{}\">Unsubscribe</a></p>\n</body></html>\n",
            escape_html(url)
        );
        if let Some(end) = self.html.rfind("</body></html>") {
            self.html.truncate(end);
        }
        self.html.push_str(&footer);
        self
    }
}

#[cfg(test)]
mod tests {
    use herald_proto::v1::{CreditedPerson, Link, ValueLine};

    use super::*;

    #[test]
    fn text_and_html_carry_the_card_and_html_is_escaped() {
        let card = Card {
            title: "Restored <script>alert(1)</script>\r\nBcc: all@example.com".into(),
            summary: "Scanners & pickers back".into(),
            value_lines: vec![ValueLine {
                label: ValueLabel::Avoided as i32,
                text: "€216,475 of lost work avoided".into(),
                formula: "people × hours".into(),
            }],
            people: vec![CreditedPerson {
                name: "a member of Platform <SRE>".into(),
                role: "worked on it".into(),
                anonymised: true,
            }],
            teams: vec!["Platform".into()],
            links: vec![
                Link {
                    title: "Open \"it\"".into(),
                    url: "https://x.example/inc?a=1&b=2".into(),
                },
                Link {
                    title: "run".into(),
                    url: "javascript:alert(1)".into(),
                },
            ],
            business_service: None,
        };
        let email = render(&card);
        assert_eq!(
            email.subject,
            "Restored <script>alert(1)</script> Bcc: all@example.com"
        );
        assert!(email.text.contains("€216,475 of lost work avoided"));
        assert!(
            email
                .text
                .contains("avoided: cost that did not have to be paid")
        );
        assert!(
            email
                .text
                .contains("a member of Platform <SRE> (worked on it)")
        );
        assert!(!email.html.contains("<script>"), "{}", email.html);
        assert!(email.html.contains("&lt;script&gt;"));
        assert!(email.html.contains("Platform &lt;SRE&gt;"));
        assert!(
            email
                .html
                .contains("<a href=\"https://x.example/inc?a=1&amp;b=2\">Open &quot;it&quot;</a>")
        );
        assert!(!email.html.contains("javascript:") && !email.text.contains("javascript:"));
    }
}
