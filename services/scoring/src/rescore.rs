//! Model changes reviewed before they land: every stored event replayed under another catalog and
//! compared with the win it produced (`herald rescore --catalog new.toml --dry-run`). Nothing is
//! written; the catalog in force changes only when its file is replaced (see
//! `herald_catalog::CatalogHandle`).
//!
//! Replaying needs the events themselves: the stage stores each event's bytes in its row, in the
//! transaction that records it.

use std::collections::BTreeMap;

use herald_catalog::Catalog;
use herald_proto::v1::{
    EventKind, RescoreChange, RescoreEffect, RescoreSummary, RescoreTotal, ValueLabel, Win,
    WinStatus,
};

use crate::{
    config::ScoringSettings,
    score,
    store::{Store, StoreError, rescore::StoredEvent},
};

/// How many stored events are read and replayed at a time.
pub const PAGE: i64 = 500;

/// Amounts closer than this (a hundredth of the currency) are the same amount.
const SAME_AMOUNT: f64 = 0.005;

/// Replays stored events under one catalog and accumulates what changes.
pub struct Rescore<'a> {
    store: &'a Store,
    catalog: &'a Catalog,
    settings: &'a ScoringSettings,
    totals: BTreeMap<i32, (f64, f64)>,
    summary: RescoreSummary,
    /// The last event id read, and whether the history is exhausted.
    after: Option<String>,
    done: bool,
}

impl<'a> Rescore<'a> {
    pub fn new(store: &'a Store, catalog: &'a Catalog, settings: &'a ScoringSettings) -> Self {
        Self {
            store,
            catalog,
            settings,
            totals: BTreeMap::new(),
            summary: RescoreSummary {
                currency: catalog.organisation().currency.clone(),
                catalog_version: catalog.version().to_string(),
                rules_version: score::RULES_VERSION.to_string(),
                ..Default::default()
            },
            after: None,
            done: false,
        }
    }

    /// Replays the next page of stored events and returns its changed wins (often none); `None`
    /// once the whole history was read.
    pub async fn next_page(&mut self) -> Result<Option<Vec<RescoreChange>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let events = self.store.replay_page(self.after.as_deref(), PAGE).await?;
        let Some(last) = events.last() else {
            self.done = true;
            return Ok(None);
        };
        self.after = Some(last.event.id.clone());
        let mut changes = Vec::new();
        for stored in &events {
            if let Some(change) = self.replay(stored).await? {
                changes.push(change);
            }
        }
        Ok(Some(changes))
    }

    /// The summary: counts and the totals by label before and after.
    pub async fn finish(mut self) -> Result<RescoreSummary, StoreError> {
        self.summary.events_without_payload = self.store.events_without_payload().await?;
        self.summary.totals = self
            .totals
            .into_iter()
            .map(|(label, (before, after))| RescoreTotal {
                label,
                before,
                after,
            })
            .collect();
        Ok(self.summary)
    }

    /// One stored event under the new catalog: its change, if any.
    async fn replay(&mut self, stored: &StoredEvent) -> Result<Option<RescoreChange>, StoreError> {
        self.summary.events += 1;
        if stored.outcome == "same_outcome" {
            // Another event credits this outcome; its own replay compares it.
            return Ok(None);
        }
        let new = score::score(&stored.event, self.catalog, self.settings);
        match (&stored.win, new) {
            (Some(old), Ok(scored)) => {
                self.summary.wins_compared += 1;
                let new_win = scored.win;
                let counts = counts(old);
                self.add(old, counts, true);
                self.add(&new_win, counts, false);
                if !differs(old, &new_win) {
                    return Ok(None);
                }
                self.summary.changed += 1;
                Ok(Some(change(
                    old,
                    Some(&new_win),
                    RescoreEffect::Changed,
                    String::new(),
                )))
            }
            (Some(old), Err(no_value)) => {
                self.summary.wins_compared += 1;
                self.summary.disappearing += 1;
                self.add(old, counts(old), true);
                Ok(Some(change(
                    old,
                    None,
                    RescoreEffect::Disappears,
                    no_value.0,
                )))
            }
            (None, Ok(scored)) => {
                // An outcome another event already credited is not a new win.
                if self.store.win(&scored.win.id).await?.is_some() {
                    return Ok(None);
                }
                self.summary.appearing += 1;
                let new_win = scored.win;
                self.add(&new_win, true, false);
                let mut change = change(
                    &new_win,
                    None,
                    RescoreEffect::Appears,
                    new_win.headline.clone(),
                );
                (change.old_label, change.old_amount) = (0, 0.0);
                (change.new_label, change.new_amount) = label_amount(&new_win);
                change.status = WinStatus::Unspecified as i32;
                Ok(Some(change))
            }
            (None, Err(_)) => Ok(None),
        }
    }

    /// Counts a win's value into the totals before or after, when it counts.
    fn add(&mut self, win: &Win, counts: bool, before: bool) {
        if !counts {
            return;
        }
        let (label, amount) = label_amount(win);
        let entry = self.totals.entry(label).or_default();
        if before {
            entry.0 += amount;
        } else {
            entry.1 += amount;
        }
    }
}

/// A revoked win counts nowhere, before or after: its status does not depend on the catalog.
fn counts(win: &Win) -> bool {
    win.status != WinStatus::Revoked as i32
}

fn label_amount(win: &Win) -> (i32, f64) {
    win.value
        .as_ref()
        .map(|v| (v.label, v.amount))
        .unwrap_or((ValueLabel::Unspecified as i32, 0.0))
}

fn differs(old: &Win, new: &Win) -> bool {
    let (old_label, old_amount) = label_amount(old);
    let (new_label, new_amount) = label_amount(new);
    old_label != new_label || (old_amount - new_amount).abs() >= SAME_AMOUNT
}

fn change(old: &Win, new: Option<&Win>, effect: RescoreEffect, reason: String) -> RescoreChange {
    let (old_label, old_amount) = label_amount(old);
    let (new_label, new_amount) = new.map(label_amount).unwrap_or((0, 0.0));
    let currency = new
        .or(Some(old))
        .and_then(|w| w.value.as_ref())
        .map(|v| v.currency.clone())
        .unwrap_or_default();
    RescoreChange {
        win_id: old.id.clone(),
        event_id: old.event_id.clone(),
        record_number: old.record_number.clone(),
        kind: EventKind::try_from(old.kind).unwrap_or_default() as i32,
        effect: effect as i32,
        status: old.status,
        old_label,
        old_amount,
        new_label,
        new_amount,
        currency,
        reason,
        business_service: old.business_service.clone(),
    }
}
