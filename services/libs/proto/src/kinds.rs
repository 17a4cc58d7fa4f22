//! Stable lower-case tokens for the protobuf enums.
//!
//! Subjects (`herald.events.servicenow.incident_resolved`), configuration (`kinds = ["incident_resolved"]`)
//! and database columns use these tokens rather than the protobuf names, so a rename in the generated
//! code can never change a subject or a stored value.

use crate::v1::{
    AnnouncementKind, CreditSubject, EventKind, Origin, Source, ValueLabel, WinStatus,
};

macro_rules! tokens {
    ($ty:ty { $($variant:ident => $token:literal),+ $(,)? }) => {
        impl $ty {
            /// Every known value, in declaration order (never the unspecified one).
            pub const ALL: &'static [$ty] = &[$(<$ty>::$variant),+];

            /// The stable token, e.g. for subjects and configuration.
            pub fn token(self) -> &'static str {
                match self {
                    $(<$ty>::$variant => $token,)+
                    _ => "unspecified",
                }
            }

            /// Parses a token as written by [`Self::token`].
            pub fn from_token(token: &str) -> Option<Self> {
                match token {
                    $($token => Some(<$ty>::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

tokens!(Source {
    Servicenow => "servicenow",
    Jira => "jira",
    Pagerduty => "pagerduty",
    Opsgenie => "opsgenie",
    Zendesk => "zendesk",
    Github => "github",
    Cloudevents => "cloudevents",
});

tokens!(EventKind {
    IncidentOpened => "incident_opened",
    IncidentResolved => "incident_resolved",
    IncidentReopened => "incident_reopened",
    RequestOpened => "request_opened",
    RequestReopened => "request_reopened",
    RequestFulfilled => "request_fulfilled",
    ChangeImplemented => "change_implemented",
    ChangeFailed => "change_failed",
    ProblemClosed => "problem_closed",
    PageTriggered => "page_triggered",
    PageAcknowledged => "page_acknowledged",
    PageResolved => "page_resolved",
    PageReopened => "page_reopened",
    SurveySubmitted => "survey_submitted",
    DeploymentSucceeded => "deployment_succeeded",
    PullRequestMerged => "pull_request_merged",
    AutomationRun => "automation_run",
});

tokens!(ValueLabel {
    Cash => "cash",
    Capacity => "capacity",
    Avoided => "avoided",
    Estimate => "estimate",
});

tokens!(AnnouncementKind {
    HeadlineWin => "headline_win",
    Digest => "digest",
    Lesson => "lesson",
    Correction => "correction",
    Prompt => "prompt",
});

tokens!(WinStatus {
    Provisional => "provisional",
    Confirmed => "confirmed",
    Revoked => "revoked",
});

tokens!(Origin {
    Live => "live",
    Backfill => "backfill",
    CatchUp => "catch_up",
});

tokens!(CreditSubject {
    Person => "person",
    Team => "team",
});

impl ValueLabel {
    /// How to read a figure with this label, in words shown next to it.
    pub fn meaning(self) -> &'static str {
        match self {
            ValueLabel::Cash => "cash: money that really moved",
            ValueLabel::Capacity => "capacity: working time released for other work",
            ValueLabel::Avoided => "avoided: cost that did not have to be paid (an estimate)",
            ValueLabel::Estimate => "estimate: rests on assumptions beyond the catalog",
            ValueLabel::Unspecified => "unlabelled",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_token_round_trips() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::from_token(kind.token()), Some(*kind));
        }
        for source in Source::ALL {
            assert_eq!(Source::from_token(source.token()), Some(*source));
        }
        for label in ValueLabel::ALL {
            assert_eq!(ValueLabel::from_token(label.token()), Some(*label));
        }
    }

    #[test]
    fn tokens_are_subject_safe() {
        let all = EventKind::ALL
            .iter()
            .map(|k| k.token())
            .chain(Source::ALL.iter().map(|s| s.token()));
        for token in all {
            assert!(
                token.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{token} must be usable as a NATS subject token"
            );
        }
    }

    #[test]
    fn unspecified_has_no_token() {
        assert_eq!(EventKind::Unspecified.token(), "unspecified");
        assert_eq!(EventKind::from_token("unspecified"), None);
    }
}
