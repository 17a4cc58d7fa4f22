//! What `herald-bench` and `herald-faults` share: the event generator, the driver, the receiver
//! that stands in for a webhook channel, the Herald (or Alertmanager) under test, and the query
//! timings with millions of wins stored.

pub mod events;
pub mod faults;
pub mod load;
pub mod queries;
pub mod raw;
pub mod rss;
pub mod sink;
pub mod targets;
