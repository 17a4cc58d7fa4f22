//! Reading vendor JSON: optional fields, the time formats each tool uses, and people, teams and
//! services resolved through the catalog.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use herald_catalog::Catalog;
use serde_json::Value;

use super::unusable;
use herald_runtime::ApiError;

/// The value at `path`, when every step exists.
pub fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

/// A non-empty string at `path` (numbers are written as decimal strings: vendors switch between
/// the two for ids).
pub fn text(value: &Value, path: &[&str]) -> Option<String> {
    match at(value, path)? {
        Value::String(s) => {
            let s = s.trim();
            (!s.is_empty()).then(|| s.to_string())
        }
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A required string, or 422 naming the field.
pub fn required(value: &Value, path: &[&str]) -> Result<String, ApiError> {
    text(value, path).ok_or_else(|| unusable(format!("{} is required", path.join("."))))
}

/// A time in any of the forms the sources use: RFC 3339 (any fraction), Jira's offset without a
/// colon (`2025-03-10T13:05:44.218+0000`), and Zendesk's placeholders given to the minute
/// (`2025-03-12T07:31Z`).
pub fn parse_instant(field: &str, s: &str) -> Result<DateTime<Utc>, ApiError> {
    let s = s.trim();
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .map(|d| d.with_timezone(&Utc))
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%MZ").map(|n| n.and_utc()))
        .map_err(|_| unusable(format!("{field} must be an ISO 8601 time, got {s:?}")))
}

/// An optional time at `path`; present but unreadable is 422.
pub fn instant(value: &Value, path: &[&str]) -> Result<Option<DateTime<Utc>>, ApiError> {
    text(value, path)
        .map(|s| parse_instant(&path.join("."), &s))
        .transpose()
}

/// Epoch time whose unit is told by its digit count (10 seconds, 13 milliseconds, 16
/// microseconds, 19 nanoseconds): Opsgenie sends milliseconds and nanoseconds side by side.
pub fn epoch_by_digits(n: u64) -> Option<DateTime<Utc>> {
    let digits = n.checked_ilog10().map_or(1, |d| d + 1);
    let nanos: i64 = match digits {
        ..=10 => i64::try_from(n).ok()?.checked_mul(1_000_000_000)?,
        11..=13 => i64::try_from(n).ok()?.checked_mul(1_000_000)?,
        14..=16 => i64::try_from(n).ok()?.checked_mul(1_000)?,
        17..=19 => i64::try_from(n).ok()?,
        _ => return None,
    };
    Some(Utc.timestamp_nanos(nanos))
}

/// An epoch integer at `path` (a number or its decimal string) as a time; present but unreadable
/// is 422.
pub fn epoch(value: &Value, path: &[&str]) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(raw) = at(value, path).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let n = match raw {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    n.and_then(epoch_by_digits).map(Some).ok_or_else(|| {
        unusable(format!(
            "{} must be epoch seconds, milliseconds, microseconds or nanoseconds, got {raw}",
            path.join(".")
        ))
    })
}

/// `P1`…`P5` (PagerDuty, Opsgenie) as 1…5.
pub fn p_priority(value: Option<&str>) -> Option<u32> {
    value
        .and_then(|p| p.trim().strip_prefix(['P', 'p']))
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|p| (1..=5).contains(p))
}

/// People, teams and services of one source, resolved through the catalog.
pub struct Directory<'a> {
    pub catalog: &'a Catalog,
    pub source: &'static str,
}

impl Directory<'_> {
    pub fn is_system(&self, account: &str) -> bool {
        self.catalog.is_system_account(self.source, account)
    }

    /// The catalog person behind an account value or e-mail; never a system account.
    pub fn person(&self, account: &str) -> Option<String> {
        if self.is_system(account) {
            return None;
        }
        self.catalog
            .match_person(self.source, account)
            .map(|p| p.id.clone())
    }

    pub fn team<'s>(&self, candidates: impl IntoIterator<Item = &'s str>) -> Option<String> {
        candidates
            .into_iter()
            .find_map(|c| self.catalog.match_team(c))
            .map(|t| t.id.clone())
    }

    pub fn service<'s>(&self, candidates: impl IntoIterator<Item = &'s str>) -> Option<String> {
        self.catalog.match_service(candidates).map(|s| s.id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_units_follow_the_digit_count() {
        let ms = epoch_by_digits(1_741_791_720_415).expect("ms");
        assert_eq!(ms.to_rfc3339(), "2025-03-12T15:02:00.415+00:00");
        let ns = epoch_by_digits(1_741_794_438_774_019_000).expect("ns");
        assert_eq!(ns.timestamp_micros(), 1_741_794_438_774_019);
        let s = epoch_by_digits(1_741_791_720).expect("s");
        assert_eq!(s.timestamp(), 1_741_791_720);
        let us = epoch_by_digits(1_741_791_720_415_000).expect("us");
        assert_eq!(us.timestamp_millis(), 1_741_791_720_415);
        assert!(epoch_by_digits(u64::MAX).is_none(), "20 digits is no unit");
    }

    #[test]
    fn every_vendor_time_form_parses() {
        let jira = parse_instant("f", "2025-03-10T13:05:44.218+0000").expect("jira");
        assert_eq!(jira.timestamp_millis(), 1_741_611_944_218);
        let shifted = parse_instant("f", "2025-03-10T14:05:44.218+0100").expect("offset");
        assert_eq!(shifted, jira);
        let minute = parse_instant("f", "2025-03-12T07:31Z").expect("zendesk");
        assert_eq!(minute.to_rfc3339(), "2025-03-12T07:31:00+00:00");
        let nanos = parse_instant("f", "2025-03-12T09:02:44.518032771Z").expect("nanos");
        assert_eq!(nanos.timestamp_subsec_nanos(), 518_032_771);
        let err = parse_instant("when", "last Tuesday").expect_err("422");
        assert!(err.message.contains("when") && err.message.contains("last Tuesday"));
    }

    #[test]
    fn p_priorities() {
        assert_eq!(p_priority(Some("P1")), Some(1));
        assert_eq!(p_priority(Some("P5")), Some(5));
        assert_eq!(p_priority(Some("P6")), None);
        assert_eq!(p_priority(Some("high")), None);
        assert_eq!(p_priority(None), None);
    }
}
