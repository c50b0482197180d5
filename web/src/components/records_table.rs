//! The decoded packets: a summary per packet with the exact ack a server must send, the records
//! (UTC time, coordinates, speed, satellites, priority, event, IO with names, values and units;
//! beacons and sensors of composite values as rows of their own; the serving cell), command
//! messages, and warnings.

use std::rc::Rc;

use fleetview::json::{
    BeaconListJson, DecodedJson, EyeJson, IoJson, PacketJson, RecordJson, SensorJson,
    SensorListJson,
};
use fleetview::{PacketKind, TransportKind};
use yew::prelude::*;

use crate::analysis::Analysis;
use crate::state::{Action, Selection, State};

#[derive(Properties, PartialEq)]
pub struct RecordsTableProps {
    pub analysis: Rc<Analysis>,
    pub selected: Selection,
    pub model: Option<String>,
    pub dispatch: UseReducerDispatcher<State>,
}

fn io_text(io: &IoJson) -> String {
    let value = match (&io.value, io.raw, &io.hex) {
        (Some(v), _, _) => v.to_string(),
        (None, Some(raw), _) => raw.to_string(),
        (None, None, Some(hex)) => format!("0x{hex}"),
        _ => String::new(),
    };
    let unit = io.unit.map(|u| format!(" {u}")).unwrap_or_default();
    match io.name {
        Some(name) => format!("{name} ({}) = {value}{unit}", io.id),
        None => format!("IO {} = {value}", io.id),
    }
}

/// `-60 dBm`, or a dash.
fn opt<T: std::fmt::Display>(v: Option<T>, unit: &str) -> String {
    v.map(|v| format!("{v}{unit}"))
        .unwrap_or_else(|| "—".into())
}

/// A composite value's items as a small table: a caption, a header and one row per item (all
/// text, one renderer for beacons and sensors).
fn items_table(
    io: &IoJson,
    kind: &'static str,
    caption: String,
    head: &[&str],
    rows: Vec<Vec<String>>,
) -> Html {
    let row_class = if kind == "beacons" {
        "beacon"
    } else {
        "sensor"
    };
    html! {
        <table class={classes!("composite", kind)} data-io={io.id.to_string()}>
            <caption>{ caption }</caption>
            <thead><tr>{ for head.iter().map(|h| html! { <th>{ *h }</th> }) }</tr></thead>
            <tbody>{ for rows.into_iter().map(|cells| html! {
                <tr class={row_class}>{ for cells.into_iter().map(|c| html! { <td>{ c }</td> }) }</tr>
            }) }</tbody>
        </table>
    }
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// The beacons of one part of a beacon list (IO 385), a row each.
fn beacon_rows(io: &IoJson, list: &BeaconListJson) -> Html {
    let rows = list
        .beacons
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let id = match (&b.uuid, &b.namespace) {
                (Some(uuid), _) => format!(
                    "{uuid} · major {} · minor {}",
                    b.major.unwrap_or(0),
                    b.minor.unwrap_or(0)
                ),
                (None, Some(ns)) => {
                    format!("{ns} · instance {}", b.instance.as_deref().unwrap_or(""))
                }
                _ => String::new(),
            };
            let kind = if b.kind == "ibeacon" {
                "iBeacon"
            } else {
                "Eddystone"
            };
            vec![
                (i + 1).to_string(),
                kind.to_string(),
                id,
                opt(b.rssi, " dBm"),
                opt(b.battery_mv, " mV"),
                opt(b.temperature_c, " °C"),
            ]
        })
        .collect();
    let caption = format!(
        "{} ({}) · part {} of {} · {}",
        io.name.unwrap_or("Beacons"),
        io.id,
        list.part,
        list.parts,
        plural(list.beacons.len(), "beacon")
    );
    let head = ["#", "Type", "ID", "RSSI", "Battery", "Temperature"];
    items_table(io, "beacons", caption, &head, rows)
}

/// What else a sensor says: movement, magnet, angles, low battery, unknown parameters.
fn sensor_other(s: &SensorJson, eye: Option<&EyeJson>) -> String {
    let mut parts = Vec::new();
    let moving = s.movement.or(eye.and_then(|e| e.movement));
    let count = s.movement_count.or(eye.and_then(|e| e.movement_count));
    match (moving, count) {
        (Some(m), Some(c)) => parts.push(format!(
            "{}, {c} movements",
            if m { "moving" } else { "still" }
        )),
        (Some(m), None) => parts.push(if m { "moving" } else { "still" }.to_string()),
        (None, Some(c)) => parts.push(format!("{c} movements")),
        _ => {}
    }
    if let Some(m) = s.magnet.or(eye.and_then(|e| e.magnet)) {
        parts.push(format!(
            "magnet {}",
            if m { "detected" } else { "not detected" }
        ));
    }
    if let Some(c) = s.magnet_count {
        parts.push(format!("{c} magnet triggers"));
    }
    let pitch = s.pitch.or(eye.and_then(|e| e.pitch));
    let roll = s.roll.or(eye.and_then(|e| e.roll));
    if pitch.is_some() || roll.is_some() {
        parts.push(format!(
            "pitch {}, roll {}",
            opt(pitch, "°"),
            opt(roll, "°")
        ));
    }
    if s.low_battery == Some(true) || eye.is_some_and(|e| e.low_battery) {
        parts.push("low battery".into());
    }
    for u in &s.unknown {
        parts.push(format!("parameter {} = 0x{}", u.id, u.hex));
    }
    parts.join(" · ")
}

/// The beacons of a sensor list, a row each (EYE values where the parameters do not say).
fn sensor_rows(io: &IoJson, list: &SensorListJson) -> Html {
    let rows = list
        .beacons
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let eye = s.eye.as_ref();
            vec![
                (i + 1).to_string(),
                s.name.clone().unwrap_or_else(|| "—".into()),
                s.mac
                    .clone()
                    .or_else(|| s.id.clone())
                    .unwrap_or_else(|| "—".into()),
                opt(s.rssi, " dBm"),
                opt(s.temperature_c.or(eye.and_then(|e| e.temperature_c)), " °C"),
                opt(s.humidity.or(eye.and_then(|e| e.humidity)), " %"),
                opt(s.battery_mv.or(eye.and_then(|e| e.battery_mv)), " mV"),
                sensor_other(s, eye),
            ]
        })
        .collect();
    let caption = format!(
        "{} ({}) · {}",
        io.name.unwrap_or("Sensors"),
        io.id,
        plural(list.beacons.len(), "sensor")
    );
    let head = [
        "#",
        "Name",
        "MAC / ID",
        "RSSI",
        "Temperature",
        "Humidity",
        "Battery",
        "Other",
    ];
    items_table(io, "sensors", caption, &head, rows)
}

/// An IO element: one line, or its beacons and sensors as rows.
fn io_cell(io: &IoJson) -> Html {
    match &io.decoded {
        Some(DecodedJson::Beacons(list)) => beacon_rows(io, list),
        Some(DecodedJson::Sensors(list)) => sensor_rows(io, list),
        Some(DecodedJson::Codes { codes }) => html! {
            <div class="codes">{ format!("{} ({}) = {}", io.name.unwrap_or("Fault codes"), io.id,
                if codes.is_empty() { "none".to_string() } else { codes.join(", ") }) }</div>
        },
        Some(DecodedJson::Vin { vin }) => {
            html! { <div>{ format!("{} ({}) = {vin}", io.name.unwrap_or("VIN"), io.id) }</div> }
        }
        None => html! { <div>{ io_text(io) }</div> },
    }
}

/// The serving cell of a record: `MCC 246 · MNC 02 · LAC 3401 · cell 24721 · signal 4/5`.
pub fn cell_text(n: &fleetview::json::NetworkJson) -> String {
    let mut parts = Vec::new();
    if let (Some(mcc), Some(mnc)) = (n.mcc, n.mnc) {
        let width = usize::from(n.mnc_digits.unwrap_or(2));
        parts.push(format!("MCC {mcc} · MNC {mnc:0width$}"));
    }
    if let Some(lac) = n.lac {
        parts.push(format!("LAC {lac}"));
    }
    if let Some(cell) = n.cell_id {
        parts.push(format!("cell {cell}"));
    }
    if let Some(signal) = n.signal {
        parts.push(format!("signal {signal}/5"));
    }
    format!("Serving cell: {}", parts.join(" · "))
}

fn ack_line(p: &PacketJson) -> Html {
    match (&p.ack, p.kind) {
        (Some(ack), PacketKind::Imei) => {
            html! { <p class="ack">{ "Server answers " }<code class="ack-hex">{ ack }</code>{ " to accept this device (00 rejects it)." }</p> }
        }
        (Some(ack), _) => {
            html! { <p class="ack">{ "Server must answer " }<code class="ack-hex">{ ack }</code>
            { if p.transport == TransportKind::Udp { " (length 5, packet id, 01, AVL packet id, records accepted)" } else { " (number of records accepted, 4 bytes)" } }</p> }
        }
        (None, PacketKind::Command) => {
            html! { <p class="ack">{ "No ack: command codecs are never acknowledged." }</p> }
        }
        (None, PacketKind::KeepAlive) => html! { <p class="ack">{ "No answer: keep-alive." }</p> },
        (None, _) => {
            html! { <p class="ack">{ "No ack: a bare AVL data array has no transport to answer on." }</p> }
        }
    }
}

fn summary(p: &PacketJson, i: usize) -> String {
    let mut parts = vec![format!("Packet {}", i + 1)];
    parts.push(
        match p.kind {
            PacketKind::Avl => "AVL data",
            PacketKind::Imei => "IMEI login",
            PacketKind::Command => "Command",
            PacketKind::KeepAlive => "Keep-alive",
        }
        .into(),
    );
    if let Some(c) = p.codec {
        parts.push(format!("Codec {c}"));
    }
    parts.push(p.transport.as_str().to_uppercase());
    if let Some(imei) = &p.imei {
        parts.push(format!("IMEI {imei}"));
    }
    if let Some(r) = &p.records {
        parts.push(format!(
            "{} record{}",
            r.len(),
            if r.len() == 1 { "" } else { "s" }
        ));
    }
    if let Some(c) = &p.crc {
        parts.push(if c.ok {
            format!("CRC 0x{:04x} ok", c.computed)
        } else {
            format!(
                "CRC received 0x{:04x}, computed 0x{:04x}",
                c.received, c.computed
            )
        });
    }
    if let Some(u) = &p.udp {
        parts.push(format!(
            "packet id 0x{:04x}, AVL packet id 0x{:02x}",
            u.packet_id, u.avl_packet_id
        ));
    }
    parts.push(format!("bytes {}–{}", p.offset, p.offset + p.length - 1));
    parts.join(" · ")
}

fn event_text(r: &RecordJson, model: Option<&str>) -> String {
    if r.event_id == 0 {
        return "—".into();
    }
    match fleetview::io_catalog::lookup(r.event_id, model) {
        Some(i) => format!("{} ({})", i.name, r.event_id),
        None => r.event_id.to_string(),
    }
}

#[function_component(RecordsTable)]
pub fn records_table(props: &RecordsTableProps) -> Html {
    let a = &props.analysis;
    let model = props.model.as_deref();
    let row = |pi: usize, ri: usize, r: &RecordJson| {
        let selected = props.selected == Selection::Record(pi, ri as u32);
        let onclick = {
            let d = props.dispatch.clone();
            Callback::from(move |_| d.dispatch(Action::SelectRecord(pi, ri as u32)))
        };
        let priority = fleetview::Priority(r.priority).name().unwrap_or("?");
        html! {
            <tr class={classes!("record", selected.then_some("selected"), (!r.valid).then_some("nofix"))}
                data-packet={pi.to_string()} data-record={ri.to_string()} {onclick}>
                <td>{ ri + 1 }</td>
                <td class="time">{ &r.time }</td>
                if r.valid {
                    <td class="num">{ format!("{:.7}", r.latitude) }</td>
                    <td class="num">{ format!("{:.7}", r.longitude) }</td>
                } else {
                    <td colspan="2" class="nofix-note" title={format!("{:.7}, {:.7}", r.latitude, r.longitude)}>{ "no fix — not on the map" }</td>
                }
                <td class="num">{ format!("{} m", r.altitude) }</td>
                <td class="num">{ format!("{}°", r.angle) }</td>
                <td class="num">{ format!("{} km/h", r.speed) }</td>
                <td class="num">{ r.satellites }</td>
                <td>{ format!("{} ({priority})", r.priority) }</td>
                <td>{ event_text(r, model) }
                    if let Some(g) = r.generation_type {
                        <div class="sub">{ format!("generation: {}", fleetview::GenerationType(g).name().unwrap_or("?")) }</div>
                    }
                </td>
                <td class="io">
                    { for r.io.iter().map(io_cell) }
                    if let Some(n) = &r.network {
                        <div class="cell">{ cell_text(n) }</div>
                    }
                </td>
            </tr>
        }
    };
    html! {
        <section class="packets" id="packets">
            { for a.json.iter().enumerate().map(|(pi, p)| html! {
                <article class="packet" data-kind={p.kind.as_str()} data-codec={p.codec.unwrap_or("")}>
                    <h3>{ summary(p, pi) }</h3>
                    { ack_line(p) }
                    if !p.warnings.is_empty() {
                        <ul class="warnings">
                            { for p.warnings.iter().map(|w| html! { <li>{ format!("⚠ {}", w.message) }</li> }) }
                        </ul>
                    }
                    if let Some(records) = &p.records {
                        <div class="scroll">
                        <table class="records">
                            <thead><tr>
                                <th>{ "#" }</th><th>{ "Time (UTC)" }</th><th>{ "Latitude" }</th><th>{ "Longitude" }</th>
                                <th>{ "Altitude" }</th><th>{ "Angle" }</th><th>{ "Speed" }</th><th>{ "Sats" }</th>
                                <th>{ "Priority" }</th><th>{ "Event" }</th><th>{ "IO elements" }</th>
                            </tr></thead>
                            <tbody>{ for records.iter().enumerate().map(|(ri, r)| row(pi, ri, r)) }</tbody>
                        </table>
                        </div>
                    }
                    if let Some(messages) = &p.messages {
                        <table class="messages">
                            <thead><tr><th>{ "#" }</th><th>{ "Type" }</th><th>{ "Text" }</th><th>{ "IMEI" }</th><th>{ "Timestamp" }</th></tr></thead>
                            <tbody>{ for messages.iter().enumerate().map(|(mi, m)| html! {
                                <tr class="message">
                                    <td>{ mi + 1 }</td>
                                    <td>{ fleetview::MessageType(m.kind).to_string() }</td>
                                    <td class="text">{ m.text.clone().unwrap_or_else(|| format!("0x{}", m.payload_hex)) }</td>
                                    <td>{ m.imei.clone().unwrap_or_else(|| "—".into()) }</td>
                                    <td>{ m.timestamp_s.map(|t| fleetview::time::iso8601(u64::from(t) * 1000)).unwrap_or_else(|| "—".into()) }</td>
                                </tr>
                            }) }</tbody>
                        </table>
                    }
                </article>
            }) }
        </section>
    }
}
