//! A byte-level BPE vocabulary (`tokenizer.ggml.model = gpt2`: GPT-2, Llama 3,
//! SmolLM, Qwen) as the `tokenizer.json` transformers' GGUF loader builds:
//! GPT-2's byte alphabet, the file's merges, and the split regex its
//! pre-tokenizer name stands for.

use serde_json::{json, Map, Value as Json};

/// GPT-2's `bytes_to_unicode`: printable bytes stand for themselves, the
/// others for code points from 256 up, in byte order.
pub fn byte_alphabet() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for b in 0..=255u8 {
        let printable = matches!(b, 33..=126 | 161..=172 | 174..=255);
        table[b as usize] = if printable {
            char::from(b)
        } else {
            let c = char::from_u32(next).unwrap_or('\u{fffd}');
            next += 1;
            c
        };
    }
    table
}

/// A token as the vocabulary spells it: as is when written in the byte
/// alphabet already, else each of its UTF-8 bytes spelled in it.
pub fn respell(token: &str, alphabet: &[char; 256]) -> String {
    if token.chars().all(|c| alphabet.contains(&c)) {
        return token.to_string();
    }
    token.bytes().map(|b| alphabet[b as usize]).collect()
}

/// Llama 3's split, shared by the pre-tokenizers transformers maps to it.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen 2's: single digits.
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen3.5's: marks join letters, single digits.
const QWEN35_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Mistral's Tekken.
const TEKKEN_SPLIT: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// GPT-4o's, used by Llama 4 and others.
const GPT4O_SPLIT: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The split regex transformers gives a `tokenizer.ggml.pre` name; `None`
/// keeps GPT-2's own byte-level split.
fn split_for(pre: &str) -> Option<&'static str> {
    Some(match pre {
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0" | "lfm2"
        | "jina-v5-nano" | "dbrx" | "smaug-bpe" => LLAMA3_SPLIT,
        "tekken" => TEKKEN_SPLIT,
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "megrez" => QWEN2_SPLIT,
        "qwen35" => QWEN35_SPLIT,
        "gpt-4o" | "llama4" | "kanana2" | "talkie" | "minimax-m2" => GPT4O_SPLIT,
        _ => return None,
    })
}

/// The pre-tokenizer for `pre`.
pub fn pre_tokenizer(pre: Option<&str>) -> Json {
    match pre.and_then(split_for) {
        Some(regex) => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false},
        ]}),
        None => {
            json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true})
        }
    }
}

/// The BPE model: vocabulary respelled in the byte alphabet, the file's merges.
pub fn model(tokens: &[String], merges: &[&str]) -> Json {
    let mut vocab = Map::new();
    for (i, t) in tokens.iter().enumerate() {
        vocab.insert(t.clone(), json!(i));
    }
    let merges: Vec<Json> = merges
        .iter()
        .filter_map(|m| {
            let parts: Vec<&str> = m.split(' ').collect();
            (parts.len() == 2).then(|| json!(parts))
        })
        .collect();
    json!({
        "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
        "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
        "vocab": vocab, "merges": merges,
    })
}

/// GPT-2's byte-level decoder.
pub fn decoder() -> Json {
    json!({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_alphabet_is_gpt2s() {
        let a = byte_alphabet();
        assert_eq!(a[b'A' as usize], 'A');
        assert_eq!(a[b' ' as usize], '\u{120}'); // Ġ
        assert_eq!(a[b'\n' as usize], '\u{10a}'); // Ċ
        assert_eq!(a[0], '\u{100}');
        assert_eq!(a[173], '\u{143}');
        assert_eq!(respell("Ġhello", &a), "Ġhello");
        assert_eq!(respell(" hi", &a), "Ġhi");
        // é is in the alphabet (byte 0xE9 stands for itself): kept as is, as
        // transformers keeps any token written in the alphabet.
        assert_eq!(respell("é", &a), "é");
        assert_eq!(respell("日", &a), "æĹ¥");
    }
}
