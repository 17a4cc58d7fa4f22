//! The 90-day plan over HTTP, for the wall-screen dashboard: `/plan.svg` draws each KPI's way from
//! baseline to goal with the month so far, server-rendered; `/api/plan` gives the same as JSON.
//! With no plan configured, both answer 404 and the dashboard leaves the panel out. `/mttr.svg`
//! and `/api/mttr` give the time to restore service over the last twelve weeks.

use axum::{
    Json, Router,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
    routing::get,
};
use chrono::{Datelike, TimeZone, Utc};
use herald_catalog::CatalogHandle;
use serde::Serialize;

use super::{mttr, render::esc};
use crate::{config::ScoringSettings, store::Store};

#[derive(Clone)]
pub struct PlanState {
    pub store: Store,
    pub catalog: CatalogHandle,
    pub settings: ScoringSettings,
}

#[derive(Debug, Serialize)]
pub struct PlanProgress {
    pub kpi: String,
    pub baseline: String,
    pub goal: String,
    pub current: String,
    pub progress: f64,
    pub by: String,
}

pub fn router(state: PlanState) -> Router {
    Router::new()
        .route("/plan.svg", get(svg))
        .route("/api/plan", get(json))
        .route("/mttr.svg", get(mttr_svg))
        .route("/api/mttr", get(mttr_json))
        .with_state(state)
}

async fn progress(state: &PlanState) -> Result<Vec<PlanProgress>, Response> {
    if state.settings.plan.is_empty() {
        return Err(herald_runtime::ApiError::not_found(
            "no 90-day plan is configured ([[scoring.plan]])",
        )
        .into_response());
    }
    let catalog = state.catalog.current();
    let today = Utc::now()
        .with_timezone(&catalog.organisation().tz())
        .date_naive();
    let first = today.with_day(1).unwrap_or(today);
    let report = super::build(&state.store, &catalog, &state.settings, first)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "the plan's figures could not be read");
            herald_runtime::ApiError::unavailable("the plan's figures could not be read")
                .into_response()
        })?;
    Ok(report
        .lines
        .into_iter()
        .filter_map(|line| {
            let plan = line.plan?;
            Some(PlanProgress {
                kpi: line.name,
                baseline: plan.baseline,
                goal: plan.goal,
                current: line.current,
                progress: plan.progress,
                by: plan.by,
            })
        })
        .collect())
}

async fn json(State(state): State<PlanState>) -> Response {
    match progress(&state).await {
        Ok(p) => Json(p).into_response(),
        Err(r) => r,
    }
}

/// Each KPI a row: its name and this month's value, a track from baseline to goal, and how far
/// along it is (the date it is due by is in `/api/plan` and the report).
pub fn draw(plan: &[PlanProgress]) -> String {
    let height = plan.len() * 54 + 6;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 600 {height}\" font-family=\"system-ui,sans-serif\">"
    );
    for (i, p) in plan.iter().enumerate() {
        let y = i as f64 * 54.0 + 4.0;
        // A KPI that went the wrong way keeps a visible red stub at the baseline.
        let done = if p.progress < 0.0 {
            10.0
        } else {
            p.progress.min(1.0) * 600.0
        };
        svg.push_str(&format!(
            "<text x=\"0\" y=\"{:.0}\" fill=\"#e2e8f0\" font-size=\"17\" font-weight=\"600\">{} <tspan fill=\"#94a3b8\" font-weight=\"400\">{} now · from {} to {}</tspan></text>\
             <rect x=\"0\" y=\"{:.0}\" width=\"600\" height=\"14\" rx=\"7\" fill=\"#1f2a40\"/>\
             <rect x=\"0\" y=\"{:.0}\" width=\"{done:.1}\" height=\"14\" rx=\"7\" fill=\"{}\" data-progress=\"{:.2}\"/>",
            y + 17.0,
            esc(&p.kpi),
            esc(&p.current),
            esc(&p.baseline),
            esc(&p.goal),
            y + 26.0,
            y + 26.0,
            if p.progress >= 1.0 { "#4ade80" } else if p.progress >= 0.0 { "#38bdf8" } else { "#f87171" },
            p.progress,
        ));
    }
    svg.push_str("</svg>");
    svg
}

async fn svg(State(state): State<PlanState>) -> Response {
    match progress(&state).await {
        Ok(p) => (
            [
                (header::CONTENT_TYPE, "image/svg+xml"),
                // Every dashboard refresh swaps in a new <img>; five minutes of caching spares
                // scoring a month of events read again for each screen every 30 seconds.
                (header::CACHE_CONTROL, "max-age=300"),
            ],
            draw(&p),
        )
            .into_response(),
        Err(r) => r,
    }
}

async fn mttr_weeks(state: &PlanState) -> Result<Vec<mttr::WeekMttr>, Response> {
    let catalog = state.catalog.current();
    let tz = catalog.organisation().tz();
    let now = Utc::now();
    let first = mttr::first_week(now, tz);
    let from = tz
        .from_local_datetime(&first.and_time(chrono::NaiveTime::MIN))
        .earliest()
        .map_or(now - chrono::Duration::weeks(12), |t| t.with_timezone(&Utc));
    let events = state
        .store
        .resolutions_between(from, now + chrono::Duration::seconds(1))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "the restore times could not be read");
            herald_runtime::ApiError::unavailable("the restore times could not be read")
                .into_response()
        })?;
    Ok(mttr::weekly(&events, first, tz))
}

async fn mttr_json(State(state): State<PlanState>) -> Response {
    match mttr_weeks(&state).await {
        Ok(weeks) => Json(weeks).into_response(),
        Err(r) => r,
    }
}

async fn mttr_svg(State(state): State<PlanState>) -> Response {
    match mttr_weeks(&state).await {
        Ok(weeks) => (
            [
                (header::CONTENT_TYPE, "image/svg+xml"),
                (header::CACHE_CONTROL, "max-age=300"),
            ],
            mttr::draw(&weeks, state.catalog.current().organisation()),
        )
            .into_response(),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kpi_is_a_track_from_baseline_to_goal() {
        let p = |kpi: &str, progress: f64| PlanProgress {
            kpi: kpi.into(),
            baseline: "80 %".into(),
            goal: "95 %".into(),
            current: "<b>".into(),
            progress,
            by: "29 Jan 2027".into(),
        };
        let svg = draw(&[p("on its way", 0.5), p("worse", -0.9), p("done", 1.4)]);
        assert!(
            svg.contains("width=\"300.0\""),
            "half way is half the track: {svg}"
        );
        assert!(
            svg.contains("width=\"10.0\"") && svg.contains("#f87171"),
            "a red stub: {svg}"
        );
        assert!(
            svg.contains("width=\"600.0\"") && svg.contains("#4ade80"),
            "done is full and green"
        );
        assert!(svg.contains("&lt;b&gt;"), "escaped");
    }
}
