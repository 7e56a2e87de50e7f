#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| trail_fuzz::radius::run(data));
