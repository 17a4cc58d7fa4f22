//! What a reader waits for with years of wins stored: the leaderboards, the value summary and the
//! wall-screen dashboard, each asked many times of a spotlight service whose PostgreSQL holds N
//! wins (generated in the database: three years of outcomes over the catalog's services and teams
//! and 2,000 people, with the week and month rollups and totals spotlight keeps), p50 and p99.
#![allow(clippy::print_stdout)] // progress of a long run, for the person running the benchmark

use std::time::{Duration, Instant};

use anyhow::Context;
use herald_proto::v1::{
    Credit, CreditSubject, EventKind, GetLeaderboardRequest, GetValueSummaryRequest, Period,
    PeriodKind, Scope, Value, ValueLabel, Win, WinStatus, spotlight_client::SpotlightClient,
};
use herald_testkit::{NatsServer, ServiceProcess, TestDatabase, free_port};
use prost::Message;
use serde::Serialize;

use crate::load::percentile_ms;

/// People the generated wins credit (the catalog's teams and services are used as they are).
const PEOPLE: u64 = 2_000;
/// How far back the generated wins go.
const YEARS: i64 = 3;

#[derive(Debug, Serialize)]
pub struct QueryTime {
    pub query: String,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// What the answer held (entries, wins): a query that found nothing is not a measurement.
    pub found: u64,
}

#[derive(Debug, Serialize)]
pub struct QueryReport {
    pub wins: u64,
    pub seed_seconds: f64,
    pub samples: usize,
    pub times: Vec<QueryTime>,
    /// How often spotlight made the dashboard's figures while the dashboard was asked (it serves
    /// one view to every screen for a few seconds), and how long that took on average.
    pub dashboard_builds: u64,
    pub dashboard_build_mean_ms: f64,
}

/// Seeds `wins` wins into a fresh spotlight database and times each query `samples` times.
pub async fn measure(wins: u64, samples: usize) -> anyhow::Result<QueryReport> {
    let nats = NatsServer::start().await?;
    let db = TestDatabase::create()
        .await
        .context("the query benchmark needs PostgreSQL: run it through scripts/bench")?;
    let dir = tempfile::tempdir()?;
    let (http, grpc) = (free_port()?, free_port()?);
    let config = dir.path().join("herald.toml");
    std::fs::write(
        &config,
        format!(
            "[nats]\nurl = \"{}\"\n[database]\nurl = \"{}\"\n{}",
            nats.url(),
            db.url(),
            crate::targets::config("http://127.0.0.1:9/unused", &|service| {
                if service == "spotlight" {
                    format!("http_addr = \"127.0.0.1:{http}\"\ngrpc_addr = \"127.0.0.1:{grpc}\"\n")
                } else {
                    String::new()
                }
            })
        ),
    )?;
    let args = vec!["--config".to_string(), config.display().to_string()];
    let spotlight =
        ServiceProcess::spawn("herald-spotlight", &args, &crate::targets::env()).await?;
    crate::targets::wait_ready(http, &spotlight).await?;

    let started = Instant::now();
    seed(db.url(), wins).await?;
    let seed_seconds = started.elapsed().as_secs_f64();
    println!("  {wins} wins stored in {seed_seconds:.0} s");

    let client = SpotlightClient::connect(format!("http://127.0.0.1:{grpc}")).await?;
    let web = reqwest::Client::new();
    let mut times = Vec::new();
    for (kind, name) in [
        (PeriodKind::Week, "week"),
        (PeriodKind::Month, "month"),
        (PeriodKind::Quarter, "quarter"),
    ] {
        for (scope, scope_name) in [
            (Scope::Person, "people"),
            (Scope::Team, "teams"),
            (Scope::Service, "services"),
        ] {
            let request = GetLeaderboardRequest {
                period: Some(Period {
                    kind: kind as i32,
                    at: None,
                }),
                scope: scope as i32,
                limit: 10,
            };
            let time = timed(
                &format!("leaderboard, {name}, {scope_name}"),
                samples,
                || {
                    let mut client = client.clone();
                    async move {
                        let board = client.get_leaderboard(request).await?.into_inner();
                        Ok(board.entries.len() as u64)
                    }
                },
            )
            .await?;
            times.push(time);
        }
    }
    times.push(
        timed("value summary, month", samples, || {
            let mut client = client.clone();
            async move {
                let summary = client
                    .get_value_summary(GetValueSummaryRequest {
                        period: Some(Period {
                            kind: PeriodKind::Month as i32,
                            at: None,
                        }),
                    })
                    .await?
                    .into_inner();
                Ok(u64::from(summary.wins))
            }
        })
        .await?,
    );
    let dashboard = format!("http://127.0.0.1:{http}/api/dashboard");
    times.push(
        timed("dashboard figures (/api/dashboard)", samples, || {
            let web = web.clone();
            let url = dashboard.clone();
            async move {
                let body: serde_json::Value = web
                    .get(&url)
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                Ok(body["latest"].as_array().map_or(0, |l| l.len() as u64))
            }
        })
        .await?,
    );
    let page = format!("http://127.0.0.1:{http}/");
    times.push(
        timed("dashboard page (/)", samples, || {
            let web = web.clone();
            let url = page.clone();
            async move {
                let body = web
                    .get(&url)
                    .send()
                    .await?
                    .error_for_status()?
                    .text()
                    .await?;
                Ok(body.len() as u64)
            }
        })
        .await?,
    );
    let metrics = web
        .get(format!("http://127.0.0.1:{http}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let figure = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or_default()
    };
    let builds = figure("herald_spotlight_dashboard_build_seconds_count");
    let build_mean_ms =
        1000.0 * figure("herald_spotlight_dashboard_build_seconds_sum") / builds.max(1.0);
    println!(
        "  the dashboard's figures were made {builds} times, {build_mean_ms:.1} ms each on average"
    );
    drop(client);
    drop(spotlight);
    Ok(QueryReport {
        wins,
        seed_seconds,
        samples,
        times,
        // A count read back from Prometheus text: whole, and far below 2^53.
        dashboard_builds: builds as u64,
        dashboard_build_mean_ms: build_mean_ms,
    })
}

/// Asks `ask` a few times to warm up, then `samples` times one after another.
async fn timed<F, Fut>(query: &str, samples: usize, ask: F) -> anyhow::Result<QueryTime>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<u64>>,
{
    let mut found = 0;
    for _ in 0..5 {
        found = ask().await.with_context(|| query.to_string())?;
    }
    let mut latencies = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        found = ask().await?;
        latencies.push(started.elapsed());
    }
    anyhow::ensure!(
        found > 0,
        "{query} found nothing: the seeded data was not read"
    );
    latencies.sort();
    let time = QueryTime {
        query: query.to_string(),
        p50_ms: percentile_ms(&latencies, 50.0).unwrap_or_default(),
        p99_ms: percentile_ms(&latencies, 99.0).unwrap_or_default(),
        found,
    };
    println!(
        "  {query}: p50 {:.1} ms, p99 {:.1} ms",
        time.p50_ms, time.p99_ms
    );
    Ok(time)
}

/// One stored win's payload: every generated row carries it (the figures come from the columns).
fn template() -> Vec<u8> {
    Win {
        id: "bench-template".into(),
        kind: EventKind::IncidentResolved as i32,
        record_number: "INC0000001".into(),
        value: Some(Value {
            label: ValueLabel::Capacity as i32,
            amount: 1234.0,
            currency: "EUR".into(),
            hours: 24.0,
            users: 40.0,
            formula: "users × blocked share × hours × rate".into(),
            ..Value::default()
        }),
        credits: vec![Credit {
            subject: CreditSubject::Person as i32,
            id: "p-bench-1".into(),
            role: "resolved it".into(),
            share: 1.0,
            amount: 1234.0,
        }],
        headline: "A generated win".into(),
        status: WinStatus::Confirmed as i32,
        ..Win::default()
    }
    .encode_to_vec()
}

/// Fills spotlight's tables as counting `wins` wins would have, in the database's own terms.
async fn seed(url: &str, wins: u64) -> anyhow::Result<()> {
    let catalog = herald_catalog::Catalog::from_file(
        &herald_testkit::repo_root().join("deploy/catalog.toml"),
    )?;
    let tz = catalog.organisation().tz().name().to_string();
    let services: Vec<String> = catalog.services().iter().map(|s| s.id.clone()).collect();
    let teams: Vec<String> = catalog.teams().iter().map(|t| t.id.clone()).collect();
    // Spotlight keeps its tables in its own schema.
    let options: sqlx::postgres::PgConnectOptions = url.parse()?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(60))
        .connect_with(options.options([("search_path", "spotlight")]))
        .await?;
    let now = chrono::Utc::now().timestamp_millis();
    // The newest win is now, so the current week and month hold some whatever the count and the
    // day (with 1,000 wins over three years the newest was a day old, and on the first of a month
    // the month's leaderboards were empty).
    let span = YEARS * 365 * 24 * 3600 * 1000;
    let wins = i64::try_from(wins)?;
    // In chunks, so no single statement holds millions of rows in memory.
    let chunk = 1_000_000i64;
    // Packed as the services pack a win's payload, so the table is the size theirs would be.
    let payload = herald_runtime::payload::pack(template());
    let mut from = 1i64;
    while from <= wins {
        let to = (from + chunk - 1).min(wins);
        sqlx::query(
            "INSERT INTO wins (id, kind, occurred_at, business_service, team, label, amount, hours,
                               users, headline, payload, counted_at, status)
             SELECT 'bench-' || g,
                    (ARRAY['incident_resolved', 'change_implemented', 'problem_closed',
                           'request_fulfilled'])[1 + g % 4],
                    $1 - ((g - 1) * $2 / $3),
                    ($4::text[])[1 + g % cardinality($4::text[])],
                    ($5::text[])[1 + g % cardinality($5::text[])],
                    (ARRAY['capacity', 'avoided', 'cash'])[1 + g % 3],
                    (g % 9973) * 1.7, (g % 97) * 0.5, g % 40, 'A generated win', $6, $1, 'counted'
             FROM generate_series($7::bigint, $8::bigint) g",
        )
        .bind(now)
        .bind(span)
        .bind(wins)
        .bind(&services)
        .bind(&teams)
        .bind(&payload)
        .bind(from)
        .bind(to)
        .execute(&pool)
        .await?;
        from = to + 1;
    }
    // Rollups and totals per week and month, as spotlight writes them while it counts.
    for (period, trunc) in [("week", "week"), ("month", "month")] {
        let start = format!(
            "to_char(date_trunc('{trunc}', to_timestamp(occurred_at / 1000.0) AT TIME ZONE $1), 'YYYY-MM-DD')"
        );
        for (scope, subject) in [
            ("team", "team".to_string()),
            ("service", "business_service".to_string()),
            (
                "person",
                format!("'p-bench-' || (substr(id, 7)::bigint % {PEOPLE})"),
            ),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO rollups (period, period_start, scope, subject_id, value_cents, hours_milli, wins)
                 SELECT '{period}', {start}, '{scope}', {subject},
                        SUM(ROUND(amount * 100))::bigint, SUM(ROUND(hours * 1000))::bigint, COUNT(*)
                 FROM wins GROUP BY 2, 4"
            )))
            .bind(&tz)
            .execute(&pool)
            .await?;
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO totals (period, period_start, label, value_cents, hours_milli, people, wins)
             SELECT '{period}', {start}, label, SUM(ROUND(amount * 100))::bigint,
                    SUM(ROUND(hours * 1000))::bigint, 0, COUNT(*)
             FROM wins GROUP BY 2, 3"
        )))
        .bind(&tz)
        .execute(&pool)
        .await?;
    }
    sqlx::query("ANALYZE").execute(&pool).await?;
    pool.close().await;
    Ok(())
}
