//! The executive dashboard in a real browser: headless Chromium loads the page `herald up --demo`
//! serves, its script runs, the charts carry the figures `/api/dashboard` gives, nothing overflows
//! at 1920×1080 or 1280×800, and a screenshot of each is kept in `target/screenshots/`.

use std::{path::PathBuf, process::Stdio, time::Duration};

use serde_json::Value;

use crate::support::standalone::{start_demo_serving, wait_settled};

/// Chrome or Chromium: `HERALD_CHROMIUM`, else the first on the PATH.
fn chromium() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("HERALD_CHROMIUM") {
        return Ok(PathBuf::from(path));
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Some(dir) = std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .find(|dir| dir.join(name).is_file())
        {
            return Ok(dir.join(name));
        }
    }
    anyhow::bail!(
        "no Chromium for the dashboard's browser test: run scripts/test (it installs it), apt-get install chromium, or set HERALD_CHROMIUM"
    )
}

async fn browse(url: &str, size: (u32, u32), what: &[&str]) -> anyhow::Result<String> {
    let profile = tempfile::tempdir()?;
    let output = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::process::Command::new(chromium()?)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--virtual-time-budget=4000",
                &format!("--user-data-dir={}", profile.path().display()),
                &format!("--window-size={},{}", size.0, size.1),
            ])
            .args(what)
            .arg(url)
            .stdin(Stdio::null())
            .output(),
    )
    .await??;
    anyhow::ensure!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn body_attribute<'a>(dom: &'a str, name: &str) -> Option<&'a str> {
    let body = &dom[dom.find("<body")?..];
    let body = &body[..body.find('>')?];
    let at = body.find(&format!("{name}=\""))? + name.len() + 2;
    Some(&body[at..at + body[at..].find('"')?])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_renders_its_charts_and_fits_a_wall_screen_and_a_laptop() -> anyhow::Result<()>
{
    herald_runtime::install_tls_provider();
    let browser = chromium()?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let (up, grpc, http) = start_demo_serving(&data, &[]).await?;
    herald_testkit::eventually("herald up ready", Duration::from_secs(60), || async {
        let r = reqwest::get(format!("{http}/readyz")).await.ok()?;
        r.status().is_success().then_some(())
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", up.output()))?;
    // The demo's month is replayed once the banner is out; settled means every win is counted.
    herald_testkit::eventually("the demo replayed", Duration::from_secs(120), || async {
        up.output().contains("demo: sent").then_some(())
    })
    .await?;
    wait_settled(&data, &grpc)
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", up.output()))?;
    let api: Value = reqwest::get(format!("{http}/api/dashboard"))
        .await?
        .json()
        .await?;
    let trends = api["trends"].as_array().cloned().unwrap_or_default();
    assert!(
        !trends.is_empty(),
        "the demo month has weeks of value: {api}"
    );

    // Scoring's restore-time chart draws the figures its API gives, week by week.
    let mttr: Value = reqwest::get(format!("{http}/api/mttr"))
        .await?
        .json()
        .await?;
    let mttr_svg = reqwest::get(format!("{http}/mttr.svg"))
        .await?
        .text()
        .await?;
    let mut weeks_with_incidents = 0;
    for week in mttr.as_array().into_iter().flatten() {
        if let Some(median) = week["median_minutes"].as_f64() {
            weeks_with_incidents += 1;
            let expected = format!("data-median-minutes=\"{median:.1}\"");
            assert!(
                mttr_svg.contains(&expected),
                "{expected} missing: {mttr_svg}"
            );
        }
    }
    assert!(
        weeks_with_incidents > 0,
        "the demo month resolves incidents: {mttr}"
    );

    let shots = herald_testkit::repo_root().join("target/screenshots");
    std::fs::create_dir_all(&shots)?;
    for size in [(1920, 1080), (1280, 800)] {
        let dom = browse(&format!("{http}/"), size, &["--dump-dom"]).await?;
        assert_eq!(
            body_attribute(&dom, "data-overflow"),
            Some("none"),
            "something overflows at {size:?} (the script names it)"
        );
        let bars: usize = body_attribute(&dom, "data-charts")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert_eq!(
            bars,
            trends.len() * 12,
            "twelve weekly bars per label at {size:?}"
        );
        // Each chart carries the API's figures, week by week.
        for trend in &trends {
            let label = trend["label"].as_str().unwrap_or_default();
            let start = dom
                .find(&format!("data-label=\"{label}\" aria-label"))
                .ok_or_else(|| anyhow::anyhow!("no chart for {label}"))?;
            let svg = &dom[start..start + dom[start..].find("</svg>").unwrap_or(0)];
            for week in trend["weeks"].as_array().into_iter().flatten() {
                let value = week[1].as_f64().unwrap_or_default();
                let expected = format!("data-value=\"{value:.2}\"");
                assert!(svg.contains(&expected), "{label}: {expected} missing");
            }
        }
        assert!(
            dom.contains("alt=\"90-day plan progress\""),
            "the demo's 90-day plan is on the dashboard at {size:?}"
        );
        assert!(
            dom.contains("alt=\"Time to restore service per week\""),
            "the restore-time trend loaded on the dashboard at {size:?}"
        );
        // And the tiles carry the last 7 days, label by label, never one sum.
        for figure in api["last_7_days"]["labels"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let text = figure["value_text"].as_str().unwrap_or_default();
            assert!(dom.contains(text), "{text} missing at {size:?}");
        }
        let shot = shots.join(format!("dashboard-{}x{}.png", size.0, size.1));
        browse(
            &format!("{http}/"),
            size,
            &[&format!("--screenshot={}", shot.display())],
        )
        .await?;
        let bytes = std::fs::read(&shot)?;
        assert!(
            bytes.starts_with(b"\x89PNG"),
            "{} is not a PNG",
            shot.display()
        );
        eprintln!("screenshot: {} ({})", shot.display(), browser.display());
    }
    Ok(())
}

/// The demo's month as the workshop pack: `herald report` against `herald up --demo` writes the
/// PDF, Markdown and HTML, with the 90-day plan's KPIs and the pitch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn herald_report_writes_the_demo_months_report_in_every_format() -> anyhow::Result<()> {
    herald_runtime::install_tls_provider();
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let (up, grpc, http) = start_demo_serving(&data, &[]).await?;
    herald_testkit::eventually("herald up ready", Duration::from_secs(60), || async {
        let r = reqwest::get(format!("{http}/readyz")).await.ok()?;
        r.status().is_success().then_some(())
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", up.output()))?;
    herald_testkit::eventually("the demo replayed", Duration::from_secs(120), || async {
        up.output().contains("demo: sent").then_some(())
    })
    .await?;
    wait_settled(&data, &grpc).await?;
    // The month holding the middle of the demo's 30 days, so it is full on the first of a month.
    let month = crate::support::standalone::demo_day()[..7].to_string();
    for format in ["pdf", "md", "html"] {
        let out = dir.path().join(format!("report.{format}"));
        let run = crate::support::herald_cli(&[
            "report",
            "--month",
            &month,
            "--format",
            format,
            "--output",
            &out.display().to_string(),
            "--url",
            &grpc,
        ])
        .await?;
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(
            String::from_utf8_lossy(&run.stdout).contains("IT restored service"),
            "the pitch is printed"
        );
        let bytes = std::fs::read(&out)?;
        match format {
            "pdf" => assert!(bytes.starts_with(b"%PDF")),
            "md" => {
                let md = String::from_utf8(bytes)?;
                assert!(
                    md.contains("| MTTR (median) |") && md.contains("% of the way"),
                    "{md}"
                );
            }
            _ => assert!(String::from_utf8(bytes)?.contains("<svg")),
        }
    }
    let bad = crate::support::herald_cli(&["report", "--month", "soon", "--url", &grpc]).await?;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a month like 2026-10"));
    Ok(())
}
