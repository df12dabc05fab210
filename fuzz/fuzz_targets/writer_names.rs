#![no_main]
//! Writers and hostile tensor names: a plan whose names come from the input
//! goes to every writer in memory. No writer may panic; the npz writer either
//! refuses a name or writes members an extractor keeps inside its folder; a
//! safetensors, GGUF or tpack file written reads back with the same names.
use libfuzzer_sys::fuzz_target;
use tensorcast_core::{DType, MemoryStore, Metadata, Options, Plan, TensorData, TensorInfo};

fuzz_target!(|data: &[u8]| {
    // Names separated by 0xFF, at most 8, each a lossy UTF-8 string.
    let names: Vec<String> = data
        .split(|&b| b == 0xff)
        .take(8)
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    let tensors: Vec<TensorInfo> = names
        .iter()
        .filter_map(|n| TensorInfo::new(n.as_str(), DType::U8, vec![1]))
        .collect();
    let plan = Plan { tensors, metadata: Metadata::new() };
    let registry = tensorcast::Registry::builtin();
    for format in ["safetensors", "gguf", "tpack", "npz"] {
        let store = MemoryStore::new();
        let Ok(mut sink) = registry.create(format, Box::new(store.target("out")), &Options::default()) else {
            continue;
        };
        if sink.begin(&plan).is_err() {
            continue;
        }
        let byte = [7u8];
        let mut ok = true;
        for i in 0..plan.tensors.len() {
            if sink.write_tensor(i, TensorData::Borrowed(&byte)).is_err() {
                ok = false;
                break;
            }
        }
        if !ok || sink.finish().is_err() {
            continue;
        }
        let Some(bytes) = store.get("out") else { continue };
        if format == "npz" {
            for t in &plan.tensors {
                let n = &t.name;
                assert!(!n.contains(['/', '\\', '\0']) && n != ".." && !n.is_empty(), "npz kept {n:?}");
            }
            continue;
        }
        let input = tensorcast_core::Input::memory("out", bytes);
        let back = registry.open_input(input, &Options::default()).expect("a written file reads back");
        let got: Vec<&str> = back.tensors().iter().map(|t| t.name.as_str()).collect();
        let want: Vec<&str> = plan.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(got, want, "{format} changed the names");
    }
});
