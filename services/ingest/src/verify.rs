//! Authenticity checks over the raw bytes, before anything is parsed.
//!
//! Herald's own scheme (ServiceNow, CloudEvents): `X-Herald-Signature: sha256=<Base64 HMAC-SHA256 of
//! the body>`, several comma-separated values allowed during a sender-side rotation, and a current
//! and a previous secret on Herald's side. Senders that cannot compute an HMAC may send
//! `Authorization: Bearer <token>` instead, where a token is configured.

use base64::Engine;
use herald_runtime::{ApiError, ErrorCode, Secret};
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

pub const HERALD_SIGNATURE: &str = "x-herald-signature";

/// The keys one source accepts. Empty means the source is open (a warning is logged at start-up).
#[derive(Clone, Default)]
pub struct Keys {
    pub secrets: Vec<Secret>,
    pub tokens: Vec<Secret>,
}

impl Keys {
    pub fn is_open(&self) -> bool {
        self.secrets.is_empty() && self.tokens.is_empty()
    }
}

fn unauthenticated(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Unauthenticated, code, message)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secrets: &[&str], tokens: &[&str]) -> Keys {
        Keys {
            secrets: secrets.iter().map(|s| Secret::new(*s)).collect(),
            tokens: tokens.iter().map(|s| Secret::new(*s)).collect(),
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
    fn open_sources_accept_anything() {
        assert_eq!(
            code(verify_herald_signature(
                &headers(&[]),
                b"x",
                &Keys::default()
            )),
            "ok"
        );
    }
}
