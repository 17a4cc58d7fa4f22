//! What scoring's test modules share.

pub mod oracle;
