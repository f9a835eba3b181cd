#![no_main]
//! libFuzzer entry for `gatehouse_fuzz::emulator_config`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gatehouse_fuzz::emulator_config(data);
});
