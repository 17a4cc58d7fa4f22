//! Requester praise: a good satisfaction rating with a comment, quoted on the win of the ticket it
//! rates. It has no value of its own and credits nobody by itself.
//!
//! "Good" per source: Zendesk sends the literal `good` (its ratings are good or bad); a numeric
//! score (ServiceNow surveys, Jira Service Management's 1–5 stars) is good at 4 of 5 or better (80 %
//! of any other scale written as `8/10` or `8 of 10`); the words `satisfied`, `very satisfied`,
//! `great` and `excellent` are good too. Anything else, and any rating without a comment, is not
//! quoted.

use herald_catalog::Catalog;
use herald_proto::v1::{EventKind, ItsmEvent, Source};

use crate::config::ScoringSettings;

/// A quote to attach to the win of the rated ticket (same source, same record number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Praise {
    pub source: Source,
    /// The rated ticket's number: the win to attach to.
    pub record_number: String,
    pub quote: String,
    /// The requester's name where consent allows, else "the requester".
    pub requester: String,
    pub named: bool,
    /// The score as the source gave it.
    pub score: String,
}

/// Whether a satisfaction score counts as good praise.
pub fn is_good_rating(source: Source, score: &str) -> bool {
    let score = score.trim().to_lowercase();
    if source == Source::Zendesk {
        return score == "good";
    }
    if matches!(
        score.as_str(),
        "good" | "satisfied" | "very satisfied" | "great" | "excellent"
    ) {
        return true;
    }
    let (value, scale) = match score.split_once('/').or_else(|| score.split_once(" of ")) {
        Some((value, scale)) => (value.trim(), scale.trim()),
        None => (score.as_str(), "5"),
    };
    match (value.parse::<f64>(), scale.parse::<f64>()) {
        (Ok(value), Ok(scale)) if scale > 0.0 && (0.0..=scale).contains(&value) => {
            value / scale >= 0.8
        }
        _ => false,
    }
}

/// The praise in a `survey_submitted` event, or `None` when it is not good praise with a comment.
pub fn praise(event: &ItsmEvent, catalog: &Catalog, settings: &ScoringSettings) -> Option<Praise> {
    if EventKind::try_from(event.kind) != Ok(EventKind::SurveySubmitted) {
        return None;
    }
    let source = Source::try_from(event.source).unwrap_or(Source::Unspecified);
    let record = event.record.as_ref()?;
    let satisfaction = record.satisfaction.as_ref()?;
    if !is_good_rating(source, &satisfaction.score) {
        return None;
    }
    let comment = satisfaction.comment.as_deref()?;
    let quote = shorten(comment, settings.stories.praise_max_chars);
    if quote.is_empty() {
        return None;
    }
    let name = settings
        .stories
        .praise_names_requester
        .then(|| requester_name(record, catalog))
        .flatten();
    Some(Praise {
        source,
        record_number: record.number.clone(),
        quote,
        named: name.is_some(),
        requester: name.unwrap_or_else(|| "the requester".to_string()),
        score: satisfaction.score.clone(),
    })
}

/// A catalog person's public name (an opt-out still wins), else the name the source gave.
fn requester_name(record: &herald_proto::v1::Record, catalog: &Catalog) -> Option<String> {
    if let Some(id) = record.requester.as_deref() {
        let public = catalog.public_name(id);
        return (!public.anonymised).then_some(public.name);
    }
    record
        .requester_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(String::from)
}

/// Blanks collapsed, and cut at a word boundary to at most `max` characters with an ellipsis.
fn shorten(text: &str, max: usize) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let whole = words.join(" ");
    if whole.chars().count() <= max {
        return whole;
    }
    let mut out = String::new();
    for word in words {
        let next = if out.is_empty() { 0 } else { 1 } + word.chars().count();
        if out.chars().count() + next + 1 > max {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_is_defined_per_source() {
        assert!(is_good_rating(Source::Zendesk, "Good"));
        assert!(!is_good_rating(Source::Zendesk, "bad"));
        assert!(!is_good_rating(Source::Zendesk, "5"));
        for good in ["5", "4", "4/5", "8 of 10", "4.5", "satisfied"] {
            assert!(is_good_rating(Source::Servicenow, good), "{good}");
        }
        for not_good in ["3", "3/5", "7/10", "dissatisfied", "", "6", "-1/5", "x"] {
            assert!(!is_good_rating(Source::Jira, not_good), "{not_good}");
        }
    }

    #[test]
    fn long_comments_are_cut_at_a_word() {
        assert_eq!(
            shorten("  Thank   you\n so much ", 280),
            "Thank you so much"
        );
        let cut = shorten("one two three four five six", 14);
        assert_eq!(cut, "one two three…");
        assert!(cut.chars().count() <= 14);
    }
}
