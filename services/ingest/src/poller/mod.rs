//! Pulls ServiceNow records through the Table API, for instances that cannot push to Herald
//! (fixtures README §3.1).
//!
//! One loop per table. Each pass reads the rows updated at or after the stored cursor's second,
//! oldest first (ties by sys_id), page by page until a short page; rows at or before the cursor
//! are skipped, the rest go through ingest's own path (`Ingestor::accept_pulled`: normalise,
//! publish, stored by the bus) and the cursor is saved after each page, so a crash re-reads at
//! most one page. A re-read row has the same event id (`servicenow:{table}:{sys_id}:{mod_count}`)
//! and the bus drops it. Failures never stop the loop: 429, 5xx and network errors back off
//! exponentially with jitter (or as long as `Retry-After` asks); refused credentials are logged
//! as an error naming the configuration and retried at a slow pace.

pub mod cursor;
pub mod settings;
pub mod table_api;

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use herald_events::backoff::Backoff;
use herald_proto::v1::Origin;
use herald_runtime::{ErrorKind, component::Component};
use http::{HeaderMap, HeaderValue, header};
use sqlx::AnyPool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::accept::{Accepted, Ingestor};
pub use cursor::{Cursor, CursorStore};
pub use settings::PollSettings;
use table_api::{FetchError, TableApi, TableRow};

/// Backoff after transient failures: from a second up to five minutes.
const BACKOFF: Backoff = Backoff {
    base: Duration::from_secs(1),
    max: Duration::from_secs(300),
};

/// Why a pass over a table stopped early.
#[derive(Debug, thiserror::Error)]
enum PassError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Cursor(#[from] cursor::CursorError),
    /// The bus could not store an event; the page is read again later.
    #[error("the bus did not store {id}: {message}")]
    Publish { id: String, message: String },
    #[error("shutting down")]
    Stopped,
}

/// Adds the poller to ingest's component when `[ingest.servicenow_poll]` is configured.
pub fn attach(
    component: Component,
    settings: Option<PollSettings>,
    pool: AnyPool,
    ingestor: Arc<Ingestor>,
    shutdown: CancellationToken,
) -> anyhow::Result<Component> {
    Ok(match settings {
        Some(settings) => component.task(
            "servicenow-poller",
            Poller::new(settings, pool, ingestor)?.run(shutdown),
        ),
        None => component,
    })
}

/// The poller of one instance.
pub struct Poller {
    settings: PollSettings,
    api: TableApi,
    cursors: CursorStore,
    ingestor: Arc<Ingestor>,
    /// Rows changed before this are the catch-up: history, never news.
    started_at: chrono::DateTime<Utc>,
}

impl Poller {
    pub fn new(
        settings: PollSettings,
        pool: AnyPool,
        ingestor: Arc<Ingestor>,
    ) -> anyhow::Result<Self> {
        let api = TableApi::new(&settings)?;
        let cursors = CursorStore::new(pool, settings.instance.clone());
        Ok(Self {
            settings,
            api,
            cursors,
            ingestor,
            started_at: Utc::now(),
        })
    }

    /// Polls every configured table until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(
            instance = %self.settings.instance,
            tables = ?self.settings.tables,
            interval = ?self.settings.interval,
            page_size = self.settings.page_size,
            "polling the ServiceNow Table API"
        );
        let this = Arc::new(self);
        let mut loops = JoinSet::new();
        for table in this.settings.tables.clone() {
            loops.spawn(this.clone().run_table(table, shutdown.clone()));
        }
        while let Some(result) = loops.join_next().await {
            if let Err(e) = result {
                tracing::error!(error = %e, "a ServiceNow poll loop panicked");
            }
        }
    }

    async fn run_table(self: Arc<Self>, table: String, shutdown: CancellationToken) {
        let mut failures: u32 = 0;
        loop {
            let wait = match self.pass(&table, &shutdown).await {
                Ok(()) => {
                    failures = 0;
                    self.settings.interval
                }
                Err(PassError::Stopped) => return,
                Err(e) => {
                    failures = failures.saturating_add(1);
                    self.after_failure(&table, &e, failures)
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Logs a failed pass and says how long to wait before the next.
    fn after_failure(&self, table: &str, error: &PassError, failures: u32) -> Duration {
        let instance = self.settings.instance.as_str();
        let (result, wait) = match error {
            PassError::Fetch(FetchError::RateLimited { retry_after }) => (
                "rate_limited",
                retry_after.unwrap_or_else(|| BACKOFF.delay(failures)),
            ),
            PassError::Fetch(FetchError::Unauthorized { status }) => {
                let wait = self.settings.slow_interval();
                tracing::error!(
                    instance, table, status = status.as_u16(), retry_in = ?wait,
                    "the ServiceNow instance refused the poller's credentials; check username/password or token in [ingest.servicenow_poll] and that the account may read the table"
                );
                metrics::counter!("herald_ingest_poll_failures_total", "table" => table.to_string(), "reason" => "unauthorized").increment(1);
                return wait;
            }
            PassError::Fetch(FetchError::Refused { status, detail }) => {
                let wait = self.settings.slow_interval();
                tracing::error!(
                    instance, table, status = status.as_u16(), detail = %detail, retry_in = ?wait,
                    "the ServiceNow instance refused the poll request; check instance and tables in [ingest.servicenow_poll]"
                );
                metrics::counter!("herald_ingest_poll_failures_total", "table" => table.to_string(), "reason" => "refused").increment(1);
                return wait;
            }
            PassError::Fetch(FetchError::Server { .. }) => {
                ("server_error", BACKOFF.delay(failures))
            }
            PassError::Fetch(FetchError::Transport(_) | FetchError::Body(_)) => {
                ("unreachable", BACKOFF.delay(failures))
            }
            PassError::Cursor(_) => ("database", BACKOFF.delay(failures)),
            PassError::Publish { .. } => ("bus", BACKOFF.delay(failures)),
            PassError::Stopped => return Duration::ZERO,
        };
        tracing::warn!(
            instance, table, error = %error, failures, retry_in = ?wait,
            "ServiceNow poll failed; retrying"
        );
        metrics::counter!("herald_ingest_poll_failures_total", "table" => table.to_string(), "reason" => result).increment(1);
        wait
    }

    /// One pass over a table: from the stored cursor to the newest row.
    async fn pass(&self, table: &str, shutdown: &CancellationToken) -> Result<(), PassError> {
        let initial = Cursor::before(
            self.settings
                .since
                .unwrap_or_else(|| Utc::now() - chrono::Duration::hours(24)),
        );
        let mut cursor = self.cursors.load_or_init(table, initial).await?;
        let page_size = self.api.page_size();
        // Each page is asked for from the newest second seen so far, skipping the rows of that
        // second already seen: a row updated while we page moves to the end of the order instead
        // of shifting unseen rows past a plain offset.
        let mut since = cursor.updated_on;
        let mut offset: u64 = 0;
        loop {
            let since_text = cursor::format_sn(since);
            let rows = tokio::select! {
                _ = shutdown.cancelled() => return Err(PassError::Stopped),
                rows = self.api.fetch(table, &since_text, offset) => rows?,
            };
            metrics::counter!("herald_ingest_poll_requests_total", "table" => table.to_string())
                .increment(1);
            tracing::debug!(table, since = %since_text, offset, rows = rows.len(), "ServiceNow page");
            let handled = self.handle_page(table, &rows, &cursor, shutdown).await;
            let (last, outcome) = match handled {
                Ok(last) => (last, Ok(())),
                Err((last, e)) => (last, Err(e)),
            };
            if last > cursor {
                self.cursors.save(table, &last).await?;
                metrics::gauge!("herald_ingest_poll_cursor_seconds", "table" => table.to_string())
                    .set(last.updated_on.timestamp() as f64);
                cursor = last;
            }
            outcome?;
            if rows.len() < page_size as usize {
                return Ok(());
            }
            (since, offset) = next_page(since, offset, &rows);
        }
    }

    /// Publishes the page's rows after `cursor`; returns the last row handled (or `cursor`), also
    /// when stopped early, so the progress made is kept.
    async fn handle_page(
        &self,
        table: &str,
        rows: &[TableRow],
        cursor: &Cursor,
        shutdown: &CancellationToken,
    ) -> Result<Cursor, (Cursor, PassError)> {
        let mut last = cursor.clone();
        let instance = self.api.instance();
        for row in rows {
            if shutdown.is_cancelled() {
                return Err((last, PassError::Stopped));
            }
            let Some(key) = table_api::row_key(row) else {
                tracing::warn!(
                    instance,
                    table,
                    "a Table API row without sys_id or a readable sys_updated_on was left out"
                );
                count(table, "invalid");
                continue;
            };
            if key <= last {
                count(table, "skipped");
                continue;
            }
            let Some(body) = table_api::body(instance, table, row) else {
                tracing::warn!(instance, table, sys_id = %key.sys_id, "a Table API row without sys_mod_count was left out");
                count(table, "invalid");
                last = key;
                continue;
            };
            let origin = if key.updated_on < self.started_at {
                Origin::CatchUp
            } else {
                Origin::Live
            };
            match self
                .ingestor
                .accept_pulled("servicenow", &json_headers(), body, origin)
                .await
            {
                Ok(Accepted::Published {
                    duplicate: false, ..
                }) => count(table, "published"),
                Ok(Accepted::Published {
                    duplicate: true, ..
                }) => count(table, "duplicate"),
                // ServiceNow rows are one event each; a batch cannot come back.
                Ok(Accepted::Ignored { .. } | Accepted::Batch(_)) => count(table, "ignored"),
                Err(e) if e.kind == ErrorKind::Unavailable => {
                    let id = format!("servicenow:{table}:{}", key.sys_id);
                    return Err((
                        last,
                        PassError::Publish {
                            id,
                            message: e.message,
                        },
                    ));
                }
                Err(e) => {
                    // The row will not become usable by asking again; keeping the cursor here
                    // would stop the table for good.
                    tracing::warn!(
                        instance, table, sys_id = %key.sys_id, code = e.code, error = %e.message,
                        "a ServiceNow row could not be turned into an event and was left out"
                    );
                    count(table, "rejected");
                }
            }
            last = key;
        }
        Ok(last)
    }
}

/// Where the next page starts after a full page: from its newest second, past the rows of that
/// second it held; or, when the whole page was one second, further into that second.
fn next_page(
    since: chrono::DateTime<Utc>,
    offset: u64,
    rows: &[TableRow],
) -> (chrono::DateTime<Utc>, u64) {
    let newest = rows
        .iter()
        .rev()
        .find_map(table_api::row_key)
        .map(|k| k.updated_on);
    match newest {
        Some(newest) if newest > since => {
            // Count the trailing run of that second; a row without a key ends the run, which can
            // only make the next page re-read (and skip) a row, never miss one.
            let run = rows
                .iter()
                .rev()
                .take_while(|r| table_api::row_key(r).is_some_and(|k| k.updated_on == newest))
                .count();
            (newest, run as u64)
        }
        _ => (since, offset + rows.len() as u64),
    }
}

fn count(table: &str, outcome: &'static str) {
    metrics::counter!("herald_ingest_poll_rows_total", "table" => table.to_string(), "outcome" => outcome)
        .increment(1);
}

/// The body is JSON; recorded with the event for audit and replay.
fn json_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers
}

#[cfg(test)]
mod tests {
    use herald_catalog::Catalog;
    use herald_proto::v1::EventKind;
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::sources::{Normalised, servicenow::normalise_row};

    fn row(updated_on: &str, sys_id: &str) -> TableRow {
        let mut row = Map::new();
        row.insert(
            "sys_updated_on".into(),
            json!({"value": updated_on, "display_value": updated_on}),
        );
        row.insert(
            "sys_id".into(),
            json!({"value": sys_id, "display_value": sys_id}),
        );
        row
    }

    fn at(s: &str) -> chrono::DateTime<Utc> {
        cursor::parse_sn(s).unwrap_or_default()
    }

    #[test]
    fn the_next_page_starts_at_the_newest_second_seen() {
        let page = [
            row("2025-03-10 00:00:01", "a"),
            row("2025-03-10 00:00:02", "a"),
            row("2025-03-10 00:00:02", "b"),
        ];
        assert_eq!(
            next_page(at("2025-03-10 00:00:00"), 0, &page),
            (at("2025-03-10 00:00:02"), 2)
        );
    }

    #[test]
    fn a_page_of_one_second_moves_further_into_it() {
        let page = [
            row("2025-03-10 00:00:02", "c"),
            row("2025-03-10 00:00:02", "d"),
        ];
        assert_eq!(
            next_page(at("2025-03-10 00:00:02"), 2, &page),
            (at("2025-03-10 00:00:02"), 4)
        );
    }

    #[test]
    fn a_row_without_a_key_never_makes_the_next_page_skip_ahead() {
        let mut broken = row("2025-03-10 00:00:05", "z");
        broken.remove("sys_id");
        let page = [row("2025-03-10 00:00:05", "a"), broken];
        // The run is cut at the broken row: the next page re-reads row "a" and skips it.
        assert_eq!(
            next_page(at("2025-03-10 00:00:00"), 0, &page),
            (at("2025-03-10 00:00:05"), 0)
        );
    }

    /// Wraps every field of a pushed record the way `sysparm_display_value=all` returns it.
    fn display_all(record: &Map<String, Value>) -> TableRow {
        record
            .iter()
            .map(|(k, v)| {
                let pair = match v {
                    Value::Object(_) => v.clone(),
                    other => json!({"display_value": other, "value": other}),
                };
                (k.clone(), pair)
            })
            .collect()
    }

    #[test]
    fn the_normaliser_reads_a_polled_row() -> anyhow::Result<()> {
        let pushed: Value = serde_json::from_str(include_str!(
            "../../../../tests/fixtures/servicenow/incident-resolved-p1.json"
        ))?;
        let record = pushed["record"]
            .as_object()
            .ok_or_else(|| anyhow::anyhow!("fixture has no record"))?;
        let mut polled = display_all(record);
        // A pushed body carries sys_id beside the record; a Table API row carries it inside.
        polled.insert(
            "sys_id".into(),
            json!({"display_value": pushed["sys_id"], "value": pushed["sys_id"]}),
        );
        let body = table_api::body("https://larkspur.service-now.com", "incident", &polled)
            .ok_or_else(|| anyhow::anyhow!("no body"))?;
        let Normalised::Event { event, .. } = normalise_row(&Catalog::default(), &body)? else {
            anyhow::bail!("a resolved incident was not an event");
        };
        assert_eq!(
            event.id,
            "servicenow:incident:de67bddaeb083f8fbf5aa0a6fa7222c2:23"
        );
        assert_eq!(event.kind, EventKind::IncidentResolved as i32);
        let record = event.record.ok_or_else(|| anyhow::anyhow!("no record"))?;
        assert_eq!(record.number, "INC0048213");
        assert_eq!(record.priority, Some(1));
        assert_eq!(
            record.configuration_item.as_deref(),
            Some("wms-app-prod-eu")
        );
        assert_eq!(record.reassignment_count, Some(2));
        assert_eq!(record.sla_breached, Some(false));
        assert_eq!(
            record.url.as_deref(),
            Some(
                "https://larkspur.service-now.com/incident.do?sys_id=de67bddaeb083f8fbf5aa0a6fa7222c2"
            )
        );
        assert_eq!(
            record.resolved_at.as_ref().map(|t| t.seconds),
            Some(at("2025-03-11 08:04:37").timestamp())
        );
        Ok(())
    }
}
