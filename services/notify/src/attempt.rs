//! What one delivery attempt came to, whatever the channel: the vocabulary shared by the senders
//! (HTTP and local), the dispatcher that schedules retries and the store that logs attempts.

use std::time::Duration;

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    Delivered {
        status: u16,
        /// What the receiver answered, cut short (Slack's `ok`, the relay's `250 … queued as …`).
        answer: String,
    },
    /// Worth trying again: 5xx, 429, a timeout or a connection failure.
    Retry {
        status: Option<u16>,
        error: String,
        /// The receiver said when (Retry-After).
        after: Option<Duration>,
    },
    /// Will never work as it is: other 4xx, a refused destination, a broken configuration.
    Failed { status: Option<u16>, error: String },
}

impl AttemptOutcome {
    pub fn status(&self) -> Option<u16> {
        match self {
            AttemptOutcome::Delivered { status, .. } => Some(*status),
            AttemptOutcome::Retry { status, .. } | AttemptOutcome::Failed { status, .. } => *status,
        }
    }

    /// The receiver's answer to an attempt that went through; a failure's is in its error.
    pub fn answer(&self) -> Option<&str> {
        match self {
            AttemptOutcome::Delivered { answer, .. } => {
                Some(answer.as_str()).filter(|a| !a.is_empty())
            }
            AttemptOutcome::Retry { .. } | AttemptOutcome::Failed { .. } => None,
        }
    }

    /// Delivered with nothing to say (a local channel).
    pub fn written() -> Self {
        AttemptOutcome::Delivered {
            status: 0,
            answer: String::new(),
        }
    }

    pub fn error(&self) -> Option<&str> {
        match self {
            AttemptOutcome::Delivered { .. } => None,
            AttemptOutcome::Retry { error, .. } | AttemptOutcome::Failed { error, .. } => {
                Some(error)
            }
        }
    }
}
