//! `herald.v1.Notify`: what was delivered where, with every attempt. Each delivery says what it
//! carried (the announcement's headline) and each attempt what it did, in words: local channels
//! have no HTTP status, so they say where the announcement was written.

use herald_proto::{
    time::to_timestamp,
    v1::{
        AnnouncementKind, Delivery, DeliveryAttempt, DeliveryStatus, ListDeliveriesRequest,
        ListDeliveriesResponse, notify_server::Notify as NotifyRpc,
    },
};
use herald_runtime::ApiError;
use tonic::{Request, Response, Status};

use crate::{
    config::{ChannelConfig, ChannelKind},
    store::{AttemptRow, DeliveryRow, Store},
};

pub struct NotifyApi {
    pub store: Store,
    /// The configured channels, to describe what an attempt on a local channel did.
    pub channels: Vec<ChannelConfig>,
}

fn status_of(stored: &str) -> DeliveryStatus {
    match stored {
        "delivered" => DeliveryStatus::Delivered,
        "failed" => DeliveryStatus::Failed,
        "withdrawn" => DeliveryStatus::Withdrawn,
        _ => DeliveryStatus::Pending,
    }
}

/// What an attempt did, in words.
fn outcome(channel: Option<&ChannelConfig>, attempt: &AttemptRow) -> String {
    if let Some(error) = attempt.error.as_deref().filter(|e| !e.is_empty()) {
        return error.to_string();
    }
    if let Some(status) = attempt.http_status.filter(|s| *s > 0) {
        return format!("HTTP {status}");
    }
    match channel.map(|c| (c.kind, c.path.as_deref())) {
        Some((ChannelKind::Console, _)) => "written to the console".to_string(),
        Some((ChannelKind::Email, _)) => "accepted by the SMTP relay".to_string(),
        Some((ChannelKind::File, Some(path))) => format!("appended to {}", path.display()),
        Some((ChannelKind::File, None)) => "appended to the file".to_string(),
        // A channel removed from the configuration since: it succeeded without an HTTP exchange.
        _ => "written".to_string(),
    }
}

fn to_proto(row: DeliveryRow, channels: &[ChannelConfig]) -> Delivery {
    let channel = channels.iter().find(|c| c.name == row.channel);
    let headline = row
        .announcement
        .as_ref()
        .and_then(|a| a.card.as_ref())
        .map(|card| card.title.clone())
        .unwrap_or_default();
    let announcement_kind = row
        .announcement
        .as_ref()
        .and_then(|a| AnnouncementKind::try_from(a.kind).ok())
        .map(|k| k.token().to_string())
        .unwrap_or_default();
    Delivery {
        headline,
        announcement_kind,
        status: status_of(&row.status) as i32,
        id: row.id,
        announcement_id: row.announcement_id,
        route: row.route,
        channel: row.channel,
        attempts: u32::try_from(row.attempts).unwrap_or(0),
        last_error: row.last_error.unwrap_or_default(),
        created_at: Some(to_timestamp(row.created_at)),
        delivered_at: row.delivered_at.map(to_timestamp),
        next_attempt_at: row.next_attempt_at.map(to_timestamp),
        attempt_log: row
            .attempt_log
            .into_iter()
            .map(|a| DeliveryAttempt {
                outcome: outcome(channel, &a),
                attempt: u32::try_from(a.attempt).unwrap_or(0),
                at: Some(to_timestamp(a.at)),
                http_status: a
                    .http_status
                    .and_then(|s| u32::try_from(s).ok())
                    .unwrap_or(0),
                error: a.error.unwrap_or_default(),
                duration_ms: u64::try_from(a.duration_ms).unwrap_or(0),
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl NotifyRpc for NotifyApi {
    async fn list_deliveries(
        &self,
        request: Request<ListDeliveriesRequest>,
    ) -> Result<Response<ListDeliveriesResponse>, Status> {
        let request = request.into_inner();
        let statuses: &[&str] =
            match DeliveryStatus::try_from(request.status).unwrap_or(DeliveryStatus::Unspecified) {
                DeliveryStatus::Unspecified => &[],
                DeliveryStatus::Pending => &["pending", "sending"],
                DeliveryStatus::Delivered => &["delivered"],
                DeliveryStatus::Failed => &["failed"],
                DeliveryStatus::Withdrawn => &["withdrawn"],
            };
        let limit = match request.limit {
            0 => 50,
            n => n.min(500),
        };
        let announcement = Some(request.announcement_id.as_str()).filter(|a| !a.is_empty());
        let rows = self
            .store
            .list(announcement, statuses, i64::from(limit))
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "listing deliveries failed");
                Status::from(ApiError::internal(
                    "deliveries could not be read; see the notify logs",
                ))
            })?;
        Ok(Response::new(ListDeliveriesResponse {
            deliveries: rows
                .into_iter()
                .map(|row| to_proto(row, &self.channels))
                .collect(),
        }))
    }
}
