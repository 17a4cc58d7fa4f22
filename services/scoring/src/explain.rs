//! A win explained in words: the story, the number with its label, the formula, every input with
//! where it came from, and how the credit was split.

use std::fmt::Write;

use herald_catalog::Catalog;
use herald_proto::v1::{Credit, CreditSubject, EventKind, LessonStory, Source, ValueLabel, Win};

use crate::format;

pub fn explain(win: &Win, catalog: &Catalog) -> String {
    if let Some(lesson) = &win.lesson {
        return explain_lesson(win, lesson, catalog);
    }
    let mut out = String::new();
    let value = win.value.clone().unwrap_or_default();
    let label = ValueLabel::try_from(value.label).unwrap_or(ValueLabel::Unspecified);
    let organisation = catalog.organisation();
    let source = Source::try_from(win.source)
        .map(|s| s.token())
        .unwrap_or("?");
    let kind = EventKind::try_from(win.kind)
        .map(|k| k.token())
        .unwrap_or("?");
    let _ = writeln!(
        out,
        "Win {} for {} ({source}, {kind})",
        win.id, win.record_number
    );
    let _ = writeln!(out, "{}", win.headline);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Value: {}  [{}]",
        organisation.money(value.amount),
        label.meaning()
    );
    let _ = writeln!(out, "{}", value.summary);
    let _ = writeln!(out, "Formula: {}", value.formula);
    let _ = writeln!(out, "Inputs:");
    for input in &value.inputs {
        let _ = writeln!(
            out,
            "  {:<34} {:>12} {:<8} from {}",
            input.name,
            format::count(input.value),
            input.unit,
            input.source
        );
    }
    let _ = writeln!(out, "Credit:");
    for credit in &win.credits {
        let name = credited_name(credit, catalog);
        let _ = writeln!(
            out,
            "  {:<34} {:>5.0}%  {}  ({})",
            name,
            credit.share * 100.0,
            organisation.money(credit.amount),
            credit.role
        );
    }
    if let Some(praise) = &win.praise {
        let _ = writeln!(
            out,
            "Requester's voice: “{}” — {} (rated {})",
            praise.quote, praise.requester, praise.score
        );
    }
    let _ = writeln!(out, "Event: {}", win.event_id);
    out
}

/// A credited team's name, or a person's public name ("a member of <team>" when they opted out).
fn credited_name(credit: &Credit, catalog: &Catalog) -> String {
    if credit.subject == CreditSubject::Team as i32 {
        catalog.team_name(&credit.id).to_string()
    } else {
        catalog.public_name(&credit.id).name
    }
}

/// A lesson learned has no number: its story, who is thanked, and the postmortem.
fn explain_lesson(win: &Win, lesson: &LessonStory, catalog: &Catalog) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Lesson learned from {} (no value: a story, counted nowhere)",
        win.record_number
    );
    let _ = writeln!(out, "{}", lesson.title);
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", lesson.story);
    let _ = writeln!(out, "Postmortem: {}", lesson.postmortem_url);
    let _ = writeln!(
        out,
        "Shared: {}",
        if lesson.public {
            "with everyone (the team shares its lessons)"
        } else {
            "with the team only (its lessons policy)"
        }
    );
    let _ = writeln!(out, "Thanked:");
    for credit in &win.credits {
        let name = credited_name(credit, catalog);
        let _ = writeln!(out, "  {name} ({})", credit.role);
    }
    let _ = writeln!(out, "Event: {}", win.event_id);
    out
}
