//! The one error a service's store returns, and what it means for a message being handled: a
//! database that is down comes back (wait for it, without using up the message's deliveries), a
//! stored row that cannot be decoded never will (dead-letter the message now), anything else is
//! retried within the message's delivery budget.

use herald_events::worker::HandleError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error: {0}")]
    Db(#[source] sqlx::Error),
    #[error("stored record {0} cannot be decoded: {1}")]
    Corrupt(String, #[source] prost::DecodeError),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Db(e)
    }
}

impl Error {
    /// True when trying again cannot help: the stored data or the schema does not match what the
    /// code reads.
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::Corrupt(..) => true,
            Error::Db(e) => is_permanent(e),
        }
    }
}

/// sqlx errors about the shape of stored data rather than the database's availability.
pub fn is_permanent(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::ColumnIndexOutOfBounds { .. }
            | sqlx::Error::TypeNotFound { .. }
    )
}

/// sqlx errors that say the database cannot be reached or is not serving right now (rather than
/// anything about the statement or the data): waiting for it is not the message's fault.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // 08: connection exception; 53: insufficient resources; 57P01-57P03: the server is
        // shutting down or not accepting connections yet.
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || code.starts_with("53") || code.starts_with("57P0")
        }),
        _ => false,
    }
}

impl From<Error> for HandleError {
    fn from(e: Error) -> Self {
        if e.is_permanent() {
            return HandleError::reject(e);
        }
        if matches!(&e, Error::Db(db) if is_unavailable(db)) {
            return HandleError::unavailable(e);
        }
        HandleError::retry(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undecodable_rows_are_rejected_and_outages_retried() {
        let corrupt = Error::Corrupt(
            "win-1".into(),
            <herald_proto::v1::ItsmEvent as prost::Message>::decode(&[0xff_u8][..])
                .expect_err("not a message"),
        );
        assert!(matches!(HandleError::from(corrupt), HandleError::Reject(_)));
        let decode = Error::Db(sqlx::Error::ColumnDecode {
            index: "payload".into(),
            source: "not bytes".into(),
        });
        assert!(matches!(HandleError::from(decode), HandleError::Reject(_)));
        let outage = Error::Db(sqlx::Error::PoolTimedOut);
        let handled = HandleError::from(outage);
        assert!(
            matches!(handled, HandleError::Unavailable(_)),
            "a database down is no fault of the message"
        );
        let missing = Error::Db(sqlx::Error::RowNotFound);
        assert!(matches!(HandleError::from(missing), HandleError::Retry(_)));
        // The cause travels with the error instead of being flattened into a string.
        assert!(std::error::Error::source(&handled).is_some());
    }
}
