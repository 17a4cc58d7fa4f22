//! Who is in the spotlight for a period, fairly: named people only, in the leaderboard's order,
//! except that nobody stays in it more than `rotation_after` periods running, and
//! `invisible_quota` places go to people whose quiet work (changes without incidents, problems
//! eliminated, toil automated) would otherwise be crowded out by visible roles. Each person is
//! told by a win of their own, and no two stories tell the same win when there is another.
//!
//! Rotation needs the previous periods' picks, which depend on theirs: they are worked out again
//! from a window of `2 × rotation_after` periods back, starting from nobody, so every reader (the
//! dashboard, the digests, every replica) gets the same answer without storing picks.

use std::collections::{HashSet, VecDeque};

use herald_catalog::Catalog;
use herald_proto::v1::{CreditSubject, Win};

use crate::{
    config::RecognitionSettings,
    periods::Period,
    store::{Ranked, Store, StoreError},
};

/// How deep into the leaderboard a pick may reach past people rotated out.
const CANDIDATES: i64 = 50;

/// One person in the spotlight.
#[derive(Debug, Clone, PartialEq)]
pub struct Pick {
    pub figures: Ranked,
    /// The win their story tells: their most valuable one not already told (their quiet work for
    /// a quiet-work place).
    pub story: Option<Win>,
    /// Placed for quiet work.
    pub quiet: bool,
}

fn credits(win: &Win, person: &str) -> bool {
    win.credits
        .iter()
        .any(|c| c.subject == CreditSubject::Person as i32 && c.id == person)
}

/// What one period offers: its ranking (named people only) and who did quiet work.
struct Field {
    ranking: Vec<Ranked>,
    quiet: HashSet<String>,
}

/// The people picked from a `field`, given the `history` of picks of the periods just before.
fn choose(
    field: &Field,
    history: &VecDeque<HashSet<String>>,
    settings: &RecognitionSettings,
) -> Vec<(Ranked, bool)> {
    let n = settings.rotation_after;
    let rested = |id: &str| n == 0 || history.len() < n || !history.iter().all(|h| h.contains(id));
    let eligible: Vec<&Ranked> = field
        .ranking
        .iter()
        .filter(|r| rested(&r.subject_id))
        .collect();
    let size = settings.people_shown;
    let reserved: Vec<&str> = eligible
        .iter()
        .filter(|r| field.quiet.contains(&r.subject_id))
        .take(settings.invisible_quota.min(size))
        .map(|r| r.subject_id.as_str())
        .collect();
    let open = size - reserved.len();
    let mut others = 0;
    eligible
        .into_iter()
        .filter(|r| {
            if reserved.contains(&r.subject_id.as_str()) {
                true
            } else if others < open {
                others += 1;
                true
            } else {
                false
            }
        })
        .map(|r| {
            let quiet = reserved.contains(&r.subject_id.as_str());
            (r.clone(), quiet)
        })
        .collect()
}

async fn field(
    store: &Store,
    catalog: &Catalog,
    settings: &RecognitionSettings,
    period: &Period,
) -> Result<(Field, Vec<Win>), StoreError> {
    let tz = catalog.organisation().tz();
    let (from, to) = period.instants(tz);
    let ranking = store
        .ranking(period, "person", settings.people_rank_by(), CANDIDATES)
        .await?
        .into_iter()
        .filter(|r| !catalog.public_name(&r.subject_id).anonymised)
        .collect();
    let quiet_wins = store.invisible_wins_between(from, to).await?;
    let quiet = quiet_wins
        .iter()
        .flat_map(|w| {
            w.credits
                .iter()
                .filter(|c| c.subject == CreditSubject::Person as i32)
                .map(|c| c.id.clone())
        })
        .collect();
    Ok((Field { ranking, quiet }, quiet_wins))
}

/// The spotlight of `period`, in the leaderboard's order, each with the win that tells the story.
pub async fn spotlight(
    store: &Store,
    catalog: &Catalog,
    settings: &RecognitionSettings,
    period: &Period,
) -> Result<Vec<Pick>, StoreError> {
    let mut earlier = Vec::new();
    let mut p = *period;
    for _ in 0..settings.rotation_after * 2 {
        p = p.previous();
        earlier.push(p);
    }
    let mut history: VecDeque<HashSet<String>> = VecDeque::new();
    for p in earlier.iter().rev() {
        let (field, _) = field(store, catalog, settings, p).await?;
        let picked = choose(&field, &history, settings)
            .into_iter()
            .map(|(r, _)| r.subject_id)
            .collect();
        history.push_back(picked);
        if history.len() > settings.rotation_after {
            history.pop_front();
        }
    }
    let (current, quiet_wins) = field(store, catalog, settings, period).await?;
    let chosen = choose(&current, &history, settings);
    let (from, to) = period.instants(catalog.organisation().tz());
    let wins = store.most_valuable_between(from, to).await?;
    let mut told: HashSet<String> = HashSet::new();
    let mut picks = Vec::with_capacity(chosen.len());
    for (figures, quiet) in chosen {
        let pool: &[Win] = if quiet { &quiet_wins } else { &wins };
        let theirs = || pool.iter().filter(|w| credits(w, &figures.subject_id));
        let story = theirs()
            .find(|w| !told.contains(&w.id))
            .or_else(|| theirs().next())
            .cloned();
        if let Some(w) = &story {
            told.insert(w.id.clone());
        }
        picks.push(Pick {
            figures,
            story,
            quiet,
        });
    }
    Ok(picks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranked(id: &str, value: f64) -> Ranked {
        Ranked {
            subject_id: id.into(),
            value,
            hours: 1.0,
            wins: 1,
        }
    }

    fn ids(chosen: &[(Ranked, bool)]) -> Vec<&str> {
        chosen.iter().map(|(r, _)| r.subject_id.as_str()).collect()
    }

    fn settings(shown: usize, rotation: usize, quota: usize) -> RecognitionSettings {
        RecognitionSettings {
            people_shown: shown,
            rotation_after: rotation,
            invisible_quota: quota,
            ..Default::default()
        }
    }

    #[test]
    fn quiet_work_keeps_its_place_and_the_order_stays_the_leaderboards() {
        let field = Field {
            ranking: vec![
                ranked("ana", 900.0),
                ranked("bo", 800.0),
                ranked("cy", 700.0),
                ranked("dee", 10.0),
            ],
            quiet: ["dee".to_string()].into(),
        };
        let chosen = choose(&field, &VecDeque::new(), &settings(3, 2, 1));
        assert_eq!(ids(&chosen), ["ana", "bo", "dee"]);
        assert!(chosen[2].1, "dee is there for quiet work");
        let no_quota = choose(&field, &VecDeque::new(), &settings(3, 2, 0));
        assert_eq!(ids(&no_quota), ["ana", "bo", "cy"]);
    }

    #[test]
    fn nobody_stays_in_the_spotlight_longer_than_the_rotation_allows() {
        let field = Field {
            ranking: vec![ranked("ana", 900.0), ranked("bo", 800.0), ranked("cy", 1.0)],
            quiet: HashSet::new(),
        };
        let both: HashSet<String> = ["ana".to_string(), "bo".to_string()].into();
        let only_ana: HashSet<String> = ["ana".to_string()].into();
        // Two periods running for ana: she rests this one; bo was out once, so he stays.
        let history = VecDeque::from([both.clone(), only_ana.clone()]);
        assert_eq!(
            ids(&choose(&field, &history, &settings(2, 2, 0))),
            ["bo", "cy"]
        );
        // With rotation off she stays.
        assert_eq!(
            ids(&choose(&field, &history, &settings(2, 0, 0))),
            ["ana", "bo"]
        );
        // With less history than the rotation, nobody is rotated out yet.
        let short = VecDeque::from([both]);
        assert_eq!(
            ids(&choose(&field, &short, &settings(2, 2, 0))),
            ["ana", "bo"]
        );
    }
}
