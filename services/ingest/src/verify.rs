//! Authenticity checks over the raw bytes, before anything is parsed.
//!
//! Herald's own scheme (ServiceNow, CloudEvents): `X-Herald-Signature: sha256=<Base64 HMAC-SHA256 of
//! the body>`, several comma-separated values allowed during a sender-side rotation, and a current
//! and a previous secret on Herald's side. Senders that cannot compute an HMAC may send
//! `Authorization: Bearer <token>` instead, where a token is configured.
//!
//! Vendor schemes: hex HMAC-SHA256 in `X-Hub-Signature` (Jira) and `X-Hub-Signature-256` (GitHub),
//! PagerDuty's `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]`, Zendesk's Base64 HMAC over
//! timestamp + body with a replay window, and Opsgenie's bearer token. Every comparison is
//! constant-time, and any of the configured secrets (current, previous) is accepted.

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use herald_runtime::{ApiError, ErrorKind, Secret};
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

pub const HERALD_SIGNATURE: &str = "x-herald-signature";

/// How far a signed timestamp may be from ingest's clock, either way, unless configured.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// The keys one source accepts. With none, the source refuses every delivery unless the operator
/// set `allow_unsigned` (then it is open, and a warning is logged at every start).
#[derive(Clone)]
pub struct Keys {
    pub secrets: Vec<Secret>,
    pub tokens: Vec<Secret>,
    /// Replay window for schemes that sign a timestamp.
    pub tolerance: Duration,
    /// The operator's explicit opt-in to unsigned deliveries when no key is configured.
    pub allow_unsigned: bool,
}

impl Default for Keys {
    fn default() -> Self {
        Self {
            secrets: Vec::new(),
            tokens: Vec::new(),
            tolerance: DEFAULT_TOLERANCE,
            allow_unsigned: false,
        }
    }
}

impl Keys {
    /// No key is configured: a delivery cannot be checked.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty() && self.tokens.is_empty()
    }

    /// Deliveries are accepted without any check (no key, and the operator allowed it).
    pub fn is_open(&self) -> bool {
        self.is_empty() && self.allow_unsigned
    }

    /// Refuses every delivery to a source nobody configured, before its own scheme is consulted,
    /// so an unconfigured source is closed whatever path the delivery took (HTTP, gRPC, batch).
    pub fn require_configured(&self, source: &str) -> Result<(), ApiError> {
        if !self.is_empty() || self.allow_unsigned {
            return Ok(());
        }
        let env = source.to_ascii_uppercase();
        Err(unauthenticated(
            "source_not_configured",
            format!(
                "source {source:?} has no secret or token configured, so Herald cannot check who sent this delivery and refuses it; \
                 set [sources.{source}] secret (or token) in herald.toml or HERALD_SOURCES__{env}__SECRET, \
                 or allow_unsigned = true to accept unsigned deliveries on a trusted network"
            ),
        ))
    }
}

fn unauthenticated(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::Unauthenticated, code, message)
}

/// Verifies Herald's HMAC signature header, or a bearer token.
pub fn verify_herald_signature(
    headers: &HeaderMap,
    body: &[u8],
    keys: &Keys,
) -> Result<(), ApiError> {
    if keys.is_open() {
        return Ok(());
    }
    if let Some(token) = bearer_token(headers)? {
        if keys.tokens.is_empty() {
            return Err(unauthenticated(
                "token_not_accepted",
                "this source is configured for HMAC signatures, not bearer tokens: send X-Herald-Signature",
            ));
        }
        return if keys.tokens.iter().any(|t| tokens_equal(t.expose(), &token)) {
            Ok(())
        } else {
            Err(unauthenticated(
                "token_mismatch",
                "the bearer token is not the one configured for this source",
            ))
        };
    }
    let Some(header) = headers.get(HERALD_SIGNATURE) else {
        return Err(unauthenticated(
            "signature_missing",
            "missing X-Herald-Signature header: send sha256=<base64 HMAC-SHA256 of the raw body>",
        ));
    };
    if keys.secrets.is_empty() {
        return Err(unauthenticated(
            "signature_not_accepted",
            "this source is configured for bearer tokens, not signatures: send Authorization: Bearer <token>",
        ));
    }
    let header = header
        .to_str()
        .map_err(|_| unauthenticated("signature_malformed", "X-Herald-Signature is not ASCII"))?;
    let mut any_well_formed = false;
    for value in header.split(',').map(str::trim).filter(|v| !v.is_empty()) {
        let Some(encoded) = value.strip_prefix("sha256=") else {
            continue;
        };
        let Ok(signature) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
            continue;
        };
        any_well_formed = true;
        if keys
            .secrets
            .iter()
            .any(|s| hmac_matches(s.expose().as_bytes(), body, &signature))
        {
            return Ok(());
        }
    }
    if !any_well_formed {
        return Err(unauthenticated(
            "signature_malformed",
            "X-Herald-Signature must be sha256=<standard Base64 with padding>, comma-separated during rotation",
        ));
    }
    Err(unauthenticated(
        "signature_mismatch",
        "X-Herald-Signature does not match the body: check the shared secret and that the body is sent byte for byte as signed",
    ))
}

/// HMAC-SHA256 of `body` under `key`, compared in constant time with `signature`.
pub fn hmac_matches(key: &[u8], body: &[u8], signature: &[u8]) -> bool {
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(signature).is_ok()
}

/// The Base64 HMAC-SHA256 a sender puts in X-Herald-Signature (for tools and tests).
pub fn sign_base64(key: &[u8], body: &[u8]) -> String {
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return String::new();
    };
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn bearer_token(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| unauthenticated("token_malformed", "Authorization header is not ASCII"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            Ok(Some(token.trim().to_string()))
        }
        _ => Err(unauthenticated(
            "token_malformed",
            "Authorization must be `Bearer <token>`",
        )),
    }
}

/// Compares digests rather than the tokens, so neither content nor length leaks through timing.
fn tokens_equal(expected: &str, given: &str) -> bool {
    let a = Sha256::digest(expected.as_bytes());
    let b = Sha256::digest(given.as_bytes());
    a.ct_eq(&b).into()
}

fn header_str<'a>(
    headers: &'a HeaderMap,
    name: &str,
    shown: &str,
) -> Result<Option<&'a str>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| unauthenticated("signature_malformed", format!("{shown} is not ASCII"))),
    }
}

fn any_secret_matches(keys: &Keys, message: &[&[u8]], signature: &[u8]) -> bool {
    keys.secrets.iter().any(|s| {
        let Ok(mut mac) = HmacSha256::new_from_slice(s.expose().as_bytes()) else {
            return false;
        };
        for part in message {
            mac.update(part);
        }
        mac.verify_slice(signature).is_ok()
    })
}

fn require_secrets(keys: &Keys, shown: &str) -> Result<(), ApiError> {
    if keys.secrets.is_empty() {
        return Err(unauthenticated(
            "signature_not_accepted",
            format!("no secret is configured to check {shown}: set [sources.<name>] secret"),
        ));
    }
    Ok(())
}

/// `<header>: sha256=<lowercase hex HMAC-SHA256 of the body>`, one value per delivery (Jira's
/// `X-Hub-Signature`, GitHub's `X-Hub-Signature-256`).
pub fn verify_hex_sha256(
    headers: &HeaderMap,
    header: &str,
    shown: &str,
    body: &[u8],
    keys: &Keys,
) -> Result<(), ApiError> {
    if keys.is_open() {
        return Ok(());
    }
    let Some(value) = header_str(headers, header, shown)? else {
        return Err(unauthenticated(
            "signature_missing",
            format!("missing {shown} header: sha256=<hex HMAC-SHA256 of the raw body>"),
        ));
    };
    require_secrets(keys, shown)?;
    let signature = value
        .trim()
        .strip_prefix("sha256=")
        .and_then(|hex_value| hex::decode(hex_value).ok())
        .ok_or_else(|| {
            unauthenticated(
                "signature_malformed",
                format!("{shown} must be sha256=<hex HMAC-SHA256>"),
            )
        })?;
    if any_secret_matches(keys, &[body], &signature) {
        Ok(())
    } else {
        Err(mismatch(shown))
    }
}

fn mismatch(shown: &str) -> ApiError {
    unauthenticated(
        "signature_mismatch",
        format!(
            "{shown} does not match the body: check the shared secret and that the body is sent byte for byte as signed"
        ),
    )
}

/// PagerDuty v3: `X-PagerDuty-Signature: v1=<hex>,v1=<hex>` during a rotation. Any `v1` value that
/// matches, in any position, is enough; other versions are ignored.
pub fn verify_pagerduty(headers: &HeaderMap, body: &[u8], keys: &Keys) -> Result<(), ApiError> {
    const SHOWN: &str = "X-PagerDuty-Signature";
    if keys.is_open() {
        return Ok(());
    }
    let Some(value) = header_str(headers, "x-pagerduty-signature", SHOWN)? else {
        return Err(unauthenticated(
            "signature_missing",
            "missing X-PagerDuty-Signature header: v1=<hex HMAC-SHA256 of the raw body>",
        ));
    };
    require_secrets(keys, SHOWN)?;
    let mut any_well_formed = false;
    for part in value.split(',').map(str::trim) {
        let Some((version, hex_value)) = part.split_once('=') else {
            continue;
        };
        if version != "v1" {
            continue;
        }
        let Ok(signature) = hex::decode(hex_value) else {
            continue;
        };
        any_well_formed = true;
        if any_secret_matches(keys, &[body], &signature) {
            return Ok(());
        }
    }
    if any_well_formed {
        Err(mismatch(SHOWN))
    } else {
        Err(unauthenticated(
            "signature_malformed",
            "X-PagerDuty-Signature must hold v1=<hex HMAC-SHA256>, comma-separated during rotation",
        ))
    }
}

/// Zendesk: `X-Zendesk-Webhook-Signature: <Base64 HMAC-SHA256 of timestamp + body>`, with the
/// timestamp from `X-Zendesk-Webhook-Signature-Timestamp` no further than the tolerance from `now`.
/// The signature is checked first so a forged request learns nothing about the window.
pub fn verify_zendesk(
    headers: &HeaderMap,
    body: &[u8],
    keys: &Keys,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    const SHOWN: &str = "X-Zendesk-Webhook-Signature";
    const SHOWN_TS: &str = "X-Zendesk-Webhook-Signature-Timestamp";
    if keys.is_open() {
        return Ok(());
    }
    let signature = header_str(headers, "x-zendesk-webhook-signature", SHOWN)?;
    let timestamp = header_str(headers, "x-zendesk-webhook-signature-timestamp", SHOWN_TS)?;
    let (Some(signature), Some(timestamp)) = (signature, timestamp) else {
        return Err(unauthenticated(
            "signature_missing",
            "missing X-Zendesk-Webhook-Signature or X-Zendesk-Webhook-Signature-Timestamp",
        ));
    };
    require_secrets(keys, SHOWN)?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| {
            unauthenticated(
                "signature_malformed",
                "X-Zendesk-Webhook-Signature must be standard Base64",
            )
        })?;
    if !any_secret_matches(keys, &[timestamp.as_bytes(), body], &signature) {
        return Err(mismatch(SHOWN));
    }
    let signed_at = DateTime::parse_from_rfc3339(timestamp.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            unauthenticated(
                "signature_malformed",
                format!("{SHOWN_TS} must be an RFC 3339 time, got {timestamp:?}"),
            )
        })?;
    let skew = (now - signed_at).abs();
    let tolerance = chrono::Duration::from_std(keys.tolerance).unwrap_or(chrono::Duration::MAX);
    if skew > tolerance {
        return Err(unauthenticated(
            "signature_stale",
            format!(
                "the signed timestamp {timestamp} is {}s from ingest's clock, more than the {}s allowed: a replay, or a clock to fix",
                skew.num_seconds(),
                keys.tolerance.as_secs()
            ),
        ));
    }
    Ok(())
}

/// Opsgenie cannot sign: `Authorization: Bearer <token>` only.
pub fn verify_bearer(headers: &HeaderMap, keys: &Keys) -> Result<(), ApiError> {
    if keys.is_open() {
        return Ok(());
    }
    let Some(token) = bearer_token(headers)? else {
        return Err(unauthenticated(
            "token_missing",
            "missing Authorization: Bearer <token> (set it as a custom header of the integration)",
        ));
    };
    if keys.tokens.iter().any(|t| tokens_equal(t.expose(), &token)) {
        Ok(())
    } else {
        Err(unauthenticated(
            "token_mismatch",
            "the bearer token is not the one configured for this source",
        ))
    }
}

/// The hex HMAC-SHA256 of Jira, GitHub and PagerDuty signatures (for tools and tests).
pub fn sign_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return String::new();
    };
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secrets: &[&str], tokens: &[&str]) -> Keys {
        Keys {
            secrets: secrets.iter().map(|s| Secret::new(*s)).collect(),
            tokens: tokens.iter().map(|s| Secret::new(*s)).collect(),
            ..Keys::default()
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                http::HeaderValue::from_str(v).expect("value"),
            );
        }
        map
    }

    fn code(result: Result<(), ApiError>) -> &'static str {
        result.err().map(|e| e.code).unwrap_or("ok")
    }

    #[test]
    fn right_wrong_missing_and_rotated_signatures() {
        let body = b"{\"a\":1}\n";
        let good = format!("sha256={}", sign_base64(b"current", body));
        let old = format!("sha256={}", sign_base64(b"previous", body));
        let k = keys(&["current", "previous"], &[]);
        assert_eq!(
            code(verify_herald_signature(
                &headers(&[(HERALD_SIGNATURE, &good)]),
                body,
                &k
            )),
            "ok"
        );
        assert_eq!(
            code(verify_herald_signature(
                &headers(&[(HERALD_SIGNATURE, &old)]),
                body,
                &k
            )),
            "ok"
        );
        let other = format!("sha256={}", sign_base64(b"unknown", body));
        let rotating = format!("{other}, {good}");
        assert_eq!(
            code(verify_herald_signature(
                &headers(&[(HERALD_SIGNATURE, &rotating)]),
                body,
                &k
            )),
            "ok"
        );
        assert_eq!(
            code(verify_herald_signature(
                &headers(&[(HERALD_SIGNATURE, &other)]),
                body,
                &k
            )),
            "signature_mismatch"
        );
        assert_eq!(
            code(verify_herald_signature(&headers(&[]), body, &k)),
            "signature_missing"
        );
        assert_eq!(
            code(verify_herald_signature(
                &headers(&[(HERALD_SIGNATURE, "md5=abc")]),
                body,
                &k
            )),
            "signature_malformed"
        );
        // One changed byte of the body is a mismatch.
        assert_eq!(
            code(verify_herald_signature(
                &headers(&[(HERALD_SIGNATURE, &good)]),
                b"{\"a\":2}\n",
                &k
            )),
            "signature_mismatch"
        );
    }

    #[test]
    fn bearer_tokens_when_configured() {
        let k = keys(&[], &["t0ken"]);
        assert_eq!(
            code(verify_herald_signature(
                &headers(&[("authorization", "Bearer t0ken")]),
                b"",
                &k
            )),
            "ok"
        );
        assert_eq!(
            code(verify_herald_signature(
                &headers(&[("authorization", "Bearer nope")]),
                b"",
                &k
            )),
            "token_mismatch"
        );
        assert_eq!(
            code(verify_herald_signature(
                &headers(&[("authorization", "Basic abc")]),
                b"",
                &k
            )),
            "token_malformed"
        );
        let hmac_only = keys(&["s"], &[]);
        assert_eq!(
            code(verify_herald_signature(
                &headers(&[("authorization", "Bearer s")]),
                b"",
                &hmac_only
            )),
            "token_not_accepted"
        );
    }

    #[test]
    fn a_source_without_keys_is_closed_unless_the_operator_opens_it() {
        let closed = Keys::default();
        let err = closed
            .require_configured("jira")
            .expect_err("no key and no opt-in");
        assert_eq!(err.code, "source_not_configured");
        assert!(
            err.message.contains("[sources.jira] secret"),
            "{}",
            err.message
        );
        assert!(err.message.contains("allow_unsigned"), "{}", err.message);
        // Even called directly, a scheme does not wave an unconfigured delivery through.
        assert_ne!(
            code(verify_herald_signature(&headers(&[]), b"x", &closed)),
            "ok"
        );

        let open = Keys {
            allow_unsigned: true,
            ..Keys::default()
        };
        assert!(open.require_configured("jira").is_ok());
        assert_eq!(
            code(verify_herald_signature(&headers(&[]), b"x", &open)),
            "ok"
        );
        // A configured key always wins over the opt-in.
        let keyed = Keys {
            allow_unsigned: true,
            ..keys(&["s"], &[])
        };
        assert!(!keyed.is_open());
    }
}
