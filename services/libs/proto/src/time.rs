//! Conversions between protobuf timestamps and chrono.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

/// A chrono instant as a protobuf timestamp.
pub fn to_timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: at.timestamp(),
        // Always in 0..1e9 for a valid DateTime, so the cast cannot truncate.
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}

/// A protobuf timestamp as a chrono instant; `None` when it is out of chrono's range or malformed.
pub fn from_timestamp(ts: &Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(ts.nanos).ok()?;
    DateTime::from_timestamp(ts.seconds, nanos)
}

/// An optional protobuf timestamp as an optional chrono instant.
pub fn opt_from_timestamp(ts: Option<&Timestamp>) -> Option<DateTime<Utc>> {
    ts.and_then(from_timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_nanoseconds() {
        let at = DateTime::parse_from_rfc3339("2025-03-11T08:04:37.123456789Z")
            .map(|d| d.with_timezone(&Utc))
            .expect("valid");
        assert_eq!(from_timestamp(&to_timestamp(at)), Some(at));
    }

    #[test]
    fn negative_nanos_are_rejected() {
        assert_eq!(
            from_timestamp(&Timestamp {
                seconds: 0,
                nanos: -1
            }),
            None
        );
    }
}
