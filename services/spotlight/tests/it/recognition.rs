//! Recognition on both backends: leaderboards over quarters and seasons, one's own position, the
//! spotlight's rotation and quiet-work place, the spread per team and role, and the leads' nudges.

use chrono::{DateTime, Utc};
use herald_catalog::Catalog;
use herald_proto::v1::{
    AnnouncementKind, Credit, CreditSubject, EventKind, Value, ValueLabel, Win,
};
use herald_runtime::{db::Backend, service::Service};
use herald_spotlight::{
    Spotlight,
    config::RecognitionSettings,
    periods::{Period, PeriodKind},
    recognition, selection,
    store::{Store, rankings::RankBy},
};
use herald_testkit::stores::TestStore;

const TZ: chrono_tz::Tz = chrono_tz::Europe::Oslo;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

fn win(id: &str, kind: EventKind, amount: f64, people: &[&str]) -> Win {
    let mut credits = vec![Credit {
        subject: CreditSubject::Team as i32,
        id: "team-platform".into(),
        share: 1.0,
        amount,
        ..Default::default()
    }];
    for person in people {
        credits.push(Credit {
            subject: CreditSubject::Person as i32,
            id: (*person).into(),
            share: 1.0 / people.len() as f64,
            amount: amount / people.len() as f64,
            ..Default::default()
        });
    }
    Win {
        id: id.into(),
        kind: kind as i32,
        headline: format!("headline of {id}"),
        value: Some(Value {
            label: ValueLabel::Capacity as i32,
            amount,
            hours: amount / 100.0,
            ..Default::default()
        }),
        credits,
        ..Default::default()
    }
}

async fn count(store: &Store, when: &str, w: Win) -> anyhow::Result<()> {
    store.count_win(&w, at(when), TZ, None).await?;
    Ok(())
}

async fn store(backend: Backend) -> anyhow::Result<(TestStore, Store)> {
    let test = TestStore::on(backend, Spotlight::NAME, &Spotlight::migrations()).await?;
    let store = Store::new(test.db.pool.clone());
    Ok((test, store))
}

fn catalog() -> anyhow::Result<Catalog> {
    Ok(Catalog::from_toml_str(
        r#"
[organisation]
name = "Larkspur"
timezone = "Europe/Oslo"

[[teams]]
id = "team-platform"
name = "Platform"
lead = "lea"

[[teams]]
id = "team-desk"
name = "Service Desk"

[[people]]
id = "ana"
display_name = "Ana"
team = "team-platform"
role = "engineer"

[[people]]
id = "bo"
display_name = "Bo"
team = "team-platform"
role = "engineer"

[[people]]
id = "cy"
display_name = "Cy"
team = "team-platform"
role = "engineer"

[[people]]
id = "dee"
display_name = "Dee"
team = "team-platform"
role = "change manager"

[[people]]
id = "lea"
display_name = "Lea"
team = "team-platform"
email = "lea@example.org"

[[people]]
id = "sam"
display_name = "Sam"
team = "team-desk"
role = "service desk"
"#,
    )?)
}

/// A quarter and a season are their months summed; a person's own position is their rank in the
/// leaderboard's order (value, then id) among everyone credited.
async fn quarters_seasons_and_ones_own_position(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = store(backend).await?;
    count(
        &store,
        "2026-09-10T10:00:00Z",
        win("w-sep", EventKind::IncidentResolved, 5000.0, &["ana"]),
    )
    .await?;
    count(
        &store,
        "2026-10-10T10:00:00Z",
        win("w-oct", EventKind::IncidentResolved, 300.0, &["bo"]),
    )
    .await?;
    count(
        &store,
        "2026-11-10T10:00:00Z",
        win("w-nov", EventKind::IncidentResolved, 400.0, &["bo", "cy"]),
    )
    .await?;
    // 23:30 UTC on 31 December is already 2027 in Oslo: outside the quarter and the season.
    count(
        &store,
        "2026-12-31T23:30:00Z",
        win("w-ny", EventKind::IncidentResolved, 900.0, &["cy"]),
    )
    .await?;
    count(
        &store,
        "2026-12-01T10:00:00Z",
        win("w-dec", EventKind::IncidentResolved, 200.0, &["cy"]),
    )
    .await?;

    let quarter = Period::containing(PeriodKind::Quarter, at("2026-11-30T12:00:00Z"), TZ);
    let board: Vec<(String, f64, i64)> = store
        .leaderboard(&quarter, "person", 10)
        .await?
        .into_iter()
        .map(|r| (r.subject_id, r.value, r.wins))
        .collect();
    assert_eq!(
        board,
        vec![("bo".to_string(), 500.0, 2), ("cy".to_string(), 400.0, 2)],
        "bo 300 + 200, cy 200 + 200; September and the new year are outside"
    );
    let season = Period::containing(
        PeriodKind::Season { months: 6 },
        at("2026-11-30T12:00:00Z"),
        TZ,
    );
    assert_eq!(season.start.to_string(), "2026-07-01");
    let top = store.leaderboard(&season, "person", 1).await?;
    assert_eq!((top[0].subject_id.as_str(), top[0].value), ("ana", 5000.0));
    let totals = store.totals(&quarter).await?;
    assert_eq!(
        (totals.len(), totals[0].value, totals[0].wins),
        (1, 900.0, 3),
        "the quarter's total is its three months'"
    );

    let cy = store
        .position(&quarter, "person", RankBy::Value, "cy")
        .await?
        .ok_or_else(|| anyhow::anyhow!("cy was credited"))?;
    assert_eq!((cy.rank, cy.of, cy.figures.wins), (2, 2, 2));
    assert!((cy.figures.hours - 4.0).abs() < 1e-9);
    let ana = store
        .position(&season, "person", RankBy::Value, "ana")
        .await?;
    assert_eq!(ana.map(|p| (p.rank, p.of)), Some((1, 3)));
    assert!(
        store
            .position(&quarter, "person", RankBy::Value, "ana")
            .await?
            .is_none(),
        "not credited in the quarter"
    );
    // Ties rank by id, as the leaderboard lists them.
    count(
        &store,
        "2026-10-11T10:00:00Z",
        win("w-tie", EventKind::IncidentResolved, 100.0, &["ana"]),
    )
    .await?;
    count(
        &store,
        "2026-10-12T10:00:00Z",
        win("w-tie2", EventKind::IncidentResolved, 100.0, &["dee"]),
    )
    .await?;
    let dee = store
        .position(&quarter, "person", RankBy::Value, "dee")
        .await?;
    assert_eq!(
        dee.map(|p| (p.rank, p.of)),
        Some((4, 4)),
        "ana before dee at 100 each"
    );
    // By hours given back (a win's hours split by share): bo 3.0 + 2.0, cy 2.0 + 2.0, dee 1.0 +
    // 0.01, ana 1.0.
    count(
        &store,
        "2026-10-13T10:00:00Z",
        win("w-dee", EventKind::IncidentResolved, 1.0, &["dee"]),
    )
    .await?;
    let by_hours: Vec<String> = store
        .ranking(&quarter, "person", RankBy::Hours, 10)
        .await?
        .into_iter()
        .map(|r| r.subject_id)
        .collect();
    assert_eq!(by_hours, ["bo", "cy", "dee", "ana"]);
    let dee = store
        .position(&quarter, "person", RankBy::Hours, "dee")
        .await?;
    assert_eq!(dee.map(|p| (p.rank, p.of)), Some((3, 4)));
    let credited = store.credited(&quarter, "person").await?;
    assert_eq!(credited.len(), 4);
    Ok(())
}

/// Nobody stays in the spotlight more than `rotation_after` months running, a place is kept for
/// quiet work, and no two stories tell the same win when there is another to tell.
async fn the_spotlight_rotates_and_keeps_a_place_for_quiet_work(
    backend: Backend,
) -> anyhow::Result<()> {
    let (_db, store) = store(backend).await?;
    let catalog = catalog()?;
    for (month, day) in [("09", "10"), ("10", "12"), ("11", "10")] {
        let when = format!("2026-{month}-{day}T10:00:00Z");
        count(
            &store,
            &when,
            win(
                &format!("big-{month}"),
                EventKind::IncidentResolved,
                9000.0,
                &["ana", "bo"],
            ),
        )
        .await?;
        count(
            &store,
            &when,
            win(
                &format!("bo-{month}"),
                EventKind::IncidentResolved,
                800.0,
                &["bo"],
            ),
        )
        .await?;
        count(
            &store,
            &when,
            win(
                &format!("cy-{month}"),
                EventKind::IncidentResolved,
                700.0,
                &["cy"],
            ),
        )
        .await?;
    }
    count(
        &store,
        "2026-11-11T10:00:00Z",
        win("quiet-nov", EventKind::ChangeImplemented, 50.0, &["dee"]),
    )
    .await?;
    count(
        &store,
        "2026-11-12T10:00:00Z",
        win("ana-11", EventKind::IncidentResolved, 100.0, &["ana"]),
    )
    .await?;

    let november = Period::containing(PeriodKind::Month, at("2026-11-20T12:00:00Z"), TZ);
    let settings = RecognitionSettings {
        people_shown: 2,
        rotation_after: 0,
        invisible_quota: 0,
        ..Default::default()
    };
    let picks = selection::spotlight(&store, &catalog, &settings, &november).await?;
    let told: Vec<(&str, Option<&str>)> = picks
        .iter()
        .map(|p| {
            (
                p.figures.subject_id.as_str(),
                p.story.as_ref().map(|w| w.id.as_str()),
            )
        })
        .collect();
    // bo: 4,500 + 800; ana: 4,500 + 100. bo's story is the big win they share; ana's is her own
    // smaller one, so the two stories tell two wins.
    assert_eq!(told, vec![("bo", Some("big-11")), ("ana", Some("ana-11"))]);

    // ana and bo led September and October: with a rotation of two months they rest in
    // November, and one place goes to dee's quiet change.
    let fair = RecognitionSettings {
        people_shown: 2,
        rotation_after: 2,
        invisible_quota: 1,
        ..Default::default()
    };
    let picks = selection::spotlight(&store, &catalog, &fair, &november).await?;
    let told: Vec<(&str, bool, Option<&str>)> = picks
        .iter()
        .map(|p| {
            (
                p.figures.subject_id.as_str(),
                p.quiet,
                p.story.as_ref().map(|w| w.id.as_str()),
            )
        })
        .collect();
    assert_eq!(
        told,
        vec![
            ("cy", false, Some("cy-11")),
            ("dee", true, Some("quiet-nov"))
        ]
    );
    // In October they had been in the spotlight once only (September): they stay.
    let october = november.previous();
    let picks = selection::spotlight(&store, &catalog, &fair, &october).await?;
    let ids: Vec<&str> = picks
        .iter()
        .map(|p| p.figures.subject_id.as_str())
        .collect();
    assert_eq!(ids, ["bo", "ana"]);
    Ok(())
}

/// The spread counts the catalog's people per team and role; the lead of a team with members
/// unseen for four weeks gets one private prompt, the same id however often it is built.
async fn the_spread_and_the_leads_nudge(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = store(backend).await?;
    let catalog = catalog()?;
    count(
        &store,
        "2026-11-24T10:00:00Z",
        win("w-1", EventKind::IncidentResolved, 500.0, &["ana", "bo"]),
    )
    .await?;
    // Five weeks ago: in the month, not in the last four weeks.
    count(
        &store,
        "2026-11-02T10:00:00Z",
        win("w-2", EventKind::IncidentResolved, 500.0, &["cy"]),
    )
    .await?;
    count(
        &store,
        "2026-11-25T10:00:00Z",
        win("w-3", EventKind::IncidentResolved, 500.0, &["sam"]),
    )
    .await?;
    let now = at("2026-11-30T12:00:00Z");
    let november = Period::containing(PeriodKind::Month, now, TZ);
    let spread = recognition::spread(&store, &catalog, &november, 4, now).await?;
    let teams: Vec<(&str, u32, u32, Vec<&str>)> = spread
        .teams
        .iter()
        .map(|t| {
            (
                t.id.as_str(),
                t.people,
                t.recognised,
                t.unrecognised.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        teams,
        vec![
            ("team-platform", 5, 3, vec!["Cy", "Dee", "Lea"]),
            ("team-desk", 1, 1, vec![]),
        ]
    );
    let roles: Vec<(&str, u32, u32)> = spread
        .roles
        .iter()
        .map(|r| (r.name.as_str(), r.people, r.recognised))
        .collect();
    assert_eq!(
        roles,
        vec![
            ("change manager", 1, 0),
            ("engineer", 3, 3),
            ("no role given", 1, 0),
            ("service desk", 1, 1),
        ]
    );

    let prompts = recognition::prompts(&store, &catalog, 4, now).await?;
    assert_eq!(prompts.len(), 1, "only the team with a lead is nudged");
    let prompt = &prompts[0];
    assert_eq!(prompt.kind, AnnouncementKind::Prompt as i32);
    assert_eq!(prompt.team.as_deref(), Some("team-platform"));
    let card = prompt.card.clone().unwrap_or_default();
    assert!(
        card.title
            .starts_with("3 people in Platform have had no recognised win for 4 weeks"),
        "{}",
        card.title
    );
    assert!(card.summary.contains("Cy, Dee, Lea"), "{}", card.summary);
    let again = recognition::prompts(&store, &catalog, 4, now).await?;
    assert_eq!(again[0].id, prompt.id, "a stable id: never nudged twice");
    assert!(
        recognition::prompts(&store, &catalog, 0, now)
            .await?
            .is_empty()
    );
    Ok(())
}

herald_testkit::store_cases!(
    quarters_seasons_and_ones_own_position,
    the_spotlight_rotates_and_keeps_a_place_for_quiet_work,
    the_spread_and_the_leads_nudge,
);
