//! Fuzz target `card`: see [`embedeval::fuzzing::card`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| embedeval::fuzzing::card(data));
