//! Tables for people, JSON for scripts.
#![allow(clippy::print_stdout)] // printing is this module's job

use herald_proto::{
    time::opt_from_timestamp,
    v1::{
        DeliveryStatus, Explanation, Leaderboard, ListDeliveriesResponse, SubmitResponse,
        ValueLabel, ValueSummary,
    },
};
use serde_json::json;

fn money(currency: &str, amount: f64) -> String {
    format!("{currency} {amount:>12.2}")
}

pub fn leaderboard(board: &Leaderboard, as_json: bool) {
    if as_json {
        let entries: Vec<_> = board
            .entries
            .iter()
            .map(|e| json!({"rank": e.rank, "id": e.id, "name": e.display_name, "value": e.value, "hours": e.hours, "wins": e.wins}))
            .collect();
        println!(
            "{}",
            json!({"period_start": board.period_start, "period_end": board.period_end, "currency": board.currency, "entries": entries})
        );
        return;
    }
    println!(
        "{} to {} (end exclusive)",
        board.period_start, board.period_end
    );
    if board.entries.is_empty() {
        println!("no wins in this period");
    }
    for e in &board.entries {
        println!(
            "{:>3}. {:<36} {}  {:>8.1} h  {:>3} wins",
            e.rank,
            e.display_name,
            money(&board.currency, e.value),
            e.hours,
            e.wins
        );
    }
}

pub fn value(summary: &ValueSummary, as_json: bool) {
    let labels: Vec<(&str, f64)> = summary
        .by_label
        .iter()
        .map(|l| {
            (
                ValueLabel::try_from(l.label)
                    .map(|l| l.token())
                    .unwrap_or("unspecified"),
                l.amount,
            )
        })
        .collect();
    if as_json {
        println!(
            "{}",
            json!({"period_start": summary.period_start, "period_end": summary.period_end, "currency": summary.currency,
                   "total_value": summary.total_value, "hours_given_back": summary.hours_given_back,
                   "users_unblocked": summary.users_unblocked, "wins": summary.wins,
                   "by_label": labels.iter().map(|(l, a)| json!({"label": l, "amount": a})).collect::<Vec<_>>()})
        );
        return;
    }
    println!(
        "{} to {} (end exclusive): {} wins",
        summary.period_start, summary.period_end, summary.wins
    );
    println!(
        "  total value        {}",
        money(&summary.currency, summary.total_value)
    );
    for (label, amount) in labels {
        println!("    {label:<16} {}", money(&summary.currency, amount));
    }
    println!("  hours given back   {:>16.1}", summary.hours_given_back);
    println!("  people unblocked   {:>16.0}", summary.users_unblocked);
}

pub fn explanation(explanation: &Explanation, as_json: bool) {
    if as_json {
        println!(
            "{}",
            json!({"win_id": explanation.win.as_ref().map(|w| w.id.clone()), "text": explanation.text})
        );
    } else {
        print!("{}", explanation.text);
    }
}

pub fn deliveries(list: &ListDeliveriesResponse, as_json: bool) {
    let status = |s: i32| match DeliveryStatus::try_from(s).unwrap_or(DeliveryStatus::Unspecified) {
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Failed => "failed",
        DeliveryStatus::Unspecified => "unknown",
    };
    if as_json {
        let rows: Vec<_> = list
            .deliveries
            .iter()
            .map(|d| json!({"id": d.id, "announcement_id": d.announcement_id, "route": d.route, "channel": d.channel,
                            "status": status(d.status), "attempts": d.attempts, "last_error": d.last_error}))
            .collect();
        println!("{}", json!(rows));
        return;
    }
    if list.deliveries.is_empty() {
        println!("no deliveries");
    }
    for d in &list.deliveries {
        let created = opt_from_timestamp(d.created_at.as_ref())
            .map(|t| t.to_rfc3339())
            .unwrap_or_default();
        println!(
            "{}  {:<9} {} → {} ({}) after {} attempt(s)  {created}",
            d.id,
            status(d.status),
            d.announcement_id,
            d.route,
            d.channel,
            d.attempts
        );
        for a in &d.attempt_log {
            let outcome = if a.error.is_empty() {
                format!("HTTP {}", a.http_status)
            } else {
                a.error.clone()
            };
            println!("      #{} {} ms  {outcome}", a.attempt, a.duration_ms);
        }
    }
}

pub fn submitted(response: &SubmitResponse, as_json: bool) {
    if as_json {
        println!(
            "{}",
            json!({"id": response.id, "duplicate": response.duplicate, "published": response.published, "note": response.note})
        );
    } else if response.published {
        println!(
            "accepted {}{}",
            response.id,
            if response.duplicate {
                " (duplicate)"
            } else {
                ""
            }
        );
    } else {
        println!("accepted, not published: {}", response.note);
    }
}

pub fn backfill_summary(
    totals: &crate::backfill::Totals,
    start_rows: u64,
    elapsed: std::time::Duration,
    as_json: bool,
) {
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
