//! Command safety over real sockets, each case while a well-behaved device keeps logging in and
//! getting its acks: a Codec 14 answer naming another IMEI is ignored, a late answer is never
//! taken for the next command's, a command unanswered when its connection drops (or the server
//! dies) is marked `unanswered` and only sent again on `POST /api/commands/{id}/retry`, a second
//! login with a connected IMEI is logged with both addresses, and an IMEI that never sends data
//! leaves no device row. Runs on SQLite, or on PostgreSQL with `FLEETVIEW_TEST_PG` set
//! (`.ci/with-postgres cargo test …`).
#![cfg(feature = "server")]

mod server_common;

use fleetview::command::CommandMessage;
use fleetview::{Codec, CommandPacket, Imei};
use serde_json::{json, Value};
use server_common::*;

const IMEI: &str = "356307042441013";
const STEADY: &str = "352093081452251";

fn queue(server: &Server, imei: &str, body: Value) -> i64 {
    let (status, cmd) = server.post(&format!("/api/devices/{imei}/commands"), &body);
    assert_eq!(status, 201, "{cmd}");
    cmd["id"].as_i64().unwrap()
}

fn command(server: &Server, id: i64) -> Value {
    let (status, cmd) = server.get(&format!("/api/commands/{id}"));
    assert_eq!(status, 200, "{cmd}");
    cmd
}

#[test]
fn a_codec_14_answer_with_another_imei_is_ignored() {
    let dir = temp_dir("cmd-spoof");
    let server = Server::start(&dir, &[]);
    let steady = Steady::start(server.tcp, STEADY);
    let mut d = Device::connect(server.tcp, IMEI);
    assert_eq!(d.send(Codec::Codec8, records(1_000_000, 1)), 1);
    let id = queue(&server, IMEI, json!({"text": "getver", "codec": "14"}));
    assert_eq!(command_text(&mut d), "getver");
    wait_status(&server, id, "sent");

    // An answer addressed from another device on this connection: logged, ignored.
    let mut spoofed = CommandMessage::command("Ver:spoofed");
    spoofed.kind = CommandMessage::RESPONSE;
    spoofed.imei = Some(Imei::new(STEADY).unwrap().to_bcd().unwrap());
    let frame = fleetview::encode::command_frame(&CommandPacket {
        codec: Codec::Codec14,
        messages: vec![spoofed],
    })
    .unwrap();
    d.write(&frame);
    server.wait_log("Codec 14 answer carrying another IMEI than the session's: ignored");
    // Still awaiting its answer; data still acked on the same connection.
    assert_eq!(d.send(Codec::Codec8, records(2_000_000, 1)), 1);
    assert_eq!(command(&server, id)["status"], "sent");

    // The device's own answer is the one recorded.
    respond(
        &mut d,
        Codec::Codec14,
        CommandMessage::RESPONSE,
        "Ver:03.28",
    );
    let done = wait_status(&server, id, "answered");
    assert_eq!(done["response"]["text"], "Ver:03.28");
    assert!(steady.stop() > 0);
}

#[test]
fn a_late_answer_is_never_taken_for_the_next_command() {
    let dir = temp_dir("cmd-late");
    let server = Server::start(&dir, &["--command-timeout", "1"]);
    let steady = Steady::start(server.tcp, STEADY);
    let mut d = Device::connect(server.tcp, IMEI);
    assert_eq!(d.send(Codec::Codec8, records(1_000_000, 1)), 1);
    let first = queue(&server, IMEI, json!({"text": "cpureset"}));
    assert_eq!(command_text(&mut d), "cpureset");
    // No answer within the timeout: unanswered, may have run.
    let timed_out = wait_status(&server, first, "unanswered");
    assert!(
        timed_out["error"].as_str().unwrap().contains("no answer"),
        "{timed_out}"
    );

    // The next command waits: an answer now could be the late one.
    let second = queue(&server, IMEI, json!({"text": "getgps"}));
    // The connection looks for commands after each ack; this one must not send it.
    assert_eq!(d.send(Codec::Codec8, records(2_000_000, 1)), 1);
    assert_eq!(command(&server, second)["status"], "queued");

    // The late answer: logged, recorded for neither command.
    respond(
        &mut d,
        Codec::Codec12,
        CommandMessage::RESPONSE,
        "late reset answer",
    );
    server.wait_log("late answer to a command that timed out");
    // Then the next command goes out, and its own answer is recorded.
    assert_eq!(command_text(&mut d), "getgps");
    respond(&mut d, Codec::Codec12, CommandMessage::RESPONSE, "GPS:1");
    let done = wait_status(&server, second, "answered");
    assert_eq!(done["response"]["text"], "GPS:1");
    let first = command(&server, first);
    assert_eq!(first["status"], "unanswered", "{first}");
    assert_eq!(first["response"], Value::Null, "{first}");
    assert!(steady.stop() > 0);
}

#[test]
fn a_command_unanswered_when_the_connection_drops_is_not_sent_again_unless_retried() {
    let dir = temp_dir("cmd-drop");
    let server = Server::start(&dir, &[]);
    let steady = Steady::start(server.tcp, STEADY);
    let mut d = Device::connect(server.tcp, IMEI);
    assert_eq!(d.send(Codec::Codec8, records(1_000_000, 1)), 1);
    let id = queue(&server, IMEI, json!({"text": "cpureset"}));
    assert_eq!(command_text(&mut d), "cpureset");
    wait_status(&server, id, "sent");
    drop(d);
    let cmd = wait_status(&server, id, "unanswered");
    assert!(
        cmd["error"]
            .as_str()
            .unwrap()
            .contains("connection closed before the device answered"),
        "{cmd}"
    );

    // Back: data acked, and no command comes (an ack read would see its bytes instead).
    let mut d = Device::connect(server.tcp, IMEI);
    assert_eq!(d.send(Codec::Codec8, records(2_000_000, 1)), 1);
    assert_eq!(d.send(Codec::Codec8, records(3_000_000, 1)), 1);
    assert_eq!(command(&server, id)["status"], "unanswered");

    // Only the API sends it again.
    let (status, v) = server.post(&format!("/api/commands/{id}/retry"), &json!({}));
    assert_eq!(status, 200, "{v}");
    assert!(v["status"] == "queued" || v["status"] == "sent", "{v}");
    assert_eq!(command_text(&mut d), "cpureset");
    respond(&mut d, Codec::Codec12, CommandMessage::RESPONSE, "Reset");
    wait_status(&server, id, "answered");
    // An answered command is not retried.
    let (status, v) = server.post(&format!("/api/commands/{id}/retry"), &json!({}));
    assert_eq!(
        (status, v["error"]["kind"].clone()),
        (409, json!("not_retryable")),
        "{v}"
    );
    let (status, _) = server.post("/api/commands/999999/retry", &json!({}));
    assert_eq!(status, 404);
    assert!(steady.stop() > 0);
}

#[test]
fn a_command_in_flight_when_the_server_dies_is_unanswered_after_the_restart() {
    let dir = temp_dir("cmd-kill");
    // A fixed node name: on PostgreSQL the restarted node knows what its previous run left.
    let flags = ["--node-id", "commands-test-node"];
    let server = Server::start(&dir, &flags);
    let mut d = Device::connect(server.tcp, IMEI);
    assert_eq!(d.send(Codec::Codec8, records(1_000_000, 1)), 1);
    let id = queue(&server, IMEI, json!({"text": "cpureset"}));
    assert_eq!(command_text(&mut d), "cpureset");
    wait_status(&server, id, "sent");
    server.kill9();
    drop(d);

    let server = Server::start(&dir, &flags);
    let steady = Steady::start(server.tcp, STEADY);
    let cmd = command(&server, id);
    assert_eq!(cmd["status"], "unanswered", "{cmd}");
    assert!(
        cmd["error"].as_str().unwrap().contains("server stopped"),
        "{cmd}"
    );
    let mut d = Device::connect(server.tcp, IMEI);
    assert_eq!(d.send(Codec::Codec8, records(2_000_000, 1)), 1);
    assert_eq!(d.send(Codec::Codec8, records(3_000_000, 1)), 1);
    assert_eq!(command(&server, id)["status"], "unanswered");
    assert!(steady.stop() > 0);
}

#[test]
fn a_second_login_with_a_connected_imei_logs_both_addresses() {
    let dir = temp_dir("cmd-second");
    let server = Server::start(&dir, &[]);
    let steady = Steady::start(server.tcp, STEADY);
    let mut first = Device::connect(server.tcp, IMEI);
    assert_eq!(first.send(Codec::Codec8, records(1_000_000, 1)), 1);
    let mut second = Device::connect(server.tcp, IMEI);
    let old = first.stream.local_addr().unwrap().to_string();
    let new = second.stream.local_addr().unwrap().to_string();
    // (The steady device may log such lines too: it logs in again as soon as it closed.)
    server.wait_line(&[
        "second connection with an IMEI already connected",
        &format!("imei={IMEI}"),
        &format!("old={old}"),
        &format!("new={new}"),
    ]);
    // The older connection is closed; the newer one is served.
    assert!(first.closed_by_server());
    assert_eq!(second.send(Codec::Codec8, records(2_000_000, 1)), 1);
    assert!(steady.stop() > 0);
}

#[test]
fn an_imei_that_never_sends_data_leaves_no_device_row() {
    let dir = temp_dir("cmd-rows");
    let server = Server::start(&dir, &[]);
    let steady = Steady::start(server.tcp, STEADY);
    let silent = "123456789012345";
    // Logged in (the row, were one made at login, would exist before the login's answer).
    drop(Device::connect(server.tcp, silent));
    let mut d = Device::connect(server.tcp, IMEI);
    assert_eq!(d.send(Codec::Codec8, records(1_000_000, 1)), 1);
    assert!(steady.stop() > 0);
    let (status, list) = server.get("/api/devices");
    assert_eq!(status, 200);
    let imeis: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["imei"].as_str().unwrap())
        .collect();
    assert!(imeis.contains(&IMEI) && imeis.contains(&STEADY), "{list}");
    assert!(!imeis.contains(&silent), "{list}");
    let (status, _) = server.get(&format!("/api/devices/{silent}/positions"));
    assert_eq!(status, 404);
}
