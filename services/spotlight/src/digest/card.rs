//! A digest as one channel-neutral card: the period's value per label (never added across labels),
//! its top wins, the quiet work that rarely makes a headline, requests on time, the requester's
//! voice, the lesson of the week, the people and teams who did most, and a prompt to thank someone.

use herald_catalog::Catalog;
use herald_proto::v1::{Announcement, Card, CreditedPerson, EventKind, ValueLabel, ValueLine, Win};

use crate::{
    periods::{Period, PeriodKind},
    selection::Pick,
    store::{LabelTotals, Ranked},
};

/// What a digest tells, read from the store for its period.
#[derive(Debug, Default)]
pub struct DigestData {
    pub totals: Vec<LabelTotals>,
    /// Every win counted in the period, most valuable first.
    pub wins: Vec<Win>,
    /// Lessons announced in the period, newest first.
    pub lessons: Vec<Announcement>,
    /// The people in the spotlight, each with the win that tells their story.
    pub people: Vec<Pick>,
    pub teams: Vec<Ranked>,
}

const TOP_WINS: usize = 3;

/// Invisible work: done well, nothing happens, so nobody hears of it.
fn is_quiet(win: &Win) -> bool {
    matches!(
        EventKind::try_from(win.kind),
        Ok(EventKind::ChangeImplemented | EventKind::ProblemClosed | EventKind::AutomationRun)
    ) && !win.digest_only
}

fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The period in words, in the organisation's locale: "the week of 23 Nov 2026 to 29 Nov 2026",
/// "November 2026".
pub fn period_words(period: &Period, organisation: &herald_catalog::Organisation) -> String {
    use chrono::Datelike;
    match period.kind {
        PeriodKind::Week => format!(
            "the week of {} to {}",
            organisation.date(period.start),
            organisation.date(period.end - chrono::Days::new(1))
        ),
        PeriodKind::Month => organisation.month_name(period.start.year(), period.start.month()),
        PeriodKind::Quarter => {
            format!("Q{} {}", period.start.month0() / 3 + 1, period.start.year())
        }
        PeriodKind::Season { .. } => format!(
            "the season {} to {}",
            organisation.month_name(period.start.year(), period.start.month()),
            {
                let last = period.end - chrono::Days::new(1);
                organisation.month_name(last.year(), last.month())
            }
        ),
    }
}

pub fn digest_card(period: &Period, data: &DigestData, catalog: &Catalog) -> Card {
    let organisation = catalog.organisation();
    let headline_wins: Vec<&Win> = data.wins.iter().filter(|w| !w.digest_only).collect();
    let quiet: Vec<&Win> = data.wins.iter().filter(|w| is_quiet(w)).collect();
    let on_time = data.wins.iter().filter(|w| w.digest_only).count();
    let title = format!(
        "IT in {}: {}",
        period_words(period, organisation),
        count(data.wins.len(), "verified win", "verified wins")
    );
    let mut lines: Vec<String> = Vec::new();
    if data.wins.is_empty() {
        lines.push(
            "No verified wins this time: the quiet kind of period, or one still being verified."
                .into(),
        );
    }
    if !headline_wins.is_empty() {
        lines.push("Top wins:".into());
        for win in headline_wins.iter().take(TOP_WINS) {
            lines.push(format!("• {}", win.headline));
        }
    }
    // People are not added up across outages (the same people are often blocked twice): the
    // number of outages ended and the most people one of them gave their tools back.
    let restored: Vec<f64> = data
        .wins
        .iter()
        .filter_map(|w| w.value.as_ref().map(|v| v.users))
        .filter(|users| *users >= 1.0)
        .collect();
    if let Some(most) = restored.iter().copied().reduce(f64::max) {
        lines.push(format!(
            "Users back at work: {} ended; the largest gave {} people their tools back.",
            count(restored.len(), "outage", "outages"),
            organisation.number(most.round(), 0)
        ));
    }
    if !quiet.is_empty() {
        let by = |kind: EventKind| quiet.iter().filter(|w| w.kind == kind as i32).count();
        let mut parts = Vec::new();
        let changes = by(EventKind::ChangeImplemented);
        let problems = by(EventKind::ProblemClosed);
        let automation = by(EventKind::AutomationRun);
        if changes > 0 {
            parts.push(count(
                changes,
                "change without an incident",
                "changes without an incident",
            ));
        }
        if problems > 0 {
            parts.push(count(problems, "problem eliminated", "problems eliminated"));
        }
        if automation > 0 {
            parts.push(count(automation, "run of automation", "runs of automation"));
        }
        lines.push(format!("Quiet wins: {}.", parts.join(", ")));
        if let Some(best) = quiet.first() {
            lines.push(format!("• {}", best.headline));
        }
    }
    if on_time > 0 {
        lines.push(format!(
            "Requests fulfilled on time: {}.",
            organisation.number(on_time as f64, 0)
        ));
    }
    if let Some(praise) = data.wins.iter().find_map(|w| w.praise.as_ref()) {
        lines.push(format!(
            "The requester's voice: “{}” — {}",
            praise.quote, praise.requester
        ));
    }
    if let Some(card) = data.lessons.first().and_then(|l| l.card.as_ref()) {
        // Titled "Lesson learned: …" by `card::lesson_card`, as every lesson card has been.
        lines.push(card.title.clone());
    }
    lines.push("Recognise someone: who made this period easier for you? Thank them where the team can see it.".into());

    let value_lines = data
        .totals
        .iter()
        .map(|t| {
            let label = ValueLabel::from_token(&t.label).unwrap_or(ValueLabel::Unspecified);
            ValueLine {
                label: label as i32,
                text: format!(
                    "{} {} · {} working hours · {}",
                    organisation.money(t.value),
                    label.token(),
                    organisation.number(t.hours, 0),
                    count(usize::try_from(t.wins).unwrap_or(0), "win", "wins"),
                ),
                formula: format!(
                    "the sum of this period's verified {} wins, each with its own formula (herald explain <win>); never added to another label",
                    label.token()
                ),
            }
        })
        .collect();
    let people = data
        .people
        .iter()
        .map(|pick| {
            let r = &pick.figures;
            let name = catalog.public_name(&r.subject_id);
            let mut role = format!(
                "{}, {} working hours given back",
                count(usize::try_from(r.wins).unwrap_or(0), "win", "wins"),
                organisation.number(r.hours, 0)
            );
            if let Some(story) = &pick.story {
                role.push_str(&format!(
                    "{}: {}",
                    if pick.quiet { " · quiet work" } else { "" },
                    story.headline
                ));
            }
            CreditedPerson {
                name: name.name,
                role,
                anonymised: name.anonymised,
            }
        })
        .collect();
    Card {
        title,
        summary: lines.join("\n"),
        value_lines,
        people,
        teams: data
            .teams
            .iter()
            .map(|r| catalog.team_name(&r.subject_id).to_string())
            .collect(),
        links: Vec::new(),
        business_service: None,
    }
}

#[cfg(test)]
mod tests {
    use herald_proto::v1::{RequesterPraise, Value};

    use super::*;

    fn win(kind: EventKind, headline: &str, amount: f64, digest_only: bool) -> Win {
        Win {
            kind: kind as i32,
            headline: headline.into(),
            digest_only,
            value: Some(Value {
                amount,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_digest_tells_top_wins_quiet_work_requests_and_labels_apart() {
        let period = Period {
            kind: PeriodKind::Week,
            start: "2026-11-23".parse().expect("date"),
            end: "2026-11-30".parse().expect("date"),
        };
        let mut praised = win(EventKind::RequestFulfilled, "Laptop delivered", 50.0, true);
        praised.praise = Some(RequesterPraise {
            quote: "Fast and friendly".into(),
            requester: "a requester".into(),
            score: "good".into(),
        });
        let with_users = |mut w: Win, users: f64| {
            if let Some(v) = w.value.as_mut() {
                v.users = users;
            }
            w
        };
        let data = DigestData {
            totals: vec![
                LabelTotals {
                    label: "avoided".into(),
                    value: 120_000.0,
                    hours: 3_000.0,
                    users: 900.0,
                    wins: 3,
                },
                LabelTotals {
                    label: "capacity".into(),
                    value: 4_000.0,
                    hours: 90.0,
                    users: 0.0,
                    wins: 5,
                },
            ],
            wins: vec![
                with_users(
                    win(
                        EventKind::IncidentResolved,
                        "Payroll restored in 40 min",
                        90_000.0,
                        false,
                    ),
                    600.0,
                ),
                with_users(
                    win(EventKind::IncidentResolved, "E-mail restored", 100.0, false),
                    1_450.4,
                ),
                win(
                    EventKind::ChangeImplemented,
                    "Firewall bundle applied, no incident",
                    2_000.0,
                    false,
                ),
                win(
                    EventKind::ProblemClosed,
                    "Recurring VPN drops eliminated",
                    1_500.0,
                    false,
                ),
                praised,
            ],
            lessons: vec![Announcement {
                card: Some(Card {
                    title: "Lesson learned: Apply the firewall bundle in a maintenance window"
                        .into(),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let card = digest_card(&period, &data, &Catalog::default());
        assert_eq!(
            card.title,
            "IT in the week of 23 Nov 2026 to 29 Nov 2026: 5 verified wins"
        );
        let summary = &card.summary;
        assert!(
            summary.contains("Top wins:\n• Payroll restored in 40 min"),
            "{summary}"
        );
        assert!(
            summary.contains("Quiet wins: 1 change without an incident, 1 problem eliminated."),
            "{summary}"
        );
        assert!(
            summary.contains(
                "Users back at work: 2 outages ended; the largest gave 1,450 people their tools back."
            ),
            "people are never added up across outages: {summary}"
        );
        assert!(
            summary.contains("Requests fulfilled on time: 1."),
            "{summary}"
        );
        assert!(
            summary.contains("“Fast and friendly” — a requester"),
            "{summary}"
        );
        assert!(
            summary
                .contains("\nLesson learned: Apply the firewall bundle in a maintenance window\n"),
            "the lesson's title said once: {summary}"
        );
        assert!(summary.contains("Recognise someone"), "{summary}");
        assert_eq!(card.value_lines.len(), 2, "one line per label, never a sum");
        assert_eq!(
            card.value_lines[0].text,
            "€120,000 avoided · 3,000 working hours · 3 wins"
        );
    }
}
