//! Every committed safetensors fixture, truncated at many lengths and with
//! bytes flipped in every region, must read correctly or fail with an error:
//! never a panic, and never an allocation beyond the input's size.

mod common;

use common::fixture;
use tensorcast::{Limits, Source};
use tensorcast_safetensors::SafetensorsFile;

fn fixtures() -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for dir in [
        "safetensors/valid",
        "safetensors/valid/sharded",
        "safetensors/cast",
        "safetensors/reject",
    ] {
        for entry in std::fs::read_dir(fixture(dir)).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "safetensors") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Opens bytes as safetensors and reads every tensor; returns whether it was accepted.
fn read_all(bytes: Vec<u8>) -> bool {
    let len = bytes.len();
    match SafetensorsFile::from_bytes("sweep.safetensors".as_ref(), bytes.into(), &Limits::default()) {
        Ok(file) => {
            let mut total = 0u64;
            for i in 0..file.tensors().len() {
                total += file.tensor_data(i).unwrap().into_vec().unwrap().len() as u64;
            }
            assert!(total <= len as u64);
            true
        }
        Err(e) => {
            assert!(e.to_string().contains("[rule safetensors/"), "{e}");
            false
        }
    }
}

#[test]
fn truncation_at_many_lengths_never_panics() {
    let files = fixtures();
    assert!(files.len() > 30);
    let mut cases = 0;
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        // Every length through the header, then a spread through the data.
        let header_end = if n >= 8 {
            (8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()).min(n as u64) as usize).min(n)
        } else {
            n
        };
        let mut lengths: Vec<usize> = (0..=header_end.min(2048)).collect();
        lengths.extend((0..64).map(|k| header_end + (n - header_end) * k / 64));
        lengths.push(n.saturating_sub(1));
        for len in lengths {
            let accepted = read_all(bytes[..len].to_vec());
            // A strict prefix of a valid file is never itself valid, unless
            // the file ends in zero-length tensors (len == n covers that).
            let from_valid = !path.to_string_lossy().contains("/reject/");
            if from_valid && len < n && accepted {
                panic!("{}: prefix of {len}/{n} bytes accepted", path.display());
            }
            cases += 1;
        }
    }
    assert!(cases > 1000);
}

#[test]
fn flipped_bytes_in_every_region_never_panic() {
    for path in fixtures() {
        let bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        if n == 0 {
            continue;
        }
        // Every byte of the length prefix and a spread over header and data.
        let mut positions: Vec<usize> = (0..n.min(8)).collect();
        positions.extend((0..200).map(|k| k * n / 200));
        for pos in positions {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[pos] ^= mask;
                read_all(b);
            }
        }
    }
}
