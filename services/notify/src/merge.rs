//! Bursts: when more wins wait for one channel than its `burst`, the biggest go out on their own
//! and the rest as one summary listing each win's own headline, so thirty wins in a minute are a
//! few messages rather than a Slack queue that drains for half a minute (or a Teams channel nobody
//! reads any more). Nothing is summed across wins: each line keeps its own number and label.

use herald_proto::v1::{Announcement, AnnouncementKind, Card};

use crate::store::Claimed;

/// One message to send to a channel.
#[derive(Debug)]
pub enum Send {
    One(Claimed),
    /// A summary of several wins, sent as `carrier`'s attempt; the others share its outcome.
    Merged {
        carrier: Claimed,
        others: Vec<Claimed>,
        summary: Box<Announcement>,
    },
}

impl Send {
    /// The deliveries this message would carry.
    pub fn into_deliveries(self) -> Vec<Claimed> {
        match self {
            Send::One(claimed) => vec![claimed],
            Send::Merged {
                carrier, others, ..
            } => std::iter::once(carrier).chain(others).collect(),
        }
    }
}

fn is_mergeable(claimed: &Claimed) -> bool {
    claimed
        .announcement
        .as_ref()
        .is_some_and(|a| a.kind == AnnouncementKind::HeadlineWin as i32)
}

/// The messages for a channel's waiting deliveries, in order: everything that is not a win
/// (corrections, lessons, digests) one by one first, then the wins. `alone` wins of this burst
/// already went out on their own; when those and the waiting ones are more than `burst` (and
/// `burst` is not 0), the biggest wins fill the burst one by one and the rest go in one summary.
pub fn plan(deliveries: Vec<Claimed>, burst: usize, alone: usize) -> Vec<Send> {
    let (mut wins, others): (Vec<Claimed>, Vec<Claimed>) =
        deliveries.into_iter().partition(is_mergeable);
    let mut sends: Vec<Send> = others.into_iter().map(Send::One).collect();
    if burst == 0 || wins.len() + alone <= burst {
        sends.extend(wins.into_iter().map(Send::One));
        return sends;
    }
    let value = |c: &Claimed| c.announcement.as_ref().map_or(0.0, |a| a.value_amount);
    wins.sort_by(|a, b| value(b).total_cmp(&value(a)));
    let rest = wins.split_off((burst - 1).saturating_sub(alone).min(wins.len()));
    sends.extend(wins.into_iter().map(Send::One));
    if rest.len() == 1 {
        sends.extend(rest.into_iter().map(Send::One));
        return sends;
    }
    let summary = summary(
        &rest
            .iter()
            .filter_map(|c| c.announcement.as_ref())
            .collect::<Vec<_>>(),
        &rest[0].id,
    );
    let mut rest = rest.into_iter();
    if let Some(carrier) = rest.next() {
        sends.push(Send::Merged {
            carrier,
            others: rest.collect(),
            summary: Box::new(summary),
        });
    }
    sends
}

/// One announcement listing `wins`, each by its own headline (which carries its number), under
/// the id `merged-<carrier delivery>` so a resend is recognisable.
pub fn summary(wins: &[&Announcement], carrier: &str) -> Announcement {
    let cards: Vec<Card> = wins.iter().filter_map(|a| a.card.clone()).collect();
    let mut teams: Vec<String> = Vec::new();
    for team in cards.iter().flat_map(|c| c.teams.iter()) {
        if !teams.contains(team) {
            teams.push(team.clone());
        }
    }
    let lines: Vec<String> = cards.iter().map(|c| format!("• {}", c.title)).collect();
    let first = wins.first();
    Announcement {
        id: format!("merged-{carrier}"),
        kind: AnnouncementKind::HeadlineWin as i32,
        created_at: first.and_then(|a| a.created_at),
        card: Some(Card {
            title: format!("{} more wins", wins.len()),
            summary: lines.join("\n"),
            teams,
            ..Default::default()
        }),
        currency: first.map(|a| a.currency.clone()).unwrap_or_default(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn win(n: usize, value: f64, kind: AnnouncementKind) -> Claimed {
        Claimed {
            id: format!("d-{n}"),
            announcement_id: format!("a-{n}"),
            route: "r".into(),
            channel: "c".into(),
            attempt: 1,
            try_number: 1,
            traceparent: None,
            claimed_at: std::time::Instant::now(),
            lease_until: 0,
            announcement: Some(Announcement {
                id: format!("a-{n}"),
                kind: kind as i32,
                value_amount: value,
                card: Some(Card {
                    title: format!("Win {n}"),
                    teams: vec![format!("Team {}", n % 2)],
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn a_burst_is_the_biggest_wins_then_one_summary_of_the_rest() {
        let mut waiting: Vec<Claimed> = (0..30)
            .map(|n| win(n, n as f64 * 10.0, AnnouncementKind::HeadlineWin))
            .collect();
        waiting.push(win(99, 1.0, AnnouncementKind::Correction));
        let sends = plan(waiting, 3, 0);
        assert_eq!(sends.len(), 4, "{sends:?}");
        assert!(
            matches!(&sends[0], Send::One(c) if c.id == "d-99"),
            "corrections first"
        );
        assert!(matches!(&sends[1], Send::One(c) if c.id == "d-29"));
        assert!(matches!(&sends[2], Send::One(c) if c.id == "d-28"));
        let Send::Merged {
            carrier,
            others,
            summary,
        } = &sends[3]
        else {
            panic!("no summary: {sends:?}");
        };
        assert_eq!(others.len() + 1, 28, "every other win is carried");
        let card = summary.card.as_ref().expect("card");
        assert_eq!(card.title, "28 more wins");
        assert!(
            card.summary.starts_with("• Win 27\n• Win 26"),
            "{}",
            card.summary
        );
        assert_eq!(card.summary.lines().count(), 28);
        assert_eq!(card.teams, vec!["Team 1", "Team 0"]);
        assert_eq!(summary.id, format!("merged-{}", carrier.id));
        assert!(card.value_lines.is_empty(), "no sum across labels");
    }

    #[test]
    fn a_small_batch_or_a_channel_that_never_merges_goes_one_by_one() {
        let few: Vec<Claimed> = (0..3)
            .map(|n| win(n, 1.0, AnnouncementKind::HeadlineWin))
            .collect();
        assert!(plan(few, 3, 0).iter().all(|s| matches!(s, Send::One(_))));
        let many: Vec<Claimed> = (0..30)
            .map(|n| win(n, 1.0, AnnouncementKind::HeadlineWin))
            .collect();
        let sends = plan(many, 0, 0);
        assert_eq!(sends.len(), 30);
    }

    #[test]
    fn wins_already_sent_alone_count_towards_the_burst() {
        let waiting = || -> Vec<Claimed> {
            (0..10)
                .map(|n| win(n, n as f64, AnnouncementKind::HeadlineWin))
                .collect()
        };
        let sends = plan(waiting(), 3, 1);
        assert_eq!(sends.len(), 2, "one more alone, then the summary");
        assert!(matches!(&sends[0], Send::One(c) if c.id == "d-9"));
        let sends = plan(waiting(), 3, 2);
        assert_eq!(sends.len(), 1, "the burst is full: all in one summary");
        assert!(matches!(&sends[0], Send::Merged { others, .. } if others.len() == 9));
        let two: Vec<Claimed> = waiting().into_iter().take(2).collect();
        let sends = plan(two, 3, 2);
        assert_eq!(sends.len(), 1);
        assert!(matches!(&sends[0], Send::Merged { .. }));
        let one: Vec<Claimed> = waiting().into_iter().take(1).collect();
        assert!(
            matches!(&plan(one, 3, 3)[..], [Send::One(_)]),
            "a summary of one is the win"
        );
    }
}
