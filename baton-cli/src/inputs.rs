//! A flow's typed inputs as `ListFlows` describes them, read back into `flows` types, so
//! `--store KEY=VALUE` texts become values of the declared types before a post.

use flows::{InputSpec, InputType, Pattern, Schema};
use proto::pb;
use serde_json::{Map, Value};

/// An input spec from its wire form; `Err` names the field that does not read.
pub fn input_spec_from_pb(wire: &pb::InputSpec) -> Result<InputSpec, String> {
    let ty = InputType::from_name(&wire.r#type)
        .ok_or_else(|| format!("type: {:?} is not one of {}", wire.r#type, InputType::NAMES.join(", ")))?;
    let json = |field: &str, text: &str| {
        serde_json::from_str(text).map_err(|e| format!("{field}: {text:?} is not JSON ({e})"))
    };
    Ok(InputSpec {
        ty,
        default: wire.default_json.as_deref().map(|text| json("default_json", text)).transpose()?,
        enum_values: wire.enum_json.iter().map(|text| json("enum_json", text)).collect::<Result<_, _>>()?,
        minimum: wire.minimum,
        maximum: wire.maximum,
        min_items: wire.min_items.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        items: wire.items.as_deref().map(input_spec_from_pb).transpose()?.map(Box::new),
        pattern: wire.pattern.as_deref().map(Pattern::new).transpose().map_err(|e| format!("pattern: {e}"))?,
        description: wire.description.clone(),
    })
}

/// The schema of a listed flow. An input whose spec does not read (a newer conductor's
/// type, say) is left out: its text is then read as an undeclared input's.
pub fn schema_of(flow: &pb::Flow) -> Schema {
    let mut schema = Schema::new();
    for input in &flow.inputs {
        match input.spec.as_ref().map(input_spec_from_pb) {
            Some(Ok(spec)) => schema.insert(input.name.clone(), spec),
            Some(Err(why)) => tracing::debug!(flow = flow.name, input = input.name, %why, "input spec not understood"),
            None => {}
        }
    }
    schema
}

/// `--store` texts as values: each read as its declared type. A text that is not of its
/// type is sent as an undeclared input's (JSON if it parses, else a string), so the
/// conductor's check reports it with every other problem of the store, field and rule named.
pub fn coerce_pairs(schema: &Schema, pairs: &[(String, String)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(key, text)| {
            let value = schema.coerce_text(key, text).unwrap_or_else(|_| loose(text));
            (key.clone(), value)
        })
        .collect()
}

/// A text as JSON if it parses (`3`, `true`, `[1,2]`, `"quoted"`), else as a string.
pub fn loose(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn wire(ty: &str) -> pb::InputSpec {
        pb::InputSpec { r#type: ty.into(), ..pb::InputSpec::default() }
    }

    #[test]
    fn wire_specs_read_back_with_their_rules() {
        let steps = pb::InputSpec {
            default_json: Some("3".into()),
            minimum: Some(1.0),
            maximum: Some(10.0),
            description: "steps".into(),
            ..wire("integer")
        };
        assert_eq!(
            input_spec_from_pb(&steps),
            Ok(InputSpec::integer().minimum(1.0).maximum(10.0).default(json!(3)).describe("steps"))
        );
        let nodes = pb::InputSpec {
            min_items: Some(1),
            items: Some(Box::new(pb::InputSpec { pattern: Some("^n[0-9]+$".into()), ..wire("string") })),
            ..wire("array")
        };
        assert_eq!(
            input_spec_from_pb(&nodes),
            Ok(InputSpec::array(InputSpec::string().pattern(Pattern::new("^n[0-9]+$").unwrap())).min_items(1))
        );
        let choice = pb::InputSpec { enum_json: vec!["\"a\"".into(), "\"b\"".into()], ..wire("string") };
        assert_eq!(input_spec_from_pb(&choice), Ok(InputSpec::string().one_of([json!("a"), json!("b")])));
        assert_eq!(input_spec_from_pb(&wire("any")), Ok(InputSpec::any()));
    }

    #[test]
    fn a_wire_spec_that_does_not_read_names_the_field() {
        assert!(input_spec_from_pb(&wire("int")).unwrap_err().contains("\"int\""));
        let bad_default = pb::InputSpec { default_json: Some("{".into()), ..wire("integer") };
        assert!(input_spec_from_pb(&bad_default).unwrap_err().starts_with("default_json"));
        let bad_pattern = pb::InputSpec { pattern: Some("(".into()), ..wire("string") };
        assert!(input_spec_from_pb(&bad_pattern).unwrap_err().starts_with("pattern"));
    }

    fn flow() -> pb::Flow {
        let input = |name: &str, spec: pb::InputSpec| pb::Input { name: name.into(), spec: Some(spec) };
        pb::Flow {
            name: "deploy".into(),
            inputs: vec![
                input("version", wire("string")),
                input("replicas", wire("integer")),
                input("dry_run", wire("boolean")),
                input("hosts", pb::InputSpec { items: Some(Box::new(wire("string"))), ..wire("array") }),
                input("future", wire("quaternion")),
            ],
            ..pb::Flow::default()
        }
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn texts_become_the_declared_types() {
        let store = coerce_pairs(
            &schema_of(&flow()),
            &pairs(&[
                ("version", "1.10"),
                ("replicas", "3"),
                ("dry_run", "false"),
                ("hosts", r#"["a","b"]"#),
                ("future", "7"),
                ("extra", "web-1"),
            ]),
        );
        assert_eq!(
            Value::Object(store),
            json!({"version": "1.10", "replicas": 3, "dry_run": false, "hosts": ["a", "b"], "future": 7,
                   "extra": "web-1"})
        );
    }

    #[test]
    fn a_text_not_of_its_type_is_left_for_the_conductor_to_judge() {
        let store = coerce_pairs(&schema_of(&flow()), &pairs(&[("replicas", "three"), ("dry_run", "yes")]));
        assert_eq!(Value::Object(store), json!({"replicas": "three", "dry_run": "yes"}));
        let unknown_flow = coerce_pairs(&Schema::new(), &pairs(&[("n", "1.10"), ("s", "\"q\"")]));
        assert_eq!(Value::Object(unknown_flow), json!({"n": 1.1, "s": "q"}));
    }
}
