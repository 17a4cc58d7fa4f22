//! Small formatting helpers the printing modules share. A leaf.

/// An amount with its currency, right-aligned for tables.
pub fn money(currency: &str, amount: f64) -> String {
    format!("{currency} {amount:>12.2}")
}
