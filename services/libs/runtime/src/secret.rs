//! Secrets: redacted in `Debug` and `Display`, read from the environment or a file.
//!
//! In herald.toml a secret is either a string (best supplied through the environment, e.g.
//! `HERALD_SOURCES__SERVICENOW__SECRET`) or a reference: `{ file = "/run/secrets/servicenow" }` or
//! `{ env = "SERVICENOW_WEBHOOK_SECRET" }`.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A value that must never be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Call only where it is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SecretSpec {
    Value(String),
    Reference(Reference),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reference {
    file: Option<String>,
    env: Option<String>,
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match SecretSpec::deserialize(deserializer)? {
            SecretSpec::Value(value) => Ok(Secret(value)),
            SecretSpec::Reference(Reference {
                file: Some(path),
                env: None,
            }) => {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    D::Error::custom(format!("cannot read secret file {path}: {e}"))
                })?;
                // Files written by editors and `echo` end with a newline that is not part of it.
                Ok(Secret(text.trim_end_matches(['\n', '\r']).to_string()))
            }
            SecretSpec::Reference(Reference {
                file: None,
                env: Some(var),
            }) => std::env::var(&var).map(Secret).map_err(|_| {
                D::Error::custom(format!("secret environment variable {var} is not set"))
            }),
            SecretSpec::Reference(_) => Err(D::Error::custom(
                "a secret reference takes exactly one of `file` or `env`",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Holder {
        secret: Secret,
    }

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{s}").contains("hunter2"));
        let h = Holder { secret: s };
        assert!(!format!("{h:?}").contains("hunter2"));
    }

    #[test]
    fn reads_plain_values_files_and_environment() -> anyhow::Result<()> {
        let plain: Holder = toml::from_str("secret = \"abc\"")?;
        assert_eq!(plain.secret.expose(), "abc");

        let dir = tempfile::tempdir()?;
        let path = dir.path().join("s");
        std::fs::write(&path, "from-file\n")?;
        let file: Holder = toml::from_str(&format!(
            "secret = {{ file = {:?} }}",
            path.display().to_string()
        ))?;
        assert_eq!(file.secret.expose(), "from-file");

        let missing = toml::from_str::<Holder>("secret = { file = \"/nonexistent/x\" }")
            .expect_err("missing file");
        assert!(missing.to_string().contains("/nonexistent/x"), "{missing}");

        let unset = toml::from_str::<Holder>("secret = { env = \"HERALD_TEST_SURELY_UNSET_VAR\" }")
            .expect_err("unset");
        assert!(
            unset.to_string().contains("HERALD_TEST_SURELY_UNSET_VAR"),
            "{unset}"
        );
        Ok(())
    }
}
