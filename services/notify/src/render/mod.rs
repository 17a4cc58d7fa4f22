//! One channel-neutral card, rendered per channel within that channel's limits.

pub mod console;
pub mod slack;
pub mod webhook;

/// Cuts `text` to at most `max` characters, ending with an ellipsis when it had to cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn truncation_counts_characters_not_bytes() {
        assert_eq!(super::truncate("Tomás", 5), "Tomás");
        assert_eq!(super::truncate("Tomás Herrera", 6), "Tomás…");
        assert_eq!(super::truncate("abc", 0).chars().count(), 1);
    }
}
