#![no_main]
//! tpack's writer codecs: any bytes, encoded with any codec as two chunks in
//! a row on one thread (so the second reuses the first's zstd contexts and
//! scratch buffers), decode back to themselves, never larger than raw, and
//! the second chunk's bytes match a fresh encoding of it.
use libfuzzer_sys::fuzz_target;
use tensorcast_tpack::codec::{decode, encode, Codec};

fuzz_target!(|data: &[u8]| {
    let [pick, cut, rest @ ..] = data else { return };
    let Some(codec) = Codec::from_id(u32::from(pick % 8)) else { return };
    let level = i32::from(pick / 8 % 4) + 1;
    let (first, second) = rest.split_at(rest.len() * usize::from(*cut) / 256);
    let mut encoded = Vec::new();
    for chunk in [first, second] {
        let (used, stored) = encode(chunk, codec, level);
        assert!(stored.len() <= chunk.len());
        assert!(decode(&stored, used, chunk.len() as u64).unwrap() == chunk);
        encoded.push((used, stored));
    }
    let again = std::thread::spawn({
        let second = second.to_vec();
        move || encode(&second, codec, level)
    })
    .join()
    .unwrap();
    assert!(again == encoded[1]);
});
