//! What `herald-bench` and `herald-faults` share: the event generator, the driver, the receiver
//! that stands in for a webhook channel, and the Herald (or Alertmanager) under test.

pub mod events;
pub mod faults;
pub mod load;
pub mod raw;
pub mod rss;
pub mod sink;
pub mod targets;
