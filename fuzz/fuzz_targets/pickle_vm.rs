#![no_main]
//! The pickle VM and the torch interpretation (strict and lenient).
use libfuzzer_sys::fuzz_target;
use tensorcast_pickle::{torch, vm};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = vm::run(data, 0, vm::VmLimits::default()) {
        let _ = torch::interpret(&p, false);
        let _ = torch::interpret(&p, true);
    }
});
