//! Numbers and durations as people read them in an announcement. Money is the organisation's
//! (`Organisation::money`).

use herald_catalog::thousands;

/// `2,040`, `12.5`: a count or quantity with thousands separators.
pub fn count(value: f64) -> String {
    if (value - value.round()).abs() < 0.05 || value.abs() >= 100.0 {
        thousands(value.round())
    } else {
        format!("{value:.1}")
    }
}

/// `19 h`, `23.5 h`: working hours as a quantity (not a span of wall-clock time).
pub fn hours(value: f64) -> String {
    format!("{} h", count(value))
}

/// `45 min`, `2 h 48 min`, `3 days 4 h`.
pub fn duration(minutes: f64) -> String {
    // Whole minutes are what people read; sub-minute precision would be noise.
    let total = minutes.round().max(0.0) as i64;
    let (days, hours, mins) = (total / 1440, (total % 1440) / 60, total % 60);
    match (days, hours, mins) {
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (1, 0, _) => "1 day".to_string(),
        (1, h, _) => format!("1 day {h} h"),
        (d, 0, _) => format!("{d} days"),
        (d, h, _) => format!("{d} days {h} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_durations() {
        assert_eq!(duration(45.0), "45 min");
        assert_eq!(duration(72.45), "1 h 12 min");
        assert_eq!(duration(240.0), "4 h");
        assert_eq!(duration(2880.0 + 125.0), "2 days 2 h");
        assert_eq!(duration(1440.0), "1 day");
    }

    #[test]
    fn counts_drop_needless_decimals() {
        assert_eq!(count(2040.0), "2,040");
        assert_eq!(count(12.54), "12.5");
        assert_eq!(count(5697.4), "5,697");
    }

    #[test]
    fn hours_read_as_a_quantity() {
        assert_eq!(hours(19.0), "19 h");
        assert_eq!(hours(1408.0 / 60.0), "23.5 h");
    }
}
