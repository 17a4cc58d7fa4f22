//! Which routes an announcement takes.

use herald_proto::v1::{Announcement, AnnouncementKind};

use crate::config::RouteConfig;

pub fn matches(route: &RouteConfig, announcement: &Announcement) -> bool {
    let kind = AnnouncementKind::try_from(announcement.kind)
        .map(|k| k.token())
        .unwrap_or("unspecified");
    let any_or = |list: &[String], value: Option<&str>| {
        list.is_empty() || value.is_some_and(|v| list.iter().any(|x| x == v))
    };
    (route.kinds.is_empty() || route.kinds.iter().any(|k| k == kind))
        && announcement.value_amount >= route.min_value
        && any_or(
            &route.business_services,
            announcement.business_service.as_deref(),
        )
        && any_or(&route.teams, announcement.team.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(kinds: &[&str], min_value: f64, services: &[&str]) -> RouteConfig {
        RouteConfig {
            name: "r".into(),
            channel: "c".into(),
            kinds: kinds.iter().map(|s| s.to_string()).collect(),
            min_value,
            business_services: services.iter().map(|s| s.to_string()).collect(),
            teams: vec![],
        }
    }

    #[test]
    fn filters_by_kind_value_and_service() {
        let a = Announcement {
            kind: AnnouncementKind::HeadlineWin as i32,
            value_amount: 5000.0,
            business_service: Some("svc-warehouse".into()),
            ..Default::default()
        };
        assert!(matches(&route(&[], 0.0, &[]), &a));
        assert!(matches(
            &route(&["headline_win"], 5000.0, &["svc-warehouse"]),
            &a
        ));
        assert!(!matches(&route(&["digest"], 0.0, &[]), &a));
        assert!(!matches(&route(&[], 5000.01, &[]), &a));
        assert!(!matches(&route(&[], 0.0, &["svc-fleet"]), &a));
    }
}
