//! Notify's integration tests, one binary: the store on both backends, and the stage in-process
//! against a real nats-server, PostgreSQL and HTTP receivers.

mod channels;
mod email;
mod handover;
mod interrupted;
mod operations;
mod render_fuzz;
mod routes;
mod stage;
mod store_conformance;
