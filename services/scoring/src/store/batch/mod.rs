//! Recording a batch of events as sets: the batch is cut into runs of events that cannot see each
//! other's writes ([`runs`]), and each run is read and written with one statement per table
//! instead of a dozen statements per event. What each event ends up with is what recording the
//! events one at a time, in order, would give it.

mod arrays;
mod in_one;
mod lookups;
mod runs;
pub(super) mod writes;

pub(super) use lookups::{Candidate, signals_against};

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use herald_proto::v1::{CreditSubject, ItsmEvent, Win, WinStatus};
use herald_runtime::{db::millis, store::is_postgres};
use sqlx::{Any, Transaction};

use super::{DailyCap, Recorded, StoreError, decode, recorded_before, stories, verification};
use crate::{
    score::{Outcome, Scored},
    verification::{Signal, Windows},
};

/// One event to record, with what verification made of it.
pub(super) struct Item<'a> {
    pub event: &'a ItsmEvent,
    pub outcome: &'a Outcome,
    pub signals: Vec<Signal>,
    pub windows: Option<Windows>,
    pub cap: Option<DailyCap>,
}

impl Item<'_> {
    /// Whether the event brings nothing beside its win and signals (no praise, lesson or
    /// deployment), so it can share a run.
    fn is_plain(&self) -> bool {
        self.outcome.praise.is_none()
            && self.outcome.delivery.is_none()
            && self.outcome.lesson.is_none()
    }
}

/// Records `items` in order inside `tx`.
pub(super) async fn record(
    tx: &mut Transaction<'_, Any>,
    items: &[Item<'_>],
    now: DateTime<Utc>,
) -> Result<Vec<Recorded>, StoreError> {
    let mut out = Vec::with_capacity(items.len());
    for range in runs::runs(items) {
        let run = &items[range];
        tracing::trace!(events = run.len(), "recording a run");
        metrics::histogram!("herald_scoring_run_events").record(run.len() as f64);
        out.extend(record_run(tx, run, now).await?);
    }
    Ok(out)
}

/// A standing win a signal of the run withdrew.
struct Withdrawal {
    /// The run's event whose signal withdrew it.
    item: usize,
    win: Win,
    was_public: bool,
    outcome_at: DateTime<Utc>,
}

/// A win the run is making.
struct Making<'a> {
    item: usize,
    win: Win,
    scored: &'a Scored,
    windows: Windows,
    configuration_item: Option<&'a str>,
}

async fn record_run(
    tx: &mut Transaction<'_, Any>,
    items: &[Item<'_>],
    now: DateTime<Utc>,
) -> Result<Vec<Recorded>, StoreError> {
    let events: Vec<_> = items.iter().map(|i| (i.event, &i.outcome.result)).collect();
    let brought: Vec<writes::SignalOf<'_>> = items
        .iter()
        .flat_map(|i| i.signals.iter().map(|s| (i.event.id.as_str(), s)))
        .collect();
    let inserted = writes::events_and_signals(tx, &events, &brought, now).await?;
    let mut recorded: Vec<Option<Recorded>> = items.iter().map(|_| None).collect();
    let mut publish: Vec<Vec<Win>> = vec![Vec::new(); items.len()];
    let mut fresh = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if inserted.contains(&item.event.id) {
            fresh.push(i);
        } else {
            recorded[i] = Some(recorded_before(tx, &item.event.id).await?);
        }
    }

    let signals: Vec<(usize, &Signal)> = fresh
        .iter()
        .flat_map(|&i| items[i].signals.iter().map(move |s| (i, s)))
        .collect();
    let withdrawals = withdraw(tx, &signals, now).await?;
    for w in withdrawals.iter().filter(|w| w.was_public) {
        publish[w.item].push(w.win.clone());
    }
    // Only an event alone in its run brings anything beside its win.
    for &i in &fresh {
        let (event, outcome) = (items[i].event, items[i].outcome);
        if let Some(praise) = &outcome.praise {
            stories::keep_praise(tx, event, praise, now).await?;
        }
        if let Some(metric) = &outcome.delivery {
            stories::count_delivery(tx, event, metric).await?;
        }
        if let Some(lesson) = &outcome.lesson {
            publish[i].extend(stories::record_lesson(tx, lesson, now).await?);
        }
    }

    let mut making: Vec<Making<'_>> = fresh
        .iter()
        .filter_map(|&i| {
            let item = &items[i];
            let (Ok(scored), Some(windows)) = (&item.outcome.result, item.windows) else {
                return None;
            };
            Some(Making {
                item: i,
                win: scored.win.clone(),
                scored,
                windows,
                configuration_item: item
                    .event
                    .record
                    .as_ref()
                    .and_then(|r| r.configuration_item.as_deref()),
            })
        })
        .collect();
    decide(tx, items, &mut making, &withdrawals, now).await?;

    let new_wins: Vec<writes::NewWin<'_>> = making
        .iter()
        .map(|m| writes::NewWin {
            win: &m.win,
            outcome_key: &m.scored.outcome_key,
            windows: m.windows,
            configuration_item: m.configuration_item,
        })
        .collect();
    // On PostgreSQL the wins go in with their person credits and ledger lines, in one
    // statement; elsewhere those follow as statements of their own.
    let written = if is_postgres(tx) {
        // Every win's, for the statement keeps only those of the wins it inserts.
        let (credited, entries) = credits_and_entries(making.iter());
        in_one::record_wins(tx, &new_wins, &credited, &entries, now).await?
    } else {
        None
    };
    let in_one = written.is_some();
    let created = match written {
        Some(created) => created,
        None => writes::wins(tx, &new_wins, now).await?,
    };
    let (made, repeated): (Vec<&Making<'_>>, Vec<&Making<'_>>) =
        making.iter().partition(|m| created.contains(&m.win.id));
    // Each fresh event with a scored win was inserted pointing at it; the win was made for most.
    let kept: HashSet<usize> = making.iter().map(|m| m.item).collect();
    let unlinked: Vec<&str> = fresh
        .iter()
        .filter(|&&i| items[i].outcome.result.is_ok() && !kept.contains(&i))
        .map(|&i| items[i].event.id.as_str())
        .collect();
    writes::unlink_events(tx, &unlinked).await?;
    // Another event (the "closed" push after the "resolved" one) already credited these outcomes.
    let same: Vec<writes::Repeat<'_>> = repeated
        .iter()
        .map(|m| writes::Repeat {
            event: items[m.item].event.id.as_str(),
            win: m.win.id.as_str(),
            outcome_key: m.scored.outcome_key.as_str(),
        })
        .collect();
    writes::same_outcome(tx, &same).await?;
    if !in_one {
        let (credited, entries) = credits_and_entries(made.iter().copied());
        writes::person_credits(tx, &credited).await?;
        writes::ledger(tx, &entries, now).await?;
    }

    // The wins made move out of `making` (each was cloned once already, to be decided on).
    let mut wins: HashMap<usize, Win> = making
        .into_iter()
        .filter(|m| created.contains(&m.win.id))
        .map(|m| (m.item, m.win))
        .collect();
    Ok(recorded
        .into_iter()
        .zip(publish)
        .enumerate()
        .map(|(i, (before, publish))| {
            before.unwrap_or_else(|| {
                let win = wins.remove(&i);
                Recorded {
                    new: true,
                    publish_win: win
                        .as_ref()
                        .is_some_and(|w| w.status == WinStatus::Confirmed as i32),
                    win,
                    publish,
                }
            })
        })
        .collect())
}

/// What the person credits and the ledger get for `wins`: each win with when its outcome
/// happened, and its ledger lines in order.
type CreditsAndEntries<'a> = (Vec<(&'a Win, DateTime<Utc>)>, Vec<writes::Entry<'a>>);

fn credits_and_entries<'a>(
    wins: impl Iterator<Item = &'a Making<'a>> + Clone,
) -> CreditsAndEntries<'a> {
    let credited = wins
        .clone()
        .map(|m| (&m.win, m.windows.outcome_at))
        .collect();
    let entries = wins.flat_map(|m| writes::new_win_entries(&m.win)).collect();
    (credited, entries)
}

/// Withdraws every standing win one of the run's new signals (kept with their events) falls inside
/// the window of, in the order the signals came.
async fn withdraw(
    tx: &mut Transaction<'_, Any>,
    signals: &[(usize, &Signal)],
    now: DateTime<Utc>,
) -> Result<Vec<Withdrawal>, StoreError> {
    if signals.is_empty() {
        return Ok(Vec::new());
    }
    let only: Vec<&Signal> = signals.iter().map(|(_, s)| *s).collect();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for found in lookups::withdrawable(tx, &only).await? {
        let Some((item, signal)) = signals.get(found.signal) else {
            continue;
        };
        if !seen.insert(found.id.clone()) {
            continue;
        }
        let mut win = decode(&found.id, found.payload)?;
        let was_public = win.status != WinStatus::Provisional as i32;
        verification::revoke(&mut win, &signal.reason(), now);
        verification::write_status(tx, &win, was_public).await?;
        out.push(Withdrawal {
            item: *item,
            win,
            was_public,
            outcome_at: found.outcome_at,
        });
    }
    let entries: Vec<writes::Entry<'_>> = out
        .iter()
        .map(|w| writes::Entry {
            win: &w.win,
            entry: "revoked",
            reason: Some(&w.win.status_reason),
        })
        .collect();
    writes::ledger(tx, &entries, now).await?;
    Ok(out)
}

/// Completes each win the run makes, in order: the praise that arrived before it, the daily cap
/// on its people's credit, and its status (withdrawn by a signal seen earlier, confirmed, or
/// provisional).
async fn decide(
    tx: &mut Transaction<'_, Any>,
    items: &[Item<'_>],
    making: &mut [Making<'_>],
    withdrawals: &[Withdrawal],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if making.is_empty() {
        return Ok(());
    }
    let praise = lookups::praise(tx, &making.iter().map(|m| &m.win).collect::<Vec<_>>()).await?;
    let candidates: Vec<lookups::Candidate<'_>> = making
        .iter()
        .map(|m| lookups::Candidate {
            win: &m.win,
            configuration_item: m.configuration_item,
            windows: m.windows,
        })
        .collect();
    let against = lookups::signals_against(tx, &candidates).await?;
    let mut book = CapBook::read(tx, items, making, withdrawals).await?;
    for ((m, praise), signal) in making.iter_mut().zip(praise).zip(against) {
        m.win.praise = praise;
        if let (Some(book), Some(cap)) = (book.as_mut(), items[m.item].cap.as_ref()) {
            let today = book.today(m.item, cap, &m.win);
            m.win.credits = crate::credit::cap_daily(
                std::mem::take(&mut m.win.credits),
                &today,
                cap.per_person,
            );
        }
        verification::set_initial_status(&mut m.win, &m.windows, signal.as_ref(), now);
        if let Some(book) = book.as_mut() {
            book.made(m);
        }
    }
    Ok(())
}

/// Who of the people a win credits got how much: what the daily cap counts and
/// `person_credits` keeps.
pub(in crate::store) fn people_credited(win: &Win) -> impl Iterator<Item = (&str, f64)> {
    win.credits
        .iter()
        .filter(|c| c.subject == CreditSubject::Person as i32)
        .map(|c| (c.id.as_str(), c.amount))
}

/// A win's person credits and when its outcome happened, for the daily cap.
struct Credited {
    at: DateTime<Utc>,
    people: Vec<(String, f64)>,
}

impl Credited {
    fn of(win: &Win, at: DateTime<Utc>) -> Self {
        Self {
            at,
            people: people_credited(win)
                .map(|(p, a)| (p.to_string(), a))
                .collect(),
        }
    }

    fn to(&self, person: &str) -> f64 {
        self.people
            .iter()
            .filter(|(p, _)| p == person)
            .map(|(_, a)| a)
            .sum()
    }
}

/// The daily cap's running totals through a run: what the database held when the run's wins were
/// decided, corrected to what each event would have seen at its turn (wins the run withdrew after
/// it were still standing; wins the run made before it already counted).
struct CapBook {
    stored: HashMap<(String, i64), f64>,
    /// Wins withdrawn by the run, with the event that withdrew each.
    withdrawn: Vec<(usize, Credited)>,
    /// Standing wins the run made so far.
    made: Vec<Credited>,
    /// Outcomes that already had a win: a win for one will not be made, so it counts for nobody.
    existing: HashSet<String>,
}

impl CapBook {
    /// `None` when no event of the run is capped.
    async fn read(
        tx: &mut Transaction<'_, Any>,
        items: &[Item<'_>],
        making: &[Making<'_>],
        withdrawals: &[Withdrawal],
    ) -> Result<Option<Self>, StoreError> {
        let mut asks = Vec::new();
        let mut asked = HashSet::new();
        for m in making {
            let Some(cap) = items[m.item].cap.as_ref() else {
                continue;
            };
            for (person, _) in people_credited(&m.win) {
                if asked.insert((person, millis(cap.start))) {
                    asks.push((person, cap.start, cap.end));
                }
            }
        }
        if asks.is_empty() {
            return Ok(None);
        }
        let stored = lookups::credited(tx, &asks).await?;
        let keys: Vec<(&str, &str)> = making
            .iter()
            .map(|m| (m.win.id.as_str(), m.scored.outcome_key.as_str()))
            .collect();
        let existing = lookups::existing_outcomes(tx, &keys).await?;
        Ok(Some(Self {
            stored,
            withdrawn: withdrawals
                .iter()
                .map(|w| (w.item, Credited::of(&w.win, w.outcome_at)))
                .collect(),
            made: Vec::new(),
            existing,
        }))
    }

    /// What each person of `win` had been credited on the cap's day when event `item` came.
    fn today(&self, item: usize, cap: &DailyCap, win: &Win) -> HashMap<String, f64> {
        let on_day = |at: &DateTime<Utc>| *at >= cap.start && *at < cap.end;
        let mut totals = HashMap::new();
        for (person, _) in people_credited(win) {
            let mut total = self
                .stored
                .get(&(person.to_string(), millis(cap.start)))
                .copied()
                .unwrap_or(0.0);
            total += self
                .withdrawn
                .iter()
                .filter(|(by, w)| *by > item && on_day(&w.at))
                .map(|(_, w)| w.to(person))
                .sum::<f64>();
            total += self
                .made
                .iter()
                .filter(|w| on_day(&w.at))
                .map(|w| w.to(person))
                .sum::<f64>();
            totals.insert(person.to_string(), total);
        }
        totals
    }

    /// Counts a win just decided for the events after it.
    fn made(&mut self, m: &Making<'_>) {
        if m.win.status == WinStatus::Revoked as i32
            || self.existing.contains(&m.scored.outcome_key)
        {
            return;
        }
        self.made.push(Credited::of(&m.win, m.windows.outcome_at));
    }
}
