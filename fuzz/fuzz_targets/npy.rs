//! Fuzz target `npy`: see [`embedeval::fuzzing::npy`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| embedeval::fuzzing::npy(data));
