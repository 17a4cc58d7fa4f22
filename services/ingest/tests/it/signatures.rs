//! The signature matrix: for every source, the right signature, a wrong one, none, one made with
//! the previous secret during a rotation, and a stale timestamp where the scheme signs one. Wrong
//! and missing answer 401 and publish nothing.

use std::collections::BTreeMap;

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use herald_ingest::{
    config::SourceSettings,
    verify::{sign_base64, sign_hex},
};
use serde_json::Value;

use crate::support::{rig::*, *};

/// A published fixture of each source, with the header(s) its scheme signs.
const SAMPLES: [(&str, &str); 7] = [
    ("servicenow", "servicenow/ritm-fulfilled.json"),
    ("jira", "jira/issue-resolved.json"),
    ("pagerduty", "pagerduty/incident-resolved.json"),
    ("opsgenie", "opsgenie/alert-close.json"),
    ("zendesk", "zendesk/ticket-solved.json"),
    ("github", "github/pull-request-merged.json"),
    ("cloudevents", "cloudevents/automation-run-structured.json"),
];

/// The fixture's headers with its authentication re-made with `key`, as that source's sender would.
fn signed_with(source: &str, entry: &Value, body: &[u8], key: &str) -> BTreeMap<String, String> {
    let mut headers = without_auth(source, entry);
    match source {
        "servicenow" | "cloudevents" => {
            headers.insert(
                "X-Herald-Signature".into(),
                format!("sha256={}", sign_base64(key.as_bytes(), body)),
            );
        }
        "jira" => {
            headers.insert(
                "X-Hub-Signature".into(),
                format!("sha256={}", sign_hex(key.as_bytes(), &[body])),
            );
        }
        "github" => {
            headers.insert(
                "X-Hub-Signature-256".into(),
                format!("sha256={}", sign_hex(key.as_bytes(), &[body])),
            );
        }
        "pagerduty" => {
            headers.insert(
                "X-PagerDuty-Signature".into(),
                format!("v1={}", sign_hex(key.as_bytes(), &[body])),
            );
        }
        "opsgenie" => {
            headers.insert("Authorization".into(), format!("Bearer {key}"));
        }
        "zendesk" => {
            let ts = entry["headers"]["X-Zendesk-Webhook-Signature-Timestamp"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let mac = sign_hex(key.as_bytes(), &[ts.as_bytes(), body]);
            let mac = base64::engine::general_purpose::STANDARD
                .encode(hex::decode(mac).unwrap_or_default());
            headers.insert("X-Zendesk-Webhook-Signature".into(), mac);
            headers.insert("X-Zendesk-Webhook-Signature-Timestamp".into(), ts);
        }
        other => panic!("no signing rule for {other}"),
    }
    headers
}

/// The fixture's headers without any of its authentication headers.
fn without_auth(source: &str, entry: &Value) -> BTreeMap<String, String> {
    let auth: &[&str] = match source {
        "servicenow" | "cloudevents" => &["X-Herald-Signature"],
        "jira" => &["X-Hub-Signature"],
        "github" => &["X-Hub-Signature-256"],
        "pagerduty" => &["X-PagerDuty-Signature"],
        "opsgenie" => &["Authorization"],
        "zendesk" => &[
            "X-Zendesk-Webhook-Signature",
            "X-Zendesk-Webhook-Signature-Timestamp",
        ],
        _ => &[],
    };
    fixture_headers(entry)
        .into_iter()
        .filter(|(k, _)| !auth.contains(&k.as_str()))
        .collect()
}

fn verify_at(entry: &Value) -> Option<DateTime<Utc>> {
    entry["verify_at"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// Sends one case and checks the answer and what was published.
async fn expect(
    rig: &Rig,
    source: &str,
    case: &str,
    headers: &BTreeMap<String, String>,
    body: &[u8],
    status: u16,
    code: Option<&str>,
) -> anyhow::Result<()> {
    let before = rig.stored_events().await?.len();
    let response = rig.post(source, headers, body.to_vec()).await?;
    let got = response.status().as_u16();
    let answer: Value = response.json().await?;
    assert_eq!(got, status, "{source} / {case}: {answer}");
    if let Some(code) = code {
        assert_eq!(answer["error"]["code"], code, "{source} / {case}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.len() > 20),
            "{source} / {case}: the error says what to fix: {answer}"
        );
    }
    let after = rig.stored_events().await?.len();
    let published = usize::from(status == 202 && answer["duplicate"] == false);
    assert_eq!(
        after,
        before + published,
        "{source} / {case}: {} published",
        if status == 202 {
            "one event"
        } else {
            "nothing"
        }
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn right_wrong_and_missing_signatures_for_every_source() -> anyhow::Result<()> {
    for (source, file) in SAMPLES {
        let entry = delivery(file)?;
        let body = fixture_bytes(&entry)?;
        let rig = Rig::start(test_keys(), verify_at(&entry)).await?;
        let missing_code = if source == "opsgenie" {
            "token_missing"
        } else {
            "signature_missing"
        };
        let wrong_code = if source == "opsgenie" {
            "token_mismatch"
        } else {
            "signature_mismatch"
        };
        let wrong = signed_with(source, &entry, &body, "not-the-secret");
        expect(&rig, source, "wrong", &wrong, &body, 401, Some(wrong_code)).await?;
        let missing = without_auth(source, &entry);
        expect(
            &rig,
            source,
            "missing",
            &missing,
            &body,
            401,
            Some(missing_code),
        )
        .await?;
        if source != "opsgenie" {
            // A right signature over other bytes: the body was changed on the way.
            let mut tampered = body.clone();
            tampered.insert(tampered.len().saturating_sub(2), b' ');
            let right = signed_with(source, &entry, &body, SECRET);
            expect(
                &rig,
                source,
                "tampered body",
                &right,
                &tampered,
                401,
                Some(wrong_code),
            )
            .await?;
        }
        let right = signed_with(source, &entry, &body, SECRET);
        expect(&rig, source, "right", &right, &body, 202, None).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_previous_secret_is_accepted_during_a_rotation() -> anyhow::Result<()> {
    for (source, file) in SAMPLES {
        let entry = delivery(file)?;
        let body = fixture_bytes(&entry)?;
        let mut settings = test_keys();
        settings.insert(
            source.to_string(),
            keyed(source, "the-new-secret", Some(SECRET)),
        );
        let rig = Rig::start(settings, verify_at(&entry)).await?;
        // The sender still signs with the old secret: accepted.
        let old = signed_with(source, &entry, &body, SECRET);
        expect(&rig, source, "previous secret", &old, &body, 202, None).await?;
        // The sender switched: accepted too (the same event, so a duplicate).
        let new = signed_with(source, &entry, &body, "the-new-secret");
        expect(&rig, source, "current secret", &new, &body, 202, None).await?;
        let retired = signed_with(source, &entry, &body, "retired-secret");
        expect(&rig, source, "retired secret", &retired, &body, 401, None).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_accepts_any_matching_v1_value_during_its_rotation() -> anyhow::Result<()> {
    let entry = delivery("pagerduty/incident-resolved.json")?;
    let body = fixture_bytes(&entry)?;
    let rig = Rig::start(test_keys(), None).await?;
    let good = sign_hex(SECRET.as_bytes(), &[&body]);
    let other = sign_hex(b"pagerduty-side-new-secret", &[&body]);
    let mut headers = without_auth("pagerduty", &entry);
    // The matching value second, an unknown version in between.
    headers.insert(
        "X-PagerDuty-Signature".into(),
        format!("v1={other}, v2=abc,v1={good}"),
    );
    expect(
        &rig,
        "pagerduty",
        "matching second",
        &headers,
        &body,
        202,
        None,
    )
    .await?;
    headers.insert(
        "X-PagerDuty-Signature".into(),
        format!("v1={other},v1={other}"),
    );
    expect(
        &rig,
        "pagerduty",
        "none matching",
        &headers,
        &body,
        401,
        Some("signature_mismatch"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_never_accepts_the_sha1_signature_alone() -> anyhow::Result<()> {
    let entry = delivery("github/pull-request-merged.json")?;
    let body = fixture_bytes(&entry)?;
    let rig = Rig::start(test_keys(), None).await?;
    let headers = without_auth("github", &entry);
    assert!(headers.contains_key("X-Hub-Signature"), "sha1 header kept");
    expect(
        &rig,
        "github",
        "sha1 only",
        &headers,
        &body,
        401,
        Some("signature_missing"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zendesk_refuses_a_stale_or_future_timestamp() -> anyhow::Result<()> {
    let entry = delivery("zendesk/ticket-solved.json")?;
    let body = fixture_bytes(&entry)?;
    let signed_at = DateTime::parse_from_rfc3339(
        entry["headers"]["X-Zendesk-Webhook-Signature-Timestamp"]
            .as_str()
            .unwrap_or_default(),
    )?
    .with_timezone(&Utc);
    let headers = fixture_headers(&entry);
    for (case, clock, status) in [
        ("301 s late", signed_at + Duration::seconds(301), 401),
        ("301 s early", signed_at - Duration::seconds(301), 401),
        ("299 s late", signed_at + Duration::seconds(299), 202),
    ] {
        let rig = Rig::start(test_keys(), Some(clock)).await?;
        let code = (status == 401).then_some("signature_stale");
        expect(&rig, "zendesk", case, &headers, &body, status, code).await?;
    }
    // The window is configurable.
    let mut settings = test_keys();
    if let Some(zendesk) = settings.get_mut("zendesk") {
        zendesk.tolerance_seconds = Some(600);
    }
    let rig = Rig::start(settings, Some(signed_at + Duration::seconds(500))).await?;
    expect(
        &rig,
        "zendesk",
        "500 s late, 600 s window",
        &headers,
        &body,
        202,
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_without_keys_refuses_until_the_operator_allows_unsigned() -> anyhow::Result<()> {
    for (source, file) in SAMPLES {
        let entry = delivery(file)?;
        let body = fixture_bytes(&entry)?;
        // Every other source keyed; this one has nothing configured at all.
        let mut settings = test_keys();
        settings.remove(source);
        let rig = Rig::start(settings, verify_at(&entry)).await?;
        let unsigned = without_auth(source, &entry);
        expect(
            &rig,
            source,
            "unsigned, nothing configured",
            &unsigned,
            &body,
            401,
            Some("source_not_configured"),
        )
        .await?;
        // Signing does not help either: there is no key to check it against.
        let signed = signed_with(source, &entry, &body, SECRET);
        expect(
            &rig,
            source,
            "signed, nothing configured",
            &signed,
            &body,
            401,
            Some("source_not_configured"),
        )
        .await?;
        let answer: Value = rig
            .post(source, &unsigned, body.clone())
            .await?
            .json()
            .await?;
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("[sources.{source}]")) && message.contains("allow_unsigned"),
            "{source}: the refusal says how to configure the source: {message}"
        );

        let mut open = test_keys();
        open.insert(
            source.to_string(),
            SourceSettings {
                allow_unsigned: true,
                ..Default::default()
            },
        );
        let rig = Rig::start(open, verify_at(&entry)).await?;
        expect(
            &rig,
            source,
            "unsigned, allow_unsigned",
            &unsigned,
            &body,
            202,
            None,
        )
        .await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_submit_and_submit_batch_refuse_an_unconfigured_source_too() -> anyhow::Result<()> {
    // GitHub is configured (and the harness keys ServiceNow and CloudEvents): Jira has nothing.
    let h = Harness::start(&format!("[sources.github]\nsecret = \"{SECRET}\"\n")).await?;
    let entry = delivery("jira/issue-resolved.json")?;
    let body = fixture_bytes(&entry)?;
    let headers = without_auth("jira", &entry);
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();

    let status = h
        .submit("jira", &pairs, body.clone())
        .await
        .expect_err("an unconfigured source refuses over gRPC");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    assert_eq!(
        status
            .metadata()
            .get("herald-error-code")
            .and_then(|v| v.to_str().ok()),
        Some("source_not_configured")
    );

    let item = herald_proto::v1::SubmitRequest {
        historical: false,
        source: "jira".into(),
        body,
        headers: headers.into_iter().collect(),
    };
    let answer = h
        .ingest()
        .await?
        .submit_batch(futures::stream::iter(vec![item]))
        .await?
        .into_inner();
    assert_eq!((answer.accepted, answer.rejected), (0, 1), "{answer:?}");
    assert!(
        format!("{answer:?}").contains("source_not_configured"),
        "{answer:?}"
    );
    assert!(h.stored_events().await?.is_empty(), "nothing published");
    h.stop().await
}
