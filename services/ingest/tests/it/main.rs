//! Ingest's integration tests, one binary: the service in-process (or its HTTP route on a rig with
//! a chosen clock) against a real nats-server and PostgreSQL. What the modules share is in
//! `support`.

mod support;

mod batches;
mod fixtures;
mod poller;
mod robustness;
mod signatures;
mod webhooks;
