//! Publishing a win's status on `herald.wins.<kind>`: its confirmation under the win id, its
//! withdrawal under `<win id>:revoked`, so JetStream drops a repeat of either but never confuses
//! the two.

use herald_events::{Bus, BusError, Headers, OutgoingMessage, subjects, trace};
use herald_proto::v1::{EventKind, Win, WinStatus};
use prost::Message;

pub fn message_id(win: &Win) -> String {
    if win.status == WinStatus::Revoked as i32 {
        format!("{}:revoked", win.id)
    } else {
        win.id.clone()
    }
}

/// What publishes a win again if a power cut loses its publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// The event that released it: acknowledged only after this publish, and its redelivery
    /// publishes the win again. The embedded bus need not wait for the disk.
    Redelivery,
    /// Its outbox row or its pending status, cleared once the publish is confirmed: the publish
    /// must be on disk by then.
    Outbox,
}

/// Publishes every win, all in flight at once, and waits until the bus stored each.
pub async fn wins(bus: &dyn Bus, wins: &[Win]) -> Result<(), BusError> {
    traced_wins(bus, wins.iter().map(|win| (win, None, Backing::Outbox))).await
}

/// The same, each win carrying on the trace of the event that released it (that event's message
/// headers), so one trace runs from the webhook to the delivery even when a lane records many
/// events in one batch.
pub async fn traced_wins<'a>(
    bus: &dyn Bus,
    wins: impl IntoIterator<Item = (&'a Win, Option<&'a Headers>, Backing)>,
) -> Result<(), BusError> {
    let messages: Vec<OutgoingMessage> = wins
        .into_iter()
        .map(|(win, parent, backing)| message(win, parent, backing))
        .collect();
    // In order, so a win's confirmation and a later withdrawal of it are stored in that order.
    for result in bus.publish_in_order(messages).await {
        result?;
    }
    Ok(())
}

fn message(win: &Win, parent: Option<&Headers>, backing: Backing) -> OutgoingMessage {
    let kind = EventKind::try_from(win.kind).unwrap_or(EventKind::Unspecified);
    let span = tracing::info_span!("score.publish", win = %win.id);
    if let Some(parent) = parent {
        trace::set_parent_from(&span, parent);
    }
    let message = span.in_scope(|| {
        OutgoingMessage::new(subjects::win(kind), message_id(win), win.encode_to_vec())
            .with_ordering_key(win.id.clone())
            .with_trace_context()
    });
    match backing {
        Backing::Redelivery => message.republished_on_redelivery(),
        Backing::Outbox => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_win_its_event_brings_back_may_skip_the_disk() {
        let win = Win {
            id: "w-1".into(),
            ..Win::default()
        };
        assert!(message(&win, None, Backing::Redelivery).republished_on_redelivery);
        assert!(!message(&win, None, Backing::Outbox).republished_on_redelivery);
    }
}
