//! The ServiceNow Table API as the poller uses it: one page of a table's rows updated since a
//! moment, and each row turned into Herald's ServiceNow body (fixtures README §3.1).

use std::time::Duration;

use bytes::Bytes;
use http::{StatusCode, header};
use serde_json::{Map, Value, json};

use super::{
    cursor::{Cursor, parse_sn},
    settings::{Auth, PollSettings},
};

/// A row as the Table API returns it with `sysparm_display_value=all`: every field a
/// `{display_value, value}` pair.
pub type TableRow = Map<String, Value>;

/// Retry-After beyond this is treated as this: an instance asking for an hour's pause is more
/// likely misconfigured than meant.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("rate limited (429)")]
    RateLimited { retry_after: Option<Duration> },
    #[error("the instance refused the credentials ({status})")]
    Unauthorized { status: StatusCode },
    /// Another 4xx: a table the account may not read, a query the instance rejects. Asking again
    /// soon will not help.
    #[error("the instance refused the request ({status}): {detail}")]
    Refused { status: StatusCode, detail: String },
    #[error("the instance failed ({status})")]
    Server { status: StatusCode },
    #[error("request failed: {0}")]
    Transport(#[from] reqwest::Error),
    /// A 200 that is not the Table API's JSON (a hibernating instance answers with an HTML page).
    #[error("unexpected answer: {0}")]
    Body(String),
}

/// A client for one instance.
pub struct TableApi {
    client: reqwest::Client,
    instance: String,
    auth: Auth,
    page_size: u32,
}

impl TableApi {
    pub fn new(settings: &PollSettings) -> Result<Self, reqwest::Error> {
        herald_runtime::install_tls_provider();
        let client = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("Herald/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            instance: settings.instance.clone(),
            auth: settings.auth.clone(),
            page_size: settings.page_size,
        })
    }

    pub fn page_size(&self) -> u32 {
        self.page_size
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Rows of `table` updated at or after `since` (ServiceNow's text form), oldest first with
    /// ties broken by sys_id, skipping `offset` of them.
    pub async fn fetch(
        &self,
        table: &str,
        since: &str,
        offset: u64,
    ) -> Result<Vec<TableRow>, FetchError> {
        let mut url = reqwest::Url::parse(&format!("{}/api/now/table/{table}", self.instance))
            .map_err(|e| FetchError::Body(format!("instance URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair("sysparm_query", &query(since))
            .append_pair("sysparm_display_value", "all")
            .append_pair("sysparm_exclude_reference_link", "true")
            // The instance need not count the whole result for every page.
            .append_pair("sysparm_no_count", "true")
            .append_pair("sysparm_limit", &self.page_size.to_string())
            .append_pair("sysparm_offset", &offset.to_string());
        let request = self
            .client
            .get(url)
            .header(header::ACCEPT, "application/json");
        let request = match &self.auth {
            Auth::Basic { username, password } => {
                request.basic_auth(username, Some(password.expose()))
            }
            Auth::Bearer(token) => request.bearer_auth(token.expose()),
        };
        let response = request.send().await?;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(retry_after);
            return Err(FetchError::RateLimited { retry_after });
        }
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(FetchError::Unauthorized { status });
        }
        if status.is_server_error() {
            return Err(FetchError::Server { status });
        }
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(FetchError::Refused {
                status,
                detail: error_detail(&text),
            });
        }
        let body = response.bytes().await?;
        parse_result(&body)
    }
}

/// `sysparm_query`: the rows updated since a moment, in a stable order so pages do not overlap.
pub fn query(since: &str) -> String {
    format!("sys_updated_on>={since}^ORDERBYsys_updated_on^ORDERBYsys_id")
}

/// `Retry-After` as seconds or an HTTP date, at most [`MAX_RETRY_AFTER`].
pub fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
            (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

fn parse_result(body: &[u8]) -> Result<Vec<TableRow>, FetchError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        FetchError::Body(format!(
            "not JSON ({e}); is the instance awake and the URL right?"
        ))
    })?;
    let rows = match value.get("result") {
        Some(Value::Array(rows)) => rows,
        _ => return Err(FetchError::Body("no \"result\" array".into())),
    };
    rows.iter()
        .map(|row| {
            row.as_object()
                .cloned()
                .ok_or_else(|| FetchError::Body("a result row is not an object".into()))
        })
        .collect()
}

/// ServiceNow's `{"error": {"message", "detail"}}`, shortened for a log line.
fn error_detail(text: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .map(|e| {
            [e.get("message"), e.get("detail")]
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(": ")
        })
        .unwrap_or_else(|| text.to_string());
    message.chars().take(300).collect()
}

/// A field's value: the `value` of a display_value=all pair, or the plain string.
pub fn field_value<'a>(row: &'a TableRow, field: &str) -> Option<&'a str> {
    match row.get(field)? {
        Value::Object(pair) => pair.get("value").and_then(Value::as_str),
        Value::String(s) => Some(s.as_str()),
        _ => None,
    }
    .map(str::trim)
    .filter(|s| !s.is_empty())
}

/// Where a row sits in the poll order; `None` when it lacks a sys_id or a readable
/// sys_updated_on, which a Table API row always has.
pub fn row_key(row: &TableRow) -> Option<Cursor> {
    Some(Cursor {
        updated_on: parse_sn(field_value(row, "sys_updated_on")?)?,
        sys_id: field_value(row, "sys_id")?.to_string(),
    })
}

/// Herald's ServiceNow body for a polled row: the row is the record as given (the normaliser
/// reads `value` of scalars and both halves of references).
pub fn body(instance: &str, table: &str, row: &TableRow) -> Option<Bytes> {
    let sys_id = field_value(row, "sys_id")?;
    let mod_count = field_value(row, "sys_mod_count")?;
    let body = json!({
        "instance": instance,
        "table": table,
        "sys_id": sys_id,
        "sys_mod_count": mod_count,
        "record": row,
    });
    serde_json::to_vec(&body).ok().map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(v: &str) -> Value {
        json!({"display_value": v, "value": v})
    }

    fn row() -> TableRow {
        let mut row = Map::new();
        row.insert("sys_id".into(), pair("de67bddaeb083f8fbf5aa0a6fa7222c2"));
        row.insert("sys_mod_count".into(), pair("23"));
        row.insert("sys_updated_on".into(), pair("2025-03-11 08:04:37"));
        row
    }

    #[test]
    fn the_query_asks_for_a_stable_order() {
        assert_eq!(
            query("2025-03-10 00:00:00"),
            "sys_updated_on>=2025-03-10 00:00:00^ORDERBYsys_updated_on^ORDERBYsys_id"
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after("1"), Some(Duration::from_secs(1)));
        assert_eq!(retry_after(" 30 "), Some(Duration::from_secs(30)));
        assert_eq!(retry_after("99999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
    }

    #[test]
    fn a_row_becomes_the_servicenow_body() -> anyhow::Result<()> {
        let bytes = body("https://x.service-now.com", "incident", &row())
            .ok_or_else(|| anyhow::anyhow!("no body"))?;
        let value: Value = serde_json::from_slice(&bytes)?;
        assert_eq!(value["instance"], "https://x.service-now.com");
        assert_eq!(value["table"], "incident");
        assert_eq!(value["sys_id"], "de67bddaeb083f8fbf5aa0a6fa7222c2");
        assert_eq!(value["sys_mod_count"], "23");
        assert_eq!(value["record"]["sys_mod_count"]["value"], "23");
        let key = row_key(&row()).ok_or_else(|| anyhow::anyhow!("no key"))?;
        assert_eq!(key.updated_on_text(), "2025-03-11 08:04:37");
        Ok(())
    }

    #[test]
    fn rows_without_identity_have_no_key() {
        let mut r = row();
        r.insert("sys_updated_on".into(), pair(""));
        assert!(row_key(&r).is_none());
        let mut r = row();
        r.remove("sys_id");
        assert!(row_key(&r).is_none());
        assert!(body("https://x", "incident", &r).is_none());
    }

    #[test]
    fn error_bodies_are_summarised() {
        assert_eq!(
            error_detail(
                r#"{"error":{"message":"Invalid table","detail":"sys_x"},"status":"failure"}"#
            ),
            "Invalid table: sys_x"
        );
        assert_eq!(error_detail("plain"), "plain");
    }
}
