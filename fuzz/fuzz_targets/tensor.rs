//! Fuzz target `tensor`: see [`embedeval::fuzzing::tensor`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| embedeval::fuzzing::tensor(data));
