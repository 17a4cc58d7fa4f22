//! `[ingest.servicenow_poll]`: where to poll, how often, and as whom. Checked when the file is read,
//! so a mistake stops start-up with a message naming the key rather than surfacing as 401s later.

use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_runtime::Secret;
use serde::Deserialize;

/// The tables Herald reads (fixtures README §3.1); the poller reads all of them unless told otherwise.
pub const TABLES: [&str; 4] = ["incident", "change_request", "problem", "sc_req_item"];

const SECTION: &str = "[ingest.servicenow_poll]";

/// How the poller authenticates to the Table API.
#[derive(Debug, Clone)]
pub enum Auth {
    Basic { username: String, password: Secret },
    Bearer(Secret),
}

/// The validated section.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawPollSettings")]
pub struct PollSettings {
    /// The instance's base URL without a trailing slash, e.g. `https://larkspur.service-now.com`.
    pub instance: String,
    pub tables: Vec<String>,
    /// Pause between two passes over a table once it is caught up.
    pub interval: Duration,
    /// `sysparm_limit`: rows per request.
    pub page_size: u32,
    pub auth: Auth,
    /// Where a table starts when no cursor is stored yet; `None`: 24 hours before the first start.
    pub since: Option<DateTime<Utc>>,
    /// Time allowed for one Table API request, body included.
    pub request_timeout: Duration,
}

impl PollSettings {
    /// The wait after an authentication or configuration failure: no point asking again soon, but
    /// an operator fixing the account should not have to restart Herald.
    pub fn slow_interval(&self) -> Duration {
        self.interval.max(Duration::from_secs(300))
    }
}

/// The section as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPollSettings {
    instance: Option<String>,
    tables: Option<Vec<String>>,
    #[serde(default, with = "humantime_serde")]
    interval: Option<Duration>,
    page_size: Option<u32>,
    username: Option<String>,
    password: Option<Secret>,
    token: Option<Secret>,
    since: Option<DateTime<Utc>>,
    #[serde(default, with = "humantime_serde")]
    request_timeout: Option<Duration>,
}

impl TryFrom<RawPollSettings> for PollSettings {
    type Error = String;

    fn try_from(raw: RawPollSettings) -> Result<Self, String> {
        let instance = raw
            .instance
            .map(|i| i.trim().trim_end_matches('/').to_string());
        let Some(instance) = instance.filter(|i| !i.is_empty()) else {
            return Err(format!(
                "{SECTION} needs `instance`, the instance's base URL (e.g. \"https://example.service-now.com\")"
            ));
        };
        match reqwest::Url::parse(&instance) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
            _ => {
                return Err(format!(
                    "{SECTION} instance {instance:?} is not an http(s) URL (e.g. \"https://example.service-now.com\")"
                ));
            }
        }

        let tables = raw
            .tables
            .unwrap_or_else(|| TABLES.iter().map(|t| t.to_string()).collect());
        if tables.is_empty() {
            return Err(format!(
                "{SECTION} tables is empty; leave it out to poll {}",
                TABLES.join(", ")
            ));
        }
        if let Some(unknown) = tables.iter().find(|t| !TABLES.contains(&t.as_str())) {
            return Err(format!(
                "{SECTION} tables: {unknown:?} is not a table Herald reads; use any of {}",
                TABLES.join(", ")
            ));
        }
        let mut unique = tables.clone();
        unique.sort();
        unique.dedup();
        if unique.len() != tables.len() {
            return Err(format!("{SECTION} tables names a table twice"));
        }

        let auth = match (raw.username, raw.password, raw.token) {
            (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
                return Err(format!(
                    "{SECTION} sets both basic auth (username/password) and token; keep one of them"
                ));
            }
            (Some(username), Some(password), None)
                if !username.trim().is_empty() && !password.is_empty() =>
            {
                Auth::Basic { username, password }
            }
            (Some(_), _, None) | (None, Some(_), None) => {
                return Err(format!(
                    "{SECTION} basic auth needs both a non-empty `username` and `password`"
                ));
            }
            (None, None, Some(token)) if !token.is_empty() => Auth::Bearer(token),
            (None, None, Some(_)) => return Err(format!("{SECTION} token is empty")),
            (None, None, None) => {
                return Err(format!(
                    "{SECTION} needs credentials: `username` and `password`, or `token` (an OAuth bearer token)"
                ));
            }
        };

        let page_size = raw.page_size.unwrap_or(100);
        if !(1..=10_000).contains(&page_size) {
            return Err(format!(
                "{SECTION} page_size must be between 1 and 10000, got {page_size}"
            ));
        }
        let interval = raw.interval.unwrap_or(Duration::from_secs(60));
        if interval.is_zero() {
            return Err(format!("{SECTION} interval must be more than zero"));
        }
        let request_timeout = raw.request_timeout.unwrap_or(Duration::from_secs(30));
        if request_timeout.is_zero() {
            return Err(format!("{SECTION} request_timeout must be more than zero"));
        }
        Ok(Self {
            instance,
            tables,
            interval,
            page_size,
            auth,
            since: raw.since,
            request_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<PollSettings, String> {
        toml::from_str::<PollSettings>(toml_text).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_fill_what_is_left_out() -> Result<(), String> {
        let s = parse(
            "instance = \"https://x.service-now.com/\"\nusername = \"herald\"\npassword = \"pw\"",
        )?;
        assert_eq!(s.instance, "https://x.service-now.com");
        assert_eq!(s.tables, TABLES.to_vec());
        assert_eq!(s.page_size, 100);
        assert_eq!(s.interval, Duration::from_secs(60));
        assert_eq!(s.request_timeout, Duration::from_secs(30));
        assert!(s.since.is_none());
        assert!(matches!(s.auth, Auth::Basic { .. }));
        Ok(())
    }

    #[test]
    fn durations_tables_and_since_are_read() -> Result<(), String> {
        let s = parse(
            "instance = \"https://x.service-now.com\"\ntoken = \"t\"\ninterval = \"2m\"\n\
             request_timeout = \"5s\"\ntables = [\"incident\"]\nsince = \"2025-03-10T00:00:00Z\"\npage_size = 7",
        )?;
        assert_eq!(s.interval, Duration::from_secs(120));
        assert_eq!(s.request_timeout, Duration::from_secs(5));
        assert_eq!(s.tables, vec!["incident".to_string()]);
        assert_eq!(s.page_size, 7);
        assert_eq!(
            s.since.map(|d| d.to_rfc3339()),
            Some("2025-03-10T00:00:00+00:00".to_string())
        );
        assert!(matches!(s.auth, Auth::Bearer(_)));
        Ok(())
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            ("username = \"u\"\npassword = \"p\"", "needs `instance`"),
            (
                "instance = \"ftp://x\"\nusername = \"u\"\npassword = \"p\"",
                "not an http(s) URL",
            ),
            (
                "instance = \"https://x\"\nusername = \"u\"\npassword = \"p\"\ntoken = \"t\"",
                "both basic auth",
            ),
            ("instance = \"https://x\"\nusername = \"u\"", "needs both"),
            ("instance = \"https://x\"", "needs credentials"),
            (
                "instance = \"https://x\"\ntoken = \"t\"\ntables = [\"incident\", \"sys_user\"]",
                "\"sys_user\" is not a table",
            ),
            (
                "instance = \"https://x\"\ntoken = \"t\"\npage_size = 0",
                "page_size",
            ),
            (
                "instance = \"https://x\"\ntoken = \"t\"\nintervall = \"1m\"",
                "intervall",
            ),
        ];
        for (text, expected) in cases {
            match parse(text) {
                Ok(_) => panic!("accepted: {text}"),
                Err(e) => assert!(e.contains(expected), "{text}: {e}"),
            }
        }
    }

    #[test]
    fn secrets_stay_out_of_debug() -> Result<(), String> {
        let s = parse("instance = \"https://x\"\nusername = \"u\"\npassword = \"hunter2\"")?;
        assert!(!format!("{s:?}").contains("hunter2"));
        Ok(())
    }
}
