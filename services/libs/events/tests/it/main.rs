//! The bus library's integration tests, one binary: the Bus contract on both implementations
//! (JetStream on a real nats-server, and the embedded bus), and trace context in message headers.

mod bus_conformance;
mod topology;
mod trace_context;
