use super::*;

fn fixture_catalog() -> Catalog {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../tests/fixtures/catalog.toml");
    Catalog::from_file(&path).expect("the fixture catalog loads")
}

#[test]
fn loads_the_fixture_catalog() {
    let catalog = fixture_catalog();
    assert_eq!(catalog.services().len(), 6);
    assert_eq!(catalog.teams().len(), 6);
    assert_eq!(catalog.people().len(), 13);
    assert_eq!(catalog.organisation().currency, "EUR");
    assert_eq!(catalog.organisation().tz(), chrono_tz::Europe::Amsterdam);
}

#[test]
fn services_match_by_id_name_and_alias_case_insensitively() {
    let catalog = fixture_catalog();
    let by_sys_id = catalog.match_service(["21b4c5e37a9874d3dff04b2c6a3e5008"]);
    let by_name = catalog.match_service(["warehouse management"]);
    let by_alias = catalog.match_service(["WMS-APP-PROD-EU"]);
    for found in [by_sys_id, by_name, by_alias] {
        assert_eq!(found.map(|s| s.id.as_str()), Some("svc-warehouse"));
    }
}

#[test]
fn the_first_matching_candidate_wins_and_substrings_never_match() {
    let catalog = fixture_catalog();
    assert_eq!(
        catalog
            .match_service(["nothing", "VPN", "WMS"])
            .map(|s| s.id.as_str()),
        Some("svc-remote-access")
    );
    assert!(catalog.match_service(["Warehouse"]).is_none());
    assert!(
        catalog.match_service(["WMS "]).is_some(),
        "surrounding blanks are ignored"
    );
}

#[test]
fn people_match_by_account_then_email() {
    let catalog = fixture_catalog();
    let ingrid = catalog.match_person("servicenow", "f4e2fa316c56dcb2ac88862afe1915c8");
    assert_eq!(ingrid.map(|p| p.id.as_str()), Some("p-ingrid-lindqvist"));
    let by_user_name = catalog.match_person("servicenow", "jonas.weber");
    assert_eq!(by_user_name.map(|p| p.id.as_str()), Some("p-jonas-weber"));
    let by_email = catalog.match_person("zendesk", "Mei.Chen@larkspur.example");
    assert_eq!(by_email.map(|p| p.id.as_str()), Some("p-mei-chen"));
    // An account of one tool does not match in another.
    assert!(catalog.match_person("jira", "jonas.weber").is_none());
    assert!(catalog.match_person("servicenow", "").is_none());
}

#[test]
fn system_accounts_are_recognised_per_source() {
    let catalog = fixture_catalog();
    assert!(catalog.is_system_account("servicenow", "svc.monitoring"));
    assert!(catalog.is_system_account("github", "GitHub-Actions[bot]"));
    assert!(!catalog.is_system_account("jira", "svc.monitoring"));
}

#[test]
fn opted_out_people_are_named_only_by_their_team() {
    let catalog = fixture_catalog();
    let jonas = catalog.public_name("p-jonas-weber");
    assert_eq!(jonas.name, "a member of Platform & SRE");
    assert!(jonas.anonymised);
    let ingrid = catalog.public_name("p-ingrid-lindqvist");
    assert_eq!(ingrid.name, "Ingrid Lindqvist");
    assert!(!ingrid.anonymised);
}

#[test]
fn ambiguous_aliases_are_refused_with_both_owners_named() {
    let text = r#"
[[services]]
id = "a"
name = "A"
users = 1
blocked_share = 0.5
loaded_hourly_rate = 10.0
aliases = ["shared"]

[[services]]
id = "b"
name = "B"
users = 1
blocked_share = 0.5
loaded_hourly_rate = 10.0
aliases = ["SHARED"]
"#;
    let err = Catalog::from_toml_str(text).expect_err("ambiguous");
    let msg = err.to_string();
    assert!(
        msg.contains("a") && msg.contains("b") && msg.contains("SHARED"),
        "{msg}"
    );
}

#[test]
fn out_of_range_numbers_and_unknown_teams_are_refused() {
    let bad_share = r#"
[[services]]
id = "a"
name = "A"
users = 1
blocked_share = 1.5
loaded_hourly_rate = 10.0
"#;
    assert!(
        Catalog::from_toml_str(bad_share)
            .expect_err("share")
            .to_string()
            .contains("blocked_share")
    );
    let unknown_team = r#"
[[people]]
id = "p"
display_name = "P"
team = "nope"
"#;
    assert!(
        Catalog::from_toml_str(unknown_team)
            .expect_err("team")
            .to_string()
            .contains("nope")
    );
    let bad_zone = "[organisation]\ntimezone = \"Mars/Olympus\"\n";
    assert!(
        Catalog::from_toml_str(bad_zone)
            .expect_err("zone")
            .to_string()
            .contains("Mars/Olympus")
    );
}

#[test]
fn unknown_keys_are_refused_so_typos_surface() {
    let text = "[[teams]]\nid = \"t\"\nname = \"T\"\nalias = [\"x\"]\n";
    let msg = Catalog::from_toml_str(text).expect_err("typo").to_string();
    assert!(msg.contains("alias"), "{msg}");
}

#[test]
fn money_reads_like_money() {
    let euro = Organisation::default();
    assert_eq!(euro.money(216_469.6), "€216,470");
    assert_eq!(euro.money(84.5), "€84.50");
    assert_eq!(euro.money(-1234.0), "€-1,234");
    let francs = Organisation {
        currency: "CHF".into(),
        ..Organisation::default()
    };
    assert_eq!(francs.money(1_000_000.0), "CHF 1,000,000");
}

#[test]
fn change_failure_rates_and_incident_costs_are_read_and_checked() {
    let catalog = fixture_catalog();
    let portal = catalog.service("svc-shipping-portal").expect("portal");
    assert_eq!(portal.change_failure_rate, Some(0.12));
    assert_eq!(portal.cost_per_incident, Some(1800.0));
    assert_eq!(portal.typical_outage_minutes(), Some((1, 240.0)));
    let warehouse = catalog.service("svc-warehouse").expect("warehouse");
    assert_eq!(warehouse.change_failure_rate, None);
    assert_eq!(warehouse.typical_outage_minutes(), None);

    let service = |extra: &str| {
        format!(
            "[[services]]\nid = \"a\"\nname = \"A\"\nusers = 1\nblocked_share = 0.5\nloaded_hourly_rate = 10.0\n{extra}\n"
        )
    };
    for (extra, named) in [
        ("change_failure_rate = 12.0", "change_failure_rate"),
        ("cost_per_incident = -5.0", "cost_per_incident"),
        (
            "typical_restore_minutes = { p2 = 0 }",
            "typical_restore_minutes",
        ),
    ] {
        let msg = Catalog::from_toml_str(&service(extra))
            .expect_err(extra)
            .to_string();
        assert!(msg.contains(named), "{extra}: {msg}");
    }
    let only_p2 =
        Catalog::from_toml_str(&service("typical_restore_minutes = { p2 = 90 }")).expect("valid");
    assert_eq!(
        only_p2
            .service("a")
            .and_then(|s| s.typical_outage_minutes()),
        Some((2, 90.0))
    );
}
