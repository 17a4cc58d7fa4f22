//! Herald's contracts, generated from `proto/herald/v1`.
//!
//! Bus payloads (`ItsmEvent`, `Win`, `Announcement`, `DeadLetter`), the four services' gRPC APIs and
//! `DeadLetters` live in [`v1`]. [`kinds`] adds the stable string tokens used in subjects,
//! configuration and the database.

pub mod kinds;
pub mod time;

/// Generated code for package `herald.v1`.
#[allow(clippy::all, clippy::pedantic, missing_docs, rust_2018_idioms)]
pub mod v1 {
    tonic::include_proto!("herald.v1");
}

/// The encoded file descriptor set of every Herald proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/herald_descriptor.bin"));
