//! tpack files written by a second, independent implementation of
//! spec/tpack.md (`fixtures/tpack/spec/generate.py`, Python, from the spec
//! alone): the reader returns exactly the tensors and typed metadata that
//! implementation wrote, whatever codecs, frames, slots and layouts it chose,
//! and refuses each of its reject files citing the rule broken.
//! (The other direction — that Python reader checking tensorcast's output —
//! is `generate.py --check`, run by hand; see fixtures/tpack/spec.)

use crate::common::{fixture, tensorcast, unhex};
use serde_json::Value as Json;
use tensorcast::tpack::manifest::Manifest;
use tensorcast::tpack::TpackFile;
use tensorcast::Source;

fn json(rel: &str) -> Json {
    serde_json::from_str(&std::fs::read_to_string(fixture(rel)).unwrap()).unwrap()
}

#[test]
fn files_from_an_independent_writer_read_exactly() {
    let expected = json("tpack/spec/expected.json");
    let files = expected.as_object().unwrap();
    assert!(files.len() >= 6);
    for (file, want) in files {
        let path = fixture(&format!("tpack/spec/{file}"));
        let f = TpackFile::open(&path, &Default::default()).unwrap();
        let tensors = want["tensors"].as_array().unwrap();
        assert_eq!(f.tensors().len(), tensors.len(), "{file}");
        for (i, (info, w)) in f.tensors().iter().zip(tensors).enumerate() {
            let at = format!("{file}:{}", info.name);
            assert_eq!(info.name, w["name"].as_str().unwrap(), "{at}");
            assert_eq!(info.dtype.name(), w["dtype"].as_str().unwrap(), "{at}");
            let shape: Vec<u64> = w["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .collect();
            assert_eq!(info.shape, shape, "{at}");
            let bytes = unhex(w["hex"].as_str().unwrap());
            let mut whole = vec![0u8; info.nbytes as usize];
            f.read_tensor(i, &mut whole).unwrap();
            assert!(whole == bytes, "{at}: read_tensor");
            let mut streamed = Vec::new();
            f.tensor_data(i)
                .unwrap()
                .for_each_chunk(|c| {
                    streamed.extend_from_slice(c);
                    Ok(())
                })
                .unwrap();
            assert!(streamed == bytes, "{at}: streamed");
            // Sparse entries (§2.2): layout and sizes as written, and the
            // dense tensor equal to the other implementation's.
            match (&info.sparse, w.get("sparse")) {
                (None, None) => {}
                (Some(sp), Some(ws)) => {
                    assert_eq!(sp.layout.name(), ws["layout"].as_str().unwrap(), "{at}");
                    assert_eq!(sp.index.name(), ws["index"].as_str().unwrap(), "{at}");
                    assert_eq!(sp.nnz, ws["nnz"].as_u64().unwrap(), "{at}");
                    assert_eq!(sp.sparse_dims, ws["sparse_dims"].as_u64().unwrap(), "{at}");
                    let dense = tensorcast::sparse::densify(info, &bytes).unwrap();
                    assert!(dense == unhex(w["dense_hex"].as_str().unwrap()), "{at}: dense");
                }
                _ => panic!("{at}: sparse in one reader only"),
            }
        }
        // Typed metadata: what we read, written back in the spec's encoding,
        // is what the other implementation wrote (which uses the per-element
        // array form; ours writes scalar arrays in the bulk form, §2.1, and
        // its reader gives arrays stored in chunks, §2.3, in the bulk form).
        let ours = Manifest {
            metadata: f.metadata().clone(),
            tensors: Vec::new(),
            stored: Vec::new(),
        };
        let ours: Json = serde_json::from_slice(&ours.to_json()).unwrap();
        assert_eq!(ours["metadata"], to_bulk(&want["metadata"]), "{file}: metadata");
        tensorcast().arg("verify").arg(&path).assert().success();
    }
}

#[test]
fn reject_files_from_an_independent_writer_cite_their_rule() {
    let manifest = json("tpack/spec/reject/manifest.json");
    let rules = manifest.as_object().unwrap();
    assert!(rules.len() >= 20);
    for (file, rule) in rules {
        let out = tensorcast()
            .arg("verify")
            .arg(fixture(&format!("tpack/spec/reject/{file}")))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{file}");
        let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(rule.as_str().unwrap()), "{file}: {text}");
    }
}

/// Rewrites per-element arrays of one scalar type into §2.1's bulk form.
fn to_bulk(j: &Json) -> Json {
    match j {
        Json::Array(items) => Json::Array(items.iter().map(to_bulk).collect()),
        Json::Object(o) => {
            let e = o.get("e").and_then(Json::as_str);
            let items = o.get("v").and_then(Json::as_array);
            if let (Some("arr"), Some(e), Some(items)) = (o.get("t").and_then(Json::as_str), e, items) {
                let scalar = !matches!(e, "arr" | "map" | "mixed");
                if scalar && items.iter().all(|x| x["t"] == e) {
                    let bare: Vec<Json> = items.iter().map(|x| x["v"].clone()).collect();
                    return serde_json::json!({"t": "arr", "e": e, "b": bare});
                }
            }
            Json::Object(o.iter().map(|(k, v)| (k.clone(), to_bulk(v))).collect())
        }
        other => other.clone(),
    }
}
