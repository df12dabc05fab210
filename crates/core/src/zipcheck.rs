//! Checks every zip-based reader applies to its entries (the `zip` crate reads
//! the central directory as it is): entries' stored bytes may not overlap —
//! two entries sharing one local header or one deflate stream would turn a
//! small file into many copies of one large tensor — and a deflated entry
//! cannot declare more bytes than deflate can produce from its stored bytes.

/// One entry: its name, where its stored bytes start, how many there are,
/// and (deflated entries) how many bytes it says they inflate to.
pub struct ZipSpan<'a> {
    /// The member name, for errors.
    pub name: &'a str,
    /// Offset of its stored (possibly compressed) bytes.
    pub start: u64,
    /// Stored length.
    pub stored: u64,
    /// Declared inflated length, for deflated entries.
    pub inflated: Option<u64>,
}

/// Deflate's best case is about 1032:1 (258-byte matches in 2 bits); a
/// declared size beyond that cannot be honest.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// The first problem with `spans`, as (entry name, explanation).
pub fn check_zip_spans(spans: &mut [ZipSpan<'_>]) -> Option<(String, String)> {
    for s in spans.iter() {
        if let Some(inflated) = s.inflated {
            let most = s.stored.saturating_mul(MAX_DEFLATE_RATIO).saturating_add(64);
            if inflated > most {
                return Some((
                    s.name.to_string(),
                    format!(
                        "declares {inflated} bytes from {} deflated ones, more than deflate can produce",
                        s.stored
                    ),
                ));
            }
        }
    }
    spans.sort_by_key(|s| s.start);
    for pair in spans.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let overlap =
            a.start.saturating_add(a.stored) > b.start || (a.start == b.start && a.stored + b.stored > 0);
        if overlap {
            return Some((
                b.name.to_string(),
                format!("its bytes overlap entry '{}' (two entries sharing data)", a.name),
            ));
        }
    }
    None
}

/// [`check_zip_spans`] over entries listed as `(name, start, stored,
/// inflated)`, as readers collect them from a zip's central directory.
pub fn check_zip_entries(entries: &[(String, u64, u64, Option<u64>)]) -> Option<(String, String)> {
    let mut spans: Vec<ZipSpan<'_>> = entries
        .iter()
        .map(|(name, start, stored, inflated)| ZipSpan {
            name,
            start: *start,
            stored: *stored,
            inflated: *inflated,
        })
        .collect();
    check_zip_spans(&mut spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(name: &str, start: u64, stored: u64, inflated: Option<u64>) -> ZipSpan<'_> {
        ZipSpan {
            name,
            start,
            stored,
            inflated,
        }
    }

    #[test]
    fn overlaps_and_impossible_ratios_are_found() {
        assert!(check_zip_spans(&mut [span("a", 0, 10, None), span("b", 10, 5, None)]).is_none());
        assert!(check_zip_spans(&mut [span("a", 0, 0, None), span("b", 0, 0, None)]).is_none());
        let (name, why) = check_zip_spans(&mut [span("b", 5, 10, None), span("a", 0, 10, None)]).unwrap();
        assert_eq!(name, "b");
        assert!(why.contains("'a'"));
        assert!(check_zip_spans(&mut [span("a", 0, 10, Some(10_000))]).is_none());
        assert!(check_zip_spans(&mut [span("a", 0, 10, Some(1 << 30))]).is_some());
    }
}
