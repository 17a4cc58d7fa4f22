//! Subject names and the stream families they belong to.
//!
//! `herald.events.<source>.<kind>`, `herald.wins.<kind>`, `herald.announcements.<kind>`,
//! `herald.dlq.<stage>`: one stream per family, so each can have its own retention.

use herald_proto::v1::{AnnouncementKind, EventKind, Source};

/// The four stream families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamFamily {
    Events,
    Wins,
    Announcements,
    DeadLetters,
}

impl StreamFamily {
    pub const ALL: [StreamFamily; 4] = [
        StreamFamily::Events,
        StreamFamily::Wins,
        StreamFamily::Announcements,
        StreamFamily::DeadLetters,
    ];

    /// The JetStream stream name.
    pub fn stream_name(self) -> &'static str {
        match self {
            StreamFamily::Events => "HERALD_EVENTS",
            StreamFamily::Wins => "HERALD_WINS",
            StreamFamily::Announcements => "HERALD_ANNOUNCEMENTS",
            StreamFamily::DeadLetters => "HERALD_DLQ",
        }
    }

    /// The wildcard that captures every subject of the family.
    pub fn wildcard(self) -> &'static str {
        match self {
            StreamFamily::Events => "herald.events.>",
            StreamFamily::Wins => "herald.wins.>",
            StreamFamily::Announcements => "herald.announcements.>",
            StreamFamily::DeadLetters => "herald.dlq.>",
        }
    }

    /// The family a subject belongs to, if any.
    pub fn of_subject(subject: &str) -> Option<StreamFamily> {
        StreamFamily::ALL
            .into_iter()
            .find(|family| subject.starts_with(family.wildcard().trim_end_matches('>')))
    }
}

pub fn event(source: Source, kind: EventKind) -> String {
    format!("herald.events.{}.{}", source.token(), kind.token())
}

pub fn win(kind: EventKind) -> String {
    format!("herald.wins.{}", kind.token())
}

pub fn announcement(kind: AnnouncementKind) -> String {
    format!("herald.announcements.{}", kind.token())
}

/// The dead-letter subject of a stage (`scoring`, `spotlight`, `notify`).
pub fn dead_letter(stage: &str) -> String {
    format!("herald.dlq.{stage}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_follow_the_documented_shape() {
        assert_eq!(
            event(Source::Servicenow, EventKind::IncidentResolved),
            "herald.events.servicenow.incident_resolved"
        );
        assert_eq!(
            win(EventKind::RequestFulfilled),
            "herald.wins.request_fulfilled"
        );
        assert_eq!(
            announcement(AnnouncementKind::HeadlineWin),
            "herald.announcements.headline_win"
        );
        assert_eq!(dead_letter("scoring"), "herald.dlq.scoring");
    }

    #[test]
    fn every_subject_lands_in_its_family() {
        let cases = [
            (
                event(Source::Jira, EventKind::ChangeFailed),
                StreamFamily::Events,
            ),
            (win(EventKind::IncidentResolved), StreamFamily::Wins),
            (
                announcement(AnnouncementKind::Digest),
                StreamFamily::Announcements,
            ),
            (dead_letter("notify"), StreamFamily::DeadLetters),
        ];
        for (subject, family) in cases {
            assert_eq!(
                StreamFamily::of_subject(&subject),
                Some(family),
                "{subject}"
            );
        }
        assert_eq!(StreamFamily::of_subject("herald.eventsx.a"), None);
    }
}
