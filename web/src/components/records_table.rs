//! The decoded packets: a summary per packet with the exact ack a server must send, the records
//! (UTC time, coordinates, speed, satellites, priority, event, IO with names, values and units),
//! command messages, and warnings.

use std::rc::Rc;

use fleetview::json::{IoJson, PacketJson, RecordJson};
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

fn ack_line(p: &PacketJson) -> Html {
    match (&p.ack, p.kind) {
        (Some(ack), "imei") => {
            html! { <p class="ack">{ "Server answers " }<code class="ack-hex">{ ack }</code>{ " to accept this device (00 rejects it)." }</p> }
        }
        (Some(ack), _) => {
            html! { <p class="ack">{ "Server must answer " }<code class="ack-hex">{ ack }</code>
            { if p.transport == "udp" { " (length 5, packet id, 01, AVL packet id, records accepted)" } else { " (number of records accepted, 4 bytes)" } }</p> }
        }
        (None, "command") => {
            html! { <p class="ack">{ "No ack: command codecs are never acknowledged." }</p> }
        }
        (None, "keepalive") => html! { <p class="ack">{ "No answer: keep-alive." }</p> },
        (None, _) => {
            html! { <p class="ack">{ "No ack: a bare AVL data array has no transport to answer on." }</p> }
        }
    }
}

fn summary(p: &PacketJson, i: usize) -> String {
    let mut parts = vec![format!("Packet {}", i + 1)];
    parts.push(match p.kind {
        "avl" => "AVL data".into(),
        "imei" => "IMEI login".into(),
        "command" => "Command".into(),
        "keepalive" => "Keep-alive".into(),
        k => k.into(),
    });
    if let Some(c) = p.codec {
        parts.push(format!("Codec {c}"));
    }
    parts.push(p.transport.to_uppercase());
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
                <td class="io">{ for r.io.iter().map(|io| html! { <div>{ io_text(io) }</div> }) }</td>
            </tr>
        }
    };
    html! {
        <section class="packets" id="packets">
            { for a.json.iter().enumerate().map(|(pi, p)| html! {
                <article class="packet" data-kind={p.kind} data-codec={p.codec.unwrap_or("")}>
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
