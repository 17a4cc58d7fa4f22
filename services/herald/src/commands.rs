//! One function per subcommand.

use anyhow::Context;
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use herald_proto::{
    time::to_timestamp,
    v1::{
        DeliveryStatus, ExplainRequest, GetLeaderboardRequest, GetValueSummaryRequest,
        ListDeliveriesRequest, Period, PeriodKind, Scope, SubmitRequest,
        ingest_client::IngestClient, notify_client::NotifyClient, scoring_client::ScoringClient,
        spotlight_client::SpotlightClient,
    },
};
use hmac::{KeyInit, Mac};

use crate::{PeriodArg, ScopeArg, StatusArg, output};

pub(crate) async fn channel(url: &str, service: &str) -> anyhow::Result<tonic::transport::Channel> {
    tonic::transport::Endpoint::from_shared(url.to_string())
        .with_context(|| format!("{url} is not a valid address for {service}"))?
        .connect()
        .await
        .with_context(|| format!("cannot reach {service} at {url}; is it running?"))
}

fn status_error(e: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{} ({:?})", e.message(), e.code())
}

fn period(kind: PeriodArg, at: Option<&str>) -> anyhow::Result<Period> {
    let at = match at {
        None => None,
        Some(text) => Some(to_timestamp(parse_at(text)?)),
    };
    let kind = match kind {
        PeriodArg::Week => PeriodKind::Week,
        PeriodArg::Month => PeriodKind::Month,
    };
    Ok(Period {
        kind: kind as i32,
        at,
    })
}

fn parse_at(text: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").with_context(|| {
        format!("--at {text:?} must be a date (2025-03-11) or an RFC 3339 time")
    })?;
    // Noon keeps the day the same in every organisation time zone.
    Ok(day.and_hms_opt(12, 0, 0).unwrap_or_default().and_utc())
}

pub async fn leaderboard(
    url: &str,
    kind: PeriodArg,
    at: Option<&str>,
    scope: ScopeArg,
    limit: u32,
    json: bool,
) -> anyhow::Result<()> {
    let mut client = SpotlightClient::new(channel(url, "spotlight").await?);
    let scope = match scope {
        ScopeArg::Person => Scope::Person,
        ScopeArg::Team => Scope::Team,
        ScopeArg::Service => Scope::Service,
    };
    let board = client
        .get_leaderboard(GetLeaderboardRequest {
            period: Some(period(kind, at)?),
            scope: scope as i32,
            limit,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    output::leaderboard(&board, json);
    Ok(())
}

pub async fn value(url: &str, kind: PeriodArg, at: Option<&str>, json: bool) -> anyhow::Result<()> {
    let mut client = SpotlightClient::new(channel(url, "spotlight").await?);
    let summary = client
        .get_value_summary(GetValueSummaryRequest {
            period: Some(period(kind, at)?),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    output::value(&summary, json);
    Ok(())
}

pub async fn explain(url: &str, id: &str, json: bool) -> anyhow::Result<()> {
    let mut client = ScoringClient::new(channel(url, "scoring").await?);
    let explanation = client
        .explain(ExplainRequest { id: id.to_string() })
        .await
        .map_err(status_error)?
        .into_inner();
    output::explanation(&explanation, json);
    Ok(())
}

pub async fn deliveries(
    url: &str,
    announcement: Option<String>,
    status: Option<StatusArg>,
    limit: u32,
    json: bool,
) -> anyhow::Result<()> {
    let mut client = NotifyClient::new(channel(url, "notify").await?);
    let status = match status {
        None => DeliveryStatus::Unspecified,
        Some(StatusArg::Pending) => DeliveryStatus::Pending,
        Some(StatusArg::Delivered) => DeliveryStatus::Delivered,
        Some(StatusArg::Failed) => DeliveryStatus::Failed,
    };
    let list = client
        .list_deliveries(ListDeliveriesRequest {
            announcement_id: announcement.unwrap_or_default(),
            status: status as i32,
            limit,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    output::deliveries(&list, json);
    Ok(())
}

/// `X-Herald-Signature`'s value for a body: `sha256=<Base64 HMAC-SHA256>`.
pub(crate) fn herald_signature(secret: &str, body: &[u8]) -> anyhow::Result<String> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .context("the secret cannot be used as an HMAC key")?;
    mac.update(body);
    Ok(format!(
        "sha256={}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    ))
}

pub async fn send(
    url: &str,
    source: &str,
    file: &std::path::Path,
    secret: Option<&str>,
    content_type: &str,
    json: bool,
) -> anyhow::Result<()> {
    let body = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut headers =
        std::collections::HashMap::from([("content-type".to_string(), content_type.to_string())]);
    if let Some(secret) = secret {
        headers.insert(
            "x-herald-signature".to_string(),
            herald_signature(secret, &body)?,
        );
    }
    let mut client = IngestClient::new(channel(url, "ingest").await?);
    let response = client
        .submit(SubmitRequest {
            source: source.to_string(),
            body,
            headers,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    output::submitted(&response, json);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_takes_dates_and_times() {
        assert_eq!(
            parse_at("2025-03-11").expect("date").to_rfc3339(),
            "2025-03-11T12:00:00+00:00"
        );
        assert_eq!(
            parse_at("2025-03-11T08:04:37Z").expect("time").to_rfc3339(),
            "2025-03-11T08:04:37+00:00"
        );
        assert!(parse_at("last week").is_err());
    }
}
