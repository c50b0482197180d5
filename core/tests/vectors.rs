//! The official examples and hand-assembled fixtures in `tests/vectors/*.json`, each decoded and
//! compared field by field with its expected JSON (every key in `expect` must match; arrays must
//! have exactly the expected length), then re-encoded to the same bytes where it is consistent.
#![cfg(feature = "serde")]

use std::path::Path;

use fleetview::json::{ItemJson, JsonOptions};
use fleetview::DecodeOptions;
use serde_json::Value;

/// `expected` is a subset of `actual`: objects compare key by key, arrays element by element
/// with equal lengths, floats within 1e-9.
fn check(expected: &Value, actual: &Value, path: &str, errors: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                match a.get(k) {
                    Some(av) => check(ev, av, &format!("{path}.{k}"), errors),
                    None => errors.push(format!("{path}.{k}: missing (expected {ev})")),
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                errors.push(format!("{path}: {} items, expected {}", a.len(), e.len()));
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                check(ev, av, &format!("{path}[{i}]"), errors);
            }
        }
        (Value::Number(e), Value::Number(a)) if e.is_f64() || a.is_f64() => {
            let (e, a) = (e.as_f64().unwrap(), a.as_f64().unwrap());
            if (e - a).abs() > 1e-9 {
                errors.push(format!("{path}: {a}, expected {e}"));
            }
        }
        (e, a) if e != a => errors.push(format!("{path}: {a}, expected {e}")),
        _ => {}
    }
}

#[test]
fn vectors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 25, "vectors missing: {}", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let name = v["name"].as_str().unwrap();
        let bytes = fleetview::hex::decode(v["hex"].as_str().unwrap()).unwrap();
        let opts = if v["lenient"].as_bool().unwrap() {
            DecodeOptions::lenient()
        } else {
            DecodeOptions::default()
        };
        let results: Vec<_> = fleetview::decode_each(&bytes, &opts).collect();
        let items: Vec<ItemJson> = results
            .iter()
            .map(|r| ItemJson::new(r, &JsonOptions::default()))
            .collect();
        let actual = serde_json::to_value(&items).unwrap();
        let mut errors = Vec::new();
        if let Some(err) = v.get("error") {
            let expected = serde_json::json!([{ "error": err }]);
            check(&expected, &actual, "", &mut errors);
        } else {
            check(&v["expect"], &actual, "", &mut errors);
            // Consistent packets re-encode to the very same bytes.
            let n = results.len();
            let packets: Vec<_> = results.into_iter().filter_map(Result::ok).collect();
            if packets.len() == n && packets.iter().all(|p| p.warnings.is_empty()) {
                let mut again = Vec::new();
                for p in &packets {
                    again.extend(p.encode().unwrap());
                }
                if !again.eq_ignore_ascii_case(&bytes) {
                    errors.push(format!(
                        "re-encoded differs:\n  {}\n  {}",
                        fleetview::hex::encode(&bytes),
                        fleetview::hex::encode(&again)
                    ));
                }
            }
        }
        if !errors.is_empty() {
            failures.push(format!("{name}:\n    {}", errors.join("\n    ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
