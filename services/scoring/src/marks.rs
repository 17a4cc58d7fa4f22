//! Changes a lane has published (withdrawals, lessons, a redelivery's pending win) whose outbox row
//! is not deleted yet (their "mark"); a win confirmed on arrival has no outbox row and no mark.
//! Clearing a mark was a commit of its own after every publish, the lane's next batch waiting
//! behind it; now the next batch's transaction, whichever lane's, clears what has gathered, and a
//! flush clears what is left when no batch comes. A mark not cleared only means the outbox may
//! publish the change once more, which the bus drops as a repeat.

use std::{sync::Mutex, time::Duration};

use herald_proto::v1::Win;
use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// How long a published win's mark waits for a batch to clear it.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

#[derive(Default)]
pub struct PendingMarks {
    wins: Mutex<Vec<Win>>,
}

impl PendingMarks {
    /// A panic elsewhere while holding the lock leaves a list that is still whole: keep using it.
    fn wins(&self) -> std::sync::MutexGuard<'_, Vec<Win>> {
        self.wins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Wins just published, to be unmarked; or wins taken by a transaction that did not commit.
    pub fn add(&self, wins: Vec<Win>) {
        self.wins().extend(wins);
    }

    /// Everything waiting, for a transaction to clear.
    pub fn take(&self) -> Vec<Win> {
        std::mem::take(&mut *self.wins())
    }
}

/// Clears, every [`FLUSH_EVERY`], what no batch has taken; once more at the stop.
pub async fn flush(marks: std::sync::Arc<PendingMarks>, store: Store, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        flush_once(&marks, &store).await;
    }
    flush_once(&marks, &store).await;
}

async fn flush_once(marks: &PendingMarks, store: &Store) {
    let wins = marks.take();
    if wins.is_empty() {
        return;
    }
    if let Err(e) = store.mark_published(&wins).await {
        tracing::warn!(wins = wins.len(), error = %e, "cannot clear the outbox marks of published wins; will try again");
        marks.add(wins);
    }
}
