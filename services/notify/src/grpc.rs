//! `herald.v1.Notify`: what was delivered where, with every attempt. Each delivery says what it
//! carried (the announcement's headline) and each attempt what it did, in words: local channels
//! have no HTTP status, so they say where the announcement was written.

use std::sync::Arc;

use herald_proto::{
    time::to_timestamp,
    v1::{
        Announcement, AnnouncementKind, Card, Delivery, DeliveryAttempt, DeliveryStatus,
        ListDeliveriesRequest, ListDeliveriesResponse, ReplayDeliveryRequest, SendTestRequest,
        SendTestResponse, notify_server::Notify as NotifyRpc,
    },
};
use herald_runtime::ApiError;
use tonic::{Request, Response, Status};

use crate::{
    attempt::AttemptOutcome,
    config::{ChannelConfig, ChannelKind},
    send::Sender,
    store::{AttemptRow, DeliveryRow, ReplayError, Store},
};

pub struct NotifyApi {
    pub store: Store,
    /// The configured channels, to describe what an attempt on a local channel did.
    pub channels: Vec<ChannelConfig>,
    /// Sends test messages, with the same checks as every delivery.
    pub sender: Arc<Sender>,
    /// Woken when a replay puts a delivery back in the queue.
    pub wake: Arc<tokio::sync::Notify>,
}

/// The message `herald send-test` sends: plainly a test, so nobody mistakes it for a win.
pub fn test_announcement(channel: &str, now: chrono::DateTime<chrono::Utc>) -> Announcement {
    Announcement {
        id: format!("test-{channel}-{}", now.timestamp_millis()),
        kind: AnnouncementKind::Unspecified as i32,
        created_at: Some(to_timestamp(now)),
        card: Some(Card {
            title: "Herald test message".into(),
            summary: format!(
                "This channel ({channel}) is connected: wins routed here will appear like this. Sent by herald send-test at {} UTC.",
                now.format("%Y-%m-%d %H:%M")
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
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
        merged_into: row.merged_into.unwrap_or_default(),
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
                answer: a.answer.unwrap_or_default(),
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

    async fn replay_delivery(
        &self,
        request: Request<ReplayDeliveryRequest>,
    ) -> Result<Response<Delivery>, Status> {
        let id = request.into_inner().id;
        if id.trim().is_empty() {
            return Err(Status::invalid_argument(
                "give the id of a delivery to replay",
            ));
        }
        match self.store.replay(id.trim()).await {
            Ok(row) => {
                tracing::info!(delivery = %row.id, "delivery replayed on request");
                self.wake.notify_one();
                Ok(Response::new(to_proto(row, &self.channels)))
            }
            Err(ReplayError::NotFound(id)) => Err(Status::from(ApiError::not_found(format!(
                "no delivery {id}; herald deliveries list shows their ids"
            )))),
            Err(e @ ReplayError::NotFinished { .. }) => {
                Err(Status::failed_precondition(e.to_string()))
            }
            Err(ReplayError::Store(e)) => {
                tracing::error!(error = %e, "replaying a delivery failed");
                Err(Status::from(ApiError::unavailable(
                    "the delivery could not be replayed; see the notify logs",
                )))
            }
        }
    }

    async fn send_test(
        &self,
        request: Request<SendTestRequest>,
    ) -> Result<Response<SendTestResponse>, Status> {
        let name = request.into_inner().channel;
        let Some(channel) = self.channels.iter().find(|c| c.name == name.trim()) else {
            let known: Vec<&str> = self.channels.iter().map(|c| c.name.as_str()).collect();
            return Err(Status::from(ApiError::not_found(format!(
                "no channel {name:?}; configured: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))));
        };
        let announcement = test_announcement(&channel.name, chrono::Utc::now());
        let (outcome, duration) = self
            .sender
            .send(channel, &announcement.id, &announcement)
            .await;
        tracing::info!(channel = %channel.name, delivered = matches!(outcome, AttemptOutcome::Delivered { .. }), "test message sent on request");
        let words = match &outcome {
            AttemptOutcome::Delivered { answer, .. } if !answer.is_empty() => answer.clone(),
            AttemptOutcome::Delivered { .. } => outcome_words(channel, outcome.status()),
            AttemptOutcome::Retry { error, .. } | AttemptOutcome::Failed { error, .. } => {
                error.clone()
            }
        };
        Ok(Response::new(SendTestResponse {
            delivered: matches!(outcome, AttemptOutcome::Delivered { .. }),
            http_status: outcome.status().map(u32::from).unwrap_or(0),
            outcome: words,
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            kind: channel.kind.token().to_string(),
        }))
    }
}

/// A delivered attempt with nothing in its answer, in words.
fn outcome_words(channel: &ChannelConfig, status: Option<u16>) -> String {
    outcome(
        Some(channel),
        &AttemptRow {
            attempt: 0,
            at: chrono::Utc::now(),
            http_status: status.map(i64::from),
            error: None,
            duration_ms: 0,
            answer: None,
        },
    )
}
