//! The report as a PDF for the workshop: A4, Helvetica (one of the fonts every PDF reader has, so
//! nothing is embedded), text wrapped by the font's own metrics, a page break wherever a page is
//! full, and the weekly wins drawn as bars. Text a standard font cannot show (arrows) is spelt out.

use std::io;

use pdf_canvas::{BuiltinFont, FontSource, Pdf, graphicsstate::Color};

use super::MonthlyReport;

const WIDTH: f32 = 595.0;
const HEIGHT: f32 = 842.0;
const MARGIN: f32 = 56.0;

/// What WinAnsi (the standard fonts' encoding) cannot show, in words it can.
fn printable(text: &str) -> String {
    text.replace('→', "to")
        .replace('▲', "+")
        .replace('▼', "-")
        .chars()
        .map(|c| if c == '\u{202f}' { '\u{a0}' } else { c })
        .collect()
}

#[derive(Clone)]
enum Item {
    Text {
        font: BuiltinFont,
        size: f32,
        text: String,
        indent: f32,
        gap_before: f32,
    },
    Bars(Vec<(String, usize)>),
}

fn text(font: BuiltinFont, size: f32, text: impl Into<String>, indent: f32, gap: f32) -> Item {
    Item::Text {
        font,
        size,
        text: printable(&text.into()),
        indent,
        gap_before: gap,
    }
}

/// The document as a flow of items, top to bottom.
fn flow(r: &MonthlyReport) -> Vec<Item> {
    use BuiltinFont::{Helvetica, Helvetica_Bold};
    let mut items = vec![
        text(
            Helvetica_Bold,
            18.0,
            format!("What IT delivered for {} in {}", r.organisation, r.month),
            0.0,
            0.0,
        ),
        text(Helvetica, 11.0, &r.pitch, 0.0, 8.0),
        text(Helvetica_Bold, 13.0, "Key figures", 0.0, 14.0),
    ];
    for line in &r.lines {
        items.push(text(
            Helvetica_Bold,
            10.5,
            format!("{}: {}", line.name, line.current),
            0.0,
            5.0,
        ));
        let mut how = line.how.clone();
        if let Some(p) = &line.plan {
            how = format!(
                "baseline {} -> goal {} by {}: {:.0} % of the way. {how}",
                p.baseline,
                p.goal,
                p.by,
                p.progress * 100.0
            );
        }
        items.push(text(Helvetica, 9.5, how, 12.0, 0.0));
    }
    items.push(text(
        Helvetica_Bold,
        13.0,
        "Value, label by label",
        0.0,
        14.0,
    ));
    items.push(text(
        Helvetica,
        9.5,
        "Labels are never added up: cash moved, capacity released and costs avoided are different claims.",
        0.0,
        2.0,
    ));
    for (label, value, meaning) in &r.value {
        items.push(text(
            Helvetica,
            10.5,
            format!("{label}: {value} ({meaning})"),
            12.0,
            3.0,
        ));
    }
    items.push(text(
        Helvetica_Bold,
        13.0,
        "Verified wins per week",
        0.0,
        14.0,
    ));
    items.push(Item::Bars(r.weeks.clone()));
    items.push(text(Helvetica_Bold, 13.0, "Five stories", 0.0, 14.0));
    for (i, story) in r.stories.iter().enumerate() {
        items.push(text(
            Helvetica,
            10.5,
            format!(
                "{}. {} ({} {}; herald explain {})",
                i + 1,
                story.headline,
                story.value,
                story.label,
                story.win_id
            ),
            0.0,
            4.0,
        ));
    }
    if !r.problems.is_empty() {
        items.push(text(
            Helvetica_Bold,
            13.0,
            "Problems solved that could help elsewhere",
            0.0,
            14.0,
        ));
        for p in &r.problems {
            let mut line = format!("{} ({})", p.headline, p.service);
            if !p.could_help.is_empty() {
                line.push_str(&format!(": worth a look for {}", p.could_help.join(", ")));
            }
            items.push(text(Helvetica, 10.5, line, 0.0, 4.0));
        }
    }
    if !r.lessons.is_empty() {
        items.push(text(Helvetica_Bold, 13.0, "Lessons learned", 0.0, 14.0));
        for l in &r.lessons {
            items.push(text(Helvetica, 10.5, format!("- {l}"), 0.0, 4.0));
        }
    }
    items
}

/// Splits `text` into lines no wider than `width` at `size`.
fn wrap(font: BuiltinFont, size: f32, text: &str, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let candidate = if line.is_empty() {
            word.to_string()
        } else {
            format!("{line} {word}")
        };
        if !line.is_empty() && font.get_width(size, &candidate) > width {
            lines.push(std::mem::take(&mut line));
            line = word.to_string();
        } else {
            line = candidate;
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// A placed piece of a page.
enum Placed {
    Line(BuiltinFont, f32, f32, f32, String),
    Bars(f32, Vec<(String, usize)>),
}

const BARS_HEIGHT: f32 = 110.0;

fn paginate(items: Vec<Item>) -> Vec<Vec<Placed>> {
    let mut pages: Vec<Vec<Placed>> = vec![Vec::new()];
    let mut y = HEIGHT - MARGIN;
    for item in items {
        match item {
            Item::Text {
                font,
                size,
                text,
                indent,
                gap_before,
            } => {
                y -= gap_before;
                for line in wrap(font, size, &text, WIDTH - 2.0 * MARGIN - indent) {
                    let lead = size * 1.3;
                    if y - lead < MARGIN {
                        pages.push(Vec::new());
                        y = HEIGHT - MARGIN;
                    }
                    y -= lead;
                    if let Some(page) = pages.last_mut() {
                        page.push(Placed::Line(font, size, MARGIN + indent, y, line));
                    }
                }
            }
            Item::Bars(weeks) => {
                if y - BARS_HEIGHT < MARGIN {
                    pages.push(Vec::new());
                    y = HEIGHT - MARGIN;
                }
                y -= BARS_HEIGHT;
                if let Some(page) = pages.last_mut() {
                    page.push(Placed::Bars(y, weeks));
                }
            }
        }
    }
    pages
}

/// Writes the report to `path` as a PDF.
pub fn write(r: &MonthlyReport, path: &std::path::Path) -> io::Result<()> {
    let name = path
        .to_str()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path is not UTF-8"))?;
    let mut pdf = Pdf::create(name)?;
    pdf.set_title(&printable(&format!(
        "IT in {} - {}",
        r.month, r.organisation
    )));
    pdf.set_producer("Herald");
    for page in paginate(flow(r)) {
        pdf.render_page(WIDTH, HEIGHT, |canvas| {
            for placed in &page {
                match placed {
                    Placed::Line(font, size, x, y, line) => {
                        canvas.left_text(*x, *y, *font, *size, line)?;
                    }
                    Placed::Bars(y, weeks) => {
                        let max = weeks.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1) as f32;
                        let slot = (WIDTH - 2.0 * MARGIN) / weeks.len().max(1) as f32;
                        for (i, (week, n)) in weeks.iter().enumerate() {
                            let h = *n as f32 / max * (BARS_HEIGHT - 36.0);
                            let x = MARGIN + i as f32 * slot + slot * 0.2;
                            canvas.set_fill_color(Color::rgb(2, 132, 199))?;
                            canvas.rectangle(x, y + 16.0, slot * 0.6, h)?;
                            canvas.fill()?;
                            canvas.set_fill_color(Color::rgb(0, 0, 0))?;
                            canvas.center_text(
                                x + slot * 0.3,
                                y + 20.0 + h,
                                BuiltinFont::Helvetica_Bold,
                                9.0,
                                &n.to_string(),
                            )?;
                            canvas.center_text(
                                x + slot * 0.3,
                                y + 4.0,
                                BuiltinFont::Helvetica,
                                8.5,
                                &printable(week),
                            )?;
                        }
                    }
                }
            }
            Ok(())
        })?;
    }
    pdf.finish()
}

/// The report as PDF bytes (written through a temporary file: the PDF writer needs a file).
pub fn bytes(r: &MonthlyReport) -> io::Result<Vec<u8>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("report.pdf");
    write(r, &path)?;
    std::fs::read(&path)
}
