//! The monthly report for a fixed set of events, against scoring running in-process: every KPI is
//! the one computed here by hand, in the Markdown and in the text extracted from the PDF.

use std::{process::Stdio, time::Duration};

use chrono::{DateTime, Utc};
use herald_proto::{
    time::to_timestamp,
    v1::{
        EventKind, ItsmEvent, MonthlyReportRequest, Record, Satisfaction, Source,
        scoring_client::ScoringClient,
    },
};
use herald_testkit::InProcess;
use prost::Message;

/// 8 October 2026, 08:00 UTC, plus `minutes`.
fn at(minutes: i64) -> Option<prost_types::Timestamp> {
    let base: DateTime<Utc> = "2026-10-08T08:00:00Z".parse().expect("time");
    Some(to_timestamp(base + chrono::Duration::minutes(minutes)))
}

fn event(n: usize, kind: EventKind, record: Record, when: i64) -> ItsmEvent {
    ItsmEvent {
        id: format!("report-{n}"),
        source: Source::Servicenow as i32,
        kind: kind as i32,
        occurred_at: at(when),
        received_at: at(when),
        record: Some(Record {
            number: format!("REC{n}"),
            ..record
        }),
        ..Default::default()
    }
}

fn incident(n: usize, took: i64, priority: u32, due: i64) -> ItsmEvent {
    event(
        n,
        EventKind::IncidentResolved,
        Record {
            priority: Some(priority),
            opened_at: at(0),
            resolved_at: at(took),
            sla_due_at: at(due),
            ..Default::default()
        },
        took,
    )
}

/// The month's events: three incidents resolved in 30, 90 and 600 minutes (P1, P2, P3; SLAs of
/// 60, 60 and 480 minutes), three changes in and one failed, three ratings of which two good, and
/// one event from September that must not count.
fn events() -> Vec<ItsmEvent> {
    let mut all = vec![
        incident(1, 30, 1, 60),
        incident(2, 90, 2, 60),
        incident(3, 600, 3, 480),
    ];
    for n in 4..=6 {
        all.push(event(
            n,
            EventKind::ChangeImplemented,
            Record::default(),
            100,
        ));
    }
    all.push(event(7, EventKind::ChangeFailed, Record::default(), 100));
    for (n, score) in [(8, "5"), (9, "good"), (10, "2")] {
        all.push(event(
            n,
            EventKind::SurveySubmitted,
            Record {
                satisfaction: Some(Satisfaction {
                    score: score.into(),
                    comment: None,
                }),
                ..Default::default()
            },
            200,
        ));
    }
    // September: outside the month.
    all.push(incident(11, 5_000, 1, 60));
    if let Some(record) = all.last_mut().and_then(|e| e.record.as_mut()) {
        record.opened_at = at(-60 * 24 * 10);
        record.resolved_at = at(-60 * 24 * 9);
    }
    if let Some(last) = all.last_mut() {
        last.occurred_at = at(-60 * 24 * 9);
    }
    all
}

fn pdftotext(pdf: &[u8]) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("report.pdf");
    std::fs::write(&path, pdf)?;
    let output = std::process::Command::new("pdftotext")
        .arg(&path)
        .arg("-")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            anyhow::anyhow!(
                "pdftotext is needed to read the PDF report ({e}): run scripts/test (it installs poppler-utils) or apt-get install poppler-utils"
            )
        })?;
    anyhow::ensure!(
        output.status.success(),
        "pdftotext could not read the report: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monthly_report_has_the_hand_computed_kpis_in_markdown_and_pdf() -> anyhow::Result<()> {
    let toml = "[catalog]\npath = \"catalog.toml\"\n[scoring.verification]\nhold_back = \"0s\"\nconfirm_every = \"100ms\"\n\
                [[scoring.plan]]\nkpi = \"mttr_median_minutes\"\nbaseline = 150\ngoal = 60\nstart = \"2026-10-01\"\nend = \"2026-12-31\"\n";
    let stage =
        InProcess::start::<herald_scoring::Scoring>(toml, &herald_testkit::fixtures_dir()).await?;
    let all = events();
    for e in &all {
        let kind = EventKind::try_from(e.kind)?.token();
        herald_testkit::nats::publish(
            &stage.client,
            &format!("herald.events.servicenow.{kind}"),
            &e.id,
            e.encode_to_vec(),
        )
        .await?;
    }
    stage
        .wait_until_consumed("HERALD_EVENTS", "scoring")
        .await?;
    let mut client = ScoringClient::connect(stage.grpc.clone()).await?;
    let get = |format: &str| MonthlyReportRequest {
        month: "2026-10".into(),
        format: format.into(),
    };
    let md = client.get_monthly_report(get("md")).await?.into_inner();
    let md = String::from_utf8(md.content)?;
    // By hand: restore times 30, 90, 600 min → median 90 min, P90 (nearest rank, 3rd of 3) 600
    // min; SLA 1 of 3 cycles in time (90 > 60, 600 > 480); changes 3 of 4; ratings 5/5 and
    // "good" are good, 2/5 is not: 2 of 3; outage minutes P1 + P2 = 30 + 90.
    for expected in [
        "| MTTR (median) | **1 h 30 min** | 2 h 30 min | 1 h | 67 % of the way, by 31 Dec 2026 |",
        "| MTTR (P90) | **10 h** |",
        "| SLA attainment | **33.3 %** |",
        "1 of 3 resolution cycles in time",
        "| Change success rate | **75.0 %** |",
        "3 implemented, 1 failed",
        "| Customer satisfaction | **66.7 %** |",
        "| Outage minutes | **120 min** |",
        "opened → resolved, 3 resolutions",
    ] {
        assert!(md.contains(expected), "{expected:?} missing from\n{md}");
    }
    assert!(
        !md.contains("Production deployments"),
        "no GitHub, no deployment frequency"
    );

    let pdf = client.get_monthly_report(get("pdf")).await?.into_inner();
    assert_eq!(pdf.content_type, "application/pdf");
    assert_eq!(pdf.file_name, "it-value-report-2026-10.pdf");
    assert!(pdf.content.starts_with(b"%PDF"));
    let text = pdftotext(&pdf.content)?;
    for expected in [
        "What IT delivered for",
        "October 2026",
        "MTTR (median): 1 h 30 min",
        "baseline 2 h 30 min -> goal 1 h by 31 Dec 2026: 67 % of the way",
        "MTTR (P90): 10 h",
        "SLA attainment: 33.3 %",
        "Change success rate: 75.0 %",
        "Customer satisfaction: 66.7 %",
        "Outage minutes: 120 min",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from the PDF's text:\n{text}"
        );
    }

    let html = client.get_monthly_report(get("html")).await?.into_inner();
    let html = String::from_utf8(html.content)?;
    assert!(html.contains("<svg"), "charts in the HTML");
    assert!(
        html.contains("data-progress=\"0.67\""),
        "the plan's progress chart"
    );

    let bad = client
        .get_monthly_report(MonthlyReportRequest {
            month: "October".into(),
            format: "md".into(),
        })
        .await
        .expect_err("not a month");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    tokio::time::timeout(Duration::from_secs(20), stage.stop()).await??;
    Ok(())
}
