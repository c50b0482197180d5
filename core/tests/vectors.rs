//! The official examples and hand-assembled fixtures in `tests/vectors/*.json` (each file names
//! its source in `source`).
//!
//! Without any feature, every vector is decoded and checked for what the library's own types
//! say: success or the expected error kind at the expected byte, the number of packets and the
//! offsets of their warnings, and the exact bytes of a re-encoding. With feature `serde`, each
//! is also compared field by field with its expected JSON (every key in `expect` must match;
//! arrays must have exactly the expected length).

use std::path::Path;

use fleetview::DecodeOptions;
use serde_json::Value;

/// One vector file.
struct Vector {
    name: String,
    bytes: Vec<u8>,
    opts: DecodeOptions,
    /// The file's JSON: `expect` (a list of packets) or `error`.
    json: Value,
}

fn vectors() -> Vec<Vector> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 25, "vectors missing: {}", files.len());
    files
        .iter()
        .map(|file| {
            let json: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let opts = if json["lenient"].as_bool().unwrap() {
                DecodeOptions::lenient()
            } else {
                DecodeOptions::default()
            };
            Vector {
                name: json["name"].as_str().unwrap().to_owned(),
                bytes: fleetview::hex::decode(json["hex"].as_str().unwrap()).unwrap(),
                opts,
                json,
            }
        })
        .collect()
}

/// Collects the failures of every vector, so that one run shows them all.
fn check_all(check: impl Fn(&Vector, &mut Vec<String>)) {
    let mut failures = Vec::new();
    for v in vectors() {
        let mut errors = Vec::new();
        check(&v, &mut errors);
        if !errors.is_empty() {
            failures.push(format!("{}:\n    {}", v.name, errors.join("\n    ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn vectors_decode_or_fail_as_expected_and_reencode_exactly() {
    check_all(|v, errors| {
        let results: Vec<_> = fleetview::decode_each(&v.bytes, &v.opts).collect();
        if let Some(expected) = v.json.get("error") {
            match results.as_slice() {
                [Err(e)] => {
                    if e.code() != expected["kind"] {
                        errors.push(format!("error {}, expected {}", e.code(), expected["kind"]));
                    }
                    if e.offset as u64 != expected["offset"] {
                        errors.push(format!(
                            "error at {}, expected {}",
                            e.offset, expected["offset"]
                        ));
                    }
                }
                other => errors.push(format!("{other:?}, expected one error {expected}")),
            }
            return;
        }
        let expect = v.json["expect"].as_array().unwrap();
        let packets: Vec<_> = match results.into_iter().collect::<Result<Vec<_>, _>>() {
            Ok(p) => p,
            Err(e) => return errors.push(format!("unexpected error: {e}")),
        };
        if packets.len() != expect.len() {
            errors.push(format!(
                "{} packets, expected {}",
                packets.len(),
                expect.len()
            ));
        }
        for (i, (p, e)) in packets.iter().zip(expect).enumerate() {
            // Offsets where the file gives one; `None` where it names the kind only.
            let expected: Vec<Option<u64>> = e["warnings"]
                .as_array()
                .map(|ws| ws.iter().map(|w| w["offset"].as_u64()).collect())
                .unwrap_or_default();
            let actual: Vec<u64> = p.warnings.iter().map(|w| w.offset as u64).collect();
            let agree = actual.len() == expected.len()
                && actual
                    .iter()
                    .zip(&expected)
                    .all(|(a, e)| e.is_none_or(|e| e == *a));
            if !agree {
                errors.push(format!(
                    "packet {i}: warnings at {actual:?}, expected {expected:?}"
                ));
            }
        }
        // Consistent packets re-encode to the very same bytes.
        if packets.iter().all(|p| p.warnings.is_empty()) {
            let mut again = Vec::new();
            for p in &packets {
                again.extend(p.encode().unwrap());
            }
            if again != v.bytes {
                errors.push(format!(
                    "re-encoded differs:\n  {}\n  {}",
                    fleetview::hex::encode(&v.bytes),
                    fleetview::hex::encode(&again)
                ));
            }
        }
    });
}

/// `expected` is a subset of `actual`: objects compare key by key, arrays element by element
/// with equal lengths, floats within 1e-9.
#[cfg(feature = "serde")]
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

#[cfg(feature = "serde")]
#[test]
fn vectors_match_their_json_model() {
    use fleetview::json::{ItemJson, JsonOptions};
    check_all(|v, errors| {
        let items: Vec<ItemJson> = fleetview::decode_each(&v.bytes, &v.opts)
            .map(|r| ItemJson::new(&r, &JsonOptions::default()))
            .collect();
        let actual = serde_json::to_value(&items).unwrap();
        match v.json.get("error") {
            Some(err) => check(&serde_json::json!([{ "error": err }]), &actual, "", errors),
            None => check(&v.json["expect"], &actual, "", errors),
        }
    });
}
