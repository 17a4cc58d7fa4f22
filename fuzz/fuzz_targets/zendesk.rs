#![no_main]

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let signed = [
        "x-zendesk-webhook-signature",
        "x-zendesk-webhook-signature-timestamp",
    ];
    common::exercise(
        "zendesk",
        &signed,
        &[("x-zendesk-webhook-invocation-id", "8351190734")],
        data,
    );
});
