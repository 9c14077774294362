//! Fuzz target `manifest`: see [`embedeval::fuzzing::manifest`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| embedeval::fuzzing::manifest(data));
