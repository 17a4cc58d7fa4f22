#![no_main]

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::exercise(
        "servicenow",
        &["x-herald-signature", "authorization"],
        &[],
        data,
    );
});
