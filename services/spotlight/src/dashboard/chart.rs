//! Server-rendered SVG charts: no script, no library, readable from across the room. One small
//! chart per value label, each on its own scale from zero, because labels are never added up.

use std::fmt::Write;

use herald_catalog::Organisation;

use super::esc;

/// One bar: the week it stands for, its value, and the words under it.
pub struct Bar {
    pub week: String,
    pub value: f64,
}

/// Bars of one label's value per week, with the latest value and the largest written out. Every
/// bar carries its figure in `data-value` and a tooltip, so a reader (or a test) can check it.
pub fn weekly_bars(
    label: &str,
    meaning: &str,
    bars: &[Bar],
    organisation: &Organisation,
) -> String {
    const W: f64 = 600.0;
    const H: f64 = 150.0;
    const TOP: f64 = 22.0;
    const BOTTOM: f64 = 20.0;
    let max = bars.iter().map(|b| b.value).fold(0.0_f64, f64::max);
    let n = bars.len().max(1) as f64;
    let slot = W / n;
    let width = slot * 0.7;
    let mut svg = String::with_capacity(4096);
    let _ = write!(
        svg,
        "<svg class=chart viewBox=\"0 0 {W} {H}\" role=img data-label=\"{label}\" aria-label=\"{} per week, last {} weeks\">",
        esc(label),
        bars.len()
    );
    let _ = write!(
        svg,
        "<text x=0 y=14 class=axis>{} <tspan class=meaning>{}</tspan></text>",
        esc(label),
        esc(meaning)
    );
    if max > 0.0 {
        let _ = write!(
            svg,
            "<text x={W} y=14 text-anchor=end class=axis>max {}</text>",
            esc(&organisation.money(max))
        );
    }
    for (i, bar) in bars.iter().enumerate() {
        let height = if max > 0.0 {
            (bar.value / max) * (H - TOP - BOTTOM)
        } else {
            0.0
        };
        let x = i as f64 * slot + (slot - width) / 2.0;
        let y = H - BOTTOM - height;
        let latest = i + 1 == bars.len();
        let _ = write!(
            svg,
            "<rect class=\"bar{}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{height:.1}\" data-week=\"{}\" data-value=\"{:.2}\"><title>{}: {}</title></rect>",
            if latest { " latest" } else { "" },
            esc(&bar.week),
            bar.value,
            esc(&bar.week),
            esc(&organisation.money(bar.value)),
        );
        if i == 0 || latest || i % 4 == 0 {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=middle class=tick>{}</text>",
                x + width / 2.0,
                H - 5.0,
                esc(&bar.week)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_start_at_zero_and_carry_their_figures() {
        let bars = vec![
            Bar {
                week: "6 Oct".into(),
                value: 0.0,
            },
            Bar {
                week: "13 Oct".into(),
                value: 50.0,
            },
            Bar {
                week: "20 Oct".into(),
                value: 100.0,
            },
        ];
        let svg = weekly_bars("cash", "money that moved", &bars, &Organisation::default());
        assert!(svg.contains("data-value=\"100.00\""), "{svg}");
        assert!(
            svg.contains("height=\"0.0\""),
            "a zero week has no bar: {svg}"
        );
        assert!(
            svg.contains("height=\"108.0\""),
            "the largest fills the chart: {svg}"
        );
        assert!(svg.contains("height=\"54.0\""), "half is half: {svg}");
        assert!(svg.contains("max €100<"), "{svg}");
        assert!(!svg.contains("<script"));
    }
}
