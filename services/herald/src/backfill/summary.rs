//! What a backfill run did: counts by outcome, rejections by reason with example lines, and the
//! summary printed at the end. A leaf: the checkpoint saves [`Totals`] too.
#![allow(clippy::print_stdout)] // printing is this module's job

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

/// Why rows were refused: a count and the first few line numbers, so memory stays bounded.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct Reason {
    pub count: u64,
    pub message: String,
    pub lines: Vec<u64>,
}

const EXAMPLE_LINES: usize = 5;

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct Totals {
    pub rows: u64,
    pub accepted: u64,
    pub duplicates: u64,
    /// Valid rows that are not outcomes (still open, canceled): nothing to publish.
    pub not_published: u64,
    pub rejected: u64,
    /// By error code.
    pub reasons: BTreeMap<String, Reason>,
}

pub fn tally(totals: &mut Totals, line: u64, code: &str, message: &str) {
    totals.rejected += 1;
    let reason = totals.reasons.entry(code.to_string()).or_default();
    reason.count += 1;
    if reason.message.is_empty() {
        reason.message = message.to_string();
    }
    if reason.lines.len() < EXAMPLE_LINES {
        reason.lines.push(line);
    }
}

/// The summary at the end of a run: a table for people, one JSON object for scripts.
pub fn print(totals: &Totals, start_rows: u64, elapsed: std::time::Duration, as_json: bool) {
    let rate = totals.rows.saturating_sub(start_rows) as f64 / elapsed.as_secs_f64().max(0.001);
    if as_json {
        println!(
            "{}",
            json!({
                "rows": totals.rows,
                "accepted": totals.accepted,
                "duplicates": totals.duplicates,
                "not_published": totals.not_published,
                "rejected": totals.rejected,
                "reasons": totals.reasons,
                "seconds": elapsed.as_secs_f64(),
            })
        );
        return;
    }
    println!(
        "{} rows in {:.1}s ({rate:.0} rows/s)",
        totals.rows,
        elapsed.as_secs_f64()
    );
    println!(
        "  accepted       {:>9}  new events published",
        totals.accepted
    );
    println!(
        "  duplicates     {:>9}  already accepted before",
        totals.duplicates
    );
    println!(
        "  not published  {:>9}  valid rows that are not outcomes (still open, canceled, …)",
        totals.not_published
    );
    println!("  rejected       {:>9}", totals.rejected);
    for (code, reason) in &totals.reasons {
        let lines: Vec<String> = reason.lines.iter().map(u64::to_string).collect();
        println!(
            "    {:>7} × {code}: {} (lines {}{})",
            reason.count,
            reason.message,
            lines.join(", "),
            if reason.count > lines.len() as u64 {
                ", …"
            } else {
                ""
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_keep_a_few_example_lines() {
        let mut totals = Totals::default();
        for line in 1..=20 {
            tally(&mut totals, line, "unusable_event", "missing sys_id");
        }
        let reason = &totals.reasons["unusable_event"];
        assert_eq!(reason.count, 20);
        assert_eq!(reason.lines, vec![1, 2, 3, 4, 5]);
        assert_eq!(totals.rejected, 20);
    }
}
