//! Publishing a win's status on `herald.wins.<kind>`: its confirmation under the win id, its
//! withdrawal under `<win id>:revoked`, so JetStream drops a repeat of either but never confuses
//! the two.

use herald_events::{Bus, BusError, OutgoingMessage, subjects};
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
    let sends = wins.iter().map(|win| {
        let kind = EventKind::try_from(win.kind).unwrap_or(EventKind::Unspecified);
        let message =
            OutgoingMessage::new(subjects::win(kind), message_id(win), win.encode_to_vec())
                .with_ordering_key(win.id.clone())
                .with_trace_context();
        bus.publish(message)
    });
    for result in futures::future::join_all(sends).await {
        result?;
    }
    Ok(())
}
