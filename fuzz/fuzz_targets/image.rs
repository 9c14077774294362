//! Fuzz target `image`: see [`embedeval::fuzzing::image`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| embedeval::fuzzing::image(data));
