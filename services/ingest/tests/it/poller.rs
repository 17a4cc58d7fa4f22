//! The ServiceNow Table API poller against a local server that answers like the Table API, a real
//! nats-server and a real PostgreSQL: every row paged through and published once, a 429 survived,
//! the cursor stored, and a restarted ingest resuming from it without publishing old rows again.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use base64::Engine as _;
use herald_testkit::{InProcess, NatsServer, TestDatabase, eventually};
use serde_json::{Map, Value, json};

use crate::support::Harness;

const USER: &str = "svc.herald";
const PASSWORD: &str = "poll-secret-7f3a";
const PAGE: usize = 4;
const TABLES: [&str; 4] = ["incident", "change_request", "problem", "sc_req_item"];

/// A request the fake instance received.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    table: String,
    query: String,
    offset: usize,
    limit: usize,
    status: u16,
}

#[derive(Default)]
struct Instance {
    /// Rows per table, as stored (display_value=all pairs).
    rows: BTreeMap<String, Vec<Map<String, Value>>>,
    seen: Vec<Seen>,
    /// Answer the next request with 429 and `Retry-After: 1`.
    throttle_next: bool,
}

type Shared = Arc<Mutex<Instance>>;

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Instance> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

fn value<'a>(row: &'a Map<String, Value>, field: &str) -> &'a str {
    row.get(field)
        .and_then(|p| p.get("value"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `GET /api/now/table/{table}` as the Table API answers it, for the parameters the poller uses.
async fn table_api(
    State(shared): State<Shared>,
    Path(table): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let param = |name: &str| params.get(name).cloned().unwrap_or_default();
    let query = param("sysparm_query");
    let offset = param("sysparm_offset").parse::<usize>().unwrap_or(0);
    let limit = param("sysparm_limit").parse::<usize>().unwrap_or(10_000);
    let mut instance = lock(&shared);
    let record = |status: StatusCode, instance: &mut Instance| {
        instance.seen.push(Seen {
            at: Instant::now(),
            table: table.clone(),
            query: query.clone(),
            offset,
            limit,
            status: status.as_u16(),
        });
    };

    let expected_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(&expected_auth)
    {
        record(StatusCode::UNAUTHORIZED, &mut instance);
        let body = json!({"error": {"message": "User Not Authenticated", "detail": "Required to provide Auth information"}, "status": "failure"});
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    if instance.throttle_next {
        instance.throttle_next = false;
        record(StatusCode::TOO_MANY_REQUESTS, &mut instance);
        return (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "1")]).into_response();
    }
    // The poller relies on these; without them the rows would come in another shape or order.
    let since = query
        .strip_prefix("sys_updated_on>=")
        .and_then(|rest| rest.strip_suffix("^ORDERBYsys_updated_on^ORDERBYsys_id"));
    let (Some(since), "all", "true") = (
        since,
        param("sysparm_display_value").as_str(),
        param("sysparm_exclude_reference_link").as_str(),
    ) else {
        record(StatusCode::BAD_REQUEST, &mut instance);
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"message": "unexpected query", "detail": query}})),
        )
            .into_response();
    };
    let Some(rows) = instance.rows.get(&table) else {
        record(StatusCode::BAD_REQUEST, &mut instance);
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"message": "Invalid table", "detail": table}})),
        )
            .into_response();
    };
    let mut matching: Vec<Map<String, Value>> = rows
        .iter()
        .filter(|r| value(r, "sys_updated_on") >= since)
        .cloned()
        .collect();
    matching.sort_by(|a, b| {
        (value(a, "sys_updated_on"), value(a, "sys_id"))
            .cmp(&(value(b, "sys_updated_on"), value(b, "sys_id")))
    });
    let page: Vec<Value> = matching
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(Value::Object)
        .collect();
    record(StatusCode::OK, &mut instance);
    Json(json!({ "result": page })).into_response()
}

async fn start_instance(shared: Shared) -> anyhow::Result<String> {
    let app = Router::new()
        .route("/api/now/table/{table}", get(table_api))
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(url)
}

/// A fixture's record wrapped as `sysparm_display_value=all` returns it, with its sys_id and the
/// given version.
fn row_from(
    fixture: &str,
    sys_id: &str,
    mod_count: u32,
    updated_on: &str,
) -> anyhow::Result<Map<String, Value>> {
    let pushed: Value = serde_json::from_slice(&std::fs::read(
        crate::support::fixtures().join("servicenow").join(fixture),
    )?)?;
    let record = pushed["record"]
        .as_object()
        .ok_or_else(|| anyhow::anyhow!("{fixture} has no record"))?;
    let mut row: Map<String, Value> = record
        .iter()
        .map(|(k, v)| {
            let pair = match v {
                Value::Object(_) => v.clone(),
                other => json!({"display_value": other, "value": other}),
            };
            (k.clone(), pair)
        })
        .collect();
    let pair = |v: String| json!({"display_value": v, "value": v});
    row.insert("sys_id".into(), pair(sys_id.to_string()));
    row.insert("sys_mod_count".into(), pair(mod_count.to_string()));
    row.insert("sys_updated_on".into(), pair(updated_on.to_string()));
    Ok(row)
}

fn incident(
    n: u32,
    mod_count: u32,
    updated_on: &str,
    state: &str,
) -> anyhow::Result<Map<String, Value>> {
    let mut row = row_from(
        "incident-resolved-p1.json",
        &format!("{n:032x}"),
        mod_count,
        updated_on,
    )?;
    let pair = |v: String| json!({"display_value": v, "value": v});
    row.insert("number".into(), pair(format!("INC00500{n:02}")));
    row.insert("state".into(), pair(state.to_string()));
    row.insert("incident_state".into(), pair(state.to_string()));
    Ok(row)
}

fn event_id(table: &str, row: &Map<String, Value>) -> String {
    format!(
        "servicenow:{table}:{}:{}",
        value(row, "sys_id"),
        value(row, "sys_mod_count")
    )
}

fn poll_toml(instance: &str) -> String {
    format!(
        "[ingest.servicenow_poll]\ninstance = \"{instance}\"\ninterval = \"200ms\"\n\
         page_size = {PAGE}\nusername = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         since = \"2025-03-10T00:00:00Z\"\nrequest_timeout = \"5s\"\n"
    )
}

async fn start_ingest(
    nats: NatsServer,
    db: TestDatabase,
    instance: &str,
) -> anyhow::Result<Harness> {
    let toml = format!(
        "[catalog]\npath = \"catalog.toml\"\n[sources.servicenow]\nsecret = \"{}\"\n{}",
        crate::support::SECRET,
        poll_toml(instance)
    );
    let service = InProcess::start_with::<herald_ingest::Ingest>(
        nats,
        db,
        &toml,
        &crate::support::fixtures(),
    )
    .await?;
    Ok(Harness {
        service,
        client: reqwest::Client::new(),
    })
}

/// Each stored event id with how often it is in HERALD_EVENTS.
async fn stored_ids(h: &Harness) -> anyhow::Result<BTreeMap<String, usize>> {
    let mut ids = BTreeMap::new();
    for (_, event) in h.stored_events().await? {
        *ids.entry(event.id).or_insert(0) += 1;
    }
    Ok(ids)
}

/// The stored cursors: table → (sys_updated_on as ServiceNow writes it, sys_id).
async fn cursors(db: &TestDatabase) -> anyhow::Result<BTreeMap<String, (String, String)>> {
    let pool = db.pool().await?;
    let rows: Vec<(String, i64, String)> =
        sqlx::query_as("SELECT table_name, updated_on, sys_id FROM ingest.poll_cursors")
            .fetch_all(&pool)
            .await?;
    pool.close().await;
    Ok(rows
        .into_iter()
        .map(|(table, ms, sys_id)| {
            let at = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
            (table, (at.format("%Y-%m-%d %H:%M:%S").to_string(), sys_id))
        })
        .collect())
}

/// The newest (sys_updated_on, sys_id) of each table the instance holds.
fn newest(instance: &Shared) -> BTreeMap<String, (String, String)> {
    lock(instance)
        .rows
        .iter()
        .filter_map(|(table, rows)| {
            rows.iter()
                .map(|r| {
                    (
                        value(r, "sys_updated_on").to_string(),
                        value(r, "sys_id").to_string(),
                    )
                })
                .max()
                .map(|key| (table.clone(), key))
        })
        .collect()
}

/// The sum of `herald_ingest_poll_rows_total` for one outcome, over all tables.
async fn rows_counted(h: &Harness, outcome: &str) -> anyhow::Result<f64> {
    let text = h
        .client
        .get(format!("{}/metrics", h.http))
        .send()
        .await?
        .text()
        .await?;
    let label = format!("outcome=\"{outcome}\"");
    Ok(text
        .lines()
        .filter(|l| l.starts_with("herald_ingest_poll_rows_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// Waits until every table has been asked at least `more` further times, i.e. the poller went
/// round again after the state being checked.
async fn wait_for_passes(instance: &Shared, more: usize) -> anyhow::Result<()> {
    let start: HashMap<String, usize> = TABLES
        .iter()
        .map(|t| {
            (
                t.to_string(),
                lock(instance).seen.iter().filter(|s| s.table == *t).count(),
            )
        })
        .collect();
    eventually("further poll passes", Duration::from_secs(20), || {
        let ok = TABLES.iter().all(|t| {
            let now = lock(instance).seen.iter().filter(|s| s.table == *t).count();
            now >= start[*t] + more
        });
        async move { ok.then_some(()) }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_pages_and_resumes_from_its_cursor_after_a_restart() -> anyhow::Result<()> {
    // Eleven incidents over a few seconds, several sharing one, so pages end inside a second; one
    // still in progress (accepted, not an outcome, not published); one row of each other table.
    let mut incidents = vec![incident(1, 20, "2025-03-11 08:00:00", "6")?];
    for n in 2..=5 {
        incidents.push(incident(n, 20 + n, "2025-03-11 08:00:01", "6")?);
    }
    incidents.push(incident(6, 3, "2025-03-11 08:00:02", "2")?);
    for n in 7..=11 {
        incidents.push(incident(
            n,
            10 + n,
            &format!("2025-03-11 08:1{}:00", n - 7),
            "6",
        )?);
    }
    let others = [
        (
            "change_request",
            row_from(
                "change-implemented.json",
                "c58a2c2e86fe405851479bace023f051",
                31,
                "2025-03-10 09:30:12",
            )?,
        ),
        (
            "problem",
            row_from(
                "problem-closed.json",
                "76f129b3c7e17023a22fd99373feb8ba",
                19,
                "2025-03-12 08:00:00",
            )?,
        ),
        (
            "sc_req_item",
            row_from(
                "ritm-fulfilled.json",
                "3e2b1a143586340389f2e7c7ce537dea",
                14,
                "2025-03-12 15:22:05",
            )?,
        ),
    ];
    let mut expected: Vec<String> = incidents
        .iter()
        .filter(|r| value(r, "state") == "6")
        .map(|r| event_id("incident", r))
        .collect();
    expected.extend(others.iter().map(|(t, r)| event_id(t, r)));
    expected.sort();

    let shared: Shared = Arc::default();
    {
        let mut instance = lock(&shared);
        instance.rows.insert("incident".into(), incidents);
        for (table, row) in others {
            instance.rows.insert(table.into(), vec![row]);
        }
        instance.throttle_next = true;
    }
    let url = start_instance(shared.clone()).await?;

    // ---- first run
    let h = start_ingest(
        NatsServer::start().await?,
        TestDatabase::create().await?,
        &url,
    )
    .await?;
    let want = newest(&shared);
    eventually(
        "every row published and every cursor at the newest row",
        Duration::from_secs(30),
        || {
            let h = &h;
            let (expected, want) = (&expected, &want);
            async move {
                let ids = stored_ids(h).await.ok()?;
                let done = ids.keys().cloned().collect::<Vec<_>>() == *expected
                    && cursors(&h.db).await.ok()? == *want;
                done.then_some(())
            }
        },
    )
    .await?;
    // Go round again on every table: nothing may be published twice meanwhile.
    wait_for_passes(&shared, 2).await?;
    let ids = stored_ids(&h).await?;
    assert_eq!(ids.keys().cloned().collect::<Vec<_>>(), expected);
    assert!(
        ids.values().all(|n| *n == 1),
        "an event stored twice: {ids:?}"
    );
    assert_eq!(
        rows_counted(&h, "duplicate").await?,
        0.0,
        "a handled row was published again"
    );
    assert_eq!(rows_counted(&h, "published").await?, expected.len() as f64);
    // Rows that changed before the poller first started are its catch-up: history, never news.
    for (_, event) in h.stored_events().await? {
        assert_eq!(
            event.origin,
            herald_proto::v1::Origin::CatchUp as i32,
            "{} is history",
            event.id
        );
    }
    assert_eq!(
        rows_counted(&h, "ignored").await?,
        1.0,
        "the in-progress incident"
    );

    let seen = lock(&shared).seen.clone();
    assert!(
        seen.iter().all(|s| s.status != 401 && s.status != 400),
        "{seen:#?}"
    );
    // The first request of each table starts at `since`.
    for table in TABLES {
        let first = seen.iter().find(|s| s.table == table && s.status == 200);
        assert_eq!(
            first.map(|s| (s.query.as_str(), s.offset, s.limit)),
            Some((
                "sys_updated_on>=2025-03-10 00:00:00^ORDERBYsys_updated_on^ORDERBYsys_id",
                0,
                PAGE
            )),
            "{table}"
        );
    }
    // The 429 was waited out as Retry-After asked, then the same page asked again.
    let throttled: Vec<usize> = (0..seen.len()).filter(|i| seen[*i].status == 429).collect();
    assert_eq!(throttled.len(), 1, "{seen:#?}");
    let t = &seen[throttled[0]];
    let retry = seen[throttled[0] + 1..]
        .iter()
        .find(|s| s.table == t.table)
        .ok_or_else(|| anyhow::anyhow!("no request after the 429"))?;
    assert_eq!(
        (retry.status, retry.query.as_str(), retry.offset),
        (200, t.query.as_str(), t.offset)
    );
    assert!(
        retry.at - t.at >= Duration::from_secs(1),
        "asked again after {:?}",
        retry.at - t.at
    );
    // Incidents took three pages in the first pass: four rows from `since`, then from 08:00:01
    // past the three rows of that second already seen, then from 08:11:00 past one, a short page;
    // the next pass starts at the cursor.
    let incident_pages: Vec<(String, usize)> = seen
        .iter()
        .filter(|s| s.table == "incident" && s.status == 200)
        .take(4)
        .map(|s| (s.query.clone(), s.offset))
        .collect();
    let q = |since: &str| format!("sys_updated_on>={since}^ORDERBYsys_updated_on^ORDERBYsys_id");
    assert_eq!(
        incident_pages,
        vec![
            (q("2025-03-10 00:00:00"), 0),
            (q("2025-03-11 08:00:01"), 3),
            (q("2025-03-11 08:11:00"), 1),
            (q("2025-03-11 08:14:00"), 0),
        ]
    );

    // ---- restart on the same NATS and database, with changes made meanwhile
    let (nats, db) = h.service.stop_keeping_state().await?;
    let stored = cursors(&db).await?;
    assert_eq!(stored, want, "the cursor of every table is stored");
    let mut new_ids = Vec::new();
    {
        let mut instance = lock(&shared);
        instance.seen.clear();
        let incidents = instance.rows.entry("incident".into()).or_default();
        // Incident 3 resolved again later (a new version), a new incident in the cursor's own
        // second with a higher sys_id, and one later still.
        let again = incident(3, 40, "2025-03-11 09:00:00", "7")?;
        let same_second = incident(12, 5, "2025-03-11 08:14:00", "6")?;
        let later = incident(13, 8, "2025-03-11 09:30:00", "6")?;
        for row in [&again, &same_second, &later] {
            new_ids.push(event_id("incident", row));
        }
        incidents.retain(|r| value(r, "sys_id") != value(&again, "sys_id"));
        incidents.extend([again, same_second, later]);
        let problems = instance.rows.entry("problem".into()).or_default();
        let problem = row_from(
            "problem-closed.json",
            "76f129b3c7e17023a22fd99373feb8ba",
            20,
            "2025-03-12 08:05:00",
        )?;
        new_ids.push(event_id("problem", &problem));
        *problems = vec![problem];
    }
    let mut all: Vec<String> = expected.iter().chain(&new_ids).cloned().collect();
    all.sort();

    let h = start_ingest(nats, db, &url).await?;
    let want = newest(&shared);
    eventually(
        "the new rows published and the cursors moved",
        Duration::from_secs(30),
        || {
            let h = &h;
            let (all, want) = (&all, &want);
            async move {
                let ids = stored_ids(h).await.ok()?;
                let done = ids.keys().cloned().collect::<Vec<_>>() == *all
                    && cursors(&h.db).await.ok()? == *want;
                done.then_some(())
            }
        },
    )
    .await?;
    wait_for_passes(&shared, 2).await?;

    let seen = lock(&shared).seen.clone();
    for table in TABLES {
        let first = seen
            .iter()
            .find(|s| s.table == table)
            .ok_or_else(|| anyhow::anyhow!("{table} not polled after the restart"))?;
        assert_eq!(
            (first.query.clone(), first.offset),
            (q(&stored[table].0), 0),
            "{table}: the restarted poller starts at its stored cursor"
        );
    }
    let ids = stored_ids(&h).await?;
    assert_eq!(ids.keys().cloned().collect::<Vec<_>>(), all);
    assert!(
        ids.values().all(|n| *n == 1),
        "an event stored twice: {ids:?}"
    );
    // Old rows in the cursor's second were read again and skipped, never handed to the bus.
    assert_eq!(
        rows_counted(&h, "duplicate").await?,
        0.0,
        "an old row was published again"
    );
    assert_eq!(rows_counted(&h, "published").await?, all.len() as f64);
    assert!(rows_counted(&h, "skipped").await? > 0.0);
    h.stop().await
}
