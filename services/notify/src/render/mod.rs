//! One channel-neutral card, rendered per channel within that channel's limits.
//!
//! Every renderer cuts text at a grapheme boundary (an emoji with its skin tone, a letter with its
//! combining accent stay whole) and escapes it for its format after cutting, so ITSM data can never
//! add markup, mentions or links, and a card of any size still fits the channel.

pub mod console;
pub mod discord;
pub mod email;
pub mod google_chat;
pub mod mattermost;
pub mod slack;
pub mod teams;
pub mod webhook;

use unicode_segmentation::UnicodeSegmentation;

/// Cuts `text` to at most `max` characters (Unicode scalar values), ending with an ellipsis when it
/// had to cut. The cut falls between grapheme clusters, never inside one.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let room = max.saturating_sub(1);
    let mut out = String::new();
    let mut used = 0;
    for grapheme in text.graphemes(true) {
        let size = grapheme.chars().count();
        if used + size > room {
            break;
        }
        out.push_str(grapheme);
        used += size;
    }
    out.push('…');
    out
}

/// `text` cut and then escaped with `escape`, the escaped form at most `max` characters: the raw
/// text is cut first and cut further while its escaped form is still too long, so an escape
/// sequence is never split.
pub fn fit(text: &str, max: usize, escape: impl Fn(&str) -> String) -> String {
    let mut keep = max.min(text.chars().count());
    loop {
        let escaped = escape(&truncate(text, keep));
        let len = escaped.chars().count();
        if len <= max || keep == 0 {
            return escaped;
        }
        // An escape is at most a handful of characters: step down in proportion to the excess.
        keep -= ((len - max) / 5).clamp(1, keep);
    }
}

/// The longest link a card may carry.
pub const MAX_LINK_BYTES: usize = 2048;

/// A link target from the card if it is a web address (`javascript:`, `data:` or an app link from
/// ITSM data is dropped), with the characters that could end a Markdown link or an HTML attribute
/// percent-encoded.
pub fn web_link(raw: &str) -> Option<String> {
    let url = url::Url::parse(raw.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return None;
    }
    // Longer than any record link, and enough to crowd a card out of its channel's limits.
    if url.as_str().len() > MAX_LINK_BYTES {
        return None;
    }
    let mut out = String::with_capacity(url.as_str().len());
    for c in url.as_str().chars() {
        match c {
            '(' => out.push_str("%28"),
            ')' => out.push_str("%29"),
            '[' => out.push_str("%5B"),
            ']' => out.push_str("%5D"),
            '<' => out.push_str("%3C"),
            '>' => out.push_str("%3E"),
            '"' => out.push_str("%22"),
            '\'' => out.push_str("%27"),
            ' ' => out.push_str("%20"),
            '|' => out.push_str("%7C"),
            c => out.push(c),
        }
    }
    Some(out)
}

/// Which Markdown dialect [`escape_markdown`] writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markdown {
    /// Discord: backslash escapes, and mentions (`@everyone`, `<@123>`) broken by a zero-width
    /// space after `@` (as well as `allowed_mentions` being empty).
    Discord,
    /// Mattermost: backslash escapes; `<`, `>` and `&` as entities, because Mattermost turns
    /// Slack-style `<!channel>` and `<url|text>` into mentions and links before its Markdown runs;
    /// `@` broken by a zero-width space (`@channel`, `@all`, `@here`, `@someone`).
    Mattermost,
    /// The Markdown subset of an Adaptive Card `TextBlock` (CommonMark backslash escapes).
    AdaptiveCard,
}

const ZERO_WIDTH_SPACE: char = '\u{200B}';

/// `text` as literal text in `dialect`: no emphasis, code, link, heading, list, quote or mention
/// can come out of it. Line breaks are kept.
pub fn escape_markdown(text: &str, dialect: Markdown) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let line = line.strip_suffix('\r').unwrap_or(line);
        // "1. item" would become a list: escape the dot after a leading number.
        let leading_digits = line
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .count();
        let indent = line.len() - line.trim_start().len();
        for (at, c) in line.char_indices() {
            match c {
                '<' | '>' | '&' if dialect == Markdown::Mattermost => out.push_str(match c {
                    '<' => "&lt;",
                    '>' => "&gt;",
                    _ => "&amp;",
                }),
                '\\' | '*' | '_' | '~' | '`' | '|' | '[' | ']' | '(' | ')' | '<' | '>' | '#'
                | '-' | '+' | '!' | '{' | '}' | '&' | ':' => {
                    out.push('\\');
                    out.push(c);
                }
                '.' if leading_digits > 0 && at == indent + leading_digits => {
                    out.push('\\');
                    out.push(c);
                }
                '@' if dialect != Markdown::AdaptiveCard => {
                    out.push('@');
                    out.push(ZERO_WIDTH_SPACE);
                }
                c => out.push(c),
            }
        }
    }
    out
}

/// The first message built under `caps` (most generous first) whose JSON is at most `max_bytes`,
/// else the one built under the last, smallest caps: channels with a size limit shrink their text
/// until the message fits instead of failing the send.
pub fn largest_that_fits<C>(
    caps: impl IntoIterator<Item = C>,
    max_bytes: usize,
    build: impl Fn(C) -> serde_json::Value,
) -> serde_json::Value {
    let mut message = serde_json::Value::Null;
    for cap in caps {
        message = build(cap);
        if serde_json::to_vec(&message).map_or(usize::MAX, |b| b.len()) <= max_bytes {
            break;
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_counts_characters_not_bytes() {
        assert_eq!(truncate("Tomás", 5), "Tomás");
        assert_eq!(truncate("Tomás Herrera", 6), "Tomás…");
        assert_eq!(truncate("abc", 0).chars().count(), 1);
    }

    #[test]
    fn truncation_never_splits_a_grapheme() {
        // A thumbs-up with a skin tone is two scalar values, one grapheme.
        let thumbs = "👍🏽";
        let text = format!("ab{thumbs}cd");
        // Room for "ab" and one more character: the emoji does not fit whole, so it is left out.
        assert_eq!(truncate(&text, 4), "ab…");
        assert_eq!(truncate(&text, 5), format!("ab{thumbs}…"));
        // "e" followed by a combining acute accent.
        let accented = "Rene\u{301}e Dubois";
        let cut = truncate(accented, 5);
        assert_eq!(cut, "Ren…");
        assert!(!cut.contains('\u{301}'));
        let cut = truncate(accented, 6);
        assert_eq!(cut, "Rene\u{301}…");
        // A family emoji joined with zero-width joiners stays whole or goes.
        let family = "👨‍👩‍👧‍👦";
        let cut = truncate(&format!("{family}{family}"), 9);
        assert_eq!(cut, format!("{family}…"));
        for max in 0..20 {
            let cut = truncate(&format!("x{family}y{thumbs}z{accented}"), max);
            assert!(cut.chars().count() <= max.max(1), "{max}: {cut}");
            let kept = cut.trim_end_matches('…');
            assert!(
                format!("x{family}y{thumbs}z{accented}")
                    .graphemes(true)
                    .scan(String::new(), |acc, g| {
                        acc.push_str(g);
                        Some(acc.clone())
                    })
                    .any(|prefix| prefix == kept)
                    || kept.is_empty(),
                "{max}: {cut:?} ends inside a grapheme"
            );
        }
    }

    #[test]
    fn fit_never_splits_an_escape_sequence() {
        let escaped = fit("<<<<<<", 9, |t| t.replace('<', "&lt;"));
        assert!(escaped.chars().count() <= 9, "{escaped}");
        assert_eq!(escaped, "&lt;&lt;…");
    }

    #[test]
    fn markdown_escaping_leaves_nothing_live() {
        let hostile = "@everyone <@123> [x](http://evil) *b* _i_ `c` # h\n1. list\n- item\n> quote";
        let discord = escape_markdown(hostile, Markdown::Discord);
        for live in [
            "@everyone",
            "<@123>",
            "[x](",
            "*b*",
            "_i_",
            "`c`",
            "\n1.",
            "\n-",
            "\n>",
        ] {
            assert!(!discord.contains(live), "{live} in {discord}");
        }
        assert!(discord.contains("\\[x\\]\\(http\\:"), "{discord}");
        let mattermost = escape_markdown("<!channel> @here a & b", Markdown::Mattermost);
        assert_eq!(mattermost, "&lt;\\!channel&gt; @\u{200B}here a &amp; b");
        let teams = escape_markdown("[x](http://evil) **b**", Markdown::AdaptiveCard);
        assert_eq!(teams, "\\[x\\]\\(http\\://evil\\) \\*\\*b\\*\\*");
    }

    #[test]
    fn only_web_links_are_kept() {
        assert_eq!(
            web_link("https://x.example/a(b)?q=<1>").as_deref(),
            Some("https://x.example/a%28b%29?q=%3C1%3E")
        );
        assert!(web_link("javascript:alert(1)").is_none());
        assert!(web_link("slack://open").is_none());
        assert!(web_link("not a url").is_none());
    }
}
