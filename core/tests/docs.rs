//! The contract documents in `core/docs/` against the code, so that they cannot drift: every
//! `ErrorKind` variant is in errors.md (and nothing else is), every route the server registers
//! is in http-api.md, and (feature `serde`) every packet example in json-model.md is what the
//! decoder prints for a real input. The CLI's flags are checked against cli.md by
//! `tests/cli.rs`, which runs the binary.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// `UnexpectedEnd` → `unexpected_end`.
fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The variant names of `pub enum NAME` in the library's sources (wherever it lives), and the
/// text of the file that defines it; `None` when there is no such enum.
fn enum_variants(name: &str) -> Option<(Vec<String>, String)> {
    let header = format!("pub enum {name} {{");
    let lib_files = rust_files(&root().join("src"))
        .into_iter()
        .filter(|p| !p.starts_with(root().join("src/bin")));
    for file in lib_files {
        let text = std::fs::read_to_string(&file).unwrap();
        let Some(line) = text.lines().find(|l| l.trim_start() == header) else {
            continue;
        };
        let indent = line.len() - line.trim_start().len();
        let variant_indent = " ".repeat(indent + 4);
        let mut variants = Vec::new();
        for l in text.lines().skip_while(|l| *l != line).skip(1) {
            if l.trim_start() == "}" && l.len() - l.trim_start().len() == indent {
                break;
            }
            let Some(rest) = l.strip_prefix(&variant_indent) else {
                continue;
            };
            let ident: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // Tuple variants wrap another kind (`Tolerated(ErrorKind)`): not a code of their own.
            let wrapper = rest[ident.len()..].starts_with('(');
            if ident.starts_with(|c: char| c.is_ascii_uppercase()) && !wrapper {
                variants.push(ident);
            }
        }
        return Some((variants, text));
    }
    None
}

/// The rows of the first Markdown table after `heading`: cells without backquotes.
fn table_after(doc: &str, heading: &str) -> Vec<Vec<String>> {
    let section = doc
        .split_once(heading)
        .unwrap_or_else(|| panic!("no {heading:?}"))
        .1;
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().replace('`', ""))
                .collect()
        })
        .collect()
}

#[test]
fn errors_md_lists_exactly_the_error_kinds() {
    let (variants, source) =
        enum_variants("ErrorKind").expect("no `pub enum ErrorKind` in core/src");
    assert!(variants.len() >= 20, "parsed {variants:?}");
    let doc = read("docs/errors.md");
    let rows = table_after(&doc, "## Decoding errors");
    let documented: BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| {
            let variant = r[1].split([' ', '{']).next().unwrap().to_owned();
            (r[0].clone(), variant)
        })
        .collect();
    let actual: BTreeSet<(String, String)> = variants
        .iter()
        .map(|v| (snake_case(v), v.clone()))
        .collect();
    let missing: Vec<_> = actual.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&actual).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "docs/errors.md is out of step with ErrorKind: undocumented {missing:?}, not in the code {extra:?}"
    );
    for (code, _) in &actual {
        assert!(
            source.contains(&format!("\"{code}\"")),
            "ErrorKind's code for {code} is not the snake_case of its name"
        );
    }
}

/// Every warning kind in the doc exists in the code; and if warnings have a kind enum of their
/// own, each of its variants is in the doc (as a decoding error or in the warnings table).
#[test]
fn errors_md_warning_kinds_exist() {
    let doc = read("docs/errors.md");
    let sources: String = rust_files(&root().join("src"))
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let warnings = table_after(&doc, "## Warnings");
    for row in &warnings {
        assert!(
            sources.contains(&format!("\"{}\"", row[0])),
            "warning kind {} of docs/errors.md is not in the code",
            row[0]
        );
    }
    if let Some((variants, _)) = enum_variants("WarningKind") {
        let errors = table_after(&doc, "## Decoding errors");
        // A malformed composite value's warning takes the code of its problem.
        let problems = enum_variants("CompositeProblem").map_or_else(Vec::new, |(v, _)| v);
        assert!(problems.len() >= 4, "parsed {problems:?}");
        let variants = variants.into_iter().flat_map(|v| match v.as_str() {
            "MalformedComposite" => problems.clone(),
            _ => vec![v],
        });
        for v in variants {
            let code = snake_case(&v);
            assert!(
                warnings.iter().chain(&errors).any(|row| row[0] == code),
                "WarningKind::{v} ({code}) is not in docs/errors.md"
            );
        }
    }
}

#[test]
fn http_api_md_lists_every_server_route() {
    let doc = read("docs/http-api.md");
    let mut routes = Vec::new();
    for file in rust_files(&root().join("src/bin")) {
        let text = std::fs::read_to_string(&file).unwrap();
        for piece in text.split(".route(\"").skip(1) {
            routes.push(piece.split('"').next().unwrap().to_owned());
        }
    }
    assert!(routes.len() >= 6, "parsed {routes:?}");
    let undocumented: Vec<_> = routes
        .iter()
        .filter(|r| !doc.contains(&format!(" {r}")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from docs/http-api.md: {undocumented:?}"
    );
}

/// Each packet or error example in json-model.md is exactly the JSON model of one of these
/// inputs (Teltonika's documented examples).
#[cfg(feature = "serde")]
#[test]
fn json_model_md_examples_are_real_output() {
    use fleetview::json::{ItemJson, JsonOptions};
    use fleetview::DecodeOptions;
    use serde_json::Value;

    let inputs = [
        // Codec 8 Extended.
        "000000000000004A8E010000016B412CEE000100000000000000000000000000000000010005000100010100010011001D00010010015E2C880002000B000000003544C87A000E000000001DD7E06A00000100002994",
        // Codec 8 Extended with a beacon, an EYE sensor, fault codes and the serving cell.
        "000000000000008D8E010000019ADE135400000F1159E020989BEC0070005A0B002A018100070001001504000200CD609100CE0D49000100F10000601A000000030181001B1127E2C56DB5DFFB48D2B060D0F5A71096E000010002C40BE808662C350021011F0001C20F067CD9F4038A2105094559455F434152474F020793FB5D2980115F0119000B50303130312C50303330300100003024",
        // Codec 12 getinfo.
        "000000000000000F0C010500000007676574696E666F0100004312",
        // IMEI login, keep-alive.
        "000F333536333037303432343431303133",
        "FF",
        // Codec 14 nACK whose CRC does not verify.
        "00000000000000100E011100000008035209308145246801000032AC",
    ];
    let outputs: Vec<Value> = inputs
        .iter()
        .map(|hex| {
            let bytes = fleetview::hex::decode(hex).unwrap();
            let result = fleetview::decode_each(&bytes, &DecodeOptions::default())
                .next()
                .unwrap();
            serde_json::to_value(ItemJson::new(&result, &JsonOptions::default())).unwrap()
        })
        .collect();
    let doc = read("docs/json-model.md");
    let mut checked = 0;
    for block in doc.split("```json\n").skip(1) {
        let block = block.split("```").next().unwrap();
        for value in serde_json::Deserializer::from_str(block).into_iter::<Value>() {
            let value = value.unwrap_or_else(|e| panic!("json-model.md: {e} in\n{block}"));
            if value.get("transport").is_none() && value.get("error").is_none() {
                continue; // an IO element or a warning alone
            }
            assert!(
                outputs.contains(&value),
                "json-model.md example is not what the decoder prints:\n{value}\nactual outputs:\n{}",
                outputs
                    .iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            checked += 1;
        }
    }
    assert!(checked >= 6, "{checked} examples checked");
}

/// Nothing in the repository points to documents that are not in it: the contracts are in
/// `core/docs/`, the protocol facts in the code and the vector files' `source` fields.
#[test]
fn no_reference_to_files_outside_the_repository() {
    // Built from pieces so that this file does not match itself.
    let needles = [
        ["design", ".md"].concat(),
        ["../", "shared"].concat(),
        ["/work/", "shared"].concat(),
        ["protocol ", "reference"].concat(),
    ];
    let repo = root().parent().unwrap();
    let skip = [
        ".git",
        "target",
        "node_modules",
        "corpus",
        "artifacts",
        "dist",
        "build",
        "test-artifacts",
        "coverage",
    ];
    fn walk(dir: &Path, skip: &[&str], out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if !skip.contains(&name.as_str()) {
                    walk(&path, skip, out);
                }
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(repo, &skip, &mut files);
    assert!(
        files.len() > 50,
        "{} files under {}",
        files.len(),
        repo.display()
    );
    let mut found = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read(&file) else {
            continue;
        };
        let text = String::from_utf8_lossy(&text).to_lowercase();
        for needle in &needles {
            if text.contains(needle.as_str()) {
                found.push(format!("{}: {needle}", file.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "references outside the repository:\n{}",
        found.join("\n")
    );
}
