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
    // The minus leads, before the symbol, as in every locale.
    assert_eq!(euro.money(-1234.0), "-€1,234");
    let francs = Organisation {
        currency: "CHF".into(),
        ..Organisation::default()
    };
    // A symbol made of letters is kept off the digits by a no-break space.
    assert_eq!(francs.money(1_000_000.0), "CHF\u{a0}1,000,000");
    // Kept English style for callers that build their own strings.
    assert_eq!(francs.currency_prefix(), "CHF ");
    assert_eq!(euro.currency_prefix(), "€");
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

// ------------------------------------------------------------------ locales

fn org(locale: &str, currency: &str) -> Organisation {
    Organisation {
        currency: currency.into(),
        locale: locale.into(),
        ..Organisation::default()
    }
}

#[test]
fn the_default_organisation_writes_what_herald_always_wrote() {
    let default = Organisation::default();
    assert_eq!(default.locale, "en-GB");
    assert_eq!(default.locale(), Locale::EnGb);
    assert_eq!(default.money(216_474.6), "€216,475");
    assert_eq!(default.money(84.5), "€84.50");
    assert_eq!(default.money(100.0), "€100");
    assert_eq!(default.money(99.994), "€99.99");
    assert_eq!(default.money(0.0), "€0.00");
    // A catalog without a locale key reads as en-GB, like the fixture one.
    let catalog = fixture_catalog();
    assert_eq!(catalog.organisation().locale(), Locale::EnGb);
    assert_eq!(catalog.organisation().money(216_474.6), "€216,475");
}

#[test]
fn money_follows_the_locale() {
    assert_eq!(org("nb-NO", "NOK").money(11_780.0), "11\u{a0}780\u{a0}kr");
    assert_eq!(org("de-DE", "EUR").money(11_780.0), "11.780\u{a0}€");
    assert_eq!(org("en-GB", "GBP").money(11_780.0), "£11,780");
    assert_eq!(org("en-GB", "EUR").money(216_474.6), "€216,475");
    assert_eq!(org("de-DE", "EUR").money(84.5), "84,50\u{a0}€");
    assert_eq!(org("en-US", "USD").money(1_234_567.0), "$1,234,567");
    assert_eq!(org("fr-FR", "EUR").money(11_780.0), "11\u{a0}780\u{a0}€");
    assert_eq!(org("sv-SE", "SEK").money(11_780.0), "11\u{a0}780\u{a0}kr");
    assert_eq!(org("da-DK", "DKK").money(11_780.0), "11.780\u{a0}kr.");
    assert_eq!(org("pl-PL", "PLN").money(11_780.0), "11\u{a0}780\u{a0}zł");
    assert_eq!(
        org("de-CH", "CHF").money(11_780.0),
        "CHF\u{a0}11\u{2019}780"
    );
    assert_eq!(org("nl-NL", "EUR").money(11_780.0), "€\u{a0}11.780");
    assert_eq!(org("en-IE", "EUR").money(11_780.0), "€11,780");
    assert_eq!(org("en-US", "JPY").money(11_780.0), "¥11,780");
}

#[test]
fn negative_amounts_lead_with_a_minus() {
    assert_eq!(org("en-GB", "EUR").money(-1234.0), "-€1,234");
    assert_eq!(org("de-DE", "EUR").money(-11_780.0), "-11.780\u{a0}€");
    assert_eq!(org("de-DE", "EUR").money(-84.5), "-84,50\u{a0}€");
    // Nothing to subtract: no minus.
    assert_eq!(org("en-GB", "EUR").money(-0.001), "€0.00");
}

#[test]
fn currency_symbols_are_only_used_where_they_are_unambiguous() {
    // "kr" in Sweden means kronor, so Norwegian kroner there keep their code.
    assert_eq!(org("sv-SE", "NOK").money(11_780.0), "11\u{a0}780\u{a0}NOK");
    assert_eq!(org("en-GB", "NOK").money(11_780.0), "NOK\u{a0}11,780");
    assert_eq!(org("de-DE", "USD").money(11_780.0), "11.780\u{a0}US$");
    assert_eq!(org("en-GB", "USD").money(11_780.0), "$11,780");
    assert_eq!(org("de-DE", "XYZ").money(11_780.0), "11.780\u{a0}XYZ");
    assert_eq!(org("en-GB", "XYZ").money(11_780.0), "XYZ\u{a0}11,780");
}

#[test]
fn numbers_are_grouped_with_the_locale_separators() {
    assert_eq!(org("en-GB", "EUR").number(1_234_567.891, 2), "1,234,567.89");
    assert_eq!(org("de-DE", "EUR").number(1_234_567.891, 2), "1.234.567,89");
    assert_eq!(org("nb-NO", "NOK").number(11_780.5, 1), "11\u{a0}780,5");
    assert_eq!(org("de-CH", "CHF").number(11_780.5, 1), "11\u{2019}780.5");
    assert_eq!(org("en-US", "USD").number(-1_234.0, 0), "-1,234");
    assert_eq!(org("en-GB", "EUR").number(999.0, 0), "999");
    assert_eq!(org("en-GB", "EUR").number(1_000.0, 0), "1,000");
    // Spanish and Polish group only from five digits (CLDR minimum grouping digits).
    assert_eq!(org("es-ES", "EUR").number(1_780.0, 0), "1780");
    assert_eq!(org("es-ES", "EUR").number(11_780.0, 0), "11.780");
    assert_eq!(org("pl-PL", "PLN").money(1_780.0), "1780\u{a0}zł");
    // thousands() is unchanged.
    assert_eq!(thousands(-1234.0), "-1,234");
    assert_eq!(thousands(2040.0), "2,040");
}

#[test]
fn dates_follow_the_locale() {
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 30).expect("a real day");
    let cases = [
        ("en-GB", "30 Nov 2026"),
        ("en-IE", "30 Nov 2026"),
        ("en-US", "Nov 30, 2026"),
        ("de-DE", "30.11.2026"),
        ("de-AT", "30.11.2026"),
        ("de-CH", "30.11.2026"),
        ("nb-NO", "30.11.2026"),
        ("da-DK", "30.11.2026"),
        ("fi-FI", "30.11.2026"),
        ("pl-PL", "30.11.2026"),
        ("fr-FR", "30/11/2026"),
        ("es-ES", "30/11/2026"),
        ("it-IT", "30/11/2026"),
        ("nl-NL", "30-11-2026"),
        ("sv-SE", "2026-11-30"),
    ];
    for (locale, expected) in cases {
        assert_eq!(org(locale, "EUR").date(day), expected, "{locale}");
    }
    let early = chrono::NaiveDate::from_ymd_opt(2026, 3, 1).expect("a real day");
    assert_eq!(org("en-GB", "EUR").date(early), "1 Mar 2026");
    assert_eq!(org("de-DE", "EUR").date(early), "01.03.2026");
    assert_eq!(org("fi-FI", "EUR").date(early), "1.3.2026");
}

#[test]
fn month_names_are_in_the_locale_language() {
    let cases = [
        ("en-GB", "November 2026"),
        ("en-US", "November 2026"),
        ("de-DE", "November 2026"),
        ("nb-NO", "november 2026"),
        ("fr-FR", "novembre 2026"),
        ("sv-SE", "november 2026"),
        ("da-DK", "november 2026"),
        ("nl-NL", "november 2026"),
        ("fi-FI", "marraskuu 2026"),
        ("es-ES", "noviembre 2026"),
        ("it-IT", "novembre 2026"),
        ("pl-PL", "listopad 2026"),
    ];
    for (locale, expected) in cases {
        assert_eq!(
            org(locale, "EUR").month_name(2026, 11),
            expected,
            "{locale}"
        );
    }
    assert_eq!(org("de-AT", "EUR").month_name(2027, 1), "Jänner 2027");
    assert_eq!(org("de-DE", "EUR").month_name(2027, 1), "Januar 2027");
    assert_eq!(org("en-GB", "EUR").month_name(2026, 13), "2026-13");
    assert_eq!(org("en-GB", "EUR").month_name(2026, 0), "2026-00");
}

#[test]
fn locale_tags_are_read_case_insensitively_and_with_underscores() {
    for tag in ["nb-NO", "nb_no", "NB-no", " nb_NO "] {
        assert_eq!(Locale::parse(tag), Ok(Locale::NbNo), "{tag}");
    }
    for locale in Locale::ALL {
        assert_eq!(locale.tag().parse::<Locale>(), Ok(locale));
        assert_eq!(locale.to_string(), locale.tag());
    }
    let catalog =
        Catalog::from_toml_str("[organisation]\ncurrency = \"NOK\"\nlocale = \"nb_no\"\n")
            .expect("nb_no is accepted");
    assert_eq!(catalog.organisation().locale(), Locale::NbNo);
    assert_eq!(
        catalog.organisation().money(11_780.0),
        "11\u{a0}780\u{a0}kr"
    );
}

#[test]
fn an_unsupported_locale_is_refused_naming_the_supported_ones() {
    for tag in ["xx-YY", "de", "en-AU", ""] {
        let text = format!("[organisation]\nlocale = {tag:?}\n");
        let msg = Catalog::from_toml_str(&text).expect_err(tag).to_string();
        assert!(msg.contains("organisation.locale"), "{msg}");
        assert!(msg.contains(&format!("{tag:?}")), "{msg}");
        for supported in Locale::ALL {
            assert!(msg.contains(supported.tag()), "{msg} lacks {supported}");
        }
    }
    // An Organisation built in code with a bad tag still writes something sensible.
    assert_eq!(org("xx", "EUR").locale(), Locale::EnGb);
}
