#![no_main]
//! libFuzzer entry for `gatehouse_fuzz::broker_request`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gatehouse_fuzz::broker_request(data);
});
