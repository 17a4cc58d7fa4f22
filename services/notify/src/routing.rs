//! Which routes an announcement takes: the routes in order, each matching on kind, value, business
//! service, team, capability and value label; a matching route with `continue = false` is the last.

use herald_catalog::Catalog;
use herald_proto::v1::{Announcement, AnnouncementKind, ValueLabel};

use crate::config::RouteConfig;

/// Whether `route` takes `announcement`. The capability is the catalog's, of the announcement's
/// business service; a route asking for capabilities takes nothing the catalog cannot place.
pub fn matches(route: &RouteConfig, announcement: &Announcement, catalog: &Catalog) -> bool {
    let kind = AnnouncementKind::try_from(announcement.kind)
        .map(|k| k.token())
        .unwrap_or("unspecified");
    let any_or = |list: &[String], value: Option<&str>| {
        list.is_empty() || value.is_some_and(|v| list.iter().any(|x| x == v))
    };
    let capability = announcement
        .business_service
        .as_deref()
        .and_then(|id| catalog.service(id))
        .and_then(|s| s.capability.as_deref());
    let labels = || {
        announcement
            .card
            .iter()
            .flat_map(|c| &c.value_lines)
            .filter_map(|l| ValueLabel::try_from(l.label).ok())
            .map(|l| l.token())
    };
    // A private prompt takes only a route that names it; every other kind, any route without
    // a kind list too.
    let kinds_match = if kind == AnnouncementKind::Prompt.token() {
        route.kinds.iter().any(|k| k == kind)
    } else {
        route.kinds.is_empty() || route.kinds.iter().any(|k| k == kind)
    };
    kinds_match
        && announcement.value_amount >= route.min_value
        && any_or(
            &route.business_services,
            announcement.business_service.as_deref(),
        )
        && any_or(&route.teams, announcement.team.as_deref())
        && any_or(&route.capabilities, capability)
        && (route.labels.is_empty() || labels().any(|l| route.labels.iter().any(|x| x == l)))
        && (route.digests.is_empty()
            || kind != AnnouncementKind::Digest.token()
            || route.digests.contains(&announcement.digest))
}

/// The routes `announcement` takes, in order: each matching route, up to and including the first
/// matching one that does not `continue`.
pub fn select<'a>(
    routes: &'a [RouteConfig],
    announcement: &Announcement,
    catalog: &Catalog,
) -> Vec<&'a RouteConfig> {
    let mut taken = Vec::new();
    for route in routes {
        if matches(route, announcement, catalog) {
            taken.push(route);
            if !route.continue_ {
                break;
            }
        }
    }
    taken
}

#[cfg(test)]
mod tests {
    use herald_proto::v1::{Card, ValueLine};

    use super::*;

    fn route(name: &str, kinds: &[&str], min_value: f64, services: &[&str]) -> RouteConfig {
        RouteConfig {
            name: name.into(),
            channel: Some("c".into()),
            channels: vec![],
            continue_: true,
            kinds: kinds.iter().map(|s| s.to_string()).collect(),
            min_value,
            business_services: services.iter().map(|s| s.to_string()).collect(),
            teams: vec![],
            capabilities: vec![],
            labels: vec![],
            digests: vec![],
            quiet_hours: None,
            business_days: vec![],
            timezone: None,
        }
    }

    fn catalog() -> Catalog {
        Catalog::from_toml_str(
            "[[services]]\nid = \"svc-warehouse\"\nname = \"Warehouse\"\ncapability = \"logistics\"\n\
             users = 10\nblocked_share = 0.5\nloaded_hourly_rate = 50.0\n\
             [[services]]\nid = \"svc-fleet\"\nname = \"Fleet\"\n\
             users = 10\nblocked_share = 0.5\nloaded_hourly_rate = 50.0\n",
        )
        .expect("catalog")
    }

    fn win() -> Announcement {
        Announcement {
            kind: AnnouncementKind::HeadlineWin as i32,
            value_amount: 5000.0,
            business_service: Some("svc-warehouse".into()),
            team: Some("team-platform".into()),
            card: Some(Card {
                value_lines: vec![ValueLine {
                    label: ValueLabel::Avoided as i32,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn filters_by_kind_value_and_service() {
        let (a, c) = (win(), catalog());
        assert!(matches(&route("r", &[], 0.0, &[]), &a, &c));
        assert!(matches(
            &route("r", &["headline_win"], 5000.0, &["svc-warehouse"]),
            &a,
            &c
        ));
        assert!(!matches(&route("r", &["digest"], 0.0, &[]), &a, &c));
        assert!(!matches(&route("r", &[], 5000.01, &[]), &a, &c));
        assert!(!matches(&route("r", &[], 0.0, &["svc-fleet"]), &a, &c));
    }

    #[test]
    fn matches_team_capability_and_value_label() {
        let (a, c) = (win(), catalog());
        let with = |f: &dyn Fn(&mut RouteConfig)| {
            let mut r = route("r", &[], 0.0, &[]);
            f(&mut r);
            matches(&r, &a, &c)
        };
        assert!(with(&|r| r.teams = vec!["team-platform".into()]));
        assert!(!with(&|r| r.teams = vec!["team-desk".into()]));
        assert!(with(&|r| r.capabilities = vec!["logistics".into()]));
        assert!(!with(&|r| r.capabilities = vec!["finance".into()]));
        assert!(with(&|r| r.labels = vec!["cash".into(), "avoided".into()]));
        assert!(!with(&|r| r.labels = vec!["cash".into()]));
        // A service without a capability, or unknown to the catalog, matches no capability.
        let fleet = Announcement {
            business_service: Some("svc-fleet".into()),
            ..win()
        };
        let mut r = route("r", &[], 0.0, &[]);
        r.capabilities = vec!["logistics".into()];
        assert!(!matches(&r, &fleet, &c));
        assert!(!matches(&r, &a, &Catalog::default()));
    }

    #[test]
    fn a_route_takes_the_digests_scheduled_for_it() {
        let c = catalog();
        let digest = |name: &str| Announcement {
            kind: AnnouncementKind::Digest as i32,
            digest: name.into(),
            ..win()
        };
        let mut oslo = route("oslo", &[], 0.0, &[]);
        oslo.digests = vec!["weekly-oslo".into()];
        assert!(matches(&oslo, &digest("weekly-oslo"), &c));
        assert!(!matches(&oslo, &digest("weekly-new-york"), &c));
        assert!(matches(&oslo, &win(), &c), "other kinds are not affected");
        assert!(matches(
            &route("all", &[], 0.0, &[]),
            &digest("weekly-new-york"),
            &c
        ));
    }

    #[test]
    fn a_private_prompt_takes_only_a_route_that_names_it() {
        let c = catalog();
        let prompt = Announcement {
            kind: AnnouncementKind::Prompt as i32,
            ..win()
        };
        assert!(!matches(&route("everything", &[], 0.0, &[]), &prompt, &c));
        assert!(!matches(
            &route("wins", &["headline_win"], 0.0, &[]),
            &prompt,
            &c
        ));
        assert!(matches(&route("leads", &["prompt"], 0.0, &[]), &prompt, &c));
        assert!(!matches(&route("leads", &["prompt"], 0.0, &[]), &win(), &c));
    }

    #[test]
    fn the_first_match_wins_unless_it_continues() {
        let (a, c) = (win(), catalog());
        let names = |routes: &[RouteConfig]| {
            select(routes, &a, &c)
                .iter()
                .map(|r| r.name.clone())
                .collect::<Vec<_>>()
        };
        let mut big = route("big", &[], 1000.0, &[]);
        let digest = route("digests", &["digest"], 0.0, &[]);
        let rest = route("rest", &[], 0.0, &[]);
        // Every route continues by default: today's fan-out to each matching route.
        let routes = vec![digest.clone(), big.clone(), rest.clone()];
        assert_eq!(names(&routes), ["big", "rest"]);
        // A matching route that stops ends the walk; one that does not match does not.
        big.continue_ = false;
        let mut stopping_digest = digest.clone();
        stopping_digest.continue_ = false;
        assert_eq!(
            names(&[stopping_digest.clone(), big.clone(), rest.clone()]),
            ["big"]
        );
        // Below its threshold the stopping route does not match, so the walk falls through.
        big.min_value = 10_000.0;
        assert_eq!(names(&[stopping_digest, big, rest]), ["rest"]);
    }
}
