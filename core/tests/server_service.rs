//! Running as a service: SIGHUP reloads the `--allow` file (a bad file keeps the list in
//! force), `--log-format json` writes one JSON object per log line, and the systemd unit and
//! env file example name flags the server has.
#![cfg(feature = "server")]

mod server_common;

use server_common::*;

const A: &str = "356307042441013";
const B: &str = "352093080000002";

#[test]
fn sighup_reloads_the_allowlist() {
    let dir = temp_dir("sighup");
    let allow = dir.join("allow");
    std::fs::write(&allow, format!("{A}\n")).unwrap();
    let server = Server::start(&dir, &["--allow", allow.to_str().unwrap()]);
    assert_eq!(Device::try_login(server.tcp, A).1, Some(1));
    assert_eq!(Device::try_login(server.tcp, B).1, Some(0));
    let held = Device::connect(server.tcp, A);

    std::fs::write(&allow, format!("# swapped\n{B}\n")).unwrap();
    server.signal("HUP");
    server.wait_log("reloaded: 1 IMEIs (1 added, 1 removed)");
    assert_eq!(Device::try_login(server.tcp, B).1, Some(1));
    assert_eq!(Device::try_login(server.tcp, A).1, Some(0));

    // A broken file: the list in force stays.
    std::fs::write(&allow, "not-an-imei\n").unwrap();
    server.signal("HUP");
    server.wait_log("the allowlist in force is kept");
    assert_eq!(Device::try_login(server.tcp, B).1, Some(1));
    assert_eq!(Device::try_login(server.tcp, A).1, Some(0));
    drop(held);
    assert!(server.stop().success(), "SIGHUP does not stop the server");
}

#[test]
fn sighup_without_an_allowlist_is_harmless() {
    let dir = temp_dir("sighup-none");
    let server = Server::start(&dir, &[]);
    server.signal("HUP");
    server.wait_log("SIGHUP: no --allow file to reload");
    assert_eq!(Device::try_login(server.tcp, A).1, Some(1));
    assert!(server.stop().success());
}

#[test]
fn log_format_json_writes_one_object_per_line() {
    let dir = temp_dir("log-json");
    let server = Server::start(&dir, &["--log-format", "json"]);
    let _d = Device::connect(server.tcp, A);
    let log = server.wait_log("device logged in");
    assert!(server.stop().success());
    let mut seen = false;
    for line in log.lines().filter(|l| !l.is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        if v["fields"]["message"] == "device logged in" {
            assert_eq!(v["fields"]["imei"], A, "{line}");
            seen = true;
        }
    }
    assert!(seen, "{log}");
}

#[test]
fn the_packaged_unit_and_env_file_use_real_flags() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let unit = std::fs::read_to_string(root.join("packaging/fleetview.service")).unwrap();
    let env = std::fs::read_to_string(root.join("packaging/fleetview.env")).unwrap();
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_fleetview"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let exec = unit
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .expect("ExecStart");
    let args = env.lines().filter(|l| l.contains("FLEETVIEW_ARGS="));
    for line in std::iter::once(exec).chain(args) {
        for flag in line.split_whitespace().filter(|w| w.starts_with("--")) {
            let flag = flag
                .split('=')
                .next()
                .unwrap()
                .trim_end_matches(['"', '\\']);
            assert!(
                help.contains(flag),
                "{flag} is not a flag of fleetview serve"
            );
        }
    }
    assert!(
        unit.contains("ExecReload=/bin/kill -HUP $MAINPID"),
        "{unit}"
    );
    assert!(unit.contains("KillSignal=SIGTERM"), "{unit}");
}
