//! The demo's configuration: the sample catalog (written to the data directory so it can be read
//! and edited), a key for every source in that source's own scheme, headline wins on the console,
//! every announcement in `announcements.jsonl`.

use std::{fmt::Write as _, path::Path};

use anyhow::Context;
use herald_proto::v1::Source;
use herald_runtime::ConfigLoader;

use super::CATALOG;

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

/// The demo configuration, with the catalog written next to the data.
pub fn config_loader(data_dir: &Path) -> anyhow::Result<ConfigLoader> {
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

[spotlight]
headline_min_value = 5000
dashboard_refresh_seconds = 10

[notify]
poll_interval = "200ms"

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
kinds = ["headline_win", "correction", "lesson"]

[[notify.routes]]
name = "everything-to-file"
channel = "file"
"#,
        sources = sources_toml(),
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
        let loader = config_loader(dir.path()).expect("demo config");
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
