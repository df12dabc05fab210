//! Every committed fixture, truncated at many lengths and with bytes flipped
//! in every region, must read correctly or fail with an error naming a rule:
//! never a panic, and never an output or an allocation larger than the input
//! could justify (a counting allocator measures each case's peak).

use crate::common;
use crate::common::fixture;
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use tensorcast::{adapt, ConvertOptions, Limits, Registry, Source};
use tensorcast_gguf::GgufFile;
use tensorcast_pickle::{PytorchFile, PytorchOptions};
use tensorcast_safetensors::SafetensorsFile;

/// The system allocator, counting live bytes and their peak, so each case
/// can assert its memory stays within a multiple of its input.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// Cases run one at a time so the peak is theirs alone.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

// SAFETY: defers every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Most bytes one case may hold at once: dequantized or expanded output (see
/// `read_all`) plus a fixed allowance for tables, pools and the harness.
fn allowed(input_len: usize) -> usize {
    256 * input_len + (64 << 20)
}

/// Runs `case` alone, asserting its peak allocation against [`allowed`];
/// returns its result and that peak.
fn measured<T>(input_len: usize, what: &str, case: impl FnOnce() -> T) -> T {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = case();
    let used = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    assert!(
        used <= allowed(input_len),
        "{what}: {used} bytes allocated for a {input_len}-byte input"
    );
    MOST.fetch_max(used, Ordering::Relaxed);
    if input_len >= 64 << 10 {
        MOST_RATIO.fetch_max(used / input_len, Ordering::Relaxed);
    }
    out
}

/// The largest peak seen, and the largest peak-to-input ratio for inputs of
/// 64 KiB or more (below that the fixed allowance dominates).
static MOST: AtomicUsize = AtomicUsize::new(0);
static MOST_RATIO: AtomicUsize = AtomicUsize::new(0);

fn files<S: AsRef<str>>(dirs: &[S], ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in dirs {
        for entry in std::fs::read_dir(fixture(dir.as_ref())).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == ext) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Reads every tensor (dequantized where quantized); true when accepted.
fn read_all(source: Box<dyn Source>, input_len: usize) -> bool {
    let source = match adapt(
        source,
        Registry::builtin().get("safetensors").unwrap(),
        // Sparse tensors are densified, so damaged indices meet that code too.
        &ConvertOptions {
            densify: true,
            ..ConvertOptions::default()
        },
    ) {
        Ok(s) => s,
        Err(e) => {
            // Only a type without a reference dequantizer, or a tensor the
            // reader lists but cannot read, is refused here.
            assert!(
                e.to_string().contains("no reference dequantizer") || e.rule() == Some("unsupported-dtype"),
                "{e}"
            );
            return false;
        }
    };
    let mut total = 0u64;
    for i in 0..source.tensors().len() {
        // Deflated torch records are only inflated when read, so damage
        // there surfaces now, and must still cite a rule.
        match source.tensor_data(i).and_then(|d| d.into_vec()) {
            Ok(v) => total += v.len() as u64,
            Err(e) => {
                assert!(e.to_string().contains("[rule "), "{e}");
                return false;
            }
        }
    }
    // Dequantized f32 is at most 32x its blocks (IQ1_S: 50 bytes → 1 KiB);
    // torch views may expand stored bytes at most 256x.
    assert!(total <= 256 * input_len as u64 + (1 << 20));
    true
}

fn open(format: &str, bytes: Vec<u8>) -> Result<Box<dyn Source>, tensorcast::Error> {
    let limits = Limits::default();
    match format {
        "safetensors" => SafetensorsFile::from_bytes("s.safetensors".as_ref(), bytes.into(), &limits)
            .map(|f| Box::new(f) as _),
        "numpy" => tensorcast_numpy::NumpyFile::from_bytes("s.npy".as_ref(), bytes.into(), &limits)
            .map(|f| Box::new(f) as _),
        "tpack" => tensorcast_tpack::TpackFile::from_bytes("s.tpack".as_ref(), bytes.into(), &limits)
            .map(|f| Box::new(f) as _),
        // Datasets decode whole: the bomb fixture's 64 MiB (and any damaged
        // file's claim past this) is refused by the limit, as --max-alloc does.
        "hdf5" => {
            let limits = Limits {
                max_alloc_bytes: 32 << 20,
                ..limits
            };
            tensorcast::hdf5::Hdf5File::from_bytes("s.h5".as_ref(), bytes.into(), &limits, Default::default())
                .map(|f| Box::new(f) as _)
        }
        "ztensor" => tensorcast::ztensor::ZtFile::from_bytes("s.zt".as_ref(), bytes.into(), &limits)
            .map(|f| Box::new(f) as _),
        "onnx" => {
            // The external data file the fixtures name, beside the model.
            let mut files = tensorcast::MemoryFiles::new();
            files.insert("s.onnx", bytes);
            files.insert(
                "external.onnx.data",
                std::fs::read(common::fixture("onnx/external.onnx.data")).unwrap(),
            );
            files
                .input("s.onnx")
                .and_then(|i| tensorcast::onnx::OnnxFile::from_input(i, &limits))
                .map(|f| Box::new(f) as _)
        }
        "pytorch" => {
            let opts = PytorchOptions {
                lenient: true,
                ..Default::default()
            };
            PytorchFile::from_bytes("s.pt".as_ref(), bytes.into(), &opts).map(|f| Box::new(f) as _)
        }
        _ => GgufFile::from_bytes("s.gguf".as_ref(), bytes.into(), &limits).map(|f| Box::new(f) as _),
    }
}

fn check(format: &str, bytes: Vec<u8>) -> bool {
    let len = bytes.len();
    measured(len, format, || match open(format, bytes) {
        Ok(s) => read_all(s, len),
        Err(e) => {
            assert!(e.to_string().contains(&format!("[rule {format}/")), "{e}");
            false
        }
    })
}

fn all_fixtures() -> Vec<(&'static str, PathBuf)> {
    let st = files(
        &[
            "safetensors/valid",
            "safetensors/valid/sharded",
            "safetensors/cast",
            "safetensors/reject",
            "safetensors/stsw",
            "gguf",
        ],
        "safetensors",
    );
    // The model fixtures: every architecture's GGUFs and weights.
    let models = [
        "llama", "qwen2", "qwen3", "gemma2", "gemma3", "phi3", "bert", "bpe",
    ];
    let model_dirs: Vec<String> = models.iter().map(|m| format!("model/{m}")).collect();
    let model_hf: Vec<String> = models.iter().map(|m| format!("model/{m}/hf")).collect();
    // Issue 16's hostile corpus too (its 20k-tensor file aside: its header
    // alone is a megabyte, swept by nothing here but tests/it/memory_budget.rs).
    let st: Vec<PathBuf> = st
        .into_iter()
        .chain(files(&model_hf, "safetensors"))
        .chain(files(&["hostile/c5_names"], "safetensors"))
        .collect();
    let gg = files(
        &[
            "gguf",
            "gguf/split",
            "gguf/reject",
            "model/bpe/llama-bpe",
            "model/bpe/smollm",
        ],
        "gguf",
    )
    .into_iter()
    .chain(files(&model_dirs, "gguf"))
    .collect::<Vec<_>>();
    let pt = ["pt", "ckpt", "pkl", "bin"].iter().flat_map(|ext| {
        files(
            &[
                "pytorch/valid",
                "pytorch/hostile",
                "model/llama/bin/hf",
                "hostile/c6_pickle",
            ],
            ext,
        )
    });
    st.into_iter()
        .map(|p| ("safetensors", p))
        .chain(gg.into_iter().map(|p| ("gguf", p)))
        .chain(pt.map(|p| ("pytorch", p)))
        .chain(
            files(
                &["tpack", "tpack/spec", "tpack/spec/reject", "hostile/c9_counts"],
                "tpack",
            )
            .into_iter()
            .map(|p| ("tpack", p)),
        )
        .chain(
            files(&["ztensor", "ztensor/reject"], "zt")
                .into_iter()
                .map(|p| ("ztensor", p)),
        )
        .chain(
            files(&["hdf5", "hdf5/reject"], "h5")
                .into_iter()
                .map(|p| ("hdf5", p)),
        )
        .chain(
            files(&["onnx", "onnx/reject"], "onnx")
                .into_iter()
                .map(|p| ("onnx", p)),
        )
        .chain(
            ["npy", "npz"]
                .iter()
                .flat_map(|ext| {
                    files(
                        &["numpy", "numpy/reject", "hostile/c7_zip", "hostile/c8_npy"],
                        ext,
                    )
                })
                .map(|p| ("numpy", p)),
        )
        .collect()
}

#[test]
fn truncation_at_many_lengths_never_panics() {
    let fixtures = all_fixtures();
    assert!(fixtures.len() > 70, "{}", fixtures.len());
    let mut cases = 0;
    for (format, path) in fixtures {
        let bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        // Every length through the first 2 KiB (headers), then a spread.
        let mut lengths: Vec<usize> = (0..=n.min(2048)).collect();
        lengths.extend((0..64).map(|k| n * k / 64));
        for len in lengths {
            let accepted = check(format, bytes[..len].to_vec());
            let from_valid = !path.to_string_lossy().contains("/reject/");
            // A strict prefix of a valid file is never valid itself (GGUF tensors
            // may end before the writer's final padding, so only safetensors).
            if format == "safetensors" && from_valid && len < n && accepted {
                panic!("{}: prefix of {len}/{n} bytes accepted", path.display());
            }
            cases += 1;
        }
    }
    assert!(cases > 10_000, "{cases}");
    println!(
        "{cases} truncations; largest peak allocation {} KiB; largest ratio {}x (inputs >= 64 KiB)",
        MOST.load(Ordering::Relaxed) >> 10,
        MOST_RATIO.load(Ordering::Relaxed)
    );
}

#[test]
fn flipped_bytes_in_every_region_never_panic() {
    for (format, path) in all_fixtures() {
        let bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        if n == 0 {
            continue;
        }
        let mut positions: Vec<usize> = (0..n.min(64)).collect();
        positions.extend((0..256).map(|k| k * n / 256));
        for pos in positions {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[pos] ^= mask;
                check(format, b);
            }
        }
    }
}

/// Inputs that once broke a reader (from fuzzing or review) stay fixed:
/// `fuzz/regressions/<format>/*`, replayed on stable; those listed in
/// `expected.json` must be refused with the rule the fix introduced.
#[test]
fn fuzz_regressions_stay_fixed() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("expected.json")).unwrap()).unwrap();
    let mut replayed = 0;
    for format in [
        "safetensors",
        "gguf",
        "pytorch",
        "tpack",
        "numpy",
        "onnx",
        "ztensor",
    ] {
        let Ok(dir) = std::fs::read_dir(root.join(format)) else {
            continue;
        };
        for entry in dir {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let key = format!("{format}/{}", path.file_name().unwrap().to_string_lossy());
            if let Some(rule) = expected[&key].as_str() {
                let len = bytes.len();
                let err = measured(len, &key, || open(format, bytes).err())
                    .unwrap_or_else(|| panic!("{key}: accepted"));
                assert!(
                    err.to_string().contains(&format!("[rule {rule}]")),
                    "{key}: {err}"
                );
            } else {
                check(format, bytes);
            }
            replayed += 1;
        }
    }
    assert!(replayed >= 2, "the regression corpus is committed");
}
