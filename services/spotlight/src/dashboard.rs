//! The executive dashboard at `/`: this week's and this month's value, the top contributors (by
//! public name: people who opted out appear only as members of their team), and the latest wins.
//! Server-rendered and self-refreshing, so it can sit on a wall screen; `/api/dashboard` serves the
//! same figures as JSON.

use std::fmt::Write;

use axum::{Json, Router, extract::State, response::Html, routing::get};
use chrono::Utc;
use herald_catalog::{CatalogHandle, Organisation};
use herald_proto::v1::{CreditSubject, ValueLabel};
use serde::Serialize;

use crate::{
    periods::{Period, PeriodKind},
    store::{Ranked, Store, StoreError},
};

const TOP: i64 = 5;
const LATEST: i64 = 10;

#[derive(Clone)]
pub struct DashboardState {
    pub store: Store,
    /// Read per request: the catalog file may be reloaded meanwhile.
    pub catalog: CatalogHandle,
    /// Seconds between automatic refreshes of the page.
    pub refresh_seconds: u32,
}

#[derive(Debug, Serialize)]
pub struct PeriodView {
    pub start: String,
    pub end: String,
    pub total: f64,
    pub hours: f64,
    pub people: f64,
    pub wins: i64,
    pub by_label: Vec<(String, f64)>,
}

#[derive(Debug, Serialize)]
pub struct Entry {
    pub name: String,
    pub value: f64,
    pub wins: i64,
}

#[derive(Debug, Serialize)]
pub struct WinView {
    pub headline: String,
    pub value: String,
    pub label: String,
    pub business_service: Option<String>,
    pub people: Vec<String>,
    pub occurred_at: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DashboardView {
    pub organisation: String,
    pub currency: String,
    pub week: PeriodView,
    pub month: PeriodView,
    pub top_people: Vec<Entry>,
    pub top_teams: Vec<Entry>,
    pub latest: Vec<WinView>,
}

pub fn router(state: DashboardState) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/dashboard", get(json))
        .with_state(state)
}

async fn period_view(store: &Store, period: &Period) -> Result<PeriodView, StoreError> {
    let totals = store.totals(period).await?;
    Ok(PeriodView {
        start: period.start.to_string(),
        end: period.end.to_string(),
        total: totals.iter().map(|t| t.value).sum(),
        hours: totals.iter().map(|t| t.hours).sum(),
        people: totals.iter().map(|t| t.users).sum(),
        wins: totals.iter().map(|t| t.wins).sum(),
        by_label: totals.iter().map(|t| (t.label.clone(), t.value)).collect(),
    })
}

pub async fn view(state: &DashboardState) -> Result<DashboardView, StoreError> {
    let catalog = state.catalog.current();
    let tz = catalog.organisation().tz();
    let now = Utc::now();
    let week = Period::containing(PeriodKind::Week, now, tz);
    let month = Period::containing(PeriodKind::Month, now, tz);
    let person = |r: Ranked| Entry {
        name: catalog.public_name(&r.subject_id).name,
        value: r.value,
        wins: r.wins,
    };
    let team = |r: Ranked| Entry {
        name: catalog.team_name(&r.subject_id).to_string(),
        value: r.value,
        wins: r.wins,
    };
    // Totals first, the list of wins last: a win committed in between then shows in the list
    // rather than being counted in a total the list does not explain.
    let week = period_view(&state.store, &week).await?;
    let month_view = period_view(&state.store, &month).await?;
    let top_people = state
        .store
        .leaderboard(&month, "person", TOP)
        .await?
        .into_iter()
        .map(person)
        .collect();
    let top_teams = state
        .store
        .leaderboard(&month, "team", TOP)
        .await?
        .into_iter()
        .map(team)
        .collect();
    let organisation = catalog.organisation();
    let latest = state
        .store
        .latest_wins(LATEST)
        .await?
        .into_iter()
        .map(|w| {
            let value = w.value.clone().unwrap_or_default();
            WinView {
                headline: w.headline.clone(),
                value: organisation.money(value.amount),
                label: ValueLabel::try_from(value.label)
                    .map(|l| l.token())
                    .unwrap_or("")
                    .to_string(),
                business_service: w
                    .business_service
                    .as_deref()
                    .map(|s| catalog.service_name(s).to_string()),
                people: w
                    .credits
                    .iter()
                    .filter(|c| c.subject == CreditSubject::Person as i32)
                    .map(|c| catalog.public_name(&c.id).name)
                    .collect(),
                occurred_at: herald_proto::time::opt_from_timestamp(w.occurred_at.as_ref())
                    .map(|t| t.with_timezone(&tz).format("%a %e %b, %H:%M").to_string()),
            }
        })
        .collect();
    Ok(DashboardView {
        organisation: catalog.organisation().name.clone(),
        currency: catalog.organisation().currency.clone(),
        week,
        month: month_view,
        top_people,
        top_teams,
        latest,
    })
}

async fn json(
    State(state): State<DashboardState>,
) -> Result<Json<DashboardView>, herald_runtime::ApiError> {
    view(&state).await.map(Json).map_err(unavailable)
}

async fn page(
    State(state): State<DashboardState>,
) -> Result<Html<String>, herald_runtime::ApiError> {
    let view = view(&state).await.map_err(unavailable)?;
    Ok(Html(render(
        &view,
        state.catalog.current().organisation(),
        state.refresh_seconds,
    )))
}

fn unavailable(e: StoreError) -> herald_runtime::ApiError {
    tracing::error!(error = %e, "dashboard query failed");
    herald_runtime::ApiError::unavailable(
        "the dashboard figures could not be read; see the spotlight logs",
    )
}

/// Escapes text for HTML.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn period_card(out: &mut String, title: &str, p: &PeriodView, organisation: &Organisation) {
    let _ = write!(
        out,
        "<section class=card><h2>{title}</h2><p class=big>{}</p><p class=sub>{} win{} · {:.0} working hours given back · {:.0} people back at work</p><ul class=labels>",
        esc(&organisation.money(p.total)),
        p.wins,
        if p.wins == 1 { "" } else { "s" },
        p.hours,
        p.people
    );
    for (label, value) in &p.by_label {
        let meaning = ValueLabel::from_token(label)
            .map(|l| l.meaning())
            .unwrap_or("");
        let _ = write!(
            out,
            "<li><b>{}</b> {} <span>{}</span></li>",
            esc(&organisation.money(*value)),
            esc(label),
            esc(meaning)
        );
    }
    out.push_str("</ul></section>");
}

fn ranking(out: &mut String, title: &str, entries: &[Entry], organisation: &Organisation) {
    let _ = write!(out, "<section class=card><h2>{title}</h2><ol>");
    if entries.is_empty() {
        out.push_str("<li class=sub>no wins yet this month</li>");
    }
    for e in entries {
        let _ = write!(
            out,
            "<li><span>{}</span><b>{}</b></li>",
            esc(&e.name),
            esc(&organisation.money(e.value))
        );
    }
    out.push_str("</ol></section>");
}

pub fn render(view: &DashboardView, organisation: &Organisation, refresh_seconds: u32) -> String {
    let mut out = String::with_capacity(8 * 1024);
    let _ = write!(
        out,
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content=\"width=device-width,initial-scale=1\">\
         <meta http-equiv=refresh content={refresh_seconds}><title>Herald · {org}</title><style>{STYLE}</style></head><body>\
         <header><h1>What IT delivered for {org}</h1><p class=sub>Every figure with its formula: <code>herald explain &lt;win&gt;</code></p></header><main>",
        org = esc(&view.organisation),
    );
    period_card(
        &mut out,
        &format!("This week <small>from {}</small>", view.week.start),
        &view.week,
        organisation,
    );
    period_card(
        &mut out,
        &format!("This month <small>from {}</small>", view.month.start),
        &view.month,
        organisation,
    );
    ranking(
        &mut out,
        "Spotlight: people this month",
        &view.top_people,
        organisation,
    );
    ranking(&mut out, "Teams this month", &view.top_teams, organisation);
    out.push_str("<section class=\"card wide\"><h2>Latest wins</h2><ul class=wins>");
    if view.latest.is_empty() {
        out.push_str(
            "<li class=sub>No wins yet. Send Herald an event: POST /v1/events/&lt;source&gt;</li>",
        );
    }
    for w in &view.latest {
        let _ = write!(
            out,
            "<li><p>{}</p><p class=sub><b>{}</b> {} · {}{}</p></li>",
            esc(&w.headline),
            esc(&w.value),
            esc(&w.label),
            esc(w.business_service.as_deref().unwrap_or("")),
            if w.people.is_empty() {
                String::new()
            } else {
                format!(" · thanks to {}", esc(&w.people.join(", ")))
            },
        );
    }
    out.push_str("</ul></section></main></body></html>");
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#0f172a;color:#e2e8f0}\
header{padding:1.5rem 2rem}h1{margin:0;font-size:1.6rem}main{display:grid;grid-template-columns:repeat(auto-fit,minmax(18rem,1fr));gap:1rem;padding:0 2rem 2rem}\
.card{background:#1e293b;border-radius:.75rem;padding:1rem 1.25rem}.wide{grid-column:1/-1}h2{font-size:1rem;margin:0 0 .5rem;color:#94a3b8}\
.big{font-size:2.4rem;margin:.25rem 0;color:#4ade80;font-weight:700}.sub{color:#94a3b8;font-size:.9rem;margin:.2rem 0}\
ol,ul{margin:0;padding-left:1.2rem}ol li{display:flex;justify-content:space-between;gap:1rem;padding:.2rem 0}\
.labels{list-style:none;padding:0}.labels span{color:#94a3b8;font-size:.8rem}.wins{list-style:none;padding:0}.wins li{padding:.5rem 0;border-top:1px solid #334155}\
.wins p{margin:.1rem 0}small{color:#64748b;font-weight:400}code{color:#cbd5e1}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_money_reads_like_money() {
        assert_eq!(esc("<script>&\""), "&lt;script&gt;&amp;&quot;");
        assert_eq!(Organisation::default().money(216_474.6), "€216,475");
    }

    #[test]
    fn an_empty_dashboard_says_how_to_start() {
        let empty = PeriodView {
            start: "2025-03-10".into(),
            end: "2025-03-17".into(),
            total: 0.0,
            hours: 0.0,
            people: 0.0,
            wins: 0,
            by_label: vec![],
        };
        let view = DashboardView {
            organisation: "Larkspur & Co".into(),
            currency: "EUR".into(),
            week: empty,
            month: PeriodView {
                start: "2025-03-01".into(),
                end: "2025-04-01".into(),
                total: 0.0,
                hours: 0.0,
                people: 0.0,
                wins: 0,
                by_label: vec![],
            },
            top_people: vec![],
            top_teams: vec![],
            latest: vec![],
        };
        let html = render(&view, &Organisation::default(), 30);
        assert!(html.contains("Larkspur &amp; Co"));
        assert!(html.contains("No wins yet"));
        assert!(html.contains("http-equiv=refresh content=30"));
    }
}
