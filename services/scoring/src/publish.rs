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

/// Publishes every win, all in flight at once, and waits until the bus stored each.
pub async fn wins(bus: &dyn Bus, wins: &[Win]) -> Result<(), BusError> {
    traced_wins(bus, wins.iter().map(|win| (win, None))).await
}

/// The same, each win carrying on the trace of the event that released it (that event's message
/// headers), so one trace runs from the webhook to the delivery even when a lane records many
/// events in one batch.
pub async fn traced_wins<'a>(
    bus: &dyn Bus,
    wins: impl IntoIterator<Item = (&'a Win, Option<&'a Headers>)>,
) -> Result<(), BusError> {
    let messages: Vec<OutgoingMessage> = wins
        .into_iter()
        .map(|(win, parent)| {
            let kind = EventKind::try_from(win.kind).unwrap_or(EventKind::Unspecified);
            let span = tracing::info_span!("score.publish", win = %win.id);
            if let Some(parent) = parent {
                trace::set_parent_from(&span, parent);
            }
            span.in_scope(|| {
                OutgoingMessage::new(subjects::win(kind), message_id(win), win.encode_to_vec())
                    .with_ordering_key(win.id.clone())
                    .with_trace_context()
            })
        })
        .collect();
    // In order, so a win's confirmation and a later withdrawal of it are stored in that order.
    for result in bus.publish_in_order(messages).await {
        result?;
    }
    Ok(())
}
