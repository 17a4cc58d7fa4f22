//! Spotlight's integration tests, one binary: the store on both backends, and the stage in-process
//! against a real nats-server and PostgreSQL.

mod ledger_properties;
mod recognition;
mod stage;
mod store_conformance;
