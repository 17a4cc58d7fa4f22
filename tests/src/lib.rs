//! End-to-end tests live in `it/` (one test binary); this crate has no code of its own.
