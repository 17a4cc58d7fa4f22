//! Consistency checks, so a mistake in the catalog is reported at start-up with what to fix rather
//! than turning into a wrong number later.

use std::collections::HashMap;

use crate::{CatalogError, CatalogSpec};

pub(crate) fn check(spec: &CatalogSpec) -> Result<(), CatalogError> {
    let invalid = |msg: String| Err(CatalogError::Invalid(msg));

    if spec.organisation.timezone.parse::<chrono_tz::Tz>().is_err() {
        return invalid(format!(
            "organisation.timezone {:?} is not an IANA time zone (for example \"Europe/Amsterdam\")",
            spec.organisation.timezone
        ));
    }
    let currency = &spec.organisation.currency;
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return invalid(format!(
            "organisation.currency {currency:?} must be a three-letter ISO 4217 code such as \"EUR\""
        ));
    }

    // Refused rather than shown in English: an organisation that set a locale expects to see it.
    if let Err(unsupported) = crate::Locale::parse(&spec.organisation.locale) {
        return invalid(format!("organisation.{unsupported}"));
    }

    unique_ids("service", spec.services.iter().map(|s| s.id.as_str()))?;
    unique_ids("team", spec.teams.iter().map(|t| t.id.as_str()))?;
    unique_ids("person", spec.people.iter().map(|p| p.id.as_str()))?;

    let team_ids: Vec<&str> = spec.teams.iter().map(|t| t.id.as_str()).collect();
    for service in &spec.services {
        if !(0.0..=1.0).contains(&service.blocked_share) {
            return invalid(format!(
                "service {}: blocked_share {} must be between 0 and 1",
                service.id, service.blocked_share
            ));
        }
        if !(service.loaded_hourly_rate.is_finite() && service.loaded_hourly_rate >= 0.0) {
            return invalid(format!(
                "service {}: loaded_hourly_rate must be zero or more",
                service.id
            ));
        }
        if let Some(revenue) = service.revenue_per_hour
            && !(revenue.is_finite() && revenue >= 0.0)
        {
            return invalid(format!(
                "service {}: revenue_per_hour must be zero or more",
                service.id
            ));
        }
        if let Some(team) = &service.team
            && !team_ids.contains(&team.as_str())
        {
            return invalid(format!(
                "service {}: team {team:?} is not one of the [[teams]] ids",
                service.id
            ));
        }
        if let Some(rate) = service.change_failure_rate
            && !(0.0..=1.0).contains(&rate)
        {
            return invalid(format!(
                "service {}: change_failure_rate {rate} must be a share between 0 and 1 (0.12 for 12 %)",
                service.id
            ));
        }
        if let Some(cost) = service.cost_per_incident
            && !(cost.is_finite() && cost >= 0.0)
        {
            return invalid(format!(
                "service {}: cost_per_incident must be zero or more",
                service.id
            ));
        }
        if let Some(typical) = &service.typical_restore_minutes
            && [typical.p1, typical.p2, typical.p3, typical.p4, typical.p5]
                .into_iter()
                .flatten()
                .any(|m| !(m.is_finite() && m > 0.0))
        {
            return invalid(format!(
                "service {}: typical_restore_minutes must be more than 0 minutes",
                service.id
            ));
        }
    }
    for person in &spec.people {
        if let Some(team) = &person.team
            && !team_ids.contains(&team.as_str())
        {
            return invalid(format!(
                "person {}: team {team:?} is not one of the [[teams]] ids",
                person.id
            ));
        }
    }
    for team in &spec.teams {
        if let Some(lead) = &team.lead
            && !spec.people.iter().any(|p| &p.id == lead)
        {
            return invalid(format!(
                "team {}: lead {lead:?} is not one of the [[people]] ids",
                team.id
            ));
        }
    }

    // A name that points at two services would make matching depend on file order: refuse it.
    unambiguous(
        "service",
        spec.services
            .iter()
            .flat_map(|s| s.match_keys().map(move |k| (k, s.id.as_str()))),
    )?;
    unambiguous(
        "team",
        spec.teams
            .iter()
            .flat_map(|t| t.match_keys().map(move |k| (k, t.id.as_str()))),
    )?;
    unambiguous(
        "person account",
        spec.people.iter().flat_map(|p| {
            p.accounts.iter().flat_map(move |(source, values)| {
                values
                    .values()
                    .map(move |v| (format!("{source}:{v}"), p.id.as_str()))
            })
        }),
    )?;
    Ok(())
}

fn unique_ids<'a>(what: &str, ids: impl Iterator<Item = &'a str>) -> Result<(), CatalogError> {
    let mut seen = HashMap::new();
    for id in ids {
        if id.trim().is_empty() {
            return Err(CatalogError::Invalid(format!("a {what} has an empty id")));
        }
        if seen.insert(id, ()).is_some() {
            return Err(CatalogError::Invalid(format!(
                "{what} id {id:?} is used twice"
            )));
        }
    }
    Ok(())
}

fn unambiguous<K: AsRef<str>>(
    what: &str,
    keys: impl Iterator<Item = (K, impl AsRef<str>)>,
) -> Result<(), CatalogError> {
    let mut owners: HashMap<String, String> = HashMap::new();
    for (name, owner) in keys {
        let k = super::key(name.as_ref());
        let owner = owner.as_ref();
        match owners.get(&k) {
            Some(existing) if existing != owner => {
                return Err(CatalogError::Invalid(format!(
                    "{what} name {:?} matches both {existing} and {owner}; names must be unique (case-insensitive)",
                    name.as_ref()
                )));
            }
            _ => {
                owners.insert(k, owner.to_string());
            }
        }
    }
    Ok(())
}
