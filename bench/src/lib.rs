//! What `herald-bench` and `herald-faults` share: the event generator, the driver, the receiver
//! that stands in for a webhook channel, the Herald (or Alertmanager, or the floor of what Herald's
//! guarantees cost) under test, the query timings with millions of wins stored, and the backfill
//! of a generated ServiceNow export (the floor's too).

pub mod backfill;
pub mod cpu;
pub mod database;
pub mod events;
pub mod export;
pub mod faults;
pub mod files;
pub mod floor;
pub mod floor_backfill;
pub mod load;
pub mod neighbours;
pub mod queries;
pub mod raw;
pub mod row_cost;
pub mod rss;
pub mod sink;
pub mod stages;
pub mod targets;
pub mod write_back;
