//! Scoring's integration tests, one binary: the value models on the fixtures oracle's events, the
//! store on both backends, and the stage in-process against a real nats-server and PostgreSQL.

mod support;

mod batches;
mod report;
mod rescore;
mod stage;
mod store_conformance;
mod stories;
mod value_kinds;
mod value_models;
mod verification;
