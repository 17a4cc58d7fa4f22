//! The card as text for a terminal: bold title, the value line with its label, people and link.

use herald_proto::v1::{Card, ValueLabel};

const BOLD: &str = "\x1b[1m";
const GREEN: &str = "\x1b[32m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

pub fn render(card: &Card, colour: bool) -> String {
    let (bold, green, dim, reset) = if colour {
        (BOLD, GREEN, DIM, RESET)
    } else {
        ("", "", "", "")
    };
    let mut out = format!("\n{bold}★ {}{reset}\n", card.title);
    if !card.summary.is_empty() {
        for line in card.summary.lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    for line in &card.value_lines {
        let label = ValueLabel::try_from(line.label).unwrap_or(ValueLabel::Unspecified);
        out.push_str(&format!(
            "  {green}{}{reset}  {dim}[{}]{reset}\n",
            line.text,
            label.meaning()
        ));
        out.push_str(&format!("  {dim}how: {}{reset}\n", line.formula));
    }
    if !card.teams.is_empty() {
        out.push_str(&format!("  Thank you, {}\n", card.teams.join(", ")));
    }
    if !card.people.is_empty() {
        let people: Vec<String> = card
            .people
            .iter()
            .map(|p| format!("{} ({})", p.name, p.role))
            .collect();
        out.push_str(&format!("  Credited: {}\n", people.join(", ")));
    }
    for link in &card.links {
        out.push_str(&format!("  {dim}{}: {}{reset}\n", link.title, link.url));
    }
    out
}

#[cfg(test)]
mod tests {
    use herald_proto::v1::{CreditedPerson, ValueLine};

    use super::*;

    #[test]
    fn plain_text_has_no_escape_codes_and_colour_has_them() {
        let card = Card {
            title: "Restored".into(),
            value_lines: vec![ValueLine {
                label: ValueLabel::Avoided as i32,
                text: "€10".into(),
                formula: "f".into(),
            }],
            people: vec![CreditedPerson {
                name: "Ingrid".into(),
                role: "resolved it".into(),
                anonymised: false,
            }],
            ..Default::default()
        };
        let plain = render(&card, false);
        assert!(!plain.contains('\x1b'));
        assert!(
            plain.contains("€10")
                && plain.contains("avoided")
                && plain.contains("Ingrid (resolved it)")
        );
        assert!(render(&card, true).contains(BOLD));
    }
}
