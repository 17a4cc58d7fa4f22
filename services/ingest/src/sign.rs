//! The sending side of [`crate::verify`]: the headers each tool puts on a delivery, computed for a
//! body and a secret (or token). `herald send`, `herald up --demo` and tests use it so that what
//! Herald signs and what Herald verifies cannot drift apart: the tests below sign every fixture
//! and check it against each source's own `verify` and `normalise`.
//!
//! | source | authenticity | other headers the tool sends that ingest reads |
//! |---|---|---|
//! | servicenow, cloudevents | `X-Herald-Signature: sha256=<Base64 HMAC>` or `Authorization: Bearer` | cloudevents: `Content-Type` decides the mode |
//! | jira | `X-Hub-Signature: sha256=<hex HMAC>` | |
//! | github | `X-Hub-Signature-256: sha256=<hex HMAC>` | `X-GitHub-Event`, `X-GitHub-Delivery` |
//! | pagerduty | `X-PagerDuty-Signature: v1=<hex HMAC>` | |
//! | opsgenie | `Authorization: Bearer <token>` (it cannot sign) | |
//! | zendesk | `X-Zendesk-Webhook-Signature: <Base64 HMAC of timestamp + body>` | `X-Zendesk-Webhook-Signature-Timestamp`, `X-Zendesk-Webhook-Invocation-Id` |

use chrono::{DateTime, Utc};
use herald_proto::v1::Source;
use sha2::{Digest, Sha256};

use crate::verify::{HERALD_SIGNATURE, sign_base64, sign_hex};

/// Header name (lowercase) and value, in the order a tool would send them.
pub type Headers = Vec<(&'static str, String)>;

/// What a source was configured with on Herald's side, and so what the sender holds.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    /// The shared secret of an HMAC scheme.
    Secret(&'a str),
    /// A bearer token (Opsgenie; ServiceNow and CloudEvents senders that cannot compute an HMAC).
    Token(&'a str),
}

/// Why a delivery cannot be prepared the way its tool would send it.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    #[error(
        "{name} signs with a shared secret and cannot send a bearer token: use its secret (--secret)"
    )]
    TokenNotAccepted { name: &'static str },
    #[error(
        "opsgenie cannot sign a delivery: it sends Authorization: Bearer <token>; use its token (--token)"
    )]
    SecretNotAccepted,
    #[error(
        "GitHub names the event in X-GitHub-Event and this body does not say which event it is: \
         pass it (--event pull_request, deployment_status, ping, …)"
    )]
    GithubEventUnknown,
}

/// Facts about a delivery that are not in its body.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// GitHub's event name; guessed from the body when absent.
    pub github_event: Option<&'a str>,
    /// The time a timestamped signature (Zendesk) is made at.
    pub now: DateTime<Utc>,
}

impl Default for Context<'_> {
    fn default() -> Self {
        Self {
            github_event: None,
            now: Utc::now(),
        }
    }
}

/// The headers `source`'s tool sends with `body`: content type, event-type headers, and the
/// signature or token when a credential is given (without one the delivery goes unsigned).
pub fn headers(
    source: Source,
    body: &[u8],
    credential: Option<Credential<'_>>,
    context: &Context<'_>,
) -> Result<Headers, Error> {
    let mut headers: Headers = vec![("content-type", content_type(source, body).to_string())];
    match source {
        Source::Servicenow | Source::Cloudevents | Source::Unspecified => {
            headers.extend(credential.map(|c| herald(c, body)));
        }
        Source::Jira => {
            if let Some(secret) = secret_of(source, credential)? {
                headers.push(jira(secret, body));
            }
        }
        Source::Github => {
            let event = match context.github_event {
                Some(event) => event.to_string(),
                None => github_event(body)
                    .ok_or(Error::GithubEventUnknown)?
                    .to_string(),
            };
            headers.push(("x-github-event", event));
            headers.push(("x-github-delivery", github_delivery(body)));
            if let Some(secret) = secret_of(source, credential)? {
                headers.push(github(secret, body));
            }
        }
        Source::Pagerduty => {
            if let Some(secret) = secret_of(source, credential)? {
                headers.push(pagerduty(secret, body));
            }
        }
        Source::Opsgenie => match credential {
            None => {}
            Some(Credential::Token(token)) => headers.push(bearer(token)),
            Some(Credential::Secret(_)) => return Err(Error::SecretNotAccepted),
        },
        Source::Zendesk => {
            headers.push(("x-zendesk-webhook-invocation-id", zendesk_invocation(body)));
            if let Some(secret) = secret_of(source, credential)? {
                headers.extend(zendesk(secret, body, context.now));
            }
        }
    }
    Ok(headers)
}

/// How `source`'s tool proves a delivery is its own, in a few words (for banners and help).
pub fn scheme(source: Source) -> &'static str {
    match source {
        Source::Servicenow | Source::Cloudevents => {
            "X-Herald-Signature: sha256=<Base64 HMAC>, or Authorization: Bearer <token>"
        }
        Source::Jira => "X-Hub-Signature: sha256=<hex HMAC>",
        Source::Github => "X-Hub-Signature-256: sha256=<hex HMAC>",
        Source::Pagerduty => "X-PagerDuty-Signature: v1=<hex HMAC>",
        Source::Opsgenie => "Authorization: Bearer <token> (Opsgenie cannot sign)",
        Source::Zendesk => "X-Zendesk-Webhook-Signature: <Base64 HMAC of timestamp + body>",
        Source::Unspecified => "none",
    }
}

fn secret_of<'a>(
    source: Source,
    credential: Option<Credential<'a>>,
) -> Result<Option<&'a str>, Error> {
    match credential {
        None => Ok(None),
        Some(Credential::Secret(secret)) => Ok(Some(secret)),
        Some(Credential::Token(_)) => Err(Error::TokenNotAccepted {
            name: source.token(),
        }),
    }
}

/// The media type a tool gives `body`: CloudEvents in structured mode (a JSON object with
/// `specversion`) or batched mode (an array); `application/json` everywhere else, including a
/// CloudEvents binary-mode body, whose `ce-` headers the caller adds.
pub fn content_type(source: Source, body: &[u8]) -> &'static str {
    if source != Source::Cloudevents {
        return "application/json";
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Array(_)) => "application/cloudevents-batch+json",
        Ok(value) if value.get("specversion").is_some() => "application/cloudevents+json",
        _ => "application/json",
    }
}

/// Herald's own scheme (ServiceNow, CloudEvents): an HMAC in `X-Herald-Signature`, or a bearer token.
pub fn herald(credential: Credential<'_>, body: &[u8]) -> (&'static str, String) {
    match credential {
        Credential::Secret(secret) => (HERALD_SIGNATURE, herald_signature(secret, body)),
        Credential::Token(token) => bearer(token),
    }
}

/// `X-Herald-Signature`'s value: `sha256=<Base64 HMAC-SHA256 of the body>`.
pub fn herald_signature(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", sign_base64(secret.as_bytes(), body))
}

/// `Authorization: Bearer <token>`.
pub fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

/// Jira: `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>`.
pub fn jira(secret: &str, body: &[u8]) -> (&'static str, String) {
    (
        "x-hub-signature",
        format!("sha256={}", sign_hex(secret.as_bytes(), &[body])),
    )
}

/// GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>` (never the SHA-1 one).
pub fn github(secret: &str, body: &[u8]) -> (&'static str, String) {
    (
        "x-hub-signature-256",
        format!("sha256={}", sign_hex(secret.as_bytes(), &[body])),
    )
}

/// PagerDuty v3: `X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the body>`.
pub fn pagerduty(secret: &str, body: &[u8]) -> (&'static str, String) {
    (
        "x-pagerduty-signature",
        format!("v1={}", sign_hex(secret.as_bytes(), &[body])),
    )
}

/// Zendesk: the timestamp and `X-Zendesk-Webhook-Signature: <Base64 HMAC of timestamp + body>`.
pub fn zendesk(secret: &str, body: &[u8], at: DateTime<Utc>) -> Headers {
    let timestamp = at.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut signed = timestamp.as_bytes().to_vec();
    signed.extend_from_slice(body);
    let signature = sign_base64(secret.as_bytes(), &signed);
    vec![
        ("x-zendesk-webhook-signature-timestamp", timestamp),
        ("x-zendesk-webhook-signature", signature),
    ]
}

/// The GitHub event a body is, from the keys only that event carries; `None` when it cannot be
/// told (pass the event name instead).
pub fn github_event(body: &[u8]) -> Option<&'static str> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let has = |key: &str| value.get(key).is_some_and(|v| !v.is_null());
    let event = if has("zen") && has("hook_id") {
        "ping"
    } else if has("deployment_status") {
        "deployment_status"
    } else if has("deployment") {
        "deployment"
    } else if has("pull_request") && has("review") {
        "pull_request_review"
    } else if has("pull_request") {
        "pull_request"
    } else if has("workflow_run") {
        "workflow_run"
    } else if has("release") {
        "release"
    } else if has("issue") && has("comment") {
        "issue_comment"
    } else if has("issue") {
        "issues"
    } else if has("commits") && has("ref") {
        "push"
    } else {
        return None;
    };
    Some(event)
}

/// A GUID for `X-GitHub-Delivery`, the same for the same body (GitHub keeps it across redeliveries).
pub fn github_delivery(body: &[u8]) -> String {
    let hex = hex::encode(&Sha256::digest(body)[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// A number for `X-Zendesk-Webhook-Invocation-Id`, the same for the same body (Zendesk keeps it
/// across retries, and ingest takes a satisfaction trigger's identity from it).
pub fn zendesk_invocation(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % 10_000_000_000).to_string()
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, path::PathBuf};

    use herald_runtime::Secret;
    use http::{HeaderMap, HeaderName, HeaderValue};
    use serde_json::Value;

    use super::*;
    use crate::{
        sources::{self, Normalised, SourceHandler},
        verify::Keys,
    };

    const SECRET: &str = "herald-test-secret";

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
    }

    fn expected() -> Value {
        let text = std::fs::read_to_string(fixtures().join("expected.json")).expect("oracle");
        serde_json::from_str(&text).expect("oracle json")
    }

    fn header_map(headers: &Headers) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).expect("ascii value"),
            );
        }
        map
    }

    fn keys_for(source: Source) -> Keys {
        let key = vec![Secret::new(SECRET)];
        match source {
            Source::Opsgenie => Keys {
                tokens: key,
                ..Keys::default()
            },
            _ => Keys {
                secrets: key,
                ..Keys::default()
            },
        }
    }

    fn credential_for(source: Source) -> Credential<'static> {
        match source {
            Source::Opsgenie => Credential::Token(SECRET),
            _ => Credential::Secret(SECRET),
        }
    }

    fn handler(source: Source) -> Box<dyn SourceHandler> {
        sources::handlers(&BTreeMap::new())
            .into_iter()
            .find(|h| h.source() == source)
            .expect("a handler for every source")
    }

    /// Every fixture of the oracle, signed here, passes its source's own verify and normalises to
    /// what the oracle says: the event-type headers ingest reads are the ones set here.
    #[test]
    fn every_signed_fixture_passes_its_sources_verify_and_normalises() {
        let oracle = expected();
        let catalog = herald_catalog::Catalog::from_toml_str(
            &std::fs::read_to_string(fixtures().join("catalog.toml")).expect("catalog"),
        )
        .expect("catalog parses");
        let mut seen = std::collections::BTreeSet::new();
        for delivery in oracle["deliveries"].as_array().expect("deliveries") {
            let file = delivery["file"].as_str().expect("file");
            // Binary-mode CloudEvents carry their attributes in ce- headers the caller adds.
            if file.contains(".data.") {
                continue;
            }
            let source =
                Source::from_token(delivery["source"].as_str().expect("source")).expect("known");
            let body = std::fs::read(fixtures().join(file)).expect("fixture");
            let now = Utc::now();
            let context = Context {
                github_event: None,
                now,
            };
            let signed = headers(source, &body, Some(credential_for(source)), &context)
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            let map = header_map(&signed);
            let handler = handler(source);
            handler
                .verify(&map, &body, &keys_for(source), now)
                .unwrap_or_else(|e| panic!("{file}: signed here, refused by verify: {e:?}"));
            let ctx = sources::Context {
                catalog: &catalog,
                received_at: now,
            };
            let normalised = handler
                .normalise(&ctx, &map, &body)
                .unwrap_or_else(|e| panic!("{file}: refused by normalise: {e:?}"));
            let published = matches!(normalised, Normalised::Event { .. });
            assert_eq!(
                Some(published),
                delivery["published"].as_bool(),
                "{file}: published"
            );
            // A body signed under another secret must not pass: the check above is not vacuous.
            let forged = headers(
                source,
                &body,
                Some(match source {
                    Source::Opsgenie => Credential::Token("wrong"),
                    _ => Credential::Secret("wrong"),
                }),
                &context,
            )
            .expect("forged headers");
            assert!(
                handler
                    .verify(&header_map(&forged), &body, &keys_for(source), now)
                    .is_err(),
                "{file}: a wrong secret passed"
            );
            seen.insert(source);
        }
        let all: std::collections::BTreeSet<Source> = Source::ALL.iter().copied().collect();
        assert_eq!(seen, all, "a fixture of every source was signed");
    }

    /// The tools' own signatures, recorded in the oracle, are what this module computes.
    #[test]
    fn signatures_are_byte_for_byte_the_tools_own() {
        let oracle = expected();
        for delivery in oracle["deliveries"].as_array().expect("deliveries") {
            let file = delivery["file"].as_str().expect("file");
            let source =
                Source::from_token(delivery["source"].as_str().expect("source")).expect("known");
            let body = std::fs::read(fixtures().join(file)).expect("fixture");
            let recorded = &delivery["headers"];
            let want = |name: &str| recorded[name].as_str().map(str::to_string);
            match source {
                Source::Servicenow | Source::Cloudevents => assert_eq!(
                    Some(herald_signature(SECRET, &body)),
                    want("X-Herald-Signature"),
                    "{file}"
                ),
                Source::Jira => {
                    assert_eq!(
                        Some(jira(SECRET, &body).1),
                        want("X-Hub-Signature"),
                        "{file}"
                    )
                }
                Source::Github => {
                    assert_eq!(
                        Some(github(SECRET, &body).1),
                        want("X-Hub-Signature-256"),
                        "{file}"
                    );
                    assert_eq!(
                        github_event(&body).map(str::to_string),
                        want("X-GitHub-Event"),
                        "{file}: the event guessed from the body"
                    );
                }
                Source::Pagerduty => {
                    let sent = want("X-PagerDuty-Signature").expect("recorded");
                    let ours = pagerduty(SECRET, &body).1;
                    assert!(
                        sent.split(',').any(|v| v == ours),
                        "{file}: {ours} in {sent}"
                    );
                }
                Source::Opsgenie => {
                    assert_eq!(Some(bearer(SECRET).1), want("Authorization"), "{file}")
                }
                Source::Zendesk => {
                    let at = DateTime::parse_from_rfc3339(
                        &want("X-Zendesk-Webhook-Signature-Timestamp").expect("timestamp"),
                    )
                    .expect("rfc 3339")
                    .with_timezone(&Utc);
                    let ours: BTreeMap<_, _> = zendesk(SECRET, &body, at).into_iter().collect();
                    assert_eq!(
                        ours.get("x-zendesk-webhook-signature").cloned(),
                        want("X-Zendesk-Webhook-Signature"),
                        "{file}"
                    );
                }
                Source::Unspecified => panic!("{file}: no source"),
            }
        }
    }

    #[test]
    fn credentials_of_the_wrong_kind_are_refused_with_the_fix() {
        let context = Context::default();
        assert_eq!(
            headers(
                Source::Opsgenie,
                b"{}",
                Some(Credential::Secret("s")),
                &context
            ),
            Err(Error::SecretNotAccepted)
        );
        assert_eq!(
            headers(Source::Jira, b"{}", Some(Credential::Token("t")), &context),
            Err(Error::TokenNotAccepted { name: "jira" })
        );
        assert_eq!(
            headers(
                Source::Github,
                b"{\"x\":1}",
                Some(Credential::Secret("s")),
                &context
            ),
            Err(Error::GithubEventUnknown)
        );
        let named = Context {
            github_event: Some("push"),
            ..Context::default()
        };
        let sent = headers(
            Source::Github,
            b"{\"x\":1}",
            Some(Credential::Secret("s")),
            &named,
        )
        .expect("named event");
        assert!(sent.contains(&("x-github-event", "push".to_string())));
        // ServiceNow and CloudEvents senders may hold a token instead.
        let token = headers(
            Source::Servicenow,
            b"{}",
            Some(Credential::Token("t")),
            &context,
        )
        .expect("token");
        assert!(token.contains(&("authorization", "Bearer t".to_string())));
    }

    #[test]
    fn cloudevents_content_type_follows_the_body() {
        assert_eq!(
            content_type(Source::Cloudevents, br#"{"specversion":"1.0"}"#),
            "application/cloudevents+json"
        );
        assert_eq!(
            content_type(Source::Cloudevents, b"[]"),
            "application/cloudevents-batch+json"
        );
        assert_eq!(
            content_type(Source::Cloudevents, br#"{"automation":"x"}"#),
            "application/json"
        );
        assert_eq!(
            content_type(Source::Servicenow, br#"{"specversion":"1.0"}"#),
            "application/json"
        );
    }
}
