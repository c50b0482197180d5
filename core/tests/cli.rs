//! `fleetview decode` as a user runs it: arguments or stdin, formats, lenient mode, the error
//! JSON and the exit status. Needs feature `cli` (`required-features` in Cargo.toml); run it
//! with that feature alone too (`make test-cli`) so the decoder CLI is known to build and work
//! without the server's dependencies.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

const T1: &str = "000000000000003608010000016B40D8EA30010000000000000000000000000000000105021503010101425E0F01F10000601A014E0000000000000000010000C7CF";
const T11: &str = "00000000000000100E011100000008035209308145246801000032AC";
const T14: &str = "003DCAFE0105000F33353230393330383634303336353508010000016B4F815B30010000000000000000000000000000000103021503010101425DBC000001";

fn run(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleetview"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn decodes_one_packet_to_one_object() {
    let (code, out, _) = run(&["decode", T1], None);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["kind"], "avl");
    assert_eq!(v["codec"], "8");
    assert_eq!(v["ack"], "00000001");
    assert_eq!(v["records"][0]["io"][2]["value"], 24.079);
    assert_eq!(v["records"][0]["io"][2]["unit"], "V");
}

#[test]
fn strict_failure_prints_the_error_json_and_exits_non_zero() {
    let (code, out, _) = run(&["decode", T11], None);
    assert_ne!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"]["kind"], "crc_mismatch");
    assert_eq!(v["error"]["offset"], 24);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("CRC mismatch at byte 24: computed 0x635e, received 0x32ac"));
}

#[test]
fn lenient_decodes_with_a_warning() {
    let (code, out, _) = run(&["decode", "--lenient", T11], None);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["messages"][0]["type"], 17);
    assert_eq!(v["warnings"][0]["kind"], "crc_mismatch");
}

#[test]
fn stdin_lines_ndjson_and_mixed_results() {
    let input = format!("{T1}\n\n# a comment\n{T14}\nzz\n");
    let (code, out, _) = run(&["decode", "--format", "ndjson", "-"], Some(&input));
    assert_eq!(code, 1, "one line fails");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["transport"], "tcp");
    assert_eq!(lines[1]["transport"], "udp");
    assert_eq!(lines[1]["ack"], "0005cafe010501");
    assert_eq!(lines[2]["error"]["kind"], "invalid_hex");
}

#[test]
fn several_packets_make_an_array() {
    let (code, out, _) = run(&["decode", T1, "000F333536333037303432343431303133"], None);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[1]["kind"], "imei");
    assert_eq!(v[1]["ack"], "01");
}

#[test]
fn hex_with_spaces_and_prefixes() {
    let (code, out, _) = run(
        &[
            "decode",
            "0x00 0x0F 33 35 36 33 30 37 30 34 32 34 34 31 30 31 33",
        ],
        None,
    );
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["imei"], "356307042441013");
}

#[test]
fn no_input_is_a_usage_error() {
    let (code, _, err) = run(&["decode"], Some(""));
    assert_eq!(code, 2);
    assert!(err.contains("nothing to decode"));
}

/// A Codec 8 frame with IO 4 (Pulse Counter Din1 on FMB920, Digital Input 4 on FMB640) and a
/// position, built with the library's encoder.
fn frame_with_io4() -> String {
    use fleetview::{AvlData, AvlRecord, Codec, GpsElement, IoElement, IoValue};
    let record = AvlRecord {
        timestamp_ms: 1_700_000_000_000,
        gps: GpsElement {
            longitude: 252_797_000,
            latitude: 546_872_000,
            satellites: 8,
            ..GpsElement::default()
        },
        io: vec![IoElement {
            id: 4,
            value: IoValue::U8(1),
        }],
        ..AvlRecord::default()
    };
    let data = AvlData::new(Codec::Codec8, vec![record]);
    fleetview::hex::encode(&fleetview::encode::avl_frame(&data).unwrap())
}

#[test]
fn model_changes_io_names() {
    let hex = frame_with_io4();
    let name = |model: &str| {
        let (code, out, _) = run(&["decode", "--model", model, &hex], None);
        assert_eq!(code, 0);
        let v: Value = serde_json::from_str(&out).unwrap();
        v["records"][0]["io"][0]["name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(name("FMB920"), "Pulse Counter Din1");
    assert_eq!(name("FMB640"), "Digital Input 4");
    let (_, _, err) = run(&["decode", "--model", "NOPE1", &hex], None);
    assert!(err.contains("unknown model"));
}

#[test]
fn geojson_and_csv_formats() {
    let hex = frame_with_io4();
    let (code, out, _) = run(&["decode", "--format", "geojson", &hex], None);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["type"], "FeatureCollection");
    assert_eq!(
        v["features"][0]["geometry"]["coordinates"],
        serde_json::json!([25.2797, 54.6872])
    );
    let (code, out, _) = run(
        &["decode", "--format", "csv", "--model", "FMB640", &hex],
        None,
    );
    assert_eq!(code, 0);
    let mut lines = out.lines();
    assert!(lines.next().unwrap().ends_with(",valid,Digital Input 4"));
    assert!(lines.next().unwrap().ends_with(",true,1"));
    // Errors go to stderr in table formats, and the exit status says so.
    let (code, _, err) = run(
        &[
            "decode",
            "--format",
            "csv",
            "00000000000000100E011100000008035209308145246801000032AC",
        ],
        None,
    );
    assert_eq!(code, 1);
    assert!(err.contains("CRC mismatch"));
}

/// With feature `server` the binary offers every subcommand.
#[cfg(feature = "server")]
#[test]
fn help_lists_every_subcommand() {
    let (code, out, _) = run(&["--help"], None);
    assert_eq!(code, 0);
    for name in ["decode", "pcap", "relay", "serve", "send", "simulate"] {
        assert!(
            out.contains(&format!("  {name} ")),
            "{name} missing from:\n{out}"
        );
    }
}

/// Built with `cli` alone, the binary offers `decode` and `pcap` only and says how to get the
/// rest.
#[cfg(not(feature = "server"))]
#[test]
fn cli_build_offers_decode_only() {
    let (code, out, _) = run(&["--help"], None);
    assert_eq!(code, 0);
    assert!(out.contains("  decode "), "{out}");
    assert!(out.contains("  pcap "), "{out}");
    for name in ["relay", "serve", "send", "simulate"] {
        assert!(!out.contains(&format!("  {name} ")), "{name} in:\n{out}");
        let (code, _, err) = run(&[name, "--help"], None);
        assert_eq!(code, 2, "{name}");
        assert!(err.contains("needs feature `server`"), "{name}: {err}");
    }
}

/// Every flag of every subcommand this build offers is documented in its section of
/// docs/cli.md (and the section exists).
#[test]
fn every_flag_is_documented_in_cli_md() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/cli.md")).unwrap();
    let mut subcommands = vec!["decode", "pcap"];
    if cfg!(feature = "server") {
        subcommands.extend(["serve", "simulate", "relay", "send"]);
    }
    for sub in subcommands {
        let heading = format!("\n## `fleetview {sub}`");
        let section = doc
            .split_once(&heading)
            .unwrap_or_else(|| panic!("docs/cli.md has no section {heading:?}"))
            .1;
        let section = section.split("\n## ").next().unwrap();
        let (code, help, _) = run(&[sub, "--help"], None);
        assert_eq!(code, 0);
        let flags: Vec<String> = help
            .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
            .filter_map(|w| w.strip_prefix("--"))
            .map(|w| {
                let name: String = w
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                format!("--{name}")
            })
            .filter(|w| w.len() > 2 && w != "--help" && w != "--version")
            .collect();
        assert!(!flags.is_empty(), "{sub}: no flags in\n{help}");
        for flag in &flags {
            assert!(
                section.contains(&format!("`{flag}")),
                "docs/cli.md: `fleetview {sub}` does not document {flag}"
            );
        }
    }
}

// ===== fleetview pcap =====

fn capture_path(name: &str) -> String {
    format!("{}/tests/captures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The JSON of a recorded capture: one session per device, each packet with the JSON model
/// plus its time, the replies interpreted, no problems.
#[test]
fn pcap_json_of_a_recorded_capture() {
    let (code, out, err) = run(
        &["pcap", &capture_path("tcp_command.pcap"), "--port", "35027"],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "no progress on a pipe: {err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let sessions = v["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    let s = &sessions[0];
    assert_eq!(s["transport"], "tcp");
    assert_eq!(s["imei"], "352093082000000");
    assert_eq!(s["server"], "127.0.0.1:35027");
    assert_eq!(s["packets"][0]["kind"], "imei");
    assert_eq!(s["packets"][1]["kind"], "avl");
    assert_eq!(s["packets"][1]["codec"], "8");
    assert!(s["packets"][1]["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(s["replies"][0]["hex"], "01");
    assert_eq!(s["replies"][0]["meaning"], "IMEI accepted");
    let command = s["replies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "command")
        .unwrap();
    let answer = &s["packets"][command["answered_by"].as_u64().unwrap() as usize];
    assert_eq!(answer["kind"], "command");
    assert_eq!(answer["messages"][0]["type"], 6);
    assert_eq!(s["problems"].as_array().unwrap().len(), 0);
    assert_eq!(v["stats"]["format"], "pcap");
    assert_eq!(v["stats"]["sessions"], 1);
}

/// The text timeline: a header per session, then device packets, server replies and
/// problems in time order.
#[test]
fn pcap_text_timeline() {
    let (code, out, _) = run(
        &[
            "pcap",
            &capture_path("udp_devices.pcap"),
            "--port",
            "35027",
            "--format",
            "text",
        ],
        None,
    );
    assert_eq!(code, 0);
    assert!(out.contains("UDP device 127.0.0.1:"), "{out}");
    assert!(out.contains("IMEI 352093081000001"), "{out}");
    assert!(out.contains("device  [0] AVL Codec 8, 3 records"), "{out}");
    assert!(
        out.contains("ack of AVL packet 0x01: 3 of the 3 records of packet [0] accepted"),
        "{out}"
    );
    assert!(
        out.trim_end().ends_with(
            "skipped: 0 not TCP/UDP, 0 fragments, 0 malformed, 0 of other conversations"
        ),
        "{out}"
    );
    // Stdin works too.
    let file = std::fs::read(capture_path("udp_devices.pcap")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleetview"))
        .args(["pcap", "-", "--port", "35027", "--format", "text"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&file).unwrap();
    let piped = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8(piped.stdout).unwrap(), out);
}

/// An unreadable or corrupt file: the error JSON with its kind and offset, exit status 1. A
/// file cut short still prints the sessions before the cut.
#[test]
fn pcap_bad_files() {
    let (code, out, err) = run(&["pcap", "/nonexistent/capture.pcap"], None);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"]["kind"], "io");
    assert!(
        err.contains("cannot open /nonexistent/capture.pcap"),
        "{err}"
    );

    let dir = std::env::temp_dir().join(format!("fleetview-cli-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("not.pcap");
    std::fs::write(&text, "hello, this is text").unwrap();
    let (code, out, _) = run(&["pcap", text.to_str().unwrap()], None);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"]["kind"], "not_a_capture");
    assert_eq!(v["error"]["offset"], 0);
    assert_eq!(v["sessions"].as_array().unwrap().len(), 0);

    let mut file = std::fs::read(capture_path("tcp_devices.pcap")).unwrap();
    file.truncate(file.len() - 5);
    let cut = dir.join("cut.pcap");
    std::fs::write(&cut, &file).unwrap();
    let (code, out, err) = run(&["pcap", cut.to_str().unwrap(), "--port", "35027"], None);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"]["kind"], "truncated");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("truncated capture at byte"),
        "{v}"
    );
    assert_eq!(v["sessions"].as_array().unwrap().len(), 3);
    assert!(err.contains("truncated capture"), "{err}");
    let (code, out, _) = run(
        &[
            "pcap",
            cut.to_str().unwrap(),
            "--port",
            "35027",
            "--format",
            "text",
        ],
        None,
    );
    assert_eq!(code, 1);
    assert!(out.contains("error: truncated capture at byte"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--progress` reports on stderr, stdout stays the same document.
#[test]
fn pcap_progress_goes_to_stderr() {
    let (code, out, err) = run(
        &[
            "pcap",
            &capture_path("tcp_devices.pcap"),
            "--port",
            "35027",
            "--progress",
        ],
        None,
    );
    assert_eq!(code, 0);
    assert!(err.contains("3 sessions in"), "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["sessions"].as_array().unwrap().len(), 3);
}

/// The hex of a vector file of `tests/vectors`.
fn vector_hex(name: &str) -> String {
    let path = format!("{}/tests/vectors/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["hex"].as_str().unwrap().to_owned()
}

#[test]
fn composite_values_are_decoded_and_malformed_ones_warned_about() {
    let hex = vector_hex("composite_fmb_codec8e_24_records_beacons_sensors");
    let (code, out, _) = run(&["decode", "-"], Some(&hex));
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    let records = v["records"].as_array().unwrap();
    assert_eq!(records.len(), 24);
    // Record 6 holds part 1 of a beacon list split over two records.
    let beacons = records[5]["io"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == 385)
        .unwrap();
    assert_eq!(beacons["decoded"]["part"], 1);
    assert_eq!(beacons["decoded"]["parts"], 2);
    assert_eq!(beacons["decoded"]["beacons"][0]["type"], "ibeacon");
    assert_eq!(
        beacons["decoded"]["beacons"][0]["uuid"],
        "e2c56db5-dffb-48d2-b060-d0f5a71096e0"
    );
    let eye = records[0]["io"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == 11317)
        .unwrap();
    assert_eq!(eye["decoded"]["beacons"][0]["name"], "EYE_CARGO");
    assert_eq!(eye["decoded"]["beacons"][0]["eye"]["temperature_c"], -11.87);
    assert_eq!(records[12]["network"]["cell_id"], 27_449_604);
    assert_eq!(records[0]["network"]["mcc"], 246);

    // Malformed values: the packet decodes (exit 0), each with its warning and offset.
    let (code, out, _) = run(&["decode", &vector_hex("composite_malformed_values")], None);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    let kinds: Vec<&str> = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "composite_truncated",
            "composite_length_overrun",
            "composite_bad_part",
            "composite_not_text"
        ]
    );
    assert!(v["warnings"][0]["message"]
        .as_str()
        .unwrap()
        .starts_with("Malformed beacon list at byte "));
    let value = &v["records"][0]["io"][10];
    assert_eq!(value["id"], 385);
    assert!(value["hex"].is_string() && value.get("decoded").is_none());
}
