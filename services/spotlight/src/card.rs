//! The channel-neutral card for a headline win: what every channel renders within its own limits.

use herald_catalog::Catalog;
use herald_proto::v1::{
    Announcement, Card, CreditSubject, CreditedPerson, LessonStory, Link, ValueLine, Win,
};

pub fn headline_card(win: &Win, catalog: &Catalog) -> Card {
    let value = win.value.clone().unwrap_or_default();
    let service = win
        .business_service
        .as_deref()
        .and_then(|s| catalog.service(s));
    // The headline often tells the record's title already; then the number alone identifies it.
    let mut summary = match &win.record_title {
        Some(title) if !win.headline.contains(title.as_str()) => {
            format!("{}: {title}.", win.record_number)
        }
        _ => format!("{}.", win.record_number),
    };
    if let Some(service) = service
        && let Some(capability) = &service.capability
    {
        summary.push_str(&format!(" {}: {capability}.", service.name));
    }
    if let Some(praise) = &win.praise {
        summary.push_str(&format!(" “{}” — {}", praise.quote, praise.requester));
    }
    let (people, teams) = credited(win, catalog);
    Card {
        title: win.headline.clone(),
        summary,
        value_lines: vec![ValueLine {
            label: value.label,
            text: value.summary.clone(),
            formula: value.formula.clone(),
        }],
        people,
        teams,
        links: win
            .record_url
            .iter()
            .map(|url| Link {
                title: format!("Open {}", win.record_number),
                url: url.clone(),
            })
            .collect(),
        business_service: service.map(|s| s.name.clone()),
    }
}

/// The people credited (by public name: "a member of <team>" for those who opted out) and the
/// teams, as every card shows them.
fn credited(win: &Win, catalog: &Catalog) -> (Vec<CreditedPerson>, Vec<String>) {
    let people = win
        .credits
        .iter()
        .filter(|c| c.subject == CreditSubject::Person as i32)
        .map(|c| {
            let name = catalog.public_name(&c.id);
            CreditedPerson {
                name: name.name,
                role: c.role.clone(),
                anonymised: name.anonymised,
            }
        })
        .collect();
    let teams = win
        .credits
        .iter()
        .filter(|c| c.subject == CreditSubject::Team as i32)
        .map(|c| catalog.team_name(&c.id).to_string())
        .collect();
    (people, teams)
}

/// The business service's display name, when the win names one the catalog knows.
fn service_name(win: &Win, catalog: &Catalog) -> Option<String> {
    win.business_service
        .as_deref()
        .and_then(|s| catalog.service(s))
        .map(|s| s.name.clone())
}

/// The correction of a headline whose win was withdrawn: what was announced, why it no longer
/// stands, and that it counts in no figure. It names nobody: a correction is about the outcome,
/// and blame has no place in it.
pub fn correction_card(win: &Win, original: &Announcement, catalog: &Catalog) -> Card {
    let announced = original.card.clone().unwrap_or_default();
    let reason = if win.status_reason.is_empty() {
        "the outcome did not hold".to_string()
    } else {
        win.status_reason.clone()
    };
    Card {
        title: format!("Correction: {}", announced.title),
        summary: format!(
            "{reason}, so this win no longer stands. It has been taken out of every total and leaderboard; \
             the earlier announcement of {} should be disregarded.",
            win.record_number
        ),
        value_lines: Vec::new(),
        people: Vec::new(),
        teams: Vec::new(),
        links: announced.links,
        business_service: service_name(win, catalog),
    }
}

/// What a lesson card's title says before the lesson's own title.
const LESSON_TITLE_PREFIX: &str = "Lesson learned: ";

/// The lesson's own title, from its card's: where a heading already says it is a lesson (the
/// dashboard's "Lesson of the week"), the prefix would say it twice.
pub fn lesson_title(card_title: &str) -> &str {
    card_title
        .strip_prefix(LESSON_TITLE_PREFIX)
        .unwrap_or(card_title)
}

/// A lesson learned: the blameless story, who responded and followed up, the postmortem.
pub fn lesson_card(win: &Win, lesson: &LessonStory, catalog: &Catalog) -> Card {
    let (people, teams) = credited(win, catalog);
    let mut links = vec![Link {
        title: "Read the postmortem".into(),
        url: lesson.postmortem_url.clone(),
    }];
    if let Some(url) = &win.record_url {
        links.push(Link {
            title: format!("Open {}", win.record_number),
            url: url.clone(),
        });
    }
    Card {
        title: format!("{LESSON_TITLE_PREFIX}{}", lesson.title),
        summary: lesson.story.clone(),
        value_lines: Vec::new(),
        people,
        teams,
        links,
        business_service: service_name(win, catalog),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lesson_title_is_read_back_without_the_card_prefix() {
        let card_title = format!("{LESSON_TITLE_PREFIX}Apply the firewall bundle in a window");
        assert_eq!(
            lesson_title(&card_title),
            "Apply the firewall bundle in a window"
        );
        // A title made before the prefix, or by hand, is shown as it is.
        assert_eq!(lesson_title("Patch window moved"), "Patch window moved");
    }
}
