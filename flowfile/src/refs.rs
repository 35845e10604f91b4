//! References in `with`: `${name}`, `${name.field}`, `${secret.NAME}`; `$${` escapes.
//!
//! There is no expression language. A string that is one reference and nothing
//! else takes the referenced value with its JSON type; inside a longer string a
//! string value goes in as is and any other value as compact JSON. Each
//! referenced name becomes a requirement of the task (so graphs order by them).

use serde_json::{Map, Value};

/// One `${...}`: a root name and the fields (or list indexes) under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ref {
    pub(crate) root: String,
    pub(crate) fields: Vec<String>,
}

impl Ref {
    /// The name of the secret, for `${secret.NAME}`.
    pub(crate) fn secret(&self) -> Option<&str> {
        (self.root == "secret" && self.fields.len() == 1).then(|| self.fields[0].as_str())
    }

    /// How it was written.
    pub(crate) fn written(&self) -> String {
        let mut s = format!("${{{}", self.root);
        for f in &self.fields {
            s.push('.');
            s.push_str(f);
        }
        s.push('}');
        s
    }
}

/// A piece of a string: text, or a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Text(String),
    Ref(Ref),
}

fn part_ok(p: &str) -> bool {
    !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

/// Splits a string into text and references.
pub(crate) fn parse(s: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        text.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            text.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail
                .find('}')
                .ok_or_else(|| format!("unterminated reference in {s:?} (write $${{ for a literal ${{)"))?;
            let inner = tail[..end].trim();
            let mut parts = inner.split('.');
            let root = parts.next().unwrap_or_default().to_owned();
            let fields: Vec<String> = parts.map(str::to_owned).collect();
            if !part_ok(&root) || !fields.iter().all(|f| part_ok(f)) {
                return Err(format!(
                    "\"${{{inner}}}\" is not a reference: use ${{name}} or ${{name.field}} (no expressions)"
                ));
            }
            if root == "secret" && fields.len() != 1 {
                return Err(format!("\"${{{inner}}}\": a secret is referenced as ${{secret.NAME}}"));
            }
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Ref(Ref { root, fields }));
            rest = &tail[end + 1..];
        } else {
            text.push('$');
            rest = &after[1..];
        }
    }
    text.push_str(rest);
    if !text.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// Every reference inside `value` (strings only, not keys), with the problems found.
pub(crate) fn collect(value: &Value, out: &mut Vec<Ref>, problems: &mut Vec<String>) {
    match value {
        Value::String(s) => match parse(s) {
            Ok(pieces) => out.extend(pieces.into_iter().filter_map(|p| match p {
                Piece::Ref(r) => Some(r),
                Piece::Text(_) => None,
            })),
            Err(e) => problems.push(e),
        },
        Value::Array(items) => items.iter().for_each(|v| collect(v, out, problems)),
        Value::Object(map) => map.values().for_each(|v| collect(v, out, problems)),
        _ => {}
    }
}

/// The name `${callback.token}` and `${callback.url}` live under (only in a kind's deferred keys).
pub(crate) const CALLBACK: &str = "callback";

/// References in a `with`, skipping the kind's verbatim keys.
pub(crate) fn in_settings(with: &Map<String, Value>, verbatim: &[&str]) -> (Vec<Ref>, Vec<(String, String)>) {
    let mut refs = Vec::new();
    let mut problems = Vec::new();
    for (key, value) in with.iter().filter(|(k, _)| !verbatim.contains(&k.as_str())) {
        let mut found = Vec::new();
        collect(value, &mut refs, &mut found);
        problems.extend(found.into_iter().map(|p| (key.clone(), p)));
    }
    (refs, problems)
}

/// Follows `fields` into `value` (object keys, or list indexes).
pub(crate) fn field<'a>(value: &'a Value, fields: &[String]) -> Option<&'a Value> {
    fields.iter().try_fold(value, |v, f| match v {
        Value::Object(map) => map.get(f),
        Value::Array(items) => f.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// Substitutes references in `value` with what `lookup` gives.
pub(crate) fn resolve<E>(value: &Value, lookup: &mut dyn FnMut(&Ref) -> Result<Value, E>) -> Result<Value, E> {
    Ok(match value {
        Value::String(s) => {
            // Parsed and checked when the file was read; a string that does not parse is kept.
            let Ok(pieces) = parse(s) else { return Ok(value.clone()) };
            match pieces.as_slice() {
                [Piece::Ref(r)] => lookup(r)?,
                _ => {
                    let mut out = String::new();
                    for p in &pieces {
                        match p {
                            Piece::Text(t) => out.push_str(t),
                            Piece::Ref(r) => match lookup(r)? {
                                Value::String(s) => out.push_str(&s),
                                other => out.push_str(&other.to_string()),
                            },
                        }
                    }
                    Value::String(out)
                }
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(v, lookup)).collect::<Result<_, E>>()?),
        Value::Object(map) => Value::Object(
            map.iter().map(|(k, v)| Ok((k.clone(), resolve(v, lookup)?))).collect::<Result<Map<_, _>, E>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lookup(r: &Ref) -> Result<Value, String> {
        let inputs = json!({"n": 555, "s": "abc", "o": {"a": [1, {"b": "deep"}]}});
        let root = inputs.get(&r.root).ok_or_else(|| format!("no {}", r.root))?;
        field(root, &r.fields).cloned().ok_or_else(|| "no field".to_owned())
    }

    #[test]
    fn whole_value_keeps_type_and_strings_embed() {
        assert_eq!(resolve(&json!("${n}"), &mut lookup), Ok(json!(555)));
        assert_eq!(resolve(&json!("n=${n} s=${s}"), &mut lookup), Ok(json!("n=555 s=abc")));
        assert_eq!(resolve(&json!("${o.a}"), &mut lookup), Ok(json!([1, {"b": "deep"}])));
        assert_eq!(resolve(&json!("x${o.a.1.b}"), &mut lookup), Ok(json!("xdeep")));
        assert_eq!(resolve(&json!("o=${o}"), &mut lookup), Ok(json!("o={\"a\":[1,{\"b\":\"deep\"}]}")));
        assert_eq!(resolve(&json!({"k": ["${s}"]}), &mut lookup), Ok(json!({"k": ["abc"]})));
    }

    #[test]
    fn escapes_and_bad_references() {
        assert_eq!(resolve(&json!("$${n} costs $5"), &mut lookup), Ok(json!("${n} costs $5")));
        assert!(parse("${a + b}").is_err());
        assert!(parse("${unclosed").is_err());
        assert!(parse("${secret}").is_err());
        assert_eq!(parse("${secret.pw}").map(|p| p.len()), Ok(1));
    }
}
