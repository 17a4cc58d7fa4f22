//! The dashboard page: one screen, no scrollbars, large type, and a few lines of script that swap
//! in fresh figures and say whether anything overflowed (`data-overflow` on the body, which the
//! browser test reads).

use std::fmt::Write;

use herald_catalog::Organisation;

use super::{ChartLinks, DashboardView, LabelFigure, Stretch, chart, esc};

fn delta(f: &LabelFigure) -> String {
    let (arrow, class) = if f.value > f.previous_value {
        ("▲", "up")
    } else if f.value < f.previous_value {
        ("▼", "down")
    } else {
        ("＝", "same")
    };
    format!(
        "<span class=\"delta {class}\">{arrow} against {}</span>",
        esc(&f.previous_text)
    )
}

fn stretch(out: &mut String, s: &Stretch, organisation: &Organisation) {
    let _ = write!(
        out,
        "<div class=stretch><h2>{} <small>{} verified win{} · against {}: {}</small></h2><div class=tiles>",
        esc(&s.title),
        s.wins,
        if s.wins == 1 { "" } else { "s" },
        esc(&s.against),
        s.previous_wins
    );
    if s.labels.is_empty() {
        out.push_str("<div class=\"tile empty\">No verified wins yet</div>");
    }
    for f in &s.labels {
        let _ = write!(
            out,
            "<div class=\"tile {label}\" data-label=\"{label}\" data-value=\"{value:.2}\"><div class=value>{text}</div>\
             <div class=what><b>{label}</b> {meaning}</div><div class=sub>{wins} win{s} · {hours} working hours</div>{delta}</div>",
            label = esc(&f.label),
            value = f.value,
            text = esc(&f.value_text),
            meaning = esc(f
                .meaning
                .split_once(": ")
                .map_or(f.meaning.as_str(), |(_, m)| m)),
            wins = f.wins,
            s = if f.wins == 1 { "" } else { "s" },
            hours = esc(&organisation.number(f.hours, 0)),
            delta = delta(f),
        );
    }
    out.push_str("</div></div>");
}

pub fn render(
    view: &DashboardView,
    organisation: &Organisation,
    refresh_seconds: u32,
    charts: &ChartLinks,
) -> String {
    let mut out = String::with_capacity(32 * 1024);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width,initial-scale=1\">\
         <title>Herald · {org}</title><style>{STYLE}</style></head><body data-overflow=unknown>\
         <header><h1>What IT delivered for {org}</h1><p class=asof>as of <span id=asof>{as_of}</span> · \
         every number has its formula: open a win</p></header><main>",
        lang = esc(view.locale.split('-').next().unwrap_or("en")),
        org = esc(&view.organisation),
        as_of = esc(&view.as_of),
    );
    out.push_str("<section class=kpis data-fit=kpis>");
    stretch(&mut out, &view.last_7_days, organisation);
    stretch(&mut out, &view.month, organisation);
    out.push_str("</section>");

    out.push_str("<section class=trends data-fit=trends><h2>Value per week, last 12 weeks <small>each label on its own scale; labels are never added up</small></h2>");
    if view.trends.is_empty() {
        out.push_str("<p class=sub>No weeks with verified wins yet.</p>");
    }
    for trend in &view.trends {
        let bars: Vec<chart::Bar> = trend
            .weeks
            .iter()
            .map(|(week, value)| chart::Bar {
                week: week.clone(),
                value: *value,
            })
            .collect();
        out.push_str(&chart::weekly_bars(
            &trend.label,
            trend
                .meaning
                .split_once(": ")
                .map_or(trend.meaning.as_str(), |(_, m)| m),
            &bars,
            organisation,
        ));
    }
    if let Some(url) = &charts.mttr {
        // Scoring draws it from the incidents it read; where it is not served here it removes
        // itself.
        let _ = write!(
            out,
            "<img class=\"chart mttr\" src=\"{}\" alt=\"Time to restore service per week\" \
             onerror=\"this.remove()\">",
            esc(url)
        );
    }
    out.push_str("</section>");

    out.push_str(
        "<section class=spotlight data-fit=spotlight><h2>In the spotlight this month</h2>",
    );
    if view.spotlight.is_empty() {
        out.push_str("<p class=sub>Nobody yet this month.</p>");
    }
    for story in &view.spotlight {
        let _ = write!(
            out,
            "<article class=story><h3>{}{}{}</h3><p class=sub>{} win{} · {} working hours given back</p>",
            esc(&story.name),
            story
                .team
                .as_deref()
                .map(|t| format!(" <small>{}</small>", esc(t)))
                .unwrap_or_default(),
            if story.quiet {
                " <small class=quiet>quiet work</small>"
            } else {
                ""
            },
            story.wins,
            if story.wins == 1 { "" } else { "s" },
            esc(&organisation.number(story.hours, 0)),
        );
        if let (Some(best), Some(id)) = (&story.best, &story.best_win_id) {
            let _ = write!(
                out,
                "<p class=best><a href=\"/wins/{}\">{}</a></p>",
                esc(id),
                esc(best)
            );
        }
        out.push_str("</article>");
    }
    out.push_str("</section>");

    out.push_str("<section class=side data-fit=side><h2>Teams this month</h2><ol class=teams>");
    for team in view.teams.iter().take(3) {
        let _ = write!(
            out,
            "<li><span>{}</span><b>{} win{} · {} h</b></li>",
            esc(&team.name),
            team.wins,
            if team.wins == 1 { "" } else { "s" },
            esc(&organisation.number(team.hours, 0))
        );
    }
    if view.teams.is_empty() {
        out.push_str("<li class=sub>No team has a verified win this month yet.</li>");
    }
    out.push_str("</ol>");
    if let Some(url) = &charts.plan {
        // Scoring draws the plan; where it is not served here the panel removes itself.
        let _ = write!(
            out,
            "<div class=plan><h2>90-day plan</h2><img src=\"{}\" alt=\"90-day plan progress\" \
             onerror=\"this.parentNode.remove()\"></div>",
            esc(url)
        );
    }
    if let Some(lesson) = &view.lesson {
        let _ = write!(
            out,
            "<h2>Lesson of the week</h2><p class=lesson>{}</p>",
            esc(&lesson.title)
        );
    }
    out.push_str("</section>");

    out.push_str("<section class=latest data-fit=latest><h2>Latest wins</h2><ul class=wins>");
    if view.latest.is_empty() {
        out.push_str(
            "<li class=sub>No wins yet. Send Herald an event: POST /v1/events/&lt;source&gt;</li>",
        );
    }
    for w in &view.latest {
        let _ = write!(
            out,
            "<li><time>{}</time><a href=\"/wins/{}\">{}</a><b>{}</b><span class=sub>{}</span></li>",
            esc(w.occurred_at.as_deref().unwrap_or("")),
            esc(&w.id),
            esc(&w.headline),
            esc(&w.value),
            esc(&w.label),
        );
    }
    out.push_str("</ul></section></main>");
    let _ = write!(
        out,
        "<script>{}</script></body></html>",
        script(refresh_seconds)
    );
    out
}

/// Swaps in a fresh `<main>` every `refresh_seconds` and marks the body with what overflows its
/// box (`data-overflow="none"` when nothing does).
fn script(refresh_seconds: u32) -> String {
    format!(
        "(function(){{\
var every={ms};\
function fit(){{var over=[];document.querySelectorAll('[data-fit]').forEach(function(e){{\
if(e.scrollHeight>e.clientHeight+1||e.scrollWidth>e.clientWidth+1)over.push(e.dataset.fit+':'+e.scrollWidth+'x'+e.scrollHeight+'>'+e.clientWidth+'x'+e.clientHeight);}});\
var d=document.documentElement;if(d.scrollWidth>window.innerWidth+1||d.scrollHeight>window.innerHeight+1)over.push('page');\
document.body.dataset.overflow=over.length?over.join(' '):'none';document.body.dataset.charts=document.querySelectorAll('svg.chart rect.bar').length;}}\
function refresh(){{fetch(location.href,{{cache:'no-store'}}).then(function(r){{return r.ok?r.text():null;}}).then(function(t){{\
if(!t)return;var doc=new DOMParser().parseFromString(t,'text/html');var m=doc.querySelector('main');\
if(m){{document.querySelector('main').replaceWith(m);var a=doc.getElementById('asof');if(a)document.getElementById('asof').textContent=a.textContent;fit();}}}}).catch(function(){{}});}}\
fit();window.addEventListener('resize',fit);setInterval(refresh,every);}})();",
        ms = u64::from(refresh_seconds.max(5)) * 1000
    )
}

const STYLE: &str = "*{box-sizing:border-box}html,body{height:100%;margin:0;overflow:hidden}\
body{font-family:system-ui,'Segoe UI',sans-serif;background:#0b1220;color:#e2e8f0;font-size:clamp(10px,min(0.95vw,1.65vh),21px);display:flex;flex-direction:column}\
header{display:flex;justify-content:space-between;align-items:baseline;padding:.8em 1.4em .4em}h1{margin:0;font-size:1.7em}\
.asof{color:#94a3b8;margin:0}a{color:inherit;text-decoration:none}a:hover{text-decoration:underline}\
main{flex:1;min-height:0;display:grid;gap:.8em;padding:0 1.4em 1em;grid-template-columns:1.15fr 1fr 1fr;grid-template-rows:auto minmax(0,1fr) minmax(0,1fr);\
grid-template-areas:'kpis kpis kpis' 'trends spotlight side' 'trends latest latest'}\
section{background:#131c2e;border-radius:.6em;padding:.7em 1em;overflow:hidden;min-height:0}\
h2{font-size:1em;margin:0 0 .5em;color:#94a3b8;font-weight:600}h2 small,h3 small{color:#64748b;font-weight:400}\
.kpis{grid-area:kpis;display:grid;grid-template-columns:1fr 1fr;gap:1.2em}.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(9em,1fr));gap:.6em}\
.tile{background:#1b2740;border-radius:.5em;padding:.5em .7em;border-left:.3em solid #64748b}.tile.cash{border-color:#22c55e}.tile.capacity{border-color:#38bdf8}\
.tile.avoided{border-color:#f59e0b}.tile.estimate{border-color:#a78bfa}.value{font-size:2.2em;font-weight:700;white-space:nowrap}\
.what{color:#cbd5e1;font-size:.85em;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}.sub{color:#94a3b8;font-size:.85em}\
.delta{font-size:.85em;white-space:nowrap}.delta.up{color:#4ade80}.delta.down{color:#f87171}.delta.same{color:#94a3b8}\
.trends{grid-area:trends;display:flex;flex-direction:column}.chart{flex:1;min-height:0;width:100%}\
.chart .axis{fill:#cbd5e1;font-size:13px;font-weight:600}.chart .meaning{fill:#64748b;font-weight:400}.chart .tick{fill:#64748b;font-size:11px}\
img.chart{object-fit:contain;object-position:left top}.bar{fill:#334155}.bar.latest{fill:#38bdf8}\
.spotlight{grid-area:spotlight}.story{margin-bottom:.6em}.story h3{margin:0;font-size:1.15em}.story p{margin:.1em 0}\
.quiet{color:#a78bfa}.best{white-space:nowrap;overflow:hidden;text-overflow:ellipsis;color:#e2e8f0}\
.side{grid-area:side;display:flex;flex-direction:column}.teams{margin:0 0 .6em;padding-left:1.2em}.teams li{display:flex;justify-content:space-between;gap:.6em;padding:.1em 0}\
.teams b{white-space:nowrap;color:#cbd5e1;font-weight:500}.lesson{margin:0;color:#fde68a;font-size:.92em;display:-webkit-box;-webkit-line-clamp:2;-webkit-box-orient:vertical;overflow:hidden}.plan{flex:1 1 0;min-height:0;display:flex;flex-direction:column}.plan img{flex:1 1 0;min-height:0;width:100%;object-fit:contain;object-position:left top;margin-bottom:.4em}\
.latest{grid-area:latest}.wins{list-style:none;margin:0;padding:0}\
.wins li{display:grid;grid-template-columns:10em minmax(0,1fr) auto 5em;gap:.6em;padding:.25em 0;border-top:1px solid #1f2a40;white-space:nowrap}\
.wins li>*{overflow:hidden;text-overflow:ellipsis}.wins time{color:#94a3b8}.wins b{color:#4ade80}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::{Stretch, TeamEntry};

    fn empty(title: &str) -> Stretch {
        Stretch {
            title: title.into(),
            against: "before".into(),
            wins: 0,
            previous_wins: 0,
            labels: vec![],
        }
    }

    #[test]
    fn an_empty_dashboard_says_how_to_start_and_escapes_names() {
        let view = DashboardView {
            organisation: "Larkspur & Co".into(),
            currency: "EUR".into(),
            locale: "en-GB".into(),
            as_of: "30 Nov 2026 09:00".into(),
            last_7_days: empty("Last 7 days"),
            month: empty("November 2026 so far"),
            trends: vec![],
            spotlight: vec![],
            teams: vec![TeamEntry {
                name: "<b>Ops</b>".into(),
                wins: 1,
                hours: 2.0,
            }],
            latest: vec![],
            lesson: None,
        };
        let charts = ChartLinks {
            plan: Some("/plan.svg".into()),
            mttr: Some("/mttr.svg".into()),
        };
        let html = render(&view, &Organisation::default(), 30, &charts);
        assert!(html.contains("<img src=\"/plan.svg\""));
        assert!(html.contains("src=\"/mttr.svg\""));
        assert!(html.contains("Larkspur &amp; Co"));
        assert!(html.contains("No wins yet"));
        assert!(html.contains("&lt;b&gt;Ops&lt;/b&gt;"));
        assert!(html.contains("var every=30000;"));
        assert!(!html.contains("http-equiv=refresh"), "no full reloads");
    }
}
