#![no_main]
//! libFuzzer entry for `gatehouse_fuzz::condition`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gatehouse_fuzz::condition(data);
});
