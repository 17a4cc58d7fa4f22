//! How widely recognition reaches: per team and per role, how many of the catalog's people were
//! credited in a period; and, privately for each team's lead, who has gone a number of weeks
//! without any credited win, so the lead can look for the work Herald does not see.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Days, Utc};
use herald_catalog::Catalog;
use herald_proto::{
    time::to_timestamp,
    v1::{Announcement, AnnouncementKind, Card, RecognitionSpread, SpreadRow},
};
use sha2::{Digest, Sha256};

use crate::{
    periods::{Period, PeriodKind},
    store::{Store, StoreError},
};

/// The weeks that end with the one holding `now`, `weeks` of them, as one span of week rollups.
fn recent_weeks(now: DateTime<Utc>, weeks: u32, catalog: &Catalog) -> Period {
    let this = Period::containing(PeriodKind::Week, now, catalog.organisation().tz());
    Period {
        kind: PeriodKind::Week,
        start: this.start - Days::new(u64::from(weeks.saturating_sub(1)) * 7),
        end: this.end,
    }
}

/// The spread for `period`; members of each team not credited in the `weeks` weeks up to `now`
/// (none listed when `weeks` is 0).
pub async fn spread(
    store: &Store,
    catalog: &Catalog,
    period: &Period,
    weeks: u32,
    now: DateTime<Utc>,
) -> Result<RecognitionSpread, StoreError> {
    let credited = store.credited(period, "person").await?;
    let lately: Option<HashSet<String>> = match weeks {
        0 => None,
        n => Some(
            store
                .credited(&recent_weeks(now, n, catalog), "person")
                .await?,
        ),
    };
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let teams = catalog
        .teams()
        .iter()
        .map(|team| {
            let members: Vec<_> = catalog
                .people()
                .iter()
                .filter(|p| p.team.as_deref() == Some(team.id.as_str()))
                .collect();
            SpreadRow {
                id: team.id.clone(),
                name: team.name.clone(),
                people: count(members.len()),
                recognised: count(members.iter().filter(|p| credited.contains(&p.id)).count()),
                unrecognised: lately
                    .as_ref()
                    .map(|lately| {
                        members
                            .iter()
                            .filter(|p| !lately.contains(&p.id))
                            .map(|p| p.display_name.clone())
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect();
    let mut roles: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for person in catalog.people() {
        let role = person
            .role
            .clone()
            .unwrap_or_else(|| "no role given".into());
        let row = roles.entry(role).or_default();
        row.0 += 1;
        if credited.contains(&person.id) {
            row.1 += 1;
        }
    }
    Ok(RecognitionSpread {
        period_start: period.start.to_string(),
        period_end: period.end.to_string(),
        teams,
        roles: roles
            .into_iter()
            .map(|(role, (people, recognised))| SpreadRow {
                id: role.clone(),
                name: role,
                people,
                recognised,
                unrecognised: Vec::new(),
            })
            .collect(),
        unrecognised_weeks: weeks,
    })
}

/// Deterministic per team and week: a second replica or a restart never nudges twice.
pub fn prompt_id(team: &str, week_start: &str) -> String {
    let digest = Sha256::digest(format!("prompt:{team}:{week_start}").as_bytes());
    format!("p-{}", hex::encode(&digest[..8]))
}

/// One private nudge per team that has a lead and members not credited in the last `weeks` weeks.
/// Notify carries these only on routes that ask for `prompt`, and only by e-mail (to `lead`).
pub async fn prompts(
    store: &Store,
    catalog: &Catalog,
    weeks: u32,
    now: DateTime<Utc>,
) -> Result<Vec<Announcement>, StoreError> {
    if weeks == 0 {
        return Ok(Vec::new());
    }
    let span = recent_weeks(now, weeks, catalog);
    let this_week = Period::containing(PeriodKind::Week, now, catalog.organisation().tz());
    let spread = spread(store, catalog, &this_week, weeks, now).await?;
    let organisation = catalog.organisation();
    Ok(spread
        .teams
        .into_iter()
        .filter(|row| !row.unrecognised.is_empty())
        .filter_map(|row| {
            let team = catalog.team(&row.id)?;
            let lead = team.lead.as_deref().and_then(|id| catalog.person(id))?;
            let n = row.unrecognised.len();
            let title = format!(
                "{} in {} {} had no recognised win for {weeks} weeks",
                if n == 1 {
                    "1 person".to_string()
                } else {
                    format!("{n} people")
                },
                team.name,
                if n == 1 { "has" } else { "have" },
            );
            let summary = format!(
                "{},\n\nsince {}, Herald has not credited a win to: {}.\n\nThat usually means their \
                 work is the kind no ticket shows (helping colleagues, preventing the incident \
                 that never happened, quiet maintenance), not that there was none. Who did \
                 something worth thanking? Say it where the team can see it, or tell Herald's \
                 operators which work it does not see yet.\n\nThis note goes to you only, as the \
                 team's lead.",
                lead.display_name,
                organisation.date(span.start),
                row.unrecognised.join(", "),
            );
            Some(Announcement {
                id: prompt_id(&team.id, &this_week.start.to_string()),
                kind: AnnouncementKind::Prompt as i32,
                created_at: Some(to_timestamp(now)),
                card: Some(Card {
                    title,
                    summary,
                    teams: vec![team.name.clone()],
                    ..Default::default()
                }),
                team: Some(team.id.clone()),
                currency: organisation.currency.clone(),
                ..Default::default()
            })
        })
        .collect())
}
