//! One `herald.toml` read by every service: the shared sections (`[nats]`, `[database]`,
//! `[telemetry]`, `[catalog]`) plus each service's own (`[ingest]`, `[scoring]`, …).
//!
//! Every key can be overridden from the environment: `HERALD_` then the path with `__` between parts,
//! e.g. `HERALD_NATS__URL`, `HERALD_SOURCES__SERVICENOW__SECRET`, `HERALD_INGEST__HTTP_ADDR`.
//! The file is found at `--config`, else `$HERALD_CONFIG`, else `./herald.toml` when it exists;
//! with none of them, the defaults apply (and the environment still does).

use std::path::{Path, PathBuf};

use figment::{
    Figment,
    providers::{Env, Format, Toml},
};
use herald_catalog::{Catalog, CatalogSpec};
use herald_events::topology::StreamSettings;
use serde::{Deserialize, de::DeserializeOwned};

use crate::Secret;

/// Top-level sections Herald knows; anything else in the file is most likely a typo.
const KNOWN_SECTIONS: &[&str] = &[
    "auth",
    "nats",
    "database",
    "telemetry",
    "catalog",
    "sources",
    "ingest",
    "scoring",
    "spotlight",
    "notify",
    "standalone",
    "tls",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path} does not exist")]
    Missing { path: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("invalid catalog: {0}")]
    Catalog(#[from] herald_catalog::CatalogError),
}

impl From<figment::Error> for ConfigError {
    fn from(e: figment::Error) -> Self {
        // figment's message names the key and where its value came from (file or environment).
        ConfigError::Invalid(e.to_string())
    }
}

/// The layered configuration sources, ready to extract sections from.
#[derive(Debug, Clone)]
pub struct ConfigLoader {
    figment: Figment,
    /// Relative paths in the file (the catalog) are resolved against the file's directory.
    base_dir: PathBuf,
    file: Option<PathBuf>,
}

impl ConfigLoader {
    /// Loads `path`, `$HERALD_CONFIG` or `./herald.toml` (the first that is given), then the
    /// environment on top.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let explicit = path
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("HERALD_CONFIG").map(PathBuf::from));
        let file = match explicit {
            Some(path) if !path.is_file() => {
                return Err(ConfigError::Missing {
                    path: path.display().to_string(),
                });
            }
            Some(path) => Some(path),
            None => Some(PathBuf::from("herald.toml")).filter(|p| p.is_file()),
        };
        let mut figment = Figment::new();
        if let Some(file) = &file {
            figment = figment.merge(Toml::file_exact(file));
        }
        let base_dir = file
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let loader = Self {
            figment: figment.merge(env_provider()),
            base_dir,
            file,
        };
        loader.check_sections()?;
        Ok(loader)
    }

    /// Configuration from TOML text (and the environment), for tests and embedding.
    pub fn from_toml_str(text: &str, base_dir: &Path) -> Result<Self, ConfigError> {
        let loader = Self {
            figment: Figment::new()
                .merge(Toml::string(text))
                .merge(env_provider()),
            base_dir: base_dir.to_path_buf(),
            file: None,
        };
        loader.check_sections()?;
        Ok(loader)
    }

    /// The file the configuration came from, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    fn check_sections(&self) -> Result<(), ConfigError> {
        let value = self.figment.extract::<figment::value::Dict>()?;
        if let Some(unknown) = value.keys().find(|k| !KNOWN_SECTIONS.contains(&k.as_str())) {
            return Err(ConfigError::Invalid(format!(
                "unknown section [{unknown}]; known sections are {}",
                KNOWN_SECTIONS.join(", ")
            )));
        }
        Ok(())
    }

    /// A section, or its defaults when it is absent.
    pub fn section<T: DeserializeOwned + Default>(&self, name: &str) -> Result<T, ConfigError> {
        if self.figment.find_value(name).is_ok() {
            self.figment
                .extract_inner(name)
                .map_err(|e| ConfigError::Invalid(format!("[{name}]: {e}")))
        } else {
            Ok(T::default())
        }
    }

    /// The sections every service reads.
    pub fn shared(&self) -> Result<SharedConfig, ConfigError> {
        Ok(SharedConfig {
            nats: self.section("nats")?,
            database: self.section("database")?,
            telemetry: self.section("telemetry")?,
            auth: self.section("auth")?,
            tls: self.section("tls")?,
            catalog: self.catalog()?,
        })
    }

    /// The catalog: from `[catalog] path = "…"` (relative to the configuration file), or written
    /// inline as `[[catalog.services]]`, `[[catalog.teams]]`, … An absent catalog is empty: Herald
    /// then computes no value, and says so.
    pub fn catalog(&self) -> Result<Catalog, ConfigError> {
        let Ok(value) = self.figment.find_value("catalog") else {
            return Ok(Catalog::default());
        };
        let dict = value
            .into_dict()
            .ok_or_else(|| ConfigError::Invalid("[catalog] must be a table".into()))?;
        match dict.get("path") {
            Some(path) => {
                if dict.len() > 1 {
                    return Err(ConfigError::Invalid(
                        "[catalog] takes either `path` or inline entries, not both".into(),
                    ));
                }
                let path = path
                    .as_str()
                    .ok_or_else(|| ConfigError::Invalid("catalog.path must be a string".into()))?;
                let path = self.base_dir.join(path);
                Ok(Catalog::from_file(&path)?)
            }
            None => {
                let spec: CatalogSpec = self
                    .figment
                    .extract_inner("catalog")
                    .map_err(|e| ConfigError::Invalid(format!("[catalog]: {e}")))?;
                Ok(Catalog::from_spec(spec)?)
            }
        }
    }
}

fn env_provider() -> Env {
    // Only `HERALD_<SECTION>__…` are settings. Other HERALD_ variables (HERALD_CONFIG names the file;
    // tools have their own) are not, and must not be read as unknown sections.
    Env::prefixed("HERALD_").split("__").filter(|key| {
        // Depending on figment's order of operations the key arrives split (`ingest.port`) or not.
        let key = key.as_str().replace("__", ".");
        key.split_once('.').is_some_and(|(section, _)| {
            KNOWN_SECTIONS
                .iter()
                .any(|known| section.eq_ignore_ascii_case(known))
        })
    })
}

/// The sections shared by every service.
#[derive(Debug, Clone)]
pub struct SharedConfig {
    pub nats: NatsConfig,
    pub database: DatabaseConfig,
    pub telemetry: TelemetryConfig,
    pub auth: crate::auth::AuthConfig,
    pub tls: crate::tls::TlsConfig,
    pub catalog: Catalog,
}

/// `[nats]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    pub url: String,
    pub streams: StreamSettings,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".to_string(),
            streams: StreamSettings::default(),
        }
    }
}

/// `[database]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// A secret, because it usually carries a password.
    pub url: Secret,
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: Secret::new("postgres://postgres@127.0.0.1:5432/herald"),
            max_connections: 10,
        }
    }
}

/// `[telemetry]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// `text` for people, `json` for log collectors.
    pub log_format: LogFormat,
    /// A tracing filter, e.g. `info` or `info,herald_notify=debug`. `RUST_LOG` wins when set.
    pub log_level: String,
    /// OTLP/gRPC collector endpoint, e.g. `http://otel-collector:4317`. No export when absent or
    /// empty (so `HERALD_TELEMETRY__OTLP_ENDPOINT=` turns it off).
    pub otlp_endpoint: Option<String>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Text,
            log_level: "info".to_string(),
            otlp_endpoint: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Demo {
        port: u16,
        name: Option<String>,
    }

    #[test]
    fn sections_default_when_absent_and_read_when_present() -> anyhow::Result<()> {
        let loader = ConfigLoader::from_toml_str("[ingest]\nport = 7\n", Path::new("."))?;
        let demo: Demo = loader.section("ingest")?;
        assert_eq!(demo.port, 7);
        let absent: Demo = loader.section("scoring")?;
        assert_eq!(absent, Demo::default());
        let shared = loader.shared()?;
        assert_eq!(shared.nats.url, "nats://127.0.0.1:4222");
        assert!(shared.catalog.is_empty());
        Ok(())
    }

    #[test]
    fn unknown_sections_and_keys_are_errors_that_name_them() -> anyhow::Result<()> {
        let err = ConfigLoader::from_toml_str("[ingst]\nport = 1\n", Path::new("."))
            .expect_err("typo in section");
        assert!(err.to_string().contains("ingst"), "{err}");
        let loader = ConfigLoader::from_toml_str("[ingest]\nprot = 1\n", Path::new("."))?;
        let err = loader.section::<Demo>("ingest").expect_err("typo in key");
        assert!(err.to_string().contains("prot"), "{err}");
        Ok(())
    }

    #[test]
    // figment's own test helper fixes the closure's error type.
    #[allow(clippy::result_large_err)]
    fn environment_overrides_the_file_with_double_underscores() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("HERALD_INGEST__PORT", "9");
            jail.set_env("HERALD_NATS__URL", "nats://nats:4222");
            jail.set_env("HERALD_CONFIG", "/ignored/herald.toml");
            jail.set_env("HERALD_NATS_SERVER", "/usr/sbin/nats-server");
            let loader =
                ConfigLoader::from_toml_str("[ingest]\nport = 7\nname = \"a\"\n", Path::new("."))
                    .map_err(|e| e.to_string())?;
            let demo: Demo = loader.section("ingest").map_err(|e| e.to_string())?;
            assert_eq!(demo.port, 9);
            assert_eq!(demo.name.as_deref(), Some("a"));
            let shared = loader.shared().map_err(|e| e.to_string())?;
            assert_eq!(shared.nats.url, "nats://nats:4222");
            Ok(())
        });
    }

    #[test]
    fn the_database_url_is_redacted_in_debug_output() -> anyhow::Result<()> {
        let loader = ConfigLoader::from_toml_str(
            "[database]\nurl = \"postgres://herald:s3cret@db/herald\"\n",
            Path::new("."),
        )?;
        let shared = loader.shared()?;
        assert_eq!(
            shared.database.url.expose(),
            "postgres://herald:s3cret@db/herald"
        );
        assert!(!format!("{shared:?}").contains("s3cret"));
        Ok(())
    }

    #[test]
    fn the_catalog_loads_from_a_path_relative_to_the_file() -> anyhow::Result<()> {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures");
        let loader =
            ConfigLoader::from_toml_str("[catalog]\npath = \"catalog.toml\"\n", &fixtures)?;
        assert_eq!(loader.catalog()?.services().len(), 6);

        let inline = r#"
[[catalog.teams]]
id = "team-a"
name = "A"
"#;
        let loader = ConfigLoader::from_toml_str(inline, Path::new("."))?;
        assert_eq!(loader.catalog()?.teams().len(), 1);

        let missing = ConfigLoader::from_toml_str("[catalog]\npath = \"nope.toml\"\n", &fixtures)?;
        let err = missing.catalog().expect_err("missing file");
        assert!(err.to_string().contains("nope.toml"), "{err}");
        Ok(())
    }

    #[test]
    fn a_named_file_that_does_not_exist_is_an_error() {
        let err =
            ConfigLoader::load(Some(Path::new("/nonexistent/herald.toml"))).expect_err("missing");
        assert!(
            err.to_string().contains("/nonexistent/herald.toml"),
            "{err}"
        );
    }
}
