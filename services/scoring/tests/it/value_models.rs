//! The value models on the fixture organisation: every number worked out by hand here.

use herald_proto::v1::{CreditSubject, ValueLabel};
use herald_scoring::{config::ScoringSettings, explain, score, value};

use crate::support::oracle;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.01
}

#[test]
fn a_p1_outage_cut_short_is_valued_against_its_sla_target() {
    let catalog = oracle::catalog();
    let event = oracle::event("servicenow/incident-resolved-p1.json");
    let scored = score::score(&event, &catalog, &ScoringSettings::default()).expect("a win");
    let value = scored.win.value.clone().expect("value");
    // Opened 06:52:10, resolved 08:04:37 (72.45 min), SLA due 10:52:10 (240 min):
    // 167.55 min saved = 2.7925 h; Warehouse Management: 2,400 users × 0.85 blocked = 2,040 people;
    // 2,040 × 2.7925 = 5,696.7 working hours × €38 = €216,474.60.
    assert_eq!(value.label, ValueLabel::Avoided as i32);
    assert!(close(value.users, 2040.0), "{}", value.users);
    assert!(close(value.hours, 5696.7), "{}", value.hours);
    assert!(close(value.amount, 216_474.6), "{}", value.amount);
    assert_eq!(value.currency, "EUR");
    assert!(
        value.summary.starts_with("€216,475 of lost work avoided"),
        "{}",
        value.summary
    );
    assert!(
        scored.win.headline.contains("Warehouse Management"),
        "{}",
        scored.win.headline
    );
    assert!(
        scored.win.headline.contains("2,040 people back at work"),
        "{}",
        scored.win.headline
    );
    let sources: Vec<&str> = value.inputs.iter().map(|i| i.source.as_str()).collect();
    assert!(
        sources.iter().any(|s| s.contains("SLA target")),
        "{sources:?}"
    );
    assert!(value.formula.contains("loaded hourly rate"));

    // Team first, then the resolver, then everyone else who worked on it.
    let credits: Vec<(i32, &str, f64)> = scored
        .win
        .credits
        .iter()
        .map(|c| (c.subject, c.id.as_str(), c.share))
        .collect();
    let person = CreditSubject::Person as i32;
    assert_eq!(
        credits[0],
        (CreditSubject::Team as i32, "team-platform", 1.0)
    );
    assert_eq!(credits[1], (person, "p-ingrid-lindqvist", 0.5));
    let others: Vec<&str> = credits[2..].iter().map(|c| c.1).collect();
    assert_eq!(
        others,
        vec!["p-amara-okafor", "p-jonas-weber", "p-tomas-herrera"]
    );
    assert!(credits[2..].iter().all(|c| close(c.2, 0.5 / 3.0)));
    assert_eq!(scored.win.team.as_deref(), Some("team-platform"));
}

#[test]
fn the_explanation_shows_formula_inputs_label_and_respects_opt_outs() {
    let catalog = oracle::catalog();
    let event = oracle::event("servicenow/incident-resolved-p1.json");
    let scored = score::score(&event, &catalog, &ScoringSettings::default()).expect("a win");
    let text = explain::explain(&scored.win, &catalog);
    for expected in [
        "€216,475",
        "avoided",
        "Formula:",
        "catalog: Warehouse Management blocked_share",
        "Ingrid Lindqvist",
        "a member of Platform & SRE",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert!(
        !text.contains("Jonas"),
        "an opted-out person is named:\n{text}"
    );
}

#[test]
fn a_catalog_typical_restore_time_beats_the_sla_target() {
    let text = std::fs::read_to_string(herald_testkit::fixtures_dir().join("catalog.toml"))
        .expect("catalog");
    let text = text.replace(
        "aliases = [\"21b4c5e37a9874d3dff04b2c6a3e5008\"",
        "typical_restore_minutes = { p1 = 150 }\naliases = [\"21b4c5e37a9874d3dff04b2c6a3e5008\"",
    );
    let catalog = herald_catalog::Catalog::from_toml_str(&text).expect("catalog");
    let event = oracle::event("servicenow/incident-resolved-p1.json");
    let scored = score::score(&event, &catalog, &ScoringSettings::default()).expect("a win");
    let value = scored.win.value.expect("value");
    // 150 − 72.45 = 77.55 min = 1.2925 h × 2,040 × €38.
    assert!(
        close(value.amount, 1.2925 * 2040.0 * 38.0),
        "{}",
        value.amount
    );
    assert!(
        value
            .inputs
            .iter()
            .any(|i| i.source.contains("typical restore time for P1"))
    );
}

#[test]
fn a_minor_incident_counts_the_one_person_who_reported_it_in_working_hours() {
    let catalog = oracle::catalog();
    let event = oracle::backfill_event("INC0047800");
    let scored = score::score(&event, &catalog, &ScoringSettings::default()).expect("a win");
    let value = scored.win.value.expect("value");
    // P3, not an outage: 1 person × 0.85. Opened 03-08 10:49:34, resolved 03-09 03:06:43 (16.285 h),
    // SLA 72 h: 55.715 h saved on the clock = 2 days (16 working h) + min(7.715, 8) = 23.715 h.
    let expected_hours = 0.85 * (16.0 + (55.715 - 48.0));
    assert!(
        (value.hours - expected_hours).abs() < 0.01,
        "{}",
        value.hours
    );
    assert!(close(value.amount, value.hours * 38.0));
    assert!(close(value.users, 0.85));
}

#[test]
fn a_request_delivered_early_protects_at_most_a_working_day() {
    let catalog = oracle::catalog();
    let event = oracle::event("servicenow/ritm-fulfilled.json");
    let scored = score::score(&event, &catalog, &ScoringSettings::default()).expect("a win");
    let value = scored.win.value.expect("value");
    // Due 03-14 17:00, delivered 03-12 15:22:05: about two days early, capped at 8 h × €41 (Workplace).
    assert_eq!(value.label, ValueLabel::Capacity as i32);
    assert!(close(value.hours, 8.0));
    assert!(close(value.amount, 328.0));
    assert_eq!(scored.win.team.as_deref(), Some("team-workplace"));
    assert!(
        scored.win.headline.contains("ahead of its due date"),
        "{}",
        scored.win.headline
    );
}

#[test]
fn an_automation_run_is_priced_at_its_service_rate() {
    let catalog = oracle::catalog();
    let event = oracle::event("cloudevents/automation-run-structured.json");
    let scored = score::score(&event, &catalog, &ScoringSettings::default()).expect("a win");
    let value = scored.win.value.clone().expect("value");
    // 1,408 minutes on Warehouse Management (€38 an hour).
    assert!(
        close(value.amount, 1408.0 / 60.0 * 38.0),
        "{}",
        value.amount
    );
    assert_eq!(value.label, ValueLabel::Capacity as i32);
}

#[test]
fn outcomes_that_earn_nothing_say_why() {
    let catalog = oracle::catalog();
    let settings = ScoringSettings::default();
    let cases = [
        (
            oracle::event("cloudevents/automation-run-failed.json"),
            "failed",
        ),
        (
            oracle::event("servicenow/incident-reopened.json"),
            "revokes the earlier win",
        ),
        (oracle::backfill_event("INC0047831"), "system account"),
    ];
    for (event, why) in cases {
        let reason = value::value(&event, &catalog, &settings)
            .expect_err("no value")
            .0;
        assert!(reason.contains(why), "{}: {reason}", event.id);
    }

    let mut breached = oracle::event("servicenow/incident-resolved-p1.json");
    if let Some(r) = breached.record.as_mut() {
        r.sla_breached = Some(true);
    }
    assert!(
        value::value(&breached, &catalog, &settings)
            .expect_err("breached")
            .0
            .contains("breached")
    );

    let mut unknown_service = oracle::event("servicenow/incident-resolved-p1.json");
    if let Some(r) = unknown_service.record.as_mut() {
        r.business_service = None;
    }
    assert!(
        value::value(&unknown_service, &catalog, &settings)
            .expect_err("no service")
            .0
            .contains("no business service")
    );
}

#[test]
fn the_resolved_and_closed_pushes_of_one_incident_are_one_outcome() {
    let resolved = oracle::event("servicenow/incident-resolved-p1.json");
    let mut closed = resolved.clone();
    closed.id = "servicenow:incident:de67bddaeb083f8fbf5aa0a6fa7222c2:25".into();
    assert_eq!(score::outcome_key(&resolved), score::outcome_key(&closed));
    assert_eq!(
        score::win_id(&score::outcome_key(&resolved)),
        score::win_id(&score::outcome_key(&closed))
    );
    assert!(score::win_id("x").starts_with("w-"));
}
