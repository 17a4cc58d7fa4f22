//! The report as Markdown (for a wiki or a pull request) and as HTML (for a browser or a
//! projector, with its charts drawn in SVG). Both escape everything that comes from ITSM data.

use std::fmt::Write;

use super::{MonthlyReport, PlanLine};

fn md_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\`*_[]<>|".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn plan_cell(plan: Option<&PlanLine>) -> (String, String, String) {
    plan.map_or((String::new(), String::new(), String::new()), |p| {
        (
            p.baseline.clone(),
            p.goal.clone(),
            format!("{:.0} % of the way, by {}", p.progress * 100.0, p.by),
        )
    })
}

pub fn markdown(r: &MonthlyReport) -> String {
    let mut out = String::with_capacity(8 * 1024);
    let _ = writeln!(
        out,
        "# What IT delivered for {} in {}\n\n{}\n",
        md_escape(&r.organisation),
        md_escape(&r.month),
        md_escape(&r.pitch)
    );
    out.push_str("## Key figures\n\n| KPI | This month | Baseline | Goal | Progress | How |\n|---|---|---|---|---|---|\n");
    for line in &r.lines {
        let (baseline, goal, progress) = plan_cell(line.plan.as_ref());
        let _ = writeln!(
            out,
            "| {} | **{}** | {} | {} | {} | {} |",
            md_escape(&line.name),
            md_escape(&line.current),
            md_escape(&baseline),
            md_escape(&goal),
            md_escape(&progress),
            md_escape(&line.how)
        );
    }
    out.push_str("\n## Value, label by label\n\nLabels are never added up: cash moved, capacity released and costs avoided are different claims.\n\n");
    if r.value.is_empty() {
        out.push_str("No confirmed win this month.\n");
    }
    for (label, text, meaning) in &r.value {
        let _ = writeln!(
            out,
            "- **{}**: {} ({})",
            md_escape(label),
            md_escape(text),
            md_escape(meaning)
        );
    }
    out.push_str("\n## Five stories\n\n");
    for (i, story) in r.stories.iter().enumerate() {
        let _ = writeln!(
            out,
            "{}. {} ({} {}; `herald explain {}`)",
            i + 1,
            md_escape(&story.headline),
            md_escape(&story.value),
            md_escape(&story.label),
            md_escape(&story.win_id)
        );
    }
    if !r.problems.is_empty() {
        out.push_str("\n## Problems solved that could help elsewhere\n\n");
        for p in &r.problems {
            let _ = write!(
                out,
                "- {} ({})",
                md_escape(&p.headline),
                md_escape(&p.service)
            );
            if !p.could_help.is_empty() {
                let _ = write!(
                    out,
                    ": worth a look for {}",
                    md_escape(&p.could_help.join(", "))
                );
            }
            out.push('\n');
        }
    }
    if !r.lessons.is_empty() {
        out.push_str("\n## Lessons learned\n\n");
        for l in &r.lessons {
            let _ = writeln!(out, "- {}", md_escape(l));
        }
    }
    out
}

/// Text for HTML and SVG, in content and attribute values.
pub(crate) fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Verified wins per week, as bars.
fn weeks_chart(weeks: &[(String, usize)]) -> String {
    let max = weeks.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1) as f64;
    let slot = 600.0 / weeks.len().max(1) as f64;
    let mut svg = String::from(
        "<svg class=chart viewBox=\"0 0 600 170\" role=img aria-label=\"verified wins per week\">",
    );
    for (i, (week, n)) in weeks.iter().enumerate() {
        let h = *n as f64 / max * 120.0;
        let x = i as f64 * slot + slot * 0.15;
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" data-value=\"{n}\"></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=middle class=n>{n}</text>\
             <text x=\"{:.1}\" y=\"165\" text-anchor=middle>{}</text>",
            140.0 - h,
            slot * 0.7,
            x + slot * 0.35,
            135.0 - h,
            x + slot * 0.35,
            esc(week)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The plan's KPIs as progress bars from baseline (left) to goal (right).
fn plan_chart(r: &MonthlyReport) -> String {
    let planned: Vec<_> = r
        .lines
        .iter()
        .filter_map(|l| Some((l, l.plan.as_ref()?)))
        .collect();
    if planned.is_empty() {
        return String::new();
    }
    let mut svg = format!(
        "<svg class=chart viewBox=\"0 0 600 {}\" role=img aria-label=\"90-day plan progress\">",
        planned.len() * 40 + 10
    );
    for (i, (line, plan)) in planned.iter().enumerate() {
        let y = i as f64 * 40.0 + 10.0;
        let done = plan.progress.clamp(0.0, 1.0) * 330.0;
        let _ = write!(
            svg,
            "<text x=0 y=\"{:.0}\">{}</text><rect x=200 y=\"{y:.0}\" width=330 height=18 class=track></rect>\
             <rect x=200 y=\"{y:.0}\" width=\"{done:.1}\" height=18 data-progress=\"{:.2}\"></rect>\
             <text x=540 y=\"{:.0}\">{:.0} %</text>",
            y + 14.0,
            esc(&line.name),
            plan.progress,
            y + 14.0,
            plan.progress * 100.0
        );
    }
    svg.push_str("</svg>");
    svg
}

pub fn html(r: &MonthlyReport) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let _ = write!(
        out,
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>IT in {month} · {org}</title><style>{STYLE}</style></head><body>\
         <h1>What IT delivered for {org} in {month}</h1><p class=pitch>{pitch}</p><h2>Key figures</h2>\
         <table><tr><th>KPI</th><th>This month</th><th>Baseline</th><th>Goal</th><th>Progress</th><th>How</th></tr>",
        month = esc(&r.month),
        org = esc(&r.organisation),
        pitch = esc(&r.pitch),
    );
    for line in &r.lines {
        let (baseline, goal, progress) = plan_cell(line.plan.as_ref());
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=now>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=how>{}</td></tr>",
            esc(&line.name),
            esc(&line.current),
            esc(&baseline),
            esc(&goal),
            esc(&progress),
            esc(&line.how)
        );
    }
    out.push_str("</table>");
    let plan = plan_chart(r);
    if !plan.is_empty() {
        let _ = write!(out, "<h2>90-day plan</h2>{plan}");
    }
    out.push_str("<h2>Value, label by label</h2><p class=how>Labels are never added up: cash moved, capacity released and costs avoided are different claims.</p><ul>");
    for (label, text, meaning) in &r.value {
        let _ = write!(
            out,
            "<li><b>{}</b>: {} <span class=how>({})</span></li>",
            esc(label),
            esc(text),
            esc(meaning)
        );
    }
    let _ = write!(
        out,
        "</ul><h2>Verified wins per week</h2>{}<h2>Five stories</h2><ol>",
        weeks_chart(&r.weeks)
    );
    for story in &r.stories {
        let _ = write!(
            out,
            "<li>{} <b>{}</b> <span class=how>{} · herald explain {}</span></li>",
            esc(&story.headline),
            esc(&story.value),
            esc(&story.label),
            esc(&story.win_id)
        );
    }
    out.push_str("</ol>");
    if !r.problems.is_empty() {
        out.push_str("<h2>Problems solved that could help elsewhere</h2><ul>");
        for p in &r.problems {
            let _ = write!(
                out,
                "<li>{} <span class=how>({})</span>",
                esc(&p.headline),
                esc(&p.service)
            );
            if !p.could_help.is_empty() {
                let _ = write!(out, ": worth a look for {}", esc(&p.could_help.join(", ")));
            }
            out.push_str("</li>");
        }
        out.push_str("</ul>");
    }
    if !r.lessons.is_empty() {
        out.push_str("<h2>Lessons learned</h2><ul>");
        for l in &r.lessons {
            let _ = write!(out, "<li>{}</li>", esc(l));
        }
        out.push_str("</ul>");
    }
    out.push_str("</body></html>");
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:62rem;margin:2rem auto;padding:0 1rem;color:#0f172a}\
h1{font-size:1.7rem}h2{font-size:1.15rem;margin-top:1.8rem;color:#334155}.pitch{font-size:1.15rem;line-height:1.5}\
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e2e8f0;vertical-align:top}\
.now{font-weight:700}.how{color:#64748b;font-size:.9em}.chart{width:100%;max-width:600px}.chart rect{fill:#0284c7}\
.chart rect.track{fill:#e2e8f0}.chart text{font-size:13px;fill:#334155}.chart text.n{font-weight:600}";
