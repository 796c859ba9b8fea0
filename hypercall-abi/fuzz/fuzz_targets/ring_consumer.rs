//! libFuzzer entry point for `hypercall_abi_fuzz::ring_consumer` (see that function for the invariants).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = hypercall_abi_fuzz::ring_consumer(data);
});
