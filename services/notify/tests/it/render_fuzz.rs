//! Every card renderer fuzzed with hostile ticket data: titles, summaries, names, roles, teams,
//! value lines and link titles built from the fragments that would ping a channel, inject markup or
//! a link, or break a limit, in any order and size. Whatever comes in, each channel's payload stays
//! within its limits and nothing from ticket data arrives live.

use herald_notify::render::{discord, email, google_chat, mattermost, slack, teams};
use herald_proto::v1::{Card, CreditedPerson, Link, ValueLabel, ValueLine};
use proptest::prelude::*;
use serde_json::Value;

use crate::channels::strings;

/// Herald's own link to the record: the only link any payload may carry.
const RECORD: &str = "https://larkspur.service-now.com/nav_to.do?uri=incident.do?sys_id=1";

const FRAGMENTS: &[&str] = &[
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U123>",
    "<#C123>",
    "<users/all>",
    "@everyone",
    "@here",
    "@channel",
    "@all",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[x](http://evil)",
    "[x](javascript:alert(1))",
    "<http://evil|click>",
    "javascript:",
    "**bold**",
    "_it_",
    "`code`",
    "~strike~",
    "&amp;",
    "&lt;",
    "\"quoted\"",
    "'single'",
    "\\",
    "|",
    ">",
    "\r\nBcc: victim@example.com",
    "\n",
    "\u{200B}",
    "e\u{301}",
    "👩‍👩‍👧‍👦",
    "🇳🇴",
    "Ingrid Lindqvist",
    " ",
    "{\"json\":true}",
];

fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        // Short texts made of hostile fragments.
        4 => proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..12)
            .prop_map(|parts| parts.concat()),
        // Oversized: a fragment repeated past every channel's limit.
        1 => (proptest::sample::select(FRAGMENTS), 200usize..1_500)
            .prop_map(|(part, times)| part.repeat(times)),
    ]
}

prop_compose! {
    fn card()(
        title in hostile(),
        summary in hostile(),
        names in proptest::collection::vec(hostile(), 0..45),
        role in hostile(),
        teams in proptest::collection::vec(hostile(), 0..4),
        line in hostile(),
        formula in hostile(),
        link_title in hostile(),
        service in proptest::option::of(hostile()),
    ) -> Card {
        Card {
            title,
            summary,
            value_lines: vec![ValueLine {
                label: ValueLabel::Capacity as i32,
                text: line,
                formula,
            }],
            people: names
                .into_iter()
                .map(|name| CreditedPerson { name, role: role.clone(), anonymised: false })
                .collect(),
            teams,
            links: vec![
                Link { title: link_title.clone(), url: RECORD.into() },
                Link { title: link_title, url: "javascript:alert(1)".into() },
            ],
            business_service: service,
        }
    }
}

fn all_strings(value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    strings(value, &mut out);
    out
}

fn chars(value: &Value) -> usize {
    value.as_str().map_or(0, |s| s.chars().count())
}

/// No Slack control sequence but Herald's link to the record.
fn slack_inert(s: &str) -> Result<(), TestCaseError> {
    for (i, _) in s.match_indices('<') {
        prop_assert!(
            s[i..].starts_with("<https://larkspur.service-now.com/"),
            "control sequence from ticket data in {s:?}"
        );
    }
    Ok(())
}

/// No Markdown link but Herald's own, and no emphasis or code left live. (These channels show HTML
/// as text, so a `<script>` there is only words.)
fn markdown_inert(s: &str) -> Result<(), TestCaseError> {
    for (i, _) in s.match_indices("](") {
        prop_assert!(
            s[..i].ends_with('\\') || s[i..].starts_with("](https://larkspur.service-now.com/"),
            "a link from ticket data in {s:?}"
        );
    }
    for live in ["**bold**", "_it_", "`code`"] {
        prop_assert!(!s.contains(live), "{live} live in {s:?}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn slack_stays_inert_and_within_block_kit(card in card()) {
        let message = slack::render(&card);
        let blocks = message["blocks"].as_array().cloned().unwrap_or_default();
        prop_assert!(!blocks.is_empty() && blocks.len() <= 50);
        for block in &blocks {
            if block["type"] == "header" {
                prop_assert!(chars(&block["text"]["text"]) <= 150);
            }
            if block["type"] == "section" {
                prop_assert!(chars(&block["text"]["text"]) <= 3000);
            }
        }
        for s in all_strings(&message) {
            slack_inert(&s)?;
        }
    }

    #[test]
    fn teams_stays_inert_and_under_28_kb(card in card()) {
        let message = teams::render(&card);
        prop_assert!(serde_json::to_vec(&message).map(|b| b.len()).unwrap_or(usize::MAX) <= 28 * 1024);
        for s in all_strings(&message) {
            markdown_inert(&s)?;
            for live in ["<!channel>", "<at>", "javascript:"] {
                prop_assert!(!s.contains(live), "{live} live in {s:?}");
            }
        }
    }

    #[test]
    fn discord_mentions_nobody_and_stays_within_its_limits(card in card()) {
        let message = discord::render(&card);
        prop_assert!(chars(&message["content"]) <= 2000);
        let embeds = message["embeds"].as_array().cloned().unwrap_or_default();
        let total: usize = embeds.iter().map(discord::embed_chars).sum();
        prop_assert!(total <= 6000, "{total} characters in embeds");
        prop_assert_eq!(&message["allowed_mentions"]["parse"], &serde_json::json!([]));
        for s in all_strings(&message) {
            markdown_inert(&s)?;
            for mention in ["@everyone", "@here", "<@U123>", "javascript:"] {
                prop_assert!(!s.contains(mention), "{mention} in {s:?}");
            }
        }
    }

    #[test]
    fn mattermost_mentions_nobody_and_carries_no_slack_markup(card in card()) {
        let message = mattermost::render(&card);
        prop_assert!(chars(&message["text"]) <= mattermost::TEXT_CHARS);
        for s in all_strings(&message) {
            markdown_inert(&s)?;
            prop_assert!(!s.contains('<'), "{s:?}");
            for mention in ["@everyone", "@here", "@channel", "@all"] {
                prop_assert!(!s.contains(mention), "{mention} in {s:?}");
            }
        }
    }

    #[test]
    fn google_chat_carries_only_heralds_markup_within_32_000_bytes(card in card()) {
        let message = google_chat::render(&card);
        prop_assert!(
            serde_json::to_vec(&message).map(|b| b.len()).unwrap_or(usize::MAX)
                <= google_chat::MAX_BYTES
        );
        // The header's subtitle (the business service) is plain text in Google Chat, shown as it
        // is: nothing in it formats, links or mentions. Every other text is HTML.
        let subtitle = &message["cardsV2"][0]["card"]["header"]["subtitle"];
        prop_assert!(chars(subtitle) <= 100);
        let mut body = message.clone();
        if let Some(header) = body["cardsV2"][0]["card"]["header"].as_object_mut() {
            header.remove("subtitle");
        }
        for s in all_strings(&body) {
            for (i, _) in s.match_indices('<') {
                let tag = &s[i..];
                prop_assert!(
                    ["<b>", "</b>", "<a href=\"https://larkspur.service-now.com/", "</a>"]
                        .iter()
                        .any(|t| tag.starts_with(t)),
                    "markup from ticket data in {s:?}"
                );
            }
        }
    }

    #[test]
    fn email_adds_no_header_or_markup(card in card()) {
        let mail = email::render(&card);
        prop_assert!(!mail.subject.contains('\r') && !mail.subject.contains('\n'), "{:?}", mail.subject);
        prop_assert!(mail.subject.chars().count() <= 200);
        // Ticket text is shown as text ("javascript:" may be read, never followed).
        for live in ["<script", "<img", "href=\"javascript", "href=\"http://evil", "<a href=\"http://evil"] {
            prop_assert!(!mail.html.to_lowercase().contains(live), "{live} in the HTML");
        }
        // The text part is plain text, shown as it is: only its size matters. Each part of the
        // card is cut on its own (a 20,000-character summary, 100 people…), so the whole stays
        // under 100,000 characters whatever the ticket holds.
        prop_assert!(mail.text.chars().count() <= 100_000, "{} characters", mail.text.chars().count());
    }
}
