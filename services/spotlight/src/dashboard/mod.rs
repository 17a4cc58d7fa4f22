//! The executive dashboard, for a wall screen: value per label (never added across labels) for the
//! last 7 days and the month so far, each against the stretch before; twelve weeks of value per
//! label as charts; the people in the spotlight as stories (what they did, not what they are
//! worth); the teams; the latest wins with their dates, each linking to the page that explains
//! its number; and the lesson of the week. `/api/dashboard` serves the same figures as JSON;
//! `/wins/<id>` is the web form of `herald explain`.
//!
//! Server-rendered; a few lines of script swap in fresh figures without reloading the page.

mod cache;
mod chart;
mod page;
mod win_page;

pub use cache::ViewCache;

use axum::{
    Json, Router,
    extract::{Path, State},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use chrono::{DateTime, Days, Utc};
use herald_catalog::{Catalog, CatalogHandle};
use herald_proto::{
    time::opt_from_timestamp,
    v1::{CreditSubject, ValueLabel, Win},
};
use serde::Serialize;

use crate::{
    card,
    periods::{Period, PeriodKind, start_of},
    store::{LabelTotals, Store, StoreError},
};

pub use page::render;

const TOP_TEAMS: i64 = 5;
const LATEST: i64 = 8;
const WEEKS: u64 = 12;

#[derive(Clone)]
pub struct DashboardState {
    pub store: Store,
    /// Read per request: the catalog file may be reloaded meanwhile.
    pub catalog: CatalogHandle,
    /// Seconds between refreshes of the figures on the page.
    pub refresh_seconds: u32,
    pub recognition: crate::config::RecognitionSettings,
    pub charts: ChartLinks,
    /// The figures, made once for every screen that asks within a few seconds.
    pub cache: ViewCache,
}

/// Charts scoring draws from what only it reads (events), shown on the dashboard as images.
#[derive(Clone, Debug, Default)]
pub struct ChartLinks {
    /// The 90-day plan's progress (scoring's `/plan.svg`); `None` leaves it out.
    pub plan: Option<String>,
    /// The time to restore service per week (scoring's `/mttr.svg`); `None` leaves it out.
    pub mttr: Option<String>,
}

/// One label's figures for a stretch of time, and the stretch before it.
#[derive(Debug, Clone, Serialize)]
pub struct LabelFigure {
    pub label: String,
    pub meaning: String,
    pub value: f64,
    pub value_text: String,
    pub hours: f64,
    pub wins: i64,
    pub previous_value: f64,
    pub previous_text: String,
}

/// A stretch of time ("the last 7 days") with its figures per label.
#[derive(Debug, Clone, Serialize)]
pub struct Stretch {
    pub title: String,
    /// What it is compared with, in words ("the 7 days before").
    pub against: String,
    pub wins: i64,
    pub previous_wins: i64,
    pub labels: Vec<LabelFigure>,
}

/// Twelve weeks of one label's value, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct Trend {
    pub label: String,
    pub meaning: String,
    pub weeks: Vec<(String, f64)>,
}

/// A person in the spotlight, told by what they did.
#[derive(Debug, Clone, Serialize)]
pub struct Story {
    pub name: String,
    pub team: Option<String>,
    pub wins: i64,
    pub hours: f64,
    /// Their most valuable win's headline this month.
    pub best: Option<String>,
    pub best_win_id: Option<String>,
    /// In the spotlight for quiet work (a place kept for it).
    pub quiet: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct TeamEntry {
    pub name: String,
    pub wins: i64,
    pub hours: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct WinView {
    pub id: String,
    pub headline: String,
    pub value: String,
    pub label: String,
    pub business_service: Option<String>,
    pub people: Vec<String>,
    pub occurred_at: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LessonView {
    pub title: String,
    pub summary: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DashboardView {
    pub organisation: String,
    pub currency: String,
    pub locale: String,
    /// When the figures were read, in the organisation's words.
    pub as_of: String,
    pub last_7_days: Stretch,
    pub month: Stretch,
    pub trends: Vec<Trend>,
    pub spotlight: Vec<Story>,
    pub teams: Vec<TeamEntry>,
    pub latest: Vec<WinView>,
    pub lesson: Option<LessonView>,
}

pub fn router(state: DashboardState) -> Router {
    Router::new()
        .route("/", get(page_handler))
        .route("/api/dashboard", get(json))
        .route("/wins/{id}", get(win_handler))
        .with_state(state)
}

fn label_meaning(label: &str) -> String {
    ValueLabel::from_token(label)
        .map(|l| l.meaning())
        .unwrap_or("")
        .to_string()
}

/// Each label of `now` beside the same label in `before` (a label present in either is shown).
fn figures(now: &[LabelTotals], before: &[LabelTotals], catalog: &Catalog) -> Vec<LabelFigure> {
    let organisation = catalog.organisation();
    let mut labels: Vec<&str> = now.iter().chain(before).map(|t| t.label.as_str()).collect();
    labels.sort_by_key(|l| ValueLabel::from_token(l).map_or(99, |v| v as i32));
    labels.dedup();
    labels
        .into_iter()
        .map(|label| {
            let find = |set: &[LabelTotals]| set.iter().find(|t| t.label == label).cloned();
            let current = find(now);
            let previous = find(before);
            let value = current.as_ref().map_or(0.0, |t| t.value);
            let previous_value = previous.as_ref().map_or(0.0, |t| t.value);
            LabelFigure {
                label: label.to_string(),
                meaning: label_meaning(label),
                value,
                value_text: organisation.money(value),
                hours: current.as_ref().map_or(0.0, |t| t.hours),
                wins: current.as_ref().map_or(0, |t| t.wins),
                previous_value,
                previous_text: organisation.money(previous_value),
            }
        })
        .collect()
}

async fn stretch(
    store: &Store,
    catalog: &Catalog,
    title: String,
    against: String,
    now: (DateTime<Utc>, DateTime<Utc>),
    before: (DateTime<Utc>, DateTime<Utc>),
) -> Result<Stretch, StoreError> {
    let current = store.label_sums(now.0, now.1).await?;
    let previous = store.label_sums(before.0, before.1).await?;
    Ok(Stretch {
        title,
        against,
        wins: current.iter().map(|t| t.wins).sum(),
        previous_wins: previous.iter().map(|t| t.wins).sum(),
        labels: figures(&current, &previous, catalog),
    })
}

pub async fn view(state: &DashboardState) -> Result<DashboardView, StoreError> {
    view_at(state, Utc::now()).await
}

pub async fn view_at(
    state: &DashboardState,
    now: DateTime<Utc>,
) -> Result<DashboardView, StoreError> {
    let catalog = state.catalog.current();
    let organisation = catalog.organisation();
    let tz = organisation.tz();
    let store = &state.store;

    let week_ago = now - chrono::Duration::days(7);
    let last_7_days = stretch(
        store,
        &catalog,
        "Last 7 days".into(),
        "the 7 days before".into(),
        (week_ago, now),
        (week_ago - chrono::Duration::days(7), week_ago),
    )
    .await?;
    let month = Period::containing(PeriodKind::Month, now, tz);
    let month_start = start_of(month.start, tz);
    let previous_start = start_of(
        month
            .start
            .checked_sub_months(chrono::Months::new(1))
            .unwrap_or(month.start),
        tz,
    );
    let elapsed = now - month_start;
    let month_stretch = stretch(
        store,
        &catalog,
        {
            use chrono::Datelike;
            format!(
                "{} so far",
                organisation.month_name(month.start.year(), month.start.month())
            )
        },
        "the same days of last month".into(),
        (month_start, now),
        (previous_start, (previous_start + elapsed).min(month_start)),
    )
    .await?;

    // Twelve weeks, this one last.
    let this_week = Period::containing(PeriodKind::Week, now, tz);
    let mut weeks: Vec<Period> = (0..WEEKS)
        .rev()
        .filter_map(|back| this_week.start.checked_sub_days(Days::new(back * 7)))
        .map(|start| Period {
            kind: PeriodKind::Week,
            start,
            end: start + Days::new(7),
        })
        .collect();
    weeks.sort_by_key(|p| p.start);
    let mut by_week = Vec::with_capacity(weeks.len());
    for week in &weeks {
        by_week.push(store.totals(week).await?);
    }
    let mut trend_labels: Vec<String> = by_week.iter().flatten().map(|t| t.label.clone()).collect();
    trend_labels.sort_by_key(|l| ValueLabel::from_token(l).map_or(99, |v| v as i32));
    trend_labels.dedup();
    let trends = trend_labels
        .into_iter()
        .map(|label| Trend {
            meaning: label_meaning(&label),
            weeks: weeks
                .iter()
                .zip(&by_week)
                .map(|(week, totals)| {
                    (
                        week.start.format("%-d %b").to_string(),
                        totals
                            .iter()
                            .find(|t| t.label == label)
                            .map_or(0.0, |t| t.value),
                    )
                })
                .collect(),
            label,
        })
        .collect();

    // The spotlight: named people only (an opted-out person is never a story), rotated, with a
    // place for quiet work, each told by a win of their own.
    let spotlight = crate::selection::spotlight(store, &catalog, &state.recognition, &month)
        .await?
        .into_iter()
        .map(|pick| Story {
            name: catalog.public_name(&pick.figures.subject_id).name,
            team: catalog
                .person(&pick.figures.subject_id)
                .and_then(|p| p.team.as_deref())
                .map(|t| catalog.team_name(t).to_string()),
            wins: pick.figures.wins,
            hours: pick.figures.hours,
            best: pick.story.as_ref().map(|w| w.headline.clone()),
            best_win_id: pick.story.as_ref().map(|w| w.id.clone()),
            quiet: pick.quiet,
        })
        .collect();
    let teams = store
        .leaderboard(&month, "team", TOP_TEAMS)
        .await?
        .into_iter()
        .map(|r| TeamEntry {
            name: catalog.team_name(&r.subject_id).to_string(),
            wins: r.wins,
            hours: r.hours,
        })
        .collect();
    let latest = store
        .latest_wins(LATEST)
        .await?
        .into_iter()
        .map(|w| win_view(&w, &catalog))
        .collect();
    let lesson = store
        .lessons_between(week_ago, now + chrono::Duration::seconds(1))
        .await?
        .into_iter()
        .find_map(|a| a.card)
        .map(|card| LessonView {
            title: card::lesson_title(&card.title).to_string(),
            summary: card.summary,
        });
    let local = now.with_timezone(&tz);
    Ok(DashboardView {
        organisation: organisation.name.clone(),
        currency: organisation.currency.clone(),
        locale: organisation.locale.clone(),
        as_of: format!(
            "{} {}",
            organisation.date(local.date_naive()),
            local.format("%H:%M")
        ),
        last_7_days,
        month: month_stretch,
        trends,
        spotlight,
        teams,
        latest,
        lesson,
    })
}

fn win_view(w: &Win, catalog: &Catalog) -> WinView {
    let organisation = catalog.organisation();
    let tz = organisation.tz();
    let value = w.value.clone().unwrap_or_default();
    WinView {
        id: w.id.clone(),
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
        occurred_at: opt_from_timestamp(w.occurred_at.as_ref()).map(|t| {
            let local = t.with_timezone(&tz);
            format!(
                "{} {}",
                organisation.date(local.date_naive()),
                local.format("%H:%M")
            )
        }),
    }
}

async fn json(
    State(state): State<DashboardState>,
) -> Result<Json<DashboardView>, herald_runtime::ApiError> {
    state
        .cache
        .get(&state)
        .await
        .map(|view| Json(view.as_ref().clone()))
        .map_err(unavailable)
}

async fn page_handler(
    State(state): State<DashboardState>,
) -> Result<Html<String>, herald_runtime::ApiError> {
    let view = state.cache.get(&state).await.map_err(unavailable)?;
    Ok(Html(render(
        &view,
        state.catalog.current().organisation(),
        state.refresh_seconds,
        &state.charts,
    )))
}

async fn win_handler(State(state): State<DashboardState>, Path(id): Path<String>) -> Response {
    match state.store.win(&id).await {
        Ok(Some((win, status, reason))) => Html(win_page::render(
            &win,
            &status,
            reason.as_deref(),
            &state.catalog.current(),
        ))
        .into_response(),
        Ok(None) => herald_runtime::ApiError::not_found(format!(
            "no win {id} has been counted here; herald explain looks up provisional ones too"
        ))
        .into_response(),
        Err(e) => unavailable(e).into_response(),
    }
}

fn unavailable(e: StoreError) -> herald_runtime::ApiError {
    tracing::error!(error = %e, "dashboard query failed");
    herald_runtime::ApiError::unavailable(
        "the dashboard figures could not be read; see the spotlight logs",
    )
}

/// Escapes text for HTML content and attribute values.
pub(crate) fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
