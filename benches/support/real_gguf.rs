//! A generated GGUF shaped like a real Q4_K_M model (issue 17): a 262 144-token
//! BPE vocabulary with scores, token types and merges (~11 MB of typed
//! metadata), a 262 144-row Q6_K embedding, Q4_K/Q6_K layer matrices and F32
//! norms, sized so its f32 dequantization is `gib` GiB. Written directly in
//! GGUF v3 bytes (not through our writer), so the bench does not test the
//! writer against itself.

use std::io::Write;
use std::path::Path;

/// Tokens in the vocabulary (Gemma 3's size).
pub const VOCAB: usize = 262_144;
const HIDDEN: usize = 768;
const FFN: usize = 2048;
const ALIGN: usize = 32;

// ggml type ids and their blocks: (id, elements per block, bytes per block).
const F32: (u32, usize, usize) = (0, 1, 4);
const Q8_0: (u32, usize, usize) = (8, 32, 34);
const Q4_K: (u32, usize, usize) = (12, 256, 144);
const Q6_K: (u32, usize, usize) = (14, 256, 210);

struct Tensor {
    name: String,
    dims: Vec<u64>,
    ty: (u32, usize, usize),
}

impl Tensor {
    fn elems(&self) -> usize {
        self.dims.iter().product::<u64>() as usize
    }
    fn bytes(&self) -> usize {
        self.elems() / self.ty.1 * self.ty.2
    }
}

/// The tensors: the embedding, then as many layers as reach `gib` GiB of f32.
fn tensors(gib: usize) -> Vec<Tensor> {
    let t = |name: String, dims: &[usize], ty| Tensor {
        name,
        dims: dims.iter().map(|&d| d as u64).collect(),
        ty,
    };
    let mut out = vec![
        t("token_embd.weight".into(), &[HIDDEN, VOCAB], Q6_K),
        t("output_norm.weight".into(), &[HIDDEN], F32),
    ];
    let per_layer = 4 * HIDDEN * HIDDEN + 3 * HIDDEN * FFN + 2 * HIDDEN + HIDDEN * 64;
    let want = gib * (1 << 30) / 4;
    let layers = want.saturating_sub(HIDDEN * VOCAB).div_ceil(per_layer).max(1);
    for i in 0..layers {
        let b = |s: &str| format!("blk.{i}.{s}");
        out.push(t(b("attn_norm.weight"), &[HIDDEN], F32));
        out.push(t(b("attn_q.weight"), &[HIDDEN, HIDDEN], Q4_K));
        out.push(t(b("attn_k.weight"), &[HIDDEN, HIDDEN], Q4_K));
        // Q4_K_M keeps half the V and FFN-down matrices at Q6_K.
        let hi = if i % 2 == 0 { Q6_K } else { Q4_K };
        out.push(t(b("attn_v.weight"), &[HIDDEN, HIDDEN], hi));
        out.push(t(b("attn_output.weight"), &[HIDDEN, HIDDEN], Q4_K));
        out.push(t(b("ffn_norm.weight"), &[HIDDEN], F32));
        out.push(t(b("ffn_gate.weight"), &[HIDDEN, FFN], Q4_K));
        out.push(t(b("ffn_up.weight"), &[HIDDEN, FFN], Q4_K));
        out.push(t(b("ffn_down.weight"), &[FFN, HIDDEN], hi));
        // A small Q8_0 tensor, as real files carry a few.
        out.push(t(b("attn_k_b.weight"), &[64, HIDDEN], Q8_0));
    }
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn kv_str(out: &mut Vec<u8>, key: &str, value: &str) {
    put_str(out, key);
    out.extend_from_slice(&8u32.to_le_bytes());
    put_str(out, value);
}

fn kv_u32(out: &mut Vec<u8>, key: &str, value: u32) {
    put_str(out, key);
    out.extend_from_slice(&4u32.to_le_bytes());
    out.extend_from_slice(&value.to_le_bytes());
}

/// Starts an array key/value of `count` elements of GGUF type `elem`.
fn kv_array(out: &mut Vec<u8>, key: &str, elem: u32, count: usize) {
    put_str(out, key);
    out.extend_from_slice(&9u32.to_le_bytes());
    out.extend_from_slice(&elem.to_le_bytes());
    out.extend_from_slice(&(count as u64).to_le_bytes());
}

/// A deterministic token spelling: byte-level BPE style, 1–12 letters,
/// some with the `Ġ` space marker, all distinct (the index is spelled in).
fn token(i: usize, seed: &mut u64) -> String {
    const LETTERS: &[u8] = b"etaoinshrdlucmfwypvbgkjqxz";
    let mut s = String::new();
    if i.is_multiple_of(3) {
        s.push('Ġ');
    }
    let mut n = i;
    loop {
        s.push(LETTERS[n % 26] as char);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    for _ in 0..(*seed >> 60) as usize % 8 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s.push(LETTERS[(*seed >> 59) as usize % 26] as char);
    }
    s
}

/// The header: key/values (architecture, hyper-parameters, the tokenizer).
fn metadata(n_layers: usize) -> (Vec<u8>, u64) {
    let mut kv = Vec::new();
    let mut n = 0u64;
    kv_str(&mut kv, "general.architecture", "llama");
    kv_str(&mut kv, "general.name", "tensorcast bench Q4_K_M");
    kv_u32(&mut kv, "general.file_type", 15);
    kv_u32(&mut kv, "llama.block_count", n_layers as u32);
    kv_u32(&mut kv, "llama.embedding_length", HIDDEN as u32);
    kv_u32(&mut kv, "llama.feed_forward_length", FFN as u32);
    kv_u32(&mut kv, "llama.attention.head_count", 12);
    // The keys llama.cpp's loader requires of a llama (for the quantize bench).
    kv_u32(&mut kv, "llama.context_length", 4096);
    put_str(&mut kv, "llama.attention.layer_norm_rms_epsilon");
    kv.extend_from_slice(&6u32.to_le_bytes());
    kv.extend_from_slice(&1e-6f32.to_le_bytes());
    n += 9;
    kv_str(&mut kv, "tokenizer.ggml.model", "gpt2");
    kv_str(&mut kv, "tokenizer.ggml.pre", "default");
    n += 2;
    let mut seed = 7u64;
    let tokens: Vec<String> = (0..VOCAB).map(|i| token(i, &mut seed)).collect();
    kv_array(&mut kv, "tokenizer.ggml.tokens", 8, VOCAB);
    for t in &tokens {
        put_str(&mut kv, t);
    }
    kv_array(&mut kv, "tokenizer.ggml.scores", 6, VOCAB);
    for i in 0..VOCAB {
        kv.extend_from_slice(&(-(i as f32) / 1000.0).to_le_bytes());
    }
    kv_array(&mut kv, "tokenizer.ggml.token_type", 5, VOCAB);
    for i in 0..VOCAB {
        let ty: i32 = if i < 3 {
            3
        } else if i < 259 {
            6
        } else {
            1
        };
        kv.extend_from_slice(&ty.to_le_bytes());
    }
    // Merges pair neighbouring tokens, one per token past the bytes.
    let merges = VOCAB - 259;
    kv_array(&mut kv, "tokenizer.ggml.merges", 8, merges);
    for i in 0..merges {
        put_str(&mut kv, &format!("{} {}", tokens[i], tokens[i + 1]));
    }
    kv_u32(&mut kv, "tokenizer.ggml.bos_token_id", 1);
    kv_u32(&mut kv, "tokenizer.ggml.eos_token_id", 2);
    n += 6;
    (kv, n)
}

/// Fills one tensor's blocks with pseudo-random quants and sane f16 scales.
fn fill_blocks(buf: &mut [u8], ty: (u32, usize, usize), seed: &mut u64) {
    super::fill(buf, seed);
    // Scale fields (f16) set to small finite values, so dequantized floats are real numbers.
    let scale = 0x2C00u16.to_le_bytes(); // 0.0625
    for block in buf.chunks_mut(ty.2) {
        match ty.0 {
            8 => block[..2].copy_from_slice(&scale),
            12 => {
                block[..2].copy_from_slice(&scale);
                block[2..4].copy_from_slice(&scale);
            }
            14 => block[208..210].copy_from_slice(&scale),
            _ => {
                for f in block.chunks_mut(4) {
                    f.copy_from_slice(&0.5f32.to_le_bytes());
                }
            }
        }
    }
}

/// Writes the file at `path` unless it exists; returns its f32 output bytes.
pub fn write(path: &Path, gib: usize) -> u64 {
    let tensors = tensors(gib);
    let f32_bytes = tensors.iter().map(|t| t.elems() as u64 * 4).sum();
    if !path.exists() {
        let n_layers = (tensors.len() - 2) / 10;
        write_tensors(path, &tensors, n_layers);
    }
    f32_bytes
}

/// The same vocabulary and metadata with only two small tensors (a norm and
/// one Q6_K block row): for tests of the metadata path.
pub fn write_vocab_only(path: &Path) {
    let tensors = tensors(1);
    let small: Vec<Tensor> = tensors
        .into_iter()
        .filter(|t| t.name == "output_norm.weight" || t.name == "blk.0.attn_k_b.weight")
        .collect();
    write_tensors(path, &small, 1);
}

fn write_tensors(path: &Path, tensors: &[Tensor], n_layers: usize) {
    let (kv, n_kv) = metadata(n_layers);
    let mut head = Vec::new();
    head.extend_from_slice(b"GGUF");
    head.extend_from_slice(&3u32.to_le_bytes());
    head.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    head.extend_from_slice(&n_kv.to_le_bytes());
    head.extend_from_slice(&kv);
    let mut offset = 0usize;
    for t in tensors {
        put_str(&mut head, &t.name);
        head.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
        for d in &t.dims {
            head.extend_from_slice(&d.to_le_bytes());
        }
        head.extend_from_slice(&t.ty.0.to_le_bytes());
        head.extend_from_slice(&(offset as u64).to_le_bytes());
        offset = (offset + t.bytes()).next_multiple_of(ALIGN);
    }
    head.resize(head.len().next_multiple_of(ALIGN), 0);
    let tmp = path.with_extension("partial");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp).expect("create"));
    f.write_all(&head).unwrap();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut written = 0usize;
    for t in tensors {
        let mut data = vec![0u8; t.bytes()];
        fill_blocks(&mut data, t.ty, &mut seed);
        f.write_all(&data).unwrap();
        written += data.len();
        let pad = written.next_multiple_of(ALIGN) - written;
        f.write_all(&vec![0u8; pad]).unwrap();
        written += pad;
    }
    f.flush().unwrap();
    drop(f);
    std::fs::rename(&tmp, path).unwrap();
}
