//! Fuzz target `cifar`: see [`embedeval::fuzzing::cifar`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| embedeval::fuzzing::cifar(data));
