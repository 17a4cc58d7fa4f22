//! Lesson learned: a failed change, or a major incident, with a postmortem becomes a blameless
//! story. It credits the responders and whoever followed it up, links the postmortem, and never
//! names who triggered the failure.
//!
//! Who triggered it: for a failed change, its implementer (the assignee). That person is left out
//! of the credits, and every sentence of the closing notes that names them (display name, either
//! part of it, with or without accents, e-mail, user name or any account value the catalog knows)
//! or that assigns blame ("caused by", "fault", "mistake", "forgot", "human error") is dropped
//! before the notes are quoted. Dropping whole sentences rather than words leaves no "…'s change".

use herald_catalog::{Catalog, LessonsPolicy, Person};
use herald_proto::v1::{Credit, CreditSubject, EventKind, ItsmEvent, Record};

use super::service;
use crate::config::ScoringSettings;

/// Who may see a lesson: everyone (the team opted in) or only the team itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Public,
    /// The team opted out of public lessons, or is not in the catalog: the story reaches the team
    /// only.
    TeamOnly,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Lesson {
    pub record_number: String,
    pub title: String,
    /// What went wrong and what happened, blameless: the title, who is thanked and the
    /// postmortem's link are shown beside it, never in it.
    pub story: String,
    /// Team first, then each person with their part. No value: share and amount are 0.
    pub credits: Vec<Credit>,
    pub postmortem_url: String,
    pub team: Option<String>,
    pub audience: Audience,
}

const BLAME: &[&str] = &[
    "caused by",
    "fault",
    "blame",
    "mistake",
    "forgot",
    "human error",
    "negligen",
    "careless",
    "should have known",
];

/// The lesson in an event, or `None` when it is not a failed change or major incident with a
/// postmortem.
pub fn lesson(event: &ItsmEvent, catalog: &Catalog, settings: &ScoringSettings) -> Option<Lesson> {
    let kind = EventKind::try_from(event.kind).ok()?;
    let record = event.record.as_ref()?;
    let major = kind == EventKind::IncidentResolved
        && record
            .priority
            .is_some_and(|p| settings.stories.lesson_priorities.contains(&p));
    if kind != EventKind::ChangeFailed && !major {
        return None;
    }
    let postmortem_url = record
        .postmortem_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())?
        .to_string();

    // The implementer of a failed change is never named or credited.
    let trigger = (kind == EventKind::ChangeFailed)
        .then_some(record.assignee.as_deref())
        .flatten();
    let names = trigger
        .map(|id| identifiers(id, catalog))
        .unwrap_or_default();
    let mentions_trigger = |text: &str| {
        let text = fold(text);
        names.iter().any(|n| text.contains(n.as_str()))
    };

    let team = record
        .assignment_group
        .clone()
        .or_else(|| service(record, catalog).and_then(|s| s.team.clone()));
    let audience = match team.as_deref().and_then(|t| catalog.team(t)) {
        Some(t) if t.lessons == LessonsPolicy::OptIn => Audience::Public,
        _ => Audience::TeamOnly,
    };
    let credits = credits(kind, record, trigger, team.as_deref());
    let service_name = service(record, catalog)
        .map(|s| s.name.clone())
        .unwrap_or_else(|| "the service".to_string());
    let title = record
        .title
        .as_deref()
        .filter(|t| !mentions_trigger(t))
        .map(String::from)
        .unwrap_or_else(|| match kind {
            EventKind::ChangeFailed => format!("A change to {service_name}"),
            _ => format!("A major incident on {service_name}"),
        });

    // The story is the narrative alone: every reader shows it under the title, beside who is
    // thanked and a link to the postmortem (a card's people and links, `herald explain`'s lines),
    // so saying those again here made a card tell each of them twice.
    let mut story = match kind {
        EventKind::ChangeFailed => format!("The change to {service_name} failed"),
        _ => format!("{service_name} had a major incident"),
    };
    match record.incidents_caused.filter(|n| *n > 0) {
        Some(1) => story.push_str(" and one incident followed."),
        Some(n) => story.push_str(&format!(" and {n} incidents followed.")),
        None => story.push('.'),
    }
    let kept: Vec<String> = record
        .notes
        .as_deref()
        .map(sentences)
        .unwrap_or_default()
        .into_iter()
        .filter(|s| !mentions_trigger(s) && !blames(s))
        .collect();
    if !kept.is_empty() {
        story.push_str(" What happened: ");
        story.push_str(&kept.join(" "));
    }
    story.push_str(" The blameless postmortem says what changes so it does not happen again.");
    Some(Lesson {
        record_number: record.number.clone(),
        title,
        story,
        credits,
        postmortem_url,
        team,
        audience,
    })
}

/// The team, then the people who responded and followed up; never the trigger, never the
/// requester. Lessons carry no value: every share and amount is 0.
fn credits(
    kind: EventKind,
    record: &Record,
    trigger: Option<&str>,
    team: Option<&str>,
) -> Vec<Credit> {
    let credit = |subject: CreditSubject, id: &str, role: &str| Credit {
        subject: subject as i32,
        id: id.to_string(),
        role: role.to_string(),
        share: 0.0,
        amount: 0.0,
    };
    let eligible = |p: &str| Some(p) != trigger && Some(p) != record.requester.as_deref();
    let mut out: Vec<Credit> = team
        .map(|t| credit(CreditSubject::Team, t, "the team that learned it"))
        .into_iter()
        .collect();
    let follow_up = record.resolved_by.as_deref().filter(|p| eligible(p));
    if let Some(p) = follow_up {
        let role = match kind {
            EventKind::ChangeFailed => "followed it up",
            _ => "restored the service",
        };
        out.push(credit(CreditSubject::Person, p, role));
    }
    let mut responders: Vec<&str> = record
        .contributors
        .iter()
        .map(String::as_str)
        .chain(record.assignee.as_deref())
        .filter(|p| eligible(p) && Some(*p) != follow_up)
        .collect();
    responders.sort_unstable();
    responders.dedup();
    for p in responders {
        out.push(credit(CreditSubject::Person, p, "responded"));
    }
    out
}

/// Every way text could name a person, folded for comparison: display name and each part of it,
/// e-mail and its local part, the catalog id and every account value.
fn identifiers(id: &str, catalog: &Catalog) -> Vec<String> {
    let mut names = vec![id.to_string()];
    if let Some(Person {
        display_name,
        email,
        accounts,
        ..
    }) = catalog.person(id)
    {
        names.push(display_name.clone());
        names.extend(display_name.split_whitespace().map(String::from));
        if let Some(email) = email {
            names.push(email.clone());
            names.extend(email.split('@').next().map(String::from));
        }
        for values in accounts.values() {
            names.extend(values.values().cloned());
        }
    }
    let mut folded: Vec<String> = names
        .iter()
        .map(|n| fold(n))
        // One- and two-letter parts ("Li", "Ng" aside, rare) would drop half the notes.
        .filter(|n| n.chars().count() >= 3)
        .collect();
    folded.sort_unstable();
    folded.dedup();
    folded
}

fn blames(sentence: &str) -> bool {
    let s = fold(sentence);
    BLAME.iter().any(|b| s.contains(b))
}

/// Lower case with the common Latin accents removed, so "Tomas" matches "Tomás".
fn fold(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' | 'ą' => 'a',
            'é' | 'è' | 'ê' | 'ë' | 'ę' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'ø' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ñ' | 'ń' => 'n',
            'ç' | 'ć' | 'č' => 'c',
            'ś' | 'š' => 's',
            'ž' | 'ź' | 'ż' => 'z',
            'ł' => 'l',
            'ý' | 'ÿ' => 'y',
            other => other,
        })
        .collect()
}

/// Sentences of free text: ends at `.`, `!` or `?` followed by a blank, and at line breaks.
fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' || c == '\r' {
            push_sentence(&mut out, &mut current);
            continue;
        }
        current.push(c);
        let at_end = chars.peek().is_none_or(|n| n.is_whitespace());
        if matches!(c, '.' | '!' | '?') && at_end {
            push_sentence(&mut out, &mut current);
        }
    }
    push_sentence(&mut out, &mut current);
    out
}

fn push_sentence(out: &mut Vec<String>, current: &mut String) {
    let sentence = current.trim();
    if !sentence.is_empty() {
        out.push(sentence.to_string());
    }
    current.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_split_into_sentences_and_times_stay_whole() {
        assert_eq!(
            sentences("Bundle applied 22:05. From 22:09 users could not log in!\nRolled back."),
            vec![
                "Bundle applied 22:05.",
                "From 22:09 users could not log in!",
                "Rolled back."
            ]
        );
        assert_eq!(sentences("v2.5 shipped"), vec!["v2.5 shipped"]);
    }

    #[test]
    fn accents_fold_and_blame_is_recognised() {
        assert_eq!(fold("Tomás HERRERA"), "tomas herrera");
        assert!(blames("This was Caused by a typo."));
        assert!(!blames("The rule order shadowed the portal rule."));
    }
}
