//! The demo's configuration: the sample catalog (written to the data directory so it can be read
//! and edited), a key for every source in that source's own scheme, headline wins on the console,
//! every announcement in `announcements.jsonl`.

use std::{fmt::Write as _, path::Path};

use anyhow::Context;
use herald_proto::v1::Source;
use herald_runtime::ConfigLoader;

use super::{CATALOG, channels::DemoChannels};

/// The demo's shared secret, for every source that signs (all but Opsgenie).
pub const SECRET: &str = "herald-demo-secret";
/// The demo's bearer token, for Opsgenie (which cannot sign).
pub const TOKEN: &str = "herald-demo-token";

/// Whether a source's tool holds a bearer token rather than a signing secret.
pub fn takes_token(source: Source) -> bool {
    source == Source::Opsgenie
}

/// `[sources.<name>]` for every registered source: a secret, or a token for Opsgenie.
fn sources_toml() -> String {
    let mut toml = String::new();
    for source in Source::ALL {
        let (key, value) = if takes_token(*source) {
            ("token", TOKEN)
        } else {
            ("secret", SECRET)
        };
        let _ = writeln!(toml, "[sources.{}]\n{key} = \"{value}\"\n", source.token());
    }
    toml
}

/// The demo configuration, with the catalog written next to the data, and the real channels the
/// user named.
pub fn config_loader(data_dir: &Path, channels: &DemoChannels) -> anyhow::Result<ConfigLoader> {
    let (extra, local) = channels.toml()?;
    let digest_due = chrono::Utc::now() + chrono::Duration::seconds(30);
    let plan_start = chrono::Utc::now().date_naive() - chrono::Days::new(30);
    let catalog = data_dir.join("catalog.toml");
    if !catalog.exists() {
        std::fs::write(&catalog, CATALOG)
            .with_context(|| format!("cannot write {}", catalog.display()))?;
    }
    let announcements = data_dir.join("announcements.jsonl");
    let toml = format!(
        r#"
[telemetry]
log_level = "warn"

[catalog]
path = "catalog.toml"

{sources}
# The demo shows its wins at once instead of holding them 72 hours; a reopen, rollback or related
# incident inside the usual window still withdraws a win, and its headline is corrected.
[scoring.verification]
hold_back = "0s"
confirm_every = "500ms"

[scoring.verification.kinds.change_implemented]
hold_back = "0s"

[scoring.verification.kinds.problem_closed]
hold_back = "0s"

# The 90-day plan the demo's IT department agreed with the business: the report and the dashboard
# show where each KPI stands between its baseline and its goal.
[[scoring.plan]]
kpi = "mttr_median_minutes"
baseline = 2400
goal = 960
start = "{plan_start}"
end = "{plan_end}"

[[scoring.plan]]
kpi = "change_success_rate"
baseline = 80
goal = 95
start = "{plan_start}"
end = "{plan_end}"

[[scoring.plan]]
kpi = "csat"
baseline = 70
goal = 85
start = "{plan_start}"
end = "{plan_end}"

[[scoring.plan]]
kpi = "capacity_hours"
baseline = 200
goal = 400
start = "{plan_start}"
end = "{plan_end}"

[spotlight]
headline_min_value = 5000
dashboard_refresh_seconds = 10
digest_check_every = "1s"

# The demo's weekly digest goes out half a minute after the start, once the month is replayed
# (a real one goes out on Monday at 08:00); a restart of the same demo does not send it again.
[[spotlight.digests]]
name = "weekly"
period = "week"
day = "{digest_day}"
at = "{digest_at}"
timezone = "UTC"

[notify]
poll_interval = "200ms"
# True only when a channel given on the command line is on this machine or a private network.
allow_private_networks = {local}

[[notify.channels]]
name = "console"
kind = "console"

[[notify.channels]]
name = "file"
kind = "file"
path = {announcements:?}

[[notify.routes]]
name = "headlines-to-console"
channel = "console"
kinds = ["headline_win", "correction", "lesson", "digest"]

[[notify.routes]]
name = "everything-to-file"
channel = "file"
{extra}"#,
        sources = sources_toml(),
        plan_start = plan_start,
        plan_end = plan_start + chrono::Days::new(90),
        digest_day = digest_due.format("%a").to_string().to_lowercase(),
        digest_at = digest_due.format("%H:%M:%S"),
        announcements = announcements.display().to_string(),
    );
    Ok(ConfigLoader::from_toml_str(&toml, data_dir)?)
}

#[cfg(test)]
mod tests {
    use herald_ingest::IngestConfig;

    use super::*;

    #[test]
    fn every_source_has_a_key_of_the_kind_its_tool_holds() {
        let dir = tempfile::tempdir().expect("temp dir");
        let loader = config_loader(dir.path(), &DemoChannels::default()).expect("demo config");
        let config = IngestConfig::load(&loader).expect("the demo config loads");
        for source in Source::ALL {
            let settings = config
                .sources
                .get(source.token())
                .unwrap_or_else(|| panic!("no [sources.{}] in the demo", source.token()));
            let keys = settings.keys();
            if takes_token(*source) {
                assert!(
                    keys.secrets.is_empty() && !keys.tokens.is_empty(),
                    "{source:?}"
                );
            } else {
                assert!(
                    !keys.secrets.is_empty() && keys.tokens.is_empty(),
                    "{source:?}"
                );
            }
        }
    }
}
