#![no_main]

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let structured = [("content-type", "application/cloudevents+json")];
    let batch = [("content-type", "application/cloudevents-batch+json")];
    let binary = [
        ("content-type", "application/json"),
        ("ce-specversion", "1.0"),
        ("ce-id", "run-1"),
        ("ce-source", "https://automation.example/runbooks/x"),
        ("ce-type", "dev.herald.automation.run"),
    ];
    for fixed in [&structured[..], &batch[..], &binary[..]] {
        common::exercise("cloudevents", &["x-herald-signature"], fixed, data);
    }
});
