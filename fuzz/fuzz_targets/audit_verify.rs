#![no_main]
//! libFuzzer entry for `gatehouse_fuzz::audit_verify`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gatehouse_fuzz::audit_verify(data);
});
