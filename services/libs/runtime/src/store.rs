//! The one error a service's store returns, and what it means for a message being handled: a
//! database that is down comes back (retry), a stored row that cannot be decoded never will
//! (dead-letter the message now rather than burn its delivery budget on it).

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

impl From<Error> for HandleError {
    fn from(e: Error) -> Self {
        if e.is_permanent() {
            HandleError::reject(e)
        } else {
            HandleError::retry(e)
        }
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
        assert!(matches!(handled, HandleError::Retry(_)));
        // The cause travels with the error instead of being flattened into a string.
        assert!(std::error::Error::source(&handled).is_some());
    }
}
