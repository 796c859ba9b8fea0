//! libFuzzer entry point for `hypercall_abi_fuzz::xenstore_parser` (see that function for the invariants).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = hypercall_abi_fuzz::xenstore_parser(data);
});
