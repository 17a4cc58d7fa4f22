//! `herald.v1.DeadLetters`: list the messages a stage gave up on, and replay them once the fault is
//! fixed.
//!
//! It works on any [`Bus`], so the distributed services (ingest serves it) and `herald up` offer the
//! same API. A replay publishes the original payload and headers to the original subject under a new
//! message id (the original id would be dropped as a duplicate inside the bus's window), and removes
//! the dead letter only after the bus stored the republished message. A crash in between leaves the
//! dead letter in place: replaying it again within the duplicate window is recognised as the same
//! replay (the id is derived from the dead letter), and after it the stages absorb a second copy
//! through their own unique keys.

use std::sync::Arc;

use herald_events::{Bus, BusError, OutgoingMessage, StoredMessage, StreamFamily, header};
use herald_proto::v1::{
    DeadLetter, DeadLetterEntry, DeadLetterEvent, EventKind, ItsmEvent, ListDeadLettersRequest,
    ListDeadLettersResponse, ReplayDeadLettersRequest, ReplayDeadLettersResponse, ReplayOutcome,
    Source,
    dead_letters_server::{DeadLetters, DeadLettersServer},
};
use prost::Message;
use tonic::{Request, Response, Status};

use crate::{ApiError, ErrorKind};

/// Entries per List page when the caller does not say.
const DEFAULT_LIMIT: usize = 100;
/// The most entries one List answers.
const MAX_LIMIT: usize = 1000;
/// Dead letters read per bus call while collecting "all of them" for a replay.
const REPLAY_PAGE: usize = 500;

/// The dead-letter API on a bus.
#[derive(Clone)]
pub struct DeadLetterApi {
    bus: Arc<dyn Bus>,
}

/// `herald.v1.DeadLetters` on `bus`, ready for [`crate::component::Component::grpc`].
pub fn server(bus: Arc<dyn Bus>) -> DeadLettersServer<DeadLetterApi> {
    DeadLettersServer::new(DeadLetterApi::new(bus))
}

fn bus_error(e: BusError) -> ApiError {
    ApiError::unavailable(format!("the bus cannot be read: {e}"))
}

/// A stage name is one subject token; anything else would widen or break the subject filter.
fn check_stage(stage: &str) -> Result<Option<&str>, ApiError> {
    let stage = stage.trim();
    if stage.is_empty() {
        return Ok(None);
    }
    if stage
        .chars()
        .any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace() || c.is_control())
    {
        return Err(ApiError::new(
            ErrorKind::Malformed,
            "bad_stage",
            format!("{stage:?} is not a stage name (scoring, spotlight, notify)"),
        ));
    }
    Ok(Some(stage))
}

/// The dead letter in a stored message, with the stage taken from the subject if the payload does
/// not say.
fn decode_letter(message: &StoredMessage) -> Result<DeadLetter, String> {
    let mut letter = DeadLetter::decode(message.payload.as_ref())
        .map_err(|e| format!("not a readable dead letter: {e}"))?;
    if letter.stage.is_empty() {
        letter.stage = stage_of(&message.subject).to_string();
    }
    Ok(letter)
}

fn stage_of(subject: &str) -> &str {
    subject.strip_prefix("herald.dlq.").unwrap_or(subject)
}

/// What the original message was about, when it was an event.
fn describe_event(letter: &DeadLetter) -> Option<DeadLetterEvent> {
    if StreamFamily::of_subject(&letter.original_subject) != Some(StreamFamily::Events) {
        // Only events are described: protobuf would happily decode another message type as
        // garbage fields.
        return None;
    }
    let event = ItsmEvent::decode(letter.original_payload.as_slice()).ok()?;
    if event.id.is_empty() {
        return None;
    }
    Some(DeadLetterEvent {
        source: Source::try_from(event.source)
            .map(|s| s.token())
            .unwrap_or("unspecified")
            .to_string(),
        kind: EventKind::try_from(event.kind)
            .map(|k| k.token())
            .unwrap_or("unspecified")
            .to_string(),
        record_number: event.record.map(|r| r.number).unwrap_or_default(),
        id: event.id,
    })
}

fn entry(message: &StoredMessage) -> DeadLetterEntry {
    match decode_letter(message) {
        Ok(letter) => DeadLetterEntry {
            id: message.sequence,
            event: describe_event(&letter),
            payload_bytes: u64::try_from(letter.original_payload.len()).unwrap_or(u64::MAX),
            stage: letter.stage,
            original_subject: letter.original_subject,
            original_msg_id: letter.original_msg_id,
            reason: letter.reason,
            deliveries: letter.deliveries,
            failed_at: letter.failed_at,
        },
        // Listed all the same, so an operator sees it and can look at it with the bus's own tools.
        Err(problem) => DeadLetterEntry {
            id: message.sequence,
            stage: stage_of(&message.subject).to_string(),
            reason: message
                .header(header::DLQ_REASON)
                .map(|r| format!("{r} ({problem})"))
                .unwrap_or(problem),
            failed_at: Some(herald_proto::time::to_timestamp(message.stored_at)),
            payload_bytes: u64::try_from(message.payload.len()).unwrap_or(u64::MAX),
            ..Default::default()
        },
    }
}

/// The message id of the replay of dead letter `sequence`: new to the bus, and the same for every
/// attempt to replay that dead letter, so a repeated replay inside the window is not stored twice.
fn replay_msg_id(letter: &DeadLetter, sequence: u64) -> String {
    if letter.original_msg_id.is_empty() {
        format!("replay:{}:{sequence}", letter.stage)
    } else {
        format!("{}:replay:{sequence}", letter.original_msg_id)
    }
}

impl DeadLetterApi {
    pub fn new(bus: Arc<dyn Bus>) -> Self {
        Self { bus }
    }

    fn filter(stage: Option<&str>) -> Option<String> {
        stage.map(herald_events::subjects::dead_letter)
    }

    /// Dead letters after `after`, oldest first, and the `after` of the next page (0 when none).
    pub async fn list(
        &self,
        stage: Option<&str>,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<DeadLetterEntry>, u64), ApiError> {
        let limit = match limit {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        };
        let filter = Self::filter(stage);
        // One more than asked tells whether another page exists.
        let mut stored = self
            .bus
            .list_stored(
                StreamFamily::DeadLetters,
                filter.as_deref(),
                after,
                limit + 1,
            )
            .await
            .map_err(bus_error)?;
        let more = stored.len() > limit;
        stored.truncate(limit);
        let next_after = match stored.last() {
            Some(last) if more => last.sequence,
            _ => 0,
        };
        Ok((stored.iter().map(entry).collect(), next_after))
    }

    /// Replays the given dead letters, or every one (of `stage`) when `ids` is empty.
    pub async fn replay(
        &self,
        ids: &[u64],
        stage: Option<&str>,
    ) -> Result<Vec<ReplayOutcome>, ApiError> {
        let mut outcomes = Vec::new();
        if ids.is_empty() {
            // Collected first, so what this replay dead-letters again (the fault is not fixed) is
            // not picked up by the same call.
            let filter = Self::filter(stage);
            let mut letters = Vec::new();
            let mut after = 0;
            loop {
                let page = self
                    .bus
                    .list_stored(
                        StreamFamily::DeadLetters,
                        filter.as_deref(),
                        after,
                        REPLAY_PAGE,
                    )
                    .await
                    .map_err(bus_error)?;
                let Some(last) = page.last() else { break };
                after = last.sequence;
                letters.extend(page);
            }
            for message in letters {
                outcomes.push(self.replay_one(message).await);
            }
            return Ok(outcomes);
        }
        for &id in ids {
            let found = self
                .bus
                .get_stored(StreamFamily::DeadLetters, id)
                .await
                .map_err(bus_error)?;
            let outcome = match found {
                None => ReplayOutcome {
                    id,
                    error: format!(
                        "no dead letter {id}: already replayed, expired, or never there (see `herald dlq list`)"
                    ),
                    ..Default::default()
                },
                Some(message) if stage.is_some_and(|s| stage_of(&message.subject) != s) => {
                    ReplayOutcome {
                        id,
                        stage: stage_of(&message.subject).to_string(),
                        error: format!(
                            "dead letter {id} belongs to stage {}, not {}",
                            stage_of(&message.subject),
                            stage.unwrap_or_default()
                        ),
                        ..Default::default()
                    }
                }
                Some(message) => self.replay_one(message).await,
            };
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    async fn replay_one(&self, message: StoredMessage) -> ReplayOutcome {
        let id = message.sequence;
        let letter = match decode_letter(&message) {
            Ok(letter) => letter,
            Err(problem) => {
                return ReplayOutcome {
                    id,
                    stage: stage_of(&message.subject).to_string(),
                    error: problem,
                    ..Default::default()
                };
            }
        };
        let mut outcome = ReplayOutcome {
            id,
            stage: letter.stage.clone(),
            original_subject: letter.original_subject.clone(),
            original_msg_id: letter.original_msg_id.clone(),
            ..Default::default()
        };
        match StreamFamily::of_subject(&letter.original_subject) {
            Some(StreamFamily::DeadLetters) | None => {
                outcome.error = format!(
                    "the original subject {:?} is not one a stage reads; it cannot be replayed",
                    letter.original_subject
                );
                return outcome;
            }
            Some(_) => {}
        }
        let msg_id = replay_msg_id(&letter, id);
        let mut headers: Vec<(String, String)> = letter.original_headers.into_iter().collect();
        // The map lost the original order; a stable one keeps the message reproducible.
        headers.sort();
        // The bus sets the message id itself; a stale replay marker would name the wrong letter.
        headers.retain(|(name, _)| {
            !name.eq_ignore_ascii_case(header::MSG_ID)
                && !name.eq_ignore_ascii_case(header::REPLAY_OF)
        });
        let mut republish =
            OutgoingMessage::new(&letter.original_subject, &msg_id, letter.original_payload);
        republish.headers = headers;
        let republish = republish.with_header(header::REPLAY_OF, format!("{}/{id}", letter.stage));
        let receipt = match self.bus.publish(republish).await {
            Ok(receipt) => receipt,
            Err(e) => {
                tracing::warn!(dead_letter = id, stage = %letter.stage, error = %e, "replay not published; the dead letter stays");
                outcome.error = format!("not republished, the dead letter stays: {e}");
                return outcome;
            }
        };
        outcome.sequence = receipt.sequence;
        // Stored (or stored by an earlier replay of this letter, when `duplicate`): only now may the
        // dead letter go.
        match self.bus.delete_stored(StreamFamily::DeadLetters, id).await {
            Ok(_) => {
                outcome.replayed = true;
                tracing::info!(
                    dead_letter = id,
                    stage = %letter.stage,
                    subject = %letter.original_subject,
                    original_msg_id = %letter.original_msg_id,
                    msg_id = %msg_id,
                    sequence = receipt.sequence,
                    duplicate = receipt.duplicate,
                    "dead letter replayed"
                );
                metrics::counter!("herald_dead_letters_replayed_total", "stage" => letter.stage)
                    .increment(1);
            }
            Err(e) => {
                tracing::warn!(dead_letter = id, stage = %letter.stage, error = %e, "replayed but the dead letter could not be removed");
                outcome.error = format!(
                    "republished (sequence {}) but the dead letter could not be removed: {e}; replaying it again is harmless",
                    receipt.sequence
                );
            }
        }
        outcome
    }
}

#[tonic::async_trait]
impl DeadLetters for DeadLetterApi {
    async fn list(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        let request = request.into_inner();
        let stage = check_stage(&request.stage)?;
        let limit = usize::try_from(request.limit).unwrap_or(MAX_LIMIT);
        let (entries, next_after) = DeadLetterApi::list(self, stage, request.after, limit).await?;
        Ok(Response::new(ListDeadLettersResponse {
            entries,
            next_after,
        }))
    }

    async fn replay(
        &self,
        request: Request<ReplayDeadLettersRequest>,
    ) -> Result<Response<ReplayDeadLettersResponse>, Status> {
        let request = request.into_inner();
        let stage = check_stage(&request.stage)?;
        let outcomes = DeadLetterApi::replay(self, &request.ids, stage).await?;
        let replayed = outcomes.iter().filter(|o| o.replayed).count();
        let failed = outcomes.len() - replayed;
        Ok(Response::new(ReplayDeadLettersResponse {
            outcomes,
            replayed: u32::try_from(replayed).unwrap_or(u32::MAX),
            failed: u32::try_from(failed).unwrap_or(u32::MAX),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_single_subject_tokens() {
        assert_eq!(check_stage("").ok(), Some(None));
        assert_eq!(check_stage(" scoring ").ok(), Some(Some("scoring")));
        for bad in ["a.b", "*", ">", "sco ring"] {
            assert!(check_stage(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_replay_id_is_new_and_stable_per_dead_letter() {
        let letter = DeadLetter {
            stage: "scoring".into(),
            original_msg_id: "servicenow:incident:abc:23".into(),
            ..Default::default()
        };
        assert_eq!(
            replay_msg_id(&letter, 7),
            "servicenow:incident:abc:23:replay:7"
        );
        assert_ne!(replay_msg_id(&letter, 7), replay_msg_id(&letter, 8));
        let anonymous = DeadLetter {
            stage: "notify".into(),
            ..Default::default()
        };
        assert_eq!(replay_msg_id(&anonymous, 3), "replay:notify:3");
    }

    #[test]
    fn only_events_are_described() {
        let event = ItsmEvent {
            id: "servicenow:incident:abc:23".into(),
            source: Source::Servicenow as i32,
            kind: EventKind::IncidentResolved as i32,
            record: Some(herald_proto::v1::Record {
                number: "INC0010023".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut letter = DeadLetter {
            original_subject: "herald.events.servicenow.incident_resolved".into(),
            original_payload: event.encode_to_vec(),
            ..Default::default()
        };
        let described = describe_event(&letter).expect("an event");
        assert_eq!(described.id, "servicenow:incident:abc:23");
        assert_eq!(described.source, "servicenow");
        assert_eq!(described.kind, "incident_resolved");
        assert_eq!(described.record_number, "INC0010023");
        letter.original_subject = "herald.wins.incident_resolved".into();
        assert_eq!(describe_event(&letter), None);
    }
}
