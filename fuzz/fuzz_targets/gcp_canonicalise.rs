#![no_main]
//! libFuzzer entry for `gatehouse_fuzz::gcp_canonicalise`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gatehouse_fuzz::gcp_canonicalise(data);
});
