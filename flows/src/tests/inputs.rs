//! Typed inputs: every rule, defaults, every problem at once, and command-line coercion.

use serde_json::{json, Map, Value};

use crate::inputs::{InputProblem, InputSpec, InputType, Pattern, Rule, Schema};

fn store(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("test stores are objects")
}

/// The problems `schema` finds in `input`, as `(path, rule, message)`.
fn problems(schema: &Schema, input: Value) -> Vec<(String, Rule, String)> {
    match schema.check(&store(input.clone())) {
        Ok(done) => panic!("{input} should be refused, was accepted as {done:?}"),
        Err(found) => found.into_iter().map(|p| (p.path, p.rule, p.message)).collect(),
    }
}

fn one(name: &str, spec: InputSpec) -> Schema {
    Schema::new().input(name, spec)
}

fn pattern(text: &str) -> Pattern {
    Pattern::new(text).expect("test patterns compile")
}

#[test]
fn each_type_accepts_its_values_and_refuses_others() {
    let values = [json!("s"), json!(3), json!(2.5), json!(true), json!({"a": 1}), json!([1]), Value::Null];
    let accepted: [(InputType, &[usize]); 7] = [
        (InputType::Any, &[0, 1, 2, 3, 4, 5, 6]),
        (InputType::String, &[0]),
        (InputType::Integer, &[1]),
        (InputType::Number, &[1, 2]),
        (InputType::Boolean, &[3]),
        (InputType::Object, &[4]),
        (InputType::Array, &[5]),
    ];
    for (ty, ok) in accepted {
        let schema = one("x", InputSpec::new(ty));
        for (i, value) in values.iter().enumerate() {
            let result = schema.check(&store(json!({ "x": value })));
            if ok.contains(&i) {
                assert_eq!(result.expect("accepted")["x"], *value, "{ty} takes {value}");
            } else {
                let found = result.expect_err("refused");
                assert_eq!(found.len(), 1, "{ty} {value}: {found:?}");
                assert_eq!((found[0].path.as_str(), found[0].rule), ("x", Rule::Type), "{ty} {value}");
            }
        }
    }
}

#[test]
fn type_problems_name_the_type_and_the_value() {
    let schema = one("steps", InputSpec::integer());
    assert_eq!(
        problems(&schema, json!({"steps": 1.5})),
        [("steps".into(), Rule::Type, "must be an integer, got 1.5".into())]
    );
    assert_eq!(
        problems(&schema, json!({"steps": "4"})),
        [("steps".into(), Rule::Type, "must be an integer, got \"4\"".into())]
    );
}

#[test]
fn an_integral_float_is_stored_as_an_integer() {
    let done = one("n", InputSpec::integer()).check(&store(json!({"n": 3.0}))).expect("3.0 is an integer");
    assert_eq!(done["n"], json!(3));
    assert!(done["n"].is_i64());
}

#[test]
fn minimum_and_maximum_bound_numbers() {
    let schema = one("steps", InputSpec::integer().minimum(1.0).maximum(10.0));
    assert_eq!(
        problems(&schema, json!({"steps": -1})),
        [("steps".into(), Rule::Minimum, "must be an integer >= 1, got -1".into())]
    );
    assert_eq!(
        problems(&schema, json!({"steps": 11})),
        [("steps".into(), Rule::Maximum, "must be an integer <= 10, got 11".into())]
    );
    for edge in [1, 10] {
        assert!(schema.check(&store(json!({ "steps": edge }))).is_ok(), "{edge} is inside");
    }
    let ratio = one("p", InputSpec::number().minimum(0.0).maximum(0.5));
    assert_eq!(
        problems(&ratio, json!({"p": 0.75})),
        [("p".into(), Rule::Maximum, "must be a number <= 0.5, got 0.75".into())]
    );
}

#[test]
fn enum_allows_only_its_values() {
    let schema = one("mode", InputSpec::string().one_of([json!("fast"), json!("safe")]));
    assert!(schema.check(&store(json!({"mode": "safe"}))).is_ok());
    assert_eq!(
        problems(&schema, json!({"mode": "slow"})),
        [("mode".into(), Rule::Enum, r#"must be one of "fast", "safe", got "slow""#.into())]
    );
}

#[test]
fn pattern_must_match() {
    let schema = one("name", InputSpec::string().pattern(pattern("^[a-z][a-z0-9-]*$")));
    assert!(schema.check(&store(json!({"name": "web-1"}))).is_ok());
    assert_eq!(
        problems(&schema, json!({"name": "Web 1"})),
        [("name".into(), Rule::Pattern, r#"must match the pattern ^[a-z][a-z0-9-]*$, got "Web 1""#.into())]
    );
    // As in JSON Schema, an unanchored pattern matches anywhere.
    assert!(one("n", InputSpec::string().pattern(pattern("[0-9]"))).check(&store(json!({"n": "a1b"}))).is_ok());
}

#[test]
fn an_invalid_pattern_is_refused_when_compiled() {
    let err = Pattern::new("(unclosed").expect_err("not a regex");
    assert_eq!(err.pattern, "(unclosed");
    assert!(err.to_string().contains("(unclosed"), "{err}");
}

#[test]
fn min_items_and_items_check_arrays_naming_each_item() {
    let schema = one("nodes", InputSpec::array(InputSpec::string().pattern(pattern("^n"))).min_items(2));
    assert_eq!(
        problems(&schema, json!({"nodes": []})),
        [("nodes".into(), Rule::MinItems, "must have at least 2 items, got 0".into())]
    );
    assert_eq!(
        problems(&schema, json!({"nodes": ["n1"]})),
        [("nodes".into(), Rule::MinItems, "must have at least 2 items, got 1".into())]
    );
    assert_eq!(
        problems(&schema, json!({"nodes": ["n0", "n1", 7, "x"]})),
        [
            ("nodes[2]".into(), Rule::Type, "must be a string, got 7".into()),
            ("nodes[3]".into(), Rule::Pattern, r#"must match the pattern ^n, got "x""#.into()),
        ]
    );
    let matrix = one("m", InputSpec::array(InputSpec::array(InputSpec::integer().minimum(0.0))));
    assert_eq!(
        problems(&matrix, json!({"m": [[0, 1], [2, -3]]})),
        [("m[1][1]".into(), Rule::Minimum, "must be an integer >= 0, got -3".into())]
    );
    let done = matrix.check(&store(json!({"m": [[1.0]]}))).expect("accepted");
    assert!(done["m"][0][0].is_i64(), "items are normalised too");
}

#[test]
fn defaults_fill_absent_inputs_only() {
    let schema = Schema::new()
        .input("steps", InputSpec::integer())
        .input("step_ms", InputSpec::integer().minimum(0.0).default(json!(100)))
        .input("tags", InputSpec::array(InputSpec::string()).default(json!([])));
    let done = schema.check(&store(json!({"steps": 2}))).expect("accepted");
    assert_eq!(Value::Object(done), json!({"steps": 2, "step_ms": 100, "tags": []}));
    let done = schema.check(&store(json!({"steps": 2, "step_ms": 5}))).expect("accepted");
    assert_eq!(done["step_ms"], json!(5), "a given value wins over the default");
    // null is a value, not an absence: it is checked, not replaced.
    assert_eq!(
        problems(&schema, json!({"steps": 2, "step_ms": null})),
        [("step_ms".into(), Rule::Type, "must be an integer, got null".into())]
    );
    assert_eq!(schema.required().collect::<Vec<_>>(), ["steps"]);
}

#[test]
fn every_problem_is_reported_in_declaration_order() {
    let schema = Schema::new()
        .input("steps", InputSpec::integer().minimum(1.0))
        .input("step_ms", InputSpec::integer().minimum(0.0))
        .input("nodes", InputSpec::array(InputSpec::string()).min_items(1));
    let found = problems(&schema, json!({"nodes": ["a", 2], "steps": -1}));
    assert_eq!(
        found,
        [
            ("steps".into(), Rule::Minimum, "must be an integer >= 1, got -1".into()),
            ("step_ms".into(), Rule::Required, "is required (integer >= 0) and was not given".into()),
            ("nodes[1]".into(), Rule::Type, "must be a string, got 2".into()),
        ]
    );
    let problem =
        InputProblem { path: "steps".into(), rule: Rule::Minimum, message: "must be an integer >= 1, got -1".into() };
    assert_eq!(problem.to_string(), "steps: must be an integer >= 1, got -1");
}

#[test]
fn undeclared_keys_pass_through() {
    let done =
        one("steps", InputSpec::integer()).check(&store(json!({"steps": 1, "extra": {"any": "thing"}}))).unwrap();
    assert_eq!(done["extra"], json!({"any": "thing"}));
    assert!(Schema::new().check(&store(json!({"x": 1}))).is_ok(), "no inputs: every store passes");
}

#[test]
fn redeclaring_an_input_replaces_it_in_place() {
    let schema =
        Schema::new().input("a", InputSpec::any()).input("b", InputSpec::any()).input("a", InputSpec::integer());
    let names: Vec<(&str, InputType)> = schema.iter().map(|(n, s)| (n, s.ty)).collect();
    assert_eq!(names, [("a", InputType::Integer), ("b", InputType::Any)]);
}

#[test]
fn a_string_input_keeps_the_text_as_given() {
    let schema = one("version", InputSpec::string());
    for text in ["1.10", "007", "yes", "no", "on", "off", "true", "null", "[1]", "\"quoted\"", " padded "] {
        assert_eq!(schema.coerce_text("version", text), Ok(json!(text)), "{text:?} stays text");
    }
}

#[test]
fn numbers_are_read_from_text() {
    let integer = one("n", InputSpec::integer());
    assert_eq!(integer.coerce_text("n", "5"), Ok(json!(5)));
    assert_eq!(integer.coerce_text("n", "-1"), Ok(json!(-1)), "bounds are judged by check, not here");
    assert_eq!(integer.coerce_text("n", " 7 "), Ok(json!(7)));
    for bad in ["5.5", "five", "", "0x10"] {
        let problem = integer.coerce_text("n", bad).expect_err(bad);
        assert_eq!((problem.path.as_str(), problem.rule), ("n", Rule::Type), "{bad:?}");
        assert_eq!(problem.message, format!("must be an integer, got the text {bad:?}"));
    }
    let number = one("p", InputSpec::number());
    assert_eq!(number.coerce_text("p", "1.10"), Ok(json!(1.1)));
    assert_eq!(number.coerce_text("p", "3"), Ok(json!(3)));
    assert!(number.coerce_text("p", "NaN").is_err());
}

#[test]
fn booleans_are_only_true_and_false() {
    let schema = one("dry_run", InputSpec::boolean());
    assert_eq!(schema.coerce_text("dry_run", "true"), Ok(json!(true)));
    assert_eq!(schema.coerce_text("dry_run", "false"), Ok(json!(false)));
    for word in ["yes", "no", "on", "off", "True", "1", "y"] {
        let problem = schema.coerce_text("dry_run", word).expect_err(word);
        assert_eq!(problem.message, format!("must be a boolean (true or false), got the text {word:?}"));
    }
}

#[test]
fn arrays_and_objects_are_read_as_json() {
    let schema = Schema::new().input("nodes", InputSpec::array(InputSpec::string())).input("env", InputSpec::object());
    assert_eq!(schema.coerce_text("nodes", r#"["a","b"]"#), Ok(json!(["a", "b"])));
    assert_eq!(schema.coerce_text("env", r#"{"A": "1"}"#), Ok(json!({"A": "1"})));
    assert_eq!(schema.coerce_text("nodes", "a,b").expect_err("not JSON").rule, Rule::Type);
    assert_eq!(
        schema.coerce_text("nodes", "{}").expect_err("not an array").message,
        "must be an array in JSON, got the text \"{}\""
    );
    assert!(schema.coerce_text("env", "[1]").is_err());
}

#[test]
fn undeclared_and_any_inputs_read_json_else_text() {
    let schema = one("free", InputSpec::any());
    for name in ["free", "undeclared"] {
        assert_eq!(schema.coerce_text(name, "3"), Ok(json!(3)));
        assert_eq!(schema.coerce_text(name, "[1,2]"), Ok(json!([1, 2])));
        assert_eq!(schema.coerce_text(name, "web-1"), Ok(json!("web-1")));
    }
}

#[test]
fn lint_finds_unsound_declarations() {
    let sound = Schema::new()
        .input("steps", InputSpec::integer().minimum(1.0).maximum(5.0).default(json!(2)))
        .input("mode", InputSpec::string().pattern(pattern("^[a-z]+$")).one_of([json!("a"), json!("b")]))
        .input("nodes", InputSpec::array(InputSpec::string()).min_items(1));
    assert_eq!(sound.lint(), []);
    let unsound = Schema::new()
        .input("s", InputSpec::string().minimum(1.0).min_items(2))
        .input("n", InputSpec::integer().minimum(5.0).maximum(1.0).pattern(pattern("x")))
        .input("d", InputSpec::integer().minimum(0.0).default(json!(-1)))
        .input("e", InputSpec::string().one_of([json!("a"), json!(2)]))
        .input("b", InputSpec::boolean().items(InputSpec::string()))
        .input("l", InputSpec::array(InputSpec::integer().pattern(pattern("x"))));
    let found: Vec<String> = unsound.lint().iter().map(ToString::to_string).collect();
    assert_eq!(
        found,
        [
            "s: minimum does not apply to type string",
            "s: min_items does not apply to type string",
            "n: pattern does not apply to type integer",
            "n: minimum 5 is above maximum 1",
            "d.default: must be an integer >= 0, got -1",
            "e.enum[1]: must be a string, got 2",
            "b: items does not apply to type boolean",
            "l.items: pattern does not apply to type integer",
        ]
    );
    assert!(unsound.lint().iter().all(|p| p.rule == Rule::Declaration));
}

#[test]
fn summaries_read_as_the_rules() {
    assert_eq!(InputSpec::integer().minimum(1.0).maximum(1000.0).summary(), "integer from 1 to 1000");
    assert_eq!(InputSpec::integer().minimum(0.0).summary(), "integer >= 0");
    assert_eq!(InputSpec::number().maximum(0.5).summary(), "number <= 0.5");
    assert_eq!(InputSpec::array(InputSpec::string()).min_items(1).summary(), "array of string, at least 1 item");
    assert_eq!(InputSpec::string().one_of([json!("a"), json!("b")]).summary(), r#"string, one of "a", "b""#);
    assert_eq!(InputSpec::string().pattern(pattern("^x")).summary(), "string, matching ^x");
}

#[test]
fn type_names_round_trip() {
    for (ty, name) in InputType::ALL.into_iter().zip(InputType::NAMES) {
        assert_eq!(ty.as_str(), name);
        assert_eq!(InputType::from_name(name), Some(ty));
    }
    assert_eq!(InputType::from_name("int"), None);
}

#[test]
fn the_registry_checks_and_completes_stores() {
    use crate::{Flow, FlowFactory, FlowRegistry, RegistryError};
    let factory = FlowFactory::new("chain", |store| {
        // The build closure sees the completed store: the default is there.
        assert_eq!(store["step_ms"], json!(100));
        Ok(Flow::linear("chain"))
    })
    .input("steps", InputSpec::integer().minimum(1.0))
    .input("step_ms", InputSpec::integer().minimum(0.0).default(json!(100)));
    let mut registry = FlowRegistry::new();
    registry.register(factory);
    let done = registry.complete("chain", &store(json!({"steps": 2}))).expect("valid");
    assert_eq!(Value::Object(done), json!({"steps": 2, "step_ms": 100}));
    assert!(registry.build("chain", &store(json!({"steps": 2}))).is_ok());
    let err = registry.validate("chain", &store(json!({"steps": -1, "step_ms": "x"}))).expect_err("refused");
    assert_eq!(
        err.to_string(),
        r#"flow "chain" refuses its inputs: steps: must be an integer >= 1, got -1; step_ms: must be an integer, got "x""#
    );
    assert!(matches!(err, RegistryError::InvalidInputs { ref problems, .. } if problems.len() == 2));
    assert!(
        matches!(registry.build("chain", &store(json!({}))), Err(RegistryError::InvalidInputs { .. })),
        "build checks too, for jobs written to the board directly"
    );
}
