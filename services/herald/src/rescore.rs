//! `herald rescore --catalog new.toml --dry-run`: what a new catalog would do to the wins already
//! scored, before it lands. Scoring replays every stored event under the new catalog and compares;
//! nothing is written.
#![allow(clippy::print_stdout)] // printing is this module's job

use std::path::PathBuf;

use anyhow::Context;
use herald_proto::v1::{
    EventKind, RescoreChange, RescoreEffect, RescoreRequest, RescoreSummary, ValueLabel, WinStatus,
    rescore_reply::Item, scoring_client::ScoringClient,
};
use serde_json::json;

use crate::client::{Api, ScoringAddress, status_error};

/// Replay the stored events under another catalog and show which wins and totals would change.
///
/// Only --dry-run is supported: to apply a catalog, replace the catalog file; the running services
/// reload it within seconds and value new events with it (wins already scored keep their numbers).
///
/// Exit status: 0 when the comparison ran, 1 when it could not, 2 without --dry-run.
#[derive(clap::Args)]
pub struct Args {
    /// The catalog to try (a catalog file, as `[catalog] path` names one).
    #[arg(long)]
    catalog: PathBuf,
    /// Compare only; change nothing. Required.
    #[arg(long)]
    dry_run: bool,
    /// Replay under these scoring rules (only the running rules are available).
    #[arg(long)]
    rules_version: Option<String>,
    /// Show at most this many changed wins, largest change first.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    address: ScoringAddress,
}

/// Exit status when the command is used for something it does not do.
const USAGE: i32 = 2;

pub async fn run(args: Args) -> anyhow::Result<()> {
    if !args.dry_run {
        eprintln!(
            "herald: rescore only compares (--dry-run). To apply {path}, replace the catalog file \
             that [catalog] path names with it: every service reloads it within seconds and values \
             new events with it; wins already scored keep their numbers.",
            path = args.catalog.display()
        );
        std::process::exit(USAGE);
    }
    let catalog_toml = std::fs::read_to_string(&args.catalog)
        .with_context(|| format!("cannot read the catalog {}", args.catalog.display()))?;
    let target = args.address.target();
    let mut client = ScoringClient::new(target.connect().await?);
    let mut stream = client
        .rescore(RescoreRequest {
            catalog_toml,
            rules_version: args.rules_version.unwrap_or_default(),
        })
        .await
        .map_err(|s| status_error(Api::Scoring, s))?
        .into_inner();
    let mut changes = Vec::new();
    let mut summary = None;
    while let Some(reply) = stream
        .message()
        .await
        .map_err(|s| status_error(Api::Scoring, s))?
    {
        match reply.item {
            Some(Item::Page(page)) => changes.extend(page.changes),
            Some(Item::Summary(s)) => summary = Some(s),
            None => {}
        }
    }
    let summary =
        summary.context("scoring ended the replay without its summary; see the scoring logs")?;
    // Largest change first; ties by win id so the order is stable.
    changes.sort_by(|a, b| {
        delta(b)
            .abs()
            .total_cmp(&delta(a).abs())
            .then_with(|| a.win_id.cmp(&b.win_id))
    });
    if args.json {
        print_json(&changes, &summary, args.limit);
    } else {
        print_text(&changes, &summary, args.limit);
    }
    Ok(())
}

fn delta(change: &RescoreChange) -> f64 {
    change.new_amount - change.old_amount
}

fn effect(change: &RescoreChange) -> &'static str {
    match RescoreEffect::try_from(change.effect).unwrap_or(RescoreEffect::Unspecified) {
        RescoreEffect::Changed => "changed",
        RescoreEffect::Appears => "appears",
        RescoreEffect::Disappears => "disappears",
        RescoreEffect::Unspecified => "unknown",
    }
}

fn label(label: i32) -> &'static str {
    match ValueLabel::try_from(label) {
        Ok(ValueLabel::Unspecified) | Err(_) => "-",
        Ok(label) => label.token(),
    }
}

fn kind(change: &RescoreChange) -> &'static str {
    EventKind::try_from(change.kind)
        .map(|k| k.token())
        .unwrap_or("unspecified")
}

fn status(change: &RescoreChange) -> &'static str {
    match WinStatus::try_from(change.status).unwrap_or(WinStatus::Unspecified) {
        WinStatus::Unspecified if change.effect == RescoreEffect::Appears as i32 => "new",
        WinStatus::Provisional => "pending",
        WinStatus::Revoked => "revoked",
        _ => "confirmed",
    }
}

fn print_json(changes: &[RescoreChange], summary: &RescoreSummary, limit: usize) {
    let rows: Vec<_> = changes
        .iter()
        .take(limit)
        .map(|c| {
            json!({
                "win_id": c.win_id, "event_id": c.event_id, "record_number": c.record_number,
                "kind": kind(c), "effect": effect(c), "status": status(c),
                "old_amount": c.old_amount, "old_label": label(c.old_label),
                "new_amount": c.new_amount, "new_label": label(c.new_label),
                "change": delta(c), "currency": c.currency,
                "reason": (!c.reason.is_empty()).then_some(&c.reason),
            })
        })
        .collect();
    println!(
        "{}",
        json!({
            "dry_run": true,
            "catalog_version": summary.catalog_version,
            "current_catalog_version": summary.current_catalog_version,
            "rules_version": summary.rules_version,
            "events_replayed": summary.events,
            "events_without_payload": summary.events_without_payload,
            "wins_compared": summary.wins_compared,
            "changed": summary.changed,
            "appearing": summary.appearing,
            "disappearing": summary.disappearing,
            "changes": rows,
            "changes_shown": rows.len(),
            "currency": summary.currency,
            "totals": summary.totals.iter().map(|t| json!({
                "label": label(t.label), "before": t.before, "after": t.after,
            })).collect::<Vec<_>>(),
        })
    );
}

fn print_text(changes: &[RescoreChange], summary: &RescoreSummary, limit: usize) {
    let current = if summary.current_catalog_version.is_empty() {
        "the catalog in force".to_string()
    } else {
        summary.current_catalog_version.clone()
    };
    println!(
        "Dry run: catalog {} against {current} (rules {}); nothing was changed",
        summary.catalog_version, summary.rules_version
    );
    println!(
        "{} events replayed, {} wins compared: {} changed, {} would appear, {} would disappear",
        summary.events,
        summary.wins_compared,
        summary.changed,
        summary.appearing,
        summary.disappearing
    );
    if summary.events_without_payload > 0 {
        println!(
            "{} events were recorded before scoring kept payloads and could not be replayed",
            summary.events_without_payload
        );
    }
    if changes.is_empty() {
        println!("\nno win would change");
    } else {
        println!(
            "\n{:<20} {:<12} {:<22} {:<10} {:>16} {:>16} {:>14}  label",
            "win", "record", "kind", "status", "before", "after", "change"
        );
        for c in changes.iter().take(limit) {
            let labels = if c.old_label == c.new_label || c.effect != RescoreEffect::Changed as i32
            {
                label(if c.new_label != 0 {
                    c.new_label
                } else {
                    c.old_label
                })
                .to_string()
            } else {
                format!("{} → {}", label(c.old_label), label(c.new_label))
            };
            let (before, after) = match RescoreEffect::try_from(c.effect) {
                Ok(RescoreEffect::Appears) => ("-".to_string(), money(c.new_amount)),
                Ok(RescoreEffect::Disappears) => (money(c.old_amount), "-".to_string()),
                _ => (money(c.old_amount), money(c.new_amount)),
            };
            println!(
                "{:<20} {:<12} {:<22} {:<10} {before:>16} {after:>16} {:>14}  {labels} ({})",
                c.win_id,
                c.record_number,
                kind(c),
                status(c),
                signed(delta(c)),
                c.currency,
            );
            if !c.reason.is_empty() && c.effect == RescoreEffect::Disappears as i32 {
                println!("    {}", c.reason);
            }
        }
        if changes.len() > limit {
            println!("… and {} more (--limit to see them)", changes.len() - limit);
        }
    }
    println!(
        "\nTotals by label (wins that count: pending and confirmed), {}:",
        summary.currency
    );
    if summary.totals.is_empty() {
        println!("  no value");
    }
    for t in &summary.totals {
        println!(
            "  {:<10} {:>16} → {:>16}  {:>14}",
            label(t.label),
            money(t.before),
            money(t.after),
            signed(t.after - t.before)
        );
    }
}

fn money(amount: f64) -> String {
    format!("{amount:.2}")
}

fn signed(amount: f64) -> String {
    format!("{amount:+.2}")
}
