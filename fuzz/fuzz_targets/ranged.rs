#![no_main]
//! Differential: every format opened from ranged bytes (only what its
//! `prepare_ranged` fetched; the rest unfetched zeros, streamed on demand)
//! must give what it gives from the whole file: the same refusal, or the
//! same tensors, metadata and bytes. A reader that parses outside the ranges
//! its format fetches would see zeros here and disagree.
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;
use tensorcast::{Bytes, Input, ReadAt, Registry};

fuzz_target!(|data: &[u8]| {
    let registry = Registry::builtin();
    let options = tensorcast::Options::default();
    let whole = registry.open_input(Input::memory("f", data.to_vec()), &options);
    let object: Arc<dyn ReadAt> = Arc::new(Bytes::from(data.to_vec()));
    let Ok(mut ranged) = Bytes::ranged(Arc::clone(&object)) else { return };
    let _ = ranged.fetch(0, 512);
    let head = &ranged[..data.len().min(512)];
    let Some(format) = registry.detect_head(head) else { return };
    match format.prepare_ranged(&mut ranged, &options.limits) {
        Ok(true) => {}
        _ => return,
    }
    let remote = registry.open_input(Input::memory("f", ranged), &options);
    match (whole, remote) {
        (Err(a), Err(b)) => assert_eq!(a.rule(), b.rule(), "{a} / {b}"),
        (Ok(a), Ok(b)) => {
            assert_eq!(a.tensors(), b.tensors());
            // Debug text: NaN values compare unequal as values.
            assert_eq!(format!("{:?}", a.metadata()), format!("{:?}", b.metadata()));
            for i in 0..a.tensors().len() {
                let x = a.tensor_data(i).and_then(|d| d.into_vec());
                let y = b.tensor_data(i).and_then(|d| d.into_vec());
                match (x, y) {
                    (Ok(x), Ok(y)) => assert!(x == y, "tensor {i} differs"),
                    (Err(_), Err(_)) => {}
                    (x, y) => panic!("tensor {i}: {:?} vs {:?}", x.err(), y.err()),
                }
            }
        }
        (a, b) => panic!("whole: {:?}, ranged: {:?}", a.err(), b.err()),
    }
});
