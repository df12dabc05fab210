//! One damaged tpack per numbered rule of spec/tpack.md, each built from a
//! good file by changing exactly what the rule forbids (manifests are
//! re-checksummed, so only the rule under test is broken), each refused with
//! that rule's id.

use serde_json::Value as Json;
use std::path::PathBuf;
use tensorcast_core::Source;
use tensorcast_tpack::format::{current_slot, Slot, MANIFEST_RAW, SLOT_A, SLOT_BYTES};
use tensorcast_tpack::{rules, TpackFile};

/// A committed fixture (the workspace's fixtures/ folder).
fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(rel)
}

fn good() -> Vec<u8> {
    std::fs::read(fixture("tpack/source.tpack")).unwrap()
}

fn manifest(bytes: &[u8]) -> Json {
    let (slot, _) = current_slot(bytes).unwrap();
    let stored = &bytes[slot.manifest_offset as usize..(slot.manifest_offset + slot.manifest_len) as usize];
    let raw = zstd::stream::decode_all(stored).unwrap();
    serde_json::from_slice(&raw).unwrap()
}

/// The file with its manifest replaced by `m` (raw JSON, valid crc and slot).
fn with_manifest(bytes: &[u8], m: &Json) -> Vec<u8> {
    let (slot, index) = current_slot(bytes).unwrap();
    let text = serde_json::to_vec(m).unwrap();
    let mut out = bytes[..slot.manifest_offset as usize].to_vec();
    out.extend_from_slice(&text);
    let new = Slot {
        manifest_len: text.len() as u64,
        manifest_raw_len: text.len() as u64,
        manifest_codec: MANIFEST_RAW,
        manifest_crc: crc32c::crc32c(&text),
        committed_len: out.len() as u64,
        ..slot
    };
    let at = SLOT_A as usize + index * SLOT_BYTES;
    out[at..at + SLOT_BYTES].copy_from_slice(&new.encode());
    out
}

fn edited(f: impl FnOnce(&mut Json)) -> Vec<u8> {
    let bytes = good();
    let mut m = manifest(&bytes);
    f(&mut m);
    with_manifest(&bytes, &m)
}

/// Where reading fails: at open, or when a tensor is read / verified.
fn refusal(bytes: Vec<u8>) -> String {
    match TpackFile::from_bytes("bad.tpack".as_ref(), bytes.into(), &Default::default()) {
        Err(e) => e.to_string(),
        Ok(f) => {
            let damage = f.verify();
            assert!(!damage.is_empty(), "accepted a file that breaks a rule");
            for i in 0..f.tensors().len() {
                if let Err(e) = f.tensor_data(i).and_then(|d| d.into_vec()) {
                    return e.to_string();
                }
            }
            damage.join("; ")
        }
    }
}

fn first_chunk(m: &mut Json) -> &mut Vec<Json> {
    let t = m["tensors"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|t| t["chunks"][0][3] != 0)
        .unwrap();
    t["chunks"][0].as_array_mut().unwrap()
}

#[test]
fn every_rule_has_a_file_that_breaks_it() {
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    // T1: magic.
    let mut b = good();
    b[0] = b'X';
    cases.push((rules::MAGIC, b));
    // T2: major version.
    let mut b = good();
    b[8] = 2;
    cases.push((rules::VERSION, b));
    // T3/T4: no valid slot (slot A damaged, B empty).
    let mut b = good();
    b[SLOT_A as usize + 20] ^= 1;
    cases.push((rules::NO_SLOT, b));
    // T4: two valid slots claiming the same generation.
    let mut b = good();
    let (slot, index) = current_slot(&b).unwrap();
    let other = SLOT_A as usize + (1 - index) * SLOT_BYTES;
    b[other..other + SLOT_BYTES].copy_from_slice(&slot.encode());
    cases.push((rules::NO_SLOT, b));
    // T5: manifest bytes changed under a valid slot.
    let mut b = good();
    let (slot, _) = current_slot(&b).unwrap();
    b[slot.manifest_offset as usize + 3] ^= 0x40;
    cases.push((rules::MANIFEST_CRC, b));
    // T6: not the specified shape.
    cases.push((rules::MANIFEST, edited(|m| m["tensors"] = Json::from("none"))));
    // T7: duplicate names.
    cases.push((
        rules::NAMES,
        edited(|m| {
            let t = m["tensors"][0].clone();
            m["tensors"].as_array_mut().unwrap().push(t);
        }),
    ));
    // T8: dtype and shape do not make nbytes.
    cases.push((
        rules::DTYPE,
        edited(|m| m["tensors"][0]["shape"] = serde_json::json!([3, 3])),
    ));
    // T9: chunks decode to fewer bytes than the tensor has.
    cases.push((
        rules::CHUNK_SIZES,
        edited(|m| {
            let t = &mut m["tensors"][0];
            let n = t["nbytes"].as_u64().unwrap();
            t["nbytes"] = Json::from(n * 2);
            t["shape"] = serde_json::json!([t["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .product::<u64>()
                * 2]);
        }),
    ));
    // T10: a chunk outside the committed data.
    cases.push((
        rules::CHUNK_RANGE,
        edited(|m| first_chunk(m)[0] = Json::from(1u64 << 40)),
    ));
    cases.push((rules::CHUNK_RANGE, edited(|m| first_chunk(m)[0] = Json::from(10))));
    // T11: a chunk's crc.
    cases.push((
        rules::CHUNK_CRC,
        edited(|m| {
            let c = first_chunk(m);
            c[4] = Json::from(c[4].as_u64().unwrap() ^ 1);
        }),
    ));
    // T12: a malformed typed metadata value.
    cases.push((
        rules::METADATA,
        edited(|m| {
            m["metadata"] = serde_json::json!([["k", {"t": "u8", "v": 300}]]);
        }),
    ));
    cases.push((
        rules::METADATA,
        edited(|m| {
            m["metadata"] = serde_json::json!([["k", {"t": "f32", "v": "1.0"}]]);
        }),
    ));
    // T13: an unknown codec, and a frame that decodes to another length.
    cases.push((rules::CODEC, edited(|m| first_chunk(m)[3] = Json::from(99))));
    cases.push((
        rules::CODEC,
        edited(|m| {
            // A one-chunk compressed 1-D tensor that claims one element fewer:
            // sizes still agree, but the frame decodes to more bytes.
            let t = m["tensors"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|t| {
                    t["chunks"].as_array().unwrap().len() == 1
                        && t["chunks"][0][3] != 0
                        && t["shape"].as_array().unwrap().len() == 1
                })
                .unwrap();
            let n = t["shape"][0].as_u64().unwrap();
            let elem = t["nbytes"].as_u64().unwrap() / n;
            t["shape"] = serde_json::json!([n - 1]);
            t["nbytes"] = Json::from(elem * (n - 1));
            t["chunks"][0][2] = Json::from(elem * (n - 1));
        }),
    ));
    // T14: a raw chunk whose lengths differ.
    cases.push((
        rules::RAW_LEN,
        edited(|m| {
            let c = first_chunk(m);
            c[3] = Json::from(0);
        }),
    ));
    // T16: a compressed chunk claiming more than 64 MiB.
    cases.push((
        rules::CHUNK_TOO_BIG,
        edited(|m| {
            let c = first_chunk(m);
            c[2] = Json::from(128u64 << 20);
            c[3] = Json::from(1);
        }),
    ));
    let mut seen = std::collections::BTreeSet::new();
    for (rule, bytes) in cases {
        let msg = refusal(bytes);
        assert!(
            msg.contains(&format!("[rule tpack/{rule}]")),
            "expected {rule}: {msg}"
        );
        seen.insert(rule);
    }
    // T15 (append may not reuse a name) is covered in tests/it/tpack.rs.
    assert_eq!(seen.len(), 14, "{seen:?}");
}

#[test]
fn a_chunk_listed_twice_in_one_tensor_is_refused() {
    // Sharing is for tied tensors; within one tensor a repeated chunk turns a
    // small file into huge decodes of one chunk (T10).
    let bytes = edited(|m| {
        let t = m["tensors"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|t| t["chunks"].as_array().is_some_and(|c| c.len() == 1) && t["chunks"][0][3] != 0)
            .unwrap();
        let chunk = t["chunks"][0].clone();
        t["chunks"].as_array_mut().unwrap().push(chunk);
        // Shape and size follow, so only the repetition breaks a rule.
        let n = t["shape"][0].as_u64().unwrap();
        t["shape"][0] = (n * 2).into();
        let nbytes = t["nbytes"].as_u64().unwrap();
        t["nbytes"] = (nbytes * 2).into();
    });
    let e = TpackFile::from_bytes("bad.tpack".as_ref(), bytes.into(), &Default::default())
        .err()
        .unwrap();
    assert_eq!(e.rule(), Some(rules::CHUNK_RANGE), "{e}");
    assert!(e.to_string().contains("appears twice"), "{e}");
}
