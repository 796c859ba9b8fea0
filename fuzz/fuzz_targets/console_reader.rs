//! libFuzzer entry point for `guest_input_fuzz::console_reader` (see that function for the invariants).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = guest_input_fuzz::console_reader(data);
});
