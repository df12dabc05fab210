//! A model's chat templates both ways: read from a Hugging Face folder as
//! gguf-py's `SpecialVocab` reads them (`tokenizer_config.json`'s
//! `chat_template`, a string or a list of named templates; else
//! `chat_template.jinja`, as transformers 5 saves it; else
//! `chat_template.json`), written as `tokenizer.chat_template` and
//! `tokenizer.chat_template.NAME` keys, and back into
//! `tokenizer_config.json`.

use crate::gguf_kv::{string, strings};
use serde_json::{json, Value as Json};
use tensorcast_core::{code, Array, Error, Input, Metadata, Result, Strings, Value};

/// The default template and the named ones, in the order the folder lists them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ChatTemplates {
    default: Option<String>,
    named: Vec<(String, String)>,
}

/// gguf-py keeps ASCII letters and digits of a template's name, `_` for
/// anything else (the name becomes part of a key).
fn key_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

impl ChatTemplates {
    /// The templates of the folder `input` sits in (`tokenizer_config` its
    /// parsed `tokenizer_config.json`, Null when it has none).
    pub(crate) fn read(input: &Input, tokenizer_config: &Json) -> Result<ChatTemplates> {
        let value = match tokenizer_config.get("chat_template") {
            // Present, even as null: it wins over the side files.
            Some(v) => v.clone(),
            None => match input.sibling("chat_template.jinja") {
                Ok(file) => Json::String(text(&file)?),
                Err(_) => match input.sibling("chat_template.json") {
                    Ok(file) => {
                        let parsed: Json = serde_json::from_slice(&file.bytes).map_err(|e| {
                            Error::unsupported(
                                code::TOKENIZER,
                                format!("{}: not JSON: {e}", file.name.display()),
                            )
                        })?;
                        parsed.get("chat_template").cloned().unwrap_or(Json::Null)
                    }
                    Err(_) => Json::Null,
                },
            },
        };
        Ok(Self::from_json(&value))
    }

    /// `chat_template` as tokenizer_config.json holds it: a string, or a
    /// list of `{"name", "template"}` (`default` the unnamed one); entries
    /// without both are skipped, as gguf-py skips them.
    fn from_json(value: &Json) -> ChatTemplates {
        match value {
            Json::String(t) => ChatTemplates {
                default: Some(t.clone()),
                named: Vec::new(),
            },
            Json::Array(choices) => {
                let mut out = ChatTemplates::default();
                for choice in choices {
                    let name = key_name(choice.get("name").and_then(Json::as_str).unwrap_or(""));
                    let Some(template) = choice.get("template").and_then(Json::as_str) else {
                        continue;
                    };
                    if name.is_empty() {
                        continue;
                    }
                    if name == "default" {
                        out.default = Some(template.to_string());
                    } else if !out.named.iter().any(|(n, _)| *n == name) {
                        out.named.push((name, template.to_string()));
                    }
                }
                out
            }
            _ => ChatTemplates::default(),
        }
    }

    /// The keys gguf-py's `add_chat_template` writes: each named template,
    /// their names, then the default one. (gguf-py lists the names from a
    /// Python set, in no fixed order; here they keep the folder's order.)
    pub(crate) fn write(&self, m: &mut Metadata) {
        for (name, template) in &self.named {
            m.insert(
                format!("tokenizer.chat_template.{name}"),
                Value::Str(template.clone()),
            );
        }
        if !self.named.is_empty() {
            let names = self.named.iter().map(|(n, _)| n.as_str()).collect::<Strings>();
            m.insert("tokenizer.chat_templates", Value::Array(Array::from(names)));
        }
        if let Some(t) = &self.default {
            m.insert("tokenizer.chat_template", Value::Str(t.clone()));
        }
    }

    /// A GGUF's templates, as tokenizer_config.json's `chat_template`: the
    /// string when there is only the default, else the list of named ones
    /// (`default` first) that transformers reads.
    pub(crate) fn from_gguf(metadata: &Metadata) -> Option<Json> {
        let default = string(metadata, "tokenizer.chat_template");
        let names = strings(metadata, "tokenizer.chat_templates").unwrap_or_default();
        let named: Vec<Json> = names
            .iter()
            .filter_map(|n| {
                let t = string(metadata, &format!("tokenizer.chat_template.{n}"))?;
                Some(json!({"name": n, "template": t}))
            })
            .collect();
        if named.is_empty() {
            return default.map(|t| json!(t));
        }
        let mut list: Vec<Json> = default
            .map(|t| json!({"name": "default", "template": t}))
            .into_iter()
            .collect();
        list.extend(named);
        Some(Json::Array(list))
    }
}

fn text(file: &Input) -> Result<String> {
    String::from_utf8(file.bytes.to_vec()).map_err(|_| {
        Error::unsupported(
            code::TOKENIZER,
            format!("{}: not UTF-8 text", file.name.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_templates_both_ways() {
        let value = json!([
            {"name": "default", "template": "{{ messages }}"},
            {"name": "tool use", "template": "{{ tools }}"},
            {"name": "rag", "template": "{{ documents }}"},
            {"name": "", "template": "skipped"},
            {"name": "no template"},
        ]);
        let t = ChatTemplates::from_json(&value);
        let mut m = Metadata::new();
        t.write(&mut m);
        let keys: Vec<&str> = m.iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "tokenizer.chat_template.tool_use",
                "tokenizer.chat_template.rag",
                "tokenizer.chat_templates",
                "tokenizer.chat_template"
            ]
        );
        let back = ChatTemplates::from_gguf(&m).unwrap();
        assert_eq!(
            back,
            json!([
                {"name": "default", "template": "{{ messages }}"},
                {"name": "tool_use", "template": "{{ tools }}"},
                {"name": "rag", "template": "{{ documents }}"},
            ])
        );
        let one = ChatTemplates::from_json(&json!("{{ x }}"));
        let mut m = Metadata::new();
        one.write(&mut m);
        assert_eq!(ChatTemplates::from_gguf(&m), Some(json!("{{ x }}")));
    }
}
