#![no_main]

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for event in ["pull_request", "deployment_status", "ping"] {
        common::exercise(
            "github",
            &["x-hub-signature-256"],
            &[("x-github-event", event)],
            data,
        );
    }
});
