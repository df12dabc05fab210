//! Issue 16, class 9: memory that scales with hostile counts. Each case is a
//! file within the default limits, built here at the sizes the review used
//! (they are tens of megabytes: generated, not committed), run through every
//! command, and held to the budget: peak resident memory of the process
//! <= 256 MiB + the input's size. Peaks come from the kernel (wait4's
//! rusage of the child, which counts mapped pages too), never from timing.
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs the CLI with `args`; returns (exit code, peak RSS in bytes, CPU
/// seconds). CPU time (user + system, from the kernel) is what the work
/// cost, whatever else the machine is doing; it is not wall-clock time.
///
/// Linux carries an address space's high-water mark across exec, and a
/// child forked from this test process starts as large as it is resident
/// (other tests run beside these and leave freed heap behind; a full run
/// measured 280-390 MiB for cases that peak under 20 MiB alone). So the CLI
/// is started by a small helper, a fresh Python, through posix_spawn, and
/// the helper reports the CLI's own rusage (wait4) on stdout.
fn peak(args: &[&str]) -> (i32, u64, f64) {
    const SPAWN: &str = "import os, sys\n\
null = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_WRONLY, 0) for fd in (1, 2)]\n\
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ, file_actions=null)\n\
_, status, ru = os.wait4(pid, 0)\n\
print(os.waitstatus_to_exitcode(status), ru.ru_maxrss, ru.ru_utime + ru.ru_stime)\n";
    let bin = assert_cmd::cargo::cargo_bin("tensorcast");
    let out = Command::new("python3")
        .args(["-c", SPAWN])
        .arg(&bin)
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("python3 runs the CLI for its rusage");
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(fields.len(), 3, "helper output: {text:?}");
    (
        fields[0].parse().unwrap(),
        fields[1].parse::<u64>().unwrap() * 1024,
        fields[2].parse().unwrap(),
    )
}

const BUDGET: u64 = 256 << 20;

/// One case at a time: a forked child starts at the test process's current
/// size, which another case's generator must not be inflating meanwhile.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every command on `input`, each within 256 MiB + the input's size.
fn within_budget(input: &Path, dir: &Path, commands: &[&str]) {
    budgeted(input, dir, commands, true)
}

/// Every command on `input` refuses it (exit 1), each within the budget:
/// the refusal comes before the memory is spent.
fn refused_within_budget(input: &Path, dir: &Path, commands: &[&str]) {
    budgeted(input, dir, commands, false)
}

fn budgeted(input: &Path, dir: &Path, commands: &[&str], ok: bool) {
    let size = std::fs::metadata(input).unwrap().len();
    let input = input.to_str().unwrap();
    for cmd in commands {
        let out: PathBuf = dir.join(format!("out.{cmd}"));
        let out = out.to_str().unwrap();
        let args: Vec<&str> = match *cmd {
            "inspect" => vec!["inspect", input],
            "json" => vec!["inspect", "--json", input],
            "verify" => vec!["verify", input],
            to => vec!["convert", input, "-o", out, "--force", "--to", to],
        };
        let (code, rss, cpu) = peak(&args);
        if ok {
            assert!(code == 0 || *cmd == "verify", "{args:?} exited {code}");
        } else {
            assert_eq!(code, 1, "{args:?} was not refused");
        }
        assert!(
            rss <= BUDGET + size,
            "{args:?}: peak {} MiB > budget {} MiB",
            rss >> 20,
            (BUDGET + size) >> 20
        );
        // Time proportional to the bytes: a generous linear bound (debug
        // builds included) that a quadratic walk over millions of entries
        // or a chunk decoded a thousand times would break by orders.
        let bound = 30.0 + size as f64 * 2e-6;
        assert!(cpu <= bound, "{args:?}: {cpu:.1} CPU s > {bound:.0}");
        eprintln!("{:>5} MiB {:>6.2} CPU s  {}", rss >> 20, cpu, args.join(" "));
    }
}

fn gguf_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A GGUF v3 with no tensors and these key/values (type id + payload),
/// streamed to disk.
fn gguf(path: &Path, kvs: impl ExactSizeIterator<Item = (String, u32, Vec<u8>)>) {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut head = b"GGUF".to_vec();
    head.extend_from_slice(&3u32.to_le_bytes());
    head.extend_from_slice(&0u64.to_le_bytes());
    head.extend_from_slice(&(kvs.len() as u64).to_le_bytes());
    out.write_all(&head).unwrap();
    for (k, ty, payload) in kvs {
        let mut kv = Vec::new();
        gguf_str(&mut kv, &k);
        kv.extend_from_slice(&ty.to_le_bytes());
        out.write_all(&kv).unwrap();
        out.write_all(&payload).unwrap();
    }
    out.flush().unwrap();
}

/// A safetensors file from its header JSON (data: `data_len` zero bytes).
fn safetensors(path: &Path, header: &str, data_len: usize) {
    let mut text = header.as_bytes().to_vec();
    text.resize(text.len().next_multiple_of(8), b' ');
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.resize(out.len() + data_len, 0);
    std::fs::write(path, out).unwrap();
}

const ALL: &[&str] = &["inspect", "json", "verify", "safetensors", "gguf", "tpack", "npz"];

#[test]
fn three_million_empty_gguf_arrays() {
    let _one_at_a_time = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty_arrays.gguf");
    // key, ARRAY (9) of UINT32 (4) with 0 elements.
    let empty: Vec<u8> = [4u32.to_le_bytes().as_slice(), &0u64.to_le_bytes()].concat();
    gguf(&path, (0..3_000_000).map(|i| (format!("k{i}"), 9, empty.clone())));
    within_budget(&path, dir.path(), ALL);
}

#[test]
fn a_twenty_million_element_array_and_its_four_kilobyte_tpack() {
    let _one_at_a_time = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u8_array.gguf");
    let mut payload = [0u32.to_le_bytes().as_slice(), &20_000_000u64.to_le_bytes()].concat();
    payload.resize(payload.len() + 20_000_000, 7);
    gguf(&path, std::iter::once(("arr".to_string(), 9, payload)));
    within_budget(&path, dir.path(), ALL);
    // Its tpack holds the array as 20 MB of packed bytes in zstd chunks of
    // a few hundred bytes each (spec §2.3): the budget is then ~256 MiB alone.
    let tpack = dir.path().join("out.tpack");
    assert!(std::fs::metadata(&tpack).unwrap().len() < 64 << 10);
    let small = dir.path().join("small.tpack");
    std::fs::rename(&tpack, &small).unwrap();
    within_budget(
        &small,
        dir.path(),
        &["inspect", "json", "verify", "gguf", "safetensors"],
    );
}

#[test]
fn two_hundred_thousand_empty_tensors() {
    let _one_at_a_time = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty_tensors.safetensors");
    let entries: Vec<String> = (0..200_000)
        .map(|i| format!("\"t{i}\":{{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}"))
        .collect();
    safetensors(&path, &format!("{{{}}}", entries.join(",")), 0);
    drop(entries);
    within_budget(&path, dir.path(), ALL);
}

#[test]
fn a_fifty_megabyte_metadata_string() {
    let _one_at_a_time = serial();
    let dir = tempfile::tempdir().unwrap();
    let big = "y".repeat(50_000_000);
    let st = dir.path().join("big_meta.safetensors");
    let header = format!(
        "{{\"__metadata__\":{{\"big\":\"{big}\"}},\"w\":{{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}}}"
    );
    safetensors(&st, &header, 4);
    drop(header);
    within_budget(&st, dir.path(), ALL);
    let g = dir.path().join("big_string.gguf");
    let mut payload = Vec::new();
    gguf_str(&mut payload, &big);
    drop(big);
    gguf(&g, std::iter::once(("big".to_string(), 8, payload)));
    within_budget(&g, dir.path(), ALL);
}

#[test]
fn a_tpack_manifest_of_two_million_chunks() {
    let _one_at_a_time = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chunks.tpack");
    let n = 2_000_000u64;
    // Header, two empty slots, then 2M raw 4-byte chunks of one F32 tensor.
    let mut file = b"TPACK\x00\r\n".to_vec();
    file.extend_from_slice(&1u16.to_le_bytes());
    file.extend_from_slice(&0u16.to_le_bytes());
    file.resize(256, 0);
    let chunk = 1.5f32.to_le_bytes();
    let crc = crc32c::crc32c(&chunk);
    let mut rows = Vec::with_capacity(n as usize);
    for i in 0..n {
        rows.push(format!("[{},4,4,0,{crc}]", 256 + 4 * i));
        file.extend_from_slice(&chunk);
    }
    let manifest = format!(
        "{{\"metadata\":[],\"tensors\":[{{\"name\":\"t\",\"dtype\":\"F32\",\"shape\":[{n}],\"nbytes\":{},\"chunks\":[{}]}}]}}",
        4 * n,
        rows.join(",")
    );
    drop(rows);
    let stored = zstd::bulk::compress(manifest.as_bytes(), 3).unwrap();
    let offset = file.len() as u64;
    file.extend_from_slice(&stored);
    let slot = tensorcast::tpack::format::Slot {
        generation: 1,
        manifest_offset: offset,
        manifest_len: stored.len() as u64,
        committed_len: file.len() as u64,
        manifest_raw_len: manifest.len() as u64,
        manifest_codec: 1,
        manifest_crc: crc32c::crc32c(&stored),
    };
    file[64..128].copy_from_slice(&slot.encode());
    std::fs::write(&path, file).unwrap();
    drop((manifest, stored));
    let (code, _, _) = peak(&["verify", path.to_str().unwrap()]);
    assert_eq!(code, 0, "the generated file is a sound tpack");
    within_budget(&path, dir.path(), ALL);
}

/// A .zt manifest (XXH3-checked, as ztensor writes it) of `manifest` bytes.
fn zt(path: &Path, manifest: &[u8]) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut head = vec![0u8; 4096];
    head[..8].copy_from_slice(&tensorcast::ztensor::MAGIC);
    f.write_all(&head).unwrap();
    f.write_all(manifest).unwrap();
    f.write_all(&4096u64.to_le_bytes()).unwrap();
    f.write_all(&(manifest.len() as u64).to_le_bytes()).unwrap();
    f.write_all(&xxhash_rust::xxh3::xxh3_64(manifest).to_le_bytes())
        .unwrap();
    f.write_all(&2u32.to_le_bytes()).unwrap();
    f.write_all(&0u32.to_le_bytes()).unwrap();
    f.write_all(&tensorcast::ztensor::MAGIC).unwrap();
}

#[test]
fn a_zt_manifest_array_of_sixteen_million_items() {
    let _one_at_a_time = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("items.zt");
    // {"x": [0, 0, … 16 M times]}: 16 MB of CBOR, half a gigabyte decoded.
    let n: u32 = 16 << 20;
    let mut m = vec![0xa1, 0x61, b'x', 0x9a];
    m.extend_from_slice(&n.to_be_bytes());
    m.resize(m.len() + n as usize, 0x00);
    zt(&path, &m);
    refused_within_budget(&path, dir.path(), &["inspect", "safetensors"]);
}

fn pb_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited protobuf field.
fn pb_bytes(field: u64, payload: &[u8], out: &mut Vec<u8>) {
    pb_varint(field << 3 | 2, out);
    pb_varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// An ONNX ModelProto (ir_version 10) whose graph holds `initializers`
/// (each an encoded TensorProto).
fn onnx_model(path: &Path, initializers: impl Iterator<Item = Vec<u8>>) {
    let mut graph = Vec::new();
    pb_bytes(2, b"g", &mut graph);
    for t in initializers {
        pb_bytes(5, &t, &mut graph);
    }
    let mut model = vec![0x08, 10];
    pb_bytes(7, &graph, &mut model);
    std::fs::write(path, model).unwrap();
}

/// A TensorProto: FLOAT, `name`, then `extra` (more fields, encoded).
fn onnx_tensor(name: &str, extra: &[u8]) -> Vec<u8> {
    let mut t = vec![0x10, 0x01];
    pb_bytes(8, name.as_bytes(), &mut t);
    t.extend_from_slice(extra);
    t
}

/// A million empty initializers against a tensor limit of 100 000: the
/// count is refused on the wire, before a single one is decoded (decoding
/// them all first cost 1.6-3.2x the budget).
#[test]
fn a_million_empty_onnx_initializers_over_the_tensor_limit() {
    let _one_at_a_time = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empties.onnx");
    // A zero-size shape ([0]) with no data: a valid empty tensor.
    onnx_model(
        &path,
        (0..1_000_000).map(|i| onnx_tensor(&format!("t{i}"), &[0x08, 0x00])),
    );
    let size = std::fs::metadata(&path).unwrap().len();
    let p = path.to_str().unwrap();
    let out = dir.path().join("out.safetensors");
    let out = out.to_str().unwrap();
    for args in [
        vec!["--max-tensors", "100000", "inspect", p],
        vec!["--max-tensors", "100000", "convert", p, "-o", out, "--force"],
    ] {
        let (code, rss, _) = peak(&args);
        assert_eq!(code, 1, "{args:?} was not refused");
        // Refused before decoding: little beyond the mapped input.
        assert!(rss <= (160 << 20) + size, "{args:?}: peak {} MiB", rss >> 20);
        eprintln!("{:>5} MiB  {}", rss >> 20, args.join(" "));
    }
}

#[test]
fn an_onnx_string_field_of_ten_million_entries_and_a_rank_of_ten_million() {
    let _one_at_a_time = serial();
    let dir = tempfile::tempdir().unwrap();
    // string_data (field 6): ten million empty strings.
    let strings = dir.path().join("strings.onnx");
    let many: Vec<u8> = [0x32u8, 0x00].repeat(10_000_000);
    onnx_model(&strings, std::iter::once(onnx_tensor("s", &many)));
    refused_within_budget(&strings, dir.path(), &["inspect", "safetensors"]);
    // dims (field 1), one entry each: a shape of rank ten million.
    let rank = dir.path().join("rank.onnx");
    let dims: Vec<u8> = [0x08u8, 0x01].repeat(10_000_000);
    onnx_model(&rank, std::iter::once(onnx_tensor("r", &dims)));
    refused_within_budget(&rank, dir.path(), &["inspect", "safetensors"]);
}

/// A copy of the model fixture folder `name` with `file` replaced by
/// `bytes` (and `drop` removed), for the tokenizer budget cases.
fn model_folder(dir: &Path, name: &str, file: &str, bytes: &[u8], drop: Option<&str>) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/model")
        .join(name)
        .join("hf");
    let out = dir.join(name);
    std::fs::create_dir_all(&out).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        let n = e.file_name();
        if Some(n.to_str().unwrap()) == drop {
            continue;
        }
        std::fs::copy(e.path(), out.join(&n)).unwrap();
    }
    std::fs::write(out.join(file), bytes).unwrap();
    out
}

/// Two million merges in a tokenizer.json (the tokenizer library built
/// 1.5 GB for them before anything checked) and ten million empty
/// SentencePiece pieces: both counted against the model's vocabulary and
/// refused before they are built.
#[test]
fn tokenizer_files_that_ask_for_millions_of_entries() {
    let _one_at_a_time = serial();
    let dir = tempfile::tempdir().unwrap();
    let tj = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/model/qwen2/hf/tokenizer.json");
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(tj).unwrap()).unwrap();
    let merges = json["model"]["merges"].take();
    json["model"]["merges"] = serde_json::json!("@MERGES@");
    let text = serde_json::to_string(&json).unwrap();
    let (head, tail) = text.split_once("\"@MERGES@\"").unwrap();
    // Streamed to disk, so this process (whose size a forked child starts
    // from) never holds them.
    let folder = model_folder(
        dir.path(),
        "qwen2",
        "tokenizer.json",
        b"",
        Some("tokenizer.model"),
    );
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(folder.join("tokenizer.json")).unwrap());
        f.write_all(head.as_bytes()).unwrap();
        let original = serde_json::to_string(&merges).unwrap();
        f.write_all(original.trim_end_matches(']').as_bytes()).unwrap();
        for i in 0..2_000_000 {
            write!(f, ",[\"a{i}\",\"b{i}\"]").unwrap();
        }
        f.write_all(b"]").unwrap();
        f.write_all(tail.as_bytes()).unwrap();
    }
    let size = std::fs::metadata(folder.join("tokenizer.json")).unwrap().len();
    let out = dir.path().join("out.gguf");
    let (code, rss, _) = peak(&["convert", folder.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(rss <= BUDGET + size, "merges: peak {} MiB", rss >> 20);
    eprintln!("{:>5} MiB  2 M merges refused", rss >> 20);

    // tokenizer.model: ten million empty pieces (field 1, length 0).
    let pieces: Vec<u8> = [0x0au8, 0x00].repeat(10_000_000);
    let folder = model_folder(dir.path(), "llama", "tokenizer.model", &pieces, None);
    let size = pieces.len() as u64;
    let (code, rss, _) = peak(&["convert", folder.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(rss <= BUDGET + size, "pieces: peak {} MiB", rss >> 20);
    eprintln!("{:>5} MiB  10 M empty SentencePiece pieces refused", rss >> 20);
}
