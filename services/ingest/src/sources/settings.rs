//! `[sources.<name>]`: how deliveries from one tool are authenticated. A leaf: the configuration
//! and every source handler read it, and it reads neither.

use herald_runtime::Secret;
use serde::Deserialize;

use crate::verify::Keys;

/// `[sources.<name>]`: how deliveries from one tool are authenticated. Two values of each kind may
/// be active at once, so a secret can be rotated without losing deliveries.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSettings {
    /// HMAC key.
    pub secret: Option<Secret>,
    /// The key being rotated out; accepted until removed.
    pub previous_secret: Option<Secret>,
    /// Bearer token, for senders that cannot compute an HMAC.
    pub token: Option<Secret>,
    pub previous_token: Option<Secret>,
    /// How far a signed timestamp may be from ingest's clock (Zendesk), in seconds. Default 300.
    pub tolerance_seconds: Option<u64>,
    /// Jira: the custom field holding the Atlassian team (ids differ per site). Default
    /// `customfield_10001`.
    pub team_field: Option<String>,
    /// Accept deliveries that carry no signature or token. Off by default: a source with neither
    /// a secret nor a token refuses every delivery until one is configured, or until the operator
    /// opts in here (a warning is logged at every start).
    #[serde(default)]
    pub allow_unsigned: bool,
}

impl SourceSettings {
    /// Refuses settings the source's sender cannot use, so a typo'd config fails at start rather
    /// than with 401s later.
    pub(crate) fn check(&self, source: &str) -> Result<(), String> {
        let has = |s: &Option<Secret>| s.as_ref().is_some_and(|s| !s.is_empty());
        let secrets = has(&self.secret) || has(&self.previous_secret);
        let tokens = has(&self.token) || has(&self.previous_token);
        match source {
            "opsgenie" if secrets => {
                return Err("[sources.opsgenie] Opsgenie cannot sign its webhooks: set token (sent as Authorization: Bearer) instead of secret".into());
            }
            "jira" | "pagerduty" | "zendesk" | "github" if tokens => {
                return Err(format!(
                    "[sources.{source}] this tool signs its webhooks and cannot send a bearer token: set secret instead of token"
                ));
            }
            _ => {}
        }
        if self.tolerance_seconds.is_some() && source != "zendesk" {
            return Err(format!(
                "[sources.{source}] tolerance_seconds applies only to zendesk, the one scheme that signs a timestamp"
            ));
        }
        if self.allow_unsigned && (secrets || tokens) {
            return Err(format!(
                "[sources.{source}] allow_unsigned = true with a secret or token configured: remove allow_unsigned (signed deliveries are checked) or the keys"
            ));
        }
        if self.team_field.is_some() && source != "jira" {
            return Err(format!(
                "[sources.{source}] team_field applies only to jira"
            ));
        }
        Ok(())
    }

    pub fn keys(&self) -> Keys {
        let present = |s: &Option<Secret>| s.clone().filter(|s| !s.is_empty());
        Keys {
            secrets: [present(&self.secret), present(&self.previous_secret)]
                .into_iter()
                .flatten()
                .collect(),
            tokens: [present(&self.token), present(&self.previous_token)]
                .into_iter()
                .flatten()
                .collect(),
            tolerance: self
                .tolerance_seconds
                .map(std::time::Duration::from_secs)
                .unwrap_or(crate::verify::DEFAULT_TOLERANCE),
            allow_unsigned: self.allow_unsigned,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(secret: bool, token: bool) -> SourceSettings {
        SourceSettings {
            secret: secret.then(|| Secret::new("s")),
            token: token.then(|| Secret::new("t")),
            ..Default::default()
        }
    }

    #[test]
    fn allow_unsigned_is_optional_and_refused_beside_a_key() {
        let plain: SourceSettings = toml::from_str("secret = \"s\"").expect("no allow_unsigned");
        assert!(!plain.allow_unsigned);
        assert!(!plain.keys().is_open());
        let open: SourceSettings = toml::from_str("allow_unsigned = true").expect("opt-in");
        assert!(open.keys().is_open());
        let both: SourceSettings =
            toml::from_str("secret = \"s\"\nallow_unsigned = true").expect("parses");
        let err = both.check("jira").expect_err("a key and the opt-in");
        assert!(err.contains("allow_unsigned"), "{err}");
    }

    #[test]
    fn settings_a_sender_cannot_use_are_refused() {
        assert!(with(true, false).check("opsgenie").is_err());
        assert!(with(false, true).check("opsgenie").is_ok());
        for signing in ["jira", "pagerduty", "zendesk", "github"] {
            assert!(with(false, true).check(signing).is_err(), "{signing}");
            assert!(with(true, false).check(signing).is_ok(), "{signing}");
        }
        // Herald's own scheme takes either.
        assert!(with(true, true).check("servicenow").is_ok());
        let tolerance = SourceSettings {
            tolerance_seconds: Some(60),
            ..Default::default()
        };
        assert!(tolerance.check("zendesk").is_ok());
        let err = tolerance.check("github").expect_err("only zendesk");
        assert!(err.contains("zendesk"), "{err}");
        let team = SourceSettings {
            team_field: Some("customfield_10100".into()),
            ..Default::default()
        };
        assert!(team.check("jira").is_ok());
        assert!(team.check("servicenow").is_err());
    }
}
