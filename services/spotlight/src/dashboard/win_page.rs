//! `/wins/<id>`: one win explained, the web form of `herald explain`: the number, its label and
//! what the label means, the formula, every input with where it came from, who is credited with
//! what share, and whether the win still stands.

use std::fmt::Write;

use herald_catalog::Catalog;
use herald_proto::{
    time::opt_from_timestamp,
    v1::{CreditSubject, ValueLabel, Win},
};

use super::esc;

pub fn render(win: &Win, status: &str, reason: Option<&str>, catalog: &Catalog) -> String {
    let organisation = catalog.organisation();
    let value = win.value.clone().unwrap_or_default();
    let label = ValueLabel::try_from(value.label).unwrap_or(ValueLabel::Unspecified);
    let mut out = String::with_capacity(8 * 1024);
    let _ = write!(
        out,
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content=\"width=device-width,initial-scale=1\">\
         <title>{title} · Herald</title><style>{STYLE}</style></head><body><p><a href=\"/\">← dashboard</a></p>\
         <h1>{title}</h1><p class=value>{money} <span class=label>{label}</span></p><p class=sub>{meaning}</p>",
        title = esc(&win.headline),
        money = esc(&organisation.money(value.amount)),
        label = esc(label.token()),
        meaning = esc(label.meaning()),
    );
    if status == "revoked" {
        let _ = write!(
            out,
            "<p class=revoked>Withdrawn: {}. It is counted nowhere.</p>",
            esc(reason.unwrap_or("the outcome did not hold"))
        );
    }
    let _ = write!(
        out,
        "<h2>How it is computed</h2><p>{}</p><p class=formula>{}</p><table><tr><th>Input</th><th>Value</th><th>From</th></tr>",
        esc(&value.summary),
        esc(&value.formula)
    );
    for input in &value.inputs {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{} {}</td><td>{}</td></tr>",
            esc(&input.name),
            esc(&organisation.number(input.value, if input.value.fract() == 0.0 { 0 } else { 2 })),
            esc(&input.unit),
            esc(&input.source)
        );
    }
    out.push_str("</table><h2>Credit</h2><table><tr><th>Who</th><th>For</th><th>Share</th></tr>");
    for credit in &win.credits {
        let who = if credit.subject == CreditSubject::Person as i32 {
            catalog.public_name(&credit.id).name
        } else {
            catalog.team_name(&credit.id).to_string()
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&who),
            esc(&credit.role),
            esc(&format!("{:.0} %", credit.share * 100.0))
        );
    }
    out.push_str("</table><h2>Record</h2><p>");
    let _ = write!(out, "{} ", esc(&win.record_number));
    if let Some(url) = win
        .record_url
        .as_deref()
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
    {
        let _ = write!(out, "<a href=\"{}\">open it</a>", esc(url));
    }
    if let Some(at) = opt_from_timestamp(win.occurred_at.as_ref()) {
        let local = at.with_timezone(&organisation.tz());
        let _ = write!(
            out,
            " · {} {}",
            esc(&organisation.date(local.date_naive())),
            local.format("%H:%M")
        );
    }
    let _ = write!(
        out,
        "</p><p class=sub>win {} · rules {} · catalog {} · the same in a terminal: <code>herald explain {}</code></p></body></html>",
        esc(&win.id),
        esc(&win.rules_version),
        esc(&win.catalog_version),
        esc(&win.id)
    );
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#0b1220;color:#e2e8f0;max-width:60rem;margin:2rem auto;padding:0 1rem;font-size:1.1rem}\
a{color:#38bdf8}h1{font-size:1.6rem}h2{font-size:1.1rem;color:#94a3b8;margin-top:1.5rem}.value{font-size:2.4rem;font-weight:700;margin:.2rem 0}\
.label{font-size:1rem;background:#1b2740;padding:.1rem .5rem;border-radius:.3rem;vertical-align:middle}.sub{color:#94a3b8}\
.formula{font-family:ui-monospace,monospace;color:#cbd5e1}.revoked{color:#f87171;font-weight:600}\
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3rem .6rem;border-bottom:1px solid #1f2a40}th{color:#94a3b8;font-weight:500}";

#[cfg(test)]
mod tests {
    use herald_proto::v1::{Credit, Value, ValueInput};

    use super::*;

    #[test]
    fn a_win_is_explained_with_its_inputs_and_credit_and_escaped() {
        let win = Win {
            id: "w-1".into(),
            headline: "Payroll <restored>".into(),
            record_number: "INC1".into(),
            record_url: Some("javascript:alert(1)".into()),
            value: Some(Value {
                label: ValueLabel::Avoided as i32,
                amount: 1234.0,
                formula: "people × hours × rate".into(),
                summary: "€1,234 of lost work avoided".into(),
                inputs: vec![ValueInput {
                    name: "people".into(),
                    value: 40.0,
                    unit: "people".into(),
                    source: "catalog: Payroll users".into(),
                }],
                ..Default::default()
            }),
            credits: vec![Credit {
                subject: CreditSubject::Team as i32,
                id: "team-x".into(),
                role: "owning team".into(),
                share: 1.0,
                ..Default::default()
            }],
            ..Default::default()
        };
        let html = render(
            &win,
            "revoked",
            Some("INC1 was reopened"),
            &Catalog::default(),
        );
        assert!(html.contains("Payroll &lt;restored&gt;"));
        assert!(html.contains("people × hours × rate"));
        assert!(html.contains("catalog: Payroll users"));
        assert!(html.contains("Withdrawn: INC1 was reopened"));
        assert!(html.contains("100 %"));
        assert!(!html.contains("javascript:"), "only web links");
        assert!(html.contains("herald explain w-1"));
    }
}
