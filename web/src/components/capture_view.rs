//! A capture's device sessions: one collapsible block per session with its problems and its
//! timeline (device packets, server replies, problems in capture order). A device packet opens
//! in the annotated hex view above the records table, like a pasted packet.

use fleetview::capture::{SessionReport, SessionTransport, TimelineEntry};
use yew::prelude::*;

use crate::capture::SharedCapture;
use crate::state::{Action, State};

/// Sessions rendered at most (the rest are counted): keeps the page light for large captures.
const SESSIONS_SHOWN: usize = 300;

#[derive(Properties, PartialEq)]
pub struct CaptureProps {
    pub capture: SharedCapture,
    /// The packet open in the hex view: session index, packet index.
    pub opened: Option<(usize, usize)>,
    pub dispatch: UseReducerDispatcher<State>,
}

fn time_of(ns: u64) -> String {
    let t = fleetview::capture::report::iso8601_us(ns);
    t[11..t.len() - 1].to_string()
}

fn session_view(
    si: usize,
    s: &SessionReport,
    opened: Option<(usize, usize)>,
    dispatch: &UseReducerDispatcher<State>,
) -> Html {
    let transport = match s.transport {
        SessionTransport::Tcp => "TCP",
        SessionTransport::Udp => "UDP",
    };
    let open_button = |pi: usize, label: String| {
        let d = dispatch.clone();
        let current = opened == Some((si, pi));
        html! {
            <button class={classes!("open-packet", current.then_some("current"))} data-packet={pi.to_string()}
                onclick={Callback::from(move |_| d.dispatch(Action::OpenCapturePacket(si, pi)))}>{ label }</button>
        }
    };
    let problems = s.problems.iter().map(|p| {
        html! {
            <li class="problem" data-kind={p.kind.code()}>
                <b>{ p.kind.code() }</b>{ " " }{ &p.message }
                if let Some(pi) = p.packet { { " " }{ open_button(pi, format!("packet [{pi}]")) } }
            </li>
        }
    });
    let rows = s.timeline().into_iter().map(|e| {
        let (time, frame, who, open, text) = match e {
            TimelineEntry::Device(i) => {
                let p = &s.packets[i];
                (p.time_ns, p.frame, "device", Some(i), p.summary())
            }
            TimelineEntry::Server(i) => {
                let r = &s.replies[i];
                let text = format!("{} {}", fleetview::hex::encode(&r.hex), r.meaning);
                (r.time_ns, r.frame, "server", None, text)
            }
            TimelineEntry::Problem(i) => {
                let p = &s.problems[i];
                (
                    p.time,
                    p.frame,
                    "problem",
                    None,
                    format!("{}: {}", p.kind.code(), p.message),
                )
            }
        };
        html! {
            <tr class={who}>
                <td>{ time_of(time) }</td><td>{ format!("#{frame}") }</td><td>{ who }</td>
                <td>{ for open.map(|i| open_button(i, format!("[{i}]"))) }{ " " }{ text }</td>
            </tr>
        }
    });
    let summary = format!(
        "#{} {transport} {} → {} · IMEI {} · {} packets",
        s.id,
        s.device,
        s.server,
        s.imei.as_deref().unwrap_or("unknown"),
        s.packets.len()
    );
    let count = s.problems.len();
    html! {
        <details class={classes!("session", (count > 0).then_some("has-problems"))} data-session={si.to_string()}
            open={count > 0 && si < 10 || opened.is_some_and(|(o, _)| o == si)}>
            <summary>
                { summary }
                <span class="problem-count">{ if count == 0 { "no problems".to_string() } else { format!("{count} problem{}", if count == 1 { "" } else { "s" }) } }</span>
            </summary>
            if count > 0 { <ul class="problems">{ for problems }</ul> }
            <div class="scroll">
                <table class="capture-timeline"><tbody>{ for rows }</tbody></table>
            </div>
        </details>
    }
}

#[function_component(CapturePanel)]
pub fn capture_panel(props: &CaptureProps) -> Html {
    let c = &props.capture;
    let close = {
        let d = props.dispatch.clone();
        Callback::from(move |_| d.dispatch(Action::CloseCapture))
    };
    let hidden = c.sessions.len().saturating_sub(SESSIONS_SHOWN);
    html! {
        <section class="capture" id="capture">
            <h2>
                { format!("{}: {} session{}, {} with problems", c.name, c.sessions.len(),
                    if c.sessions.len() == 1 { "" } else { "s" }, c.with_problems()) }
                <span class="sub">{ format!(" · {} packets, {} bytes, {}", c.stats.frames, c.stats.bytes, c.stats.format.unwrap_or("?")) }</span>
                <button class="close" onclick={close}>{ "Close" }</button>
            </h2>
            if let Some(e) = &c.error { <p class="error" role="alert">{ e }</p> }
            if c.sessions.is_empty() {
                <p class="note">{ "No Teltonika session in this capture (devices are recognised on port 5027, or by their login or datagrams)." }</p>
            }
            { for c.sessions.iter().take(SESSIONS_SHOWN).enumerate().map(|(i, s)| session_view(i, s, props.opened, &props.dispatch)) }
            if hidden > 0 { <p class="note">{ format!("{hidden} more sessions not shown; `fleetview pcap` lists them all.") }</p> }
        </section>
    }
}
