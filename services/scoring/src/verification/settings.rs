//! `[scoring.verification]`: how long each kind of outcome is held before its credit is confirmed,
//! and how long after the outcome a reopen, rollback or related incident still withdraws it.

use std::{collections::BTreeMap, time::Duration};

use herald_proto::v1::EventKind;
use serde::Deserialize;

const HOUR: u64 = 60 * 60;
const DAY: u64 = 24 * HOUR;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerificationSettings {
    /// Credit stays provisional this long after the outcome (or after Herald received it, when
    /// that was later). 0 confirms at once (the demo).
    #[serde(with = "humantime_serde")]
    pub hold_back: Duration,
    /// A reopen, rollback or related incident this long after the outcome withdraws the credit,
    /// even once it was confirmed (then the announcement is corrected). At least `hold_back`.
    #[serde(with = "humantime_serde")]
    pub revoke_within: Duration,
    /// How often due wins are confirmed (by one replica at a time).
    #[serde(with = "humantime_serde")]
    pub confirm_every: Duration,
    /// Per kind (`change_implemented`, `problem_closed`, …): its own windows. Changes (a week) and
    /// problems (a month) have longer built-in windows than the general ones.
    pub kinds: BTreeMap<String, KindWindow>,
}

/// One kind's windows; what is left out comes from the general settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindWindow {
    #[serde(default, with = "humantime_serde")]
    pub hold_back: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub revoke_within: Option<Duration>,
}

/// The windows in force for one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub hold_back: chrono::Duration,
    pub revoke_within: chrono::Duration,
}

impl Default for VerificationSettings {
    fn default() -> Self {
        Self {
            hold_back: Duration::from_secs(72 * HOUR),
            revoke_within: Duration::from_secs(72 * HOUR),
            confirm_every: Duration::from_secs(5),
            kinds: BTreeMap::new(),
        }
    }
}

/// Kinds whose outcome takes longer to judge than a reopen, whatever the general windows say: a
/// quiet change is one with no related incident for a week, and a problem is judged on the
/// incidents of the month after it was closed. A `[scoring.verification.kinds.<kind>]` entry
/// overrides these field by field.
fn built_in(kind: EventKind) -> Option<(Duration, Duration)> {
    match kind {
        EventKind::ChangeImplemented => {
            Some((Duration::from_secs(7 * DAY), Duration::from_secs(7 * DAY)))
        }
        EventKind::ProblemClosed => {
            Some((Duration::from_secs(30 * DAY), Duration::from_secs(30 * DAY)))
        }
        _ => None,
    }
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl VerificationSettings {
    pub fn window(&self, kind: EventKind) -> Window {
        let own = self.kinds.get(kind.token());
        let built_in = built_in(kind);
        let hold_back = own
            .and_then(|k| k.hold_back)
            .or(built_in.map(|(hold, _)| hold))
            .unwrap_or(self.hold_back);
        let revoke_within = own
            .and_then(|k| k.revoke_within)
            .or(built_in.map(|(_, revoke)| revoke))
            .unwrap_or(self.revoke_within)
            .max(hold_back);
        Window {
            hold_back: chrono(hold_back),
            revoke_within: chrono(revoke_within),
        }
    }

    /// Refuses what cannot be meant, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        for (kind, window) in &self.kinds {
            if EventKind::from_token(kind).is_none() {
                return Err(format!(
                    "[scoring.verification.kinds.{kind}] is not an event kind; kinds are {}",
                    EventKind::ALL
                        .iter()
                        .map(|k| k.token())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if let (Some(hold), Some(revoke)) = (window.hold_back, window.revoke_within)
                && revoke < hold
            {
                return Err(format!(
                    "[scoring.verification.kinds.{kind}] revoke_within must be at least hold_back: a win could be confirmed and still be withdrawn by something older"
                ));
            }
        }
        if self.revoke_within < self.hold_back {
            return Err(
                "[scoring.verification] revoke_within must be at least hold_back".to_string(),
            );
        }
        if self.confirm_every.is_zero() {
            return Err("[scoring.verification] confirm_every must be more than 0".to_string());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_inherits_what_it_does_not_set() {
        let settings: VerificationSettings =
            toml::from_str("hold_back = \"0s\"\n[kinds.change_implemented]\nhold_back = \"0s\"\n")
                .expect("valid");
        assert!(settings.validate().is_ok());
        // Its own hold-back, and the built-in week for related incidents.
        let change = settings.window(EventKind::ChangeImplemented);
        assert_eq!(change.hold_back, chrono::Duration::zero());
        assert_eq!(change.revoke_within, chrono::Duration::days(7));
        // A problem keeps its built-in month, whatever the general hold-back.
        let problem = settings.window(EventKind::ProblemClosed);
        assert_eq!(problem.hold_back, chrono::Duration::days(30));
        // The demo's window of 0 still lets a reopen the next day withdraw the win.
        let incident = settings.window(EventKind::IncidentResolved);
        assert_eq!(incident.hold_back, chrono::Duration::zero());
        assert_eq!(incident.revoke_within, chrono::Duration::hours(72));
    }

    #[test]
    fn unknown_kinds_and_backward_windows_are_refused() {
        let typo: VerificationSettings =
            toml::from_str("[kinds.incident_resolvd]\nhold_back = \"1h\"\n").expect("parses");
        assert!(
            typo.validate()
                .is_err_and(|e| e.contains("incident_resolvd"))
        );
        let backward: VerificationSettings =
            toml::from_str("hold_back = \"2d\"\nrevoke_within = \"1d\"\n").expect("parses");
        assert!(backward.validate().is_err());
    }
}
