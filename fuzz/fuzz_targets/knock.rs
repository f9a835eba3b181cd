#![no_main]
//! libFuzzer entry for `gatehouse_fuzz::knock`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gatehouse_fuzz::knock(data);
});
