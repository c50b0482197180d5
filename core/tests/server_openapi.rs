//! `GET /api/openapi.json` of a running server: an OpenAPI 3 document that names every route
//! the server registers (parsed from its sources, as docs.rs does), whose references all
//! resolve, behind the token like the rest of the API. (Requests generated from it are sent by
//! schemathesis: `make test-openapi`.)
#![cfg(feature = "server")]

mod server_common;

use serde_json::Value;
use server_common::*;

/// Every `.route("…")` of the server's sources.
fn routes() -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for piece in text.split(".route(\"").skip(1) {
                    out.push(piece.split('"').next().unwrap().to_owned());
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin"),
        &mut out,
    );
    out
}

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn the_document_covers_every_route_and_its_references_resolve() {
    let dir = temp_dir("openapi");
    let server = Server::start(&dir, &["--token", "t0ken-for-the-test"]);
    let (status, _) = server.get("/api/openapi.json");
    assert_eq!(status, 401, "behind the token like the rest of the API");
    let (status, doc) = http(
        server.http,
        "GET",
        "/api/openapi.json",
        None,
        Some("t0ken-for-the-test"),
    );
    assert_eq!(status, 200, "{doc}");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let paths = doc["paths"].as_object().unwrap();
    let routes = routes();
    assert!(routes.len() >= 10, "{routes:?}");
    let missing: Vec<_> = routes.iter().filter(|r| !paths.contains_key(*r)).collect();
    assert!(
        missing.is_empty(),
        "routes missing from the document: {missing:?}"
    );
    let extra: Vec<_> = paths.keys().filter(|p| !routes.contains(p)).collect();
    assert!(
        extra.is_empty(),
        "paths the server does not serve: {extra:?}"
    );
    // Each operation says what it answers, errors included.
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path}: no success response"
            );
            assert!(responses.contains_key("401"), "{method} {path}: no 401");
        }
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").expect(&r);
        assert!(schemas.contains_key(name), "unresolved {r}");
    }
    for shape in [
        "DeviceJson",
        "CommandJson",
        "FuelSeries",
        "ForwarderJson",
        "ErrorBody",
        "IoJson",
    ] {
        assert!(schemas.contains_key(shape), "{shape} missing");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(server.stop().success());
}
