//! The live view (served by `fleetview serve`): device list, moving markers and tracks, the
//! selected device's fuel chart with refuel/drain events, and commands. Without the HTTP API it
//! says so plainly; the playground keeps working.

use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{EventSource, HtmlInputElement, HtmlSelectElement, MessageEvent};
use yew::prelude::*;

use crate::components::fuel_chart::FuelChart;
use crate::components::map::{MapMode, MapView};
use crate::components::reports_panel::ReportsPanel;
use crate::live::api::{self, Command, Device, FuelEvent};
use crate::live::state::{LiveAction, LiveState, Status};
use fleetview::api::{DeviceEvent, RecordsEvent};
use serde::de::IgnoredAny;

fn fmt_time(ms: u64) -> String {
    fleetview::time::iso8601(ms)
        .replace('T', " ")
        .trim_end_matches(".000Z")
        .to_string()
        + " UTC"
}

/// Turn one SSE message into an action (unknown events and bad JSON are ignored).
fn sse_action(name: &str, data: &str) -> Option<LiveAction> {
    let v: serde_json::Value = serde_json::from_str(data).ok()?;
    let name = if name == "message" {
        v["type"].as_str()?.to_string()
    } else {
        name.to_string()
    };
    let imei = v["imei"].as_str().unwrap_or_default().to_string();
    match name.as_str() {
        "records" => Some(LiveAction::Records {
            imei,
            records: serde_json::from_value::<RecordsEvent<IgnoredAny>>(v)
                .ok()?
                .records,
        }),
        "device" => Some(LiveAction::DeviceUpdate(Device::from(
            serde_json::from_value::<DeviceEvent>(v).ok()?,
        ))),
        "fuel" => Some(LiveAction::FuelEvent {
            imei,
            event: serde_json::from_value::<FuelEvent>(v["event"].clone()).ok()?,
        }),
        "command" => Some(LiveAction::CommandUpdate(
            serde_json::from_value::<Command>(v).ok()?,
        )),
        "geofence" => Some(LiveAction::GeofenceEvent { imei }),
        _ => None,
    }
}

/// The open event stream; closed when dropped.
struct Stream {
    source: EventSource,
    _listeners: Vec<Closure<dyn FnMut(Event)>>,
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.source.close();
    }
}

fn open_stream(dispatch: UseReducerDispatcher<LiveState>, reprobe: Callback<()>) -> Option<Stream> {
    let source = EventSource::new(&api::live_url()).ok()?;
    let mut listeners = Vec::new();
    for name in [
        "records", "device", "fuel", "command", "geofence", "message",
    ] {
        let d = dispatch.clone();
        let cb = Closure::<dyn FnMut(Event)>::new(move |e: Event| {
            let data = e
                .dyn_ref::<MessageEvent>()
                .and_then(|m| m.data().as_string())
                .unwrap_or_default();
            if let Some(a) = sse_action(name, &data) {
                d.dispatch(a);
            }
        });
        let _ = source.add_event_listener_with_callback(name, cb.as_ref().unchecked_ref());
        listeners.push(cb);
    }
    let d = dispatch.clone();
    let onopen = Closure::<dyn FnMut(Event)>::new(move |_| {
        d.dispatch(LiveAction::StreamOpen);
        reprobe.emit(());
    });
    let _ = source.add_event_listener_with_callback("open", onopen.as_ref().unchecked_ref());
    listeners.push(onopen);
    let onerror =
        Closure::<dyn FnMut(Event)>::new(move |_| dispatch.dispatch(LiveAction::StreamError));
    let _ = source.add_event_listener_with_callback("error", onerror.as_ref().unchecked_ref());
    listeners.push(onerror);
    Some(Stream {
        source,
        _listeners: listeners,
    })
}

fn probe(dispatch: UseReducerDispatcher<LiveState>) {
    wasm_bindgen_futures::spawn_local(async move {
        dispatch.dispatch(LiveAction::Devices(api::devices().await));
    });
}

/// Poll a command until the device answered (or ~2 minutes passed).
fn poll_command(id: String, dispatch: UseReducerDispatcher<LiveState>) {
    wasm_bindgen_futures::spawn_local(async move {
        for _ in 0..120 {
            gloo_timers::future::TimeoutFuture::new(1_000).await;
            match api::command(&id).await {
                Ok(c) => {
                    let done = !c.pending();
                    dispatch.dispatch(LiveAction::CommandUpdate(c));
                    if done {
                        break;
                    }
                }
                Err(e) => {
                    dispatch.dispatch(LiveAction::Error(format!("command {id}: {e}")));
                    break;
                }
            }
        }
    });
}

fn devices_json(state: &LiveState) -> String {
    let list: Vec<serde_json::Value> = state
        .devices
        .values()
        .filter_map(|d| {
            let p = d.position()?;
            let mut lines = vec![
                fmt_time(p.record.timestamp_ms),
                format!("{} km/h · {}° · {} satellites", p.record.speed, p.record.angle, p.record.satellites),
            ];
            if let Some(n) = &p.record.network {
                lines.push(crate::components::records_table::cell_text(n));
            }
            Some(serde_json::json!({
                "key": d.info.imei,
                "lat": p.record.latitude, "lon": p.record.longitude,
                "title": format!("IMEI {}", d.info.imei),
                "lines": lines,
                "track": d.track.iter().map(|q| [q.record.latitude, q.record.longitude]).collect::<Vec<_>>(),
                "selected": state.selected.as_deref() == Some(d.info.imei.as_str()),
            }))
        })
        .collect();
    serde_json::Value::Array(list).to_string()
}

#[function_component(LiveView)]
pub fn live_view() -> Html {
    let state = use_reducer(LiveState::default);
    let reprobe = {
        let d = state.dispatcher();
        Callback::from(move |_: ()| probe(d.clone()))
    };
    {
        let d = state.dispatcher();
        use_effect_with((), move |_| probe(d));
    }
    let streaming = matches!(state.status, Status::Live | Status::Reconnecting);
    {
        let d = state.dispatcher();
        let reprobe = reprobe.clone();
        use_effect_with(streaming, move |on| {
            let stream = if *on { open_stream(d, reprobe) } else { None };
            move || drop(stream)
        });
    }
    {
        let d = state.dispatcher();
        use_effect_with(state.selected.clone(), move |sel| {
            if let Some(imei) = sel.clone() {
                wasm_bindgen_futures::spawn_local(async move {
                    match api::positions(&imei).await {
                        Ok(p) => d.dispatch(LiveAction::Track(imei.clone(), p)),
                        Err(e) => {
                            d.dispatch(LiveAction::Error(format!("positions of {imei}: {e}")))
                        }
                    }
                    match api::fuel(&imei).await {
                        Ok(f) => d.dispatch(LiveAction::FuelLoaded(imei.clone(), f)),
                        Err(e) => d.dispatch(LiveAction::Error(format!("fuel of {imei}: {e}"))),
                    }
                });
            }
        });
    }
    let banner = match &state.status {
        Status::Probing => {
            html! { <p class="live-status">{ "Looking for a Fleetview server…" }</p> }
        }
        Status::NoServer(why) => html! {
            <div class="live-status no-server" id="no-server" role="status">
                <h2>{ "No Fleetview server at this address" }</h2>
                <p>{ "The live view needs the HTTP API of " }<code>{ "fleetview serve" }</code>
                   { ", which serves this same page at http://127.0.0.1:8080/ with devices, positions, fuel and commands. The playground works without it." }</p>
                <p class="why">{ why }</p>
            </div>
        },
        Status::NeedToken => html! { <TokenForm on_token={reprobe.clone()} /> },
        Status::Live => {
            html! { <p class="live-status ok">{ format!("● Live · {} devices", state.devices.len()) }</p> }
        }
        Status::Reconnecting => {
            html! { <p class="live-status warn">{ "Connection lost, reconnecting…" }</p> }
        }
    };
    if !streaming {
        return html! { <section class="live" id="live">{ banner }</section> };
    }
    let select = |imei: String| {
        let d = state.dispatcher();
        Callback::from(move |_: MouseEvent| d.dispatch(LiveAction::Select(imei.clone())))
    };
    let selected = state
        .selected
        .clone()
        .and_then(|i| state.devices.get(&i).cloned());
    html! {
        <section class="live" id="live">
            { banner }
            <div class="live-grid">
                <ul class="devices" id="devices">
                    if state.devices.is_empty() {
                        <li class="empty">{ "No device has connected yet." }</li>
                    }
                    { for state.devices.values().map(|d| {
                        let sel = state.selected.as_deref() == Some(d.info.imei.as_str());
                        let p = d.position();
                        html! {
                            <li class={classes!("device", sel.then_some("selected"))} data-imei={d.info.imei.clone()}
                                onclick={select(d.info.imei.clone())}>
                                <span class={classes!("dot", match d.info.connected { Some(true) => "on", Some(false) => "off", None => "unknown" })}></span>
                                <b>{ &d.info.imei }</b>
                                <div class="sub">{ match p {
                                    Some(p) => format!("{} · {} km/h", fmt_time(p.record.timestamp_ms), p.record.speed),
                                    None => "no position yet".to_string(),
                                } }</div>
                            </li>
                        }
                    }) }
                </ul>
                <MapView id="live-map" mode={MapMode::Devices} json={AttrValue::from(devices_json(&state))} fit={state.fit} />
            </div>
            if let Some(d) = selected.clone() {
                <ReportsPanel imei={d.info.imei.clone()} last_ms={d.position().map(|p| p.record.timestamp_ms as i64)} tick={state.report_tick} />
            }
            if let Some(d) = selected {
                <div class="device-panels">
                    <FuelChart imei={d.info.imei.clone()} fuel={state.fuel.clone().map(Rc::new)} />
                    <CommandPanel imei={d.info.imei.clone()} commands={state.commands.iter().filter(|c| c.imei == d.info.imei || c.imei.is_empty()).cloned().collect::<Vec<_>>()} dispatch={state.dispatcher()} />
                </div>
            }
            if let Some(e) = &state.error {
                <p class="input-error">{ e }</p>
            }
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct TokenFormProps {
    on_token: Callback<()>,
}

#[function_component(TokenForm)]
fn token_form(props: &TokenFormProps) -> Html {
    let token = use_node_ref();
    let onsubmit = {
        let input = token.clone();
        let on_token = props.on_token.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if let Some(i) = input.cast::<HtmlInputElement>() {
                api::set_token(i.value().trim());
                on_token.emit(());
            }
        })
    };
    html! {
        <form class="live-status warn" {onsubmit}>
            <p>{ "This server requires a bearer token (started with --token)." }</p>
            <input type="password" ref={token} placeholder="token" />
            <button type="submit">{ "Connect" }</button>
        </form>
    }
}

#[derive(Properties, PartialEq)]
struct CommandPanelProps {
    imei: String,
    commands: Vec<Command>,
    dispatch: UseReducerDispatcher<LiveState>,
}

#[function_component(CommandPanel)]
fn command_panel(props: &CommandPanelProps) -> Html {
    let text = use_state(|| "getinfo".to_string());
    let codec = use_state(|| "12".to_string());
    let on_text = {
        let text = text.clone();
        Callback::from(move |e: InputEvent| {
            text.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let on_codec = {
        let codec = codec.clone();
        Callback::from(move |e: Event| {
            codec.set(e.target_unchecked_into::<HtmlSelectElement>().value())
        })
    };
    let onsubmit = {
        let (text, codec, imei, d) = (
            text.clone(),
            codec.clone(),
            props.imei.clone(),
            props.dispatch.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let (t, c, imei, d) = ((*text).clone(), (*codec).clone(), imei.clone(), d.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::send_command(&imei, &t, &c).await {
                    Ok(cmd) => {
                        let id = cmd.id.to_string();
                        let pending = cmd.pending();
                        d.dispatch(LiveAction::CommandUpdate(cmd));
                        if pending {
                            poll_command(id, d);
                        }
                    }
                    Err(e) => d.dispatch(LiveAction::Error(format!("command to {imei}: {e}"))),
                }
            });
        })
    };
    html! {
        <div class="commands">
            <h3>{ format!("Commands to {}", props.imei) }</h3>
            <form class="row" {onsubmit}>
                <select onchange={on_codec}>
                    <option value="12" selected={*codec == "12"}>{ "Codec 12" }</option>
                    <option value="14" selected={*codec == "14"}>{ "Codec 14" }</option>
                </select>
                <input type="text" value={(*text).clone()} oninput={on_text} />
                <button type="submit">{ "Send" }</button>
            </form>
            <ul>
                { for props.commands.iter().map(|c| html! {
                    <li class={classes!("command", c.status.clone())}>
                        <code>{ c.text.clone().or_else(|| c.hex.clone()).unwrap_or_default() }</code>
                        { format!(" · {}", c.status) }
                        if let Some(r) = &c.response {
                            <div class="response">{ r.text.clone().unwrap_or_else(|| r.payload_hex.clone()) }</div>
                        }
                        if let Some(e) = &c.error {
                            <div class="input-error">{ e }</div>
                        }
                    </li>
                }) }
            </ul>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_messages_become_actions() {
        let a = sse_action(
            "records",
            r#"{"imei":"1","records":[{"timestamp_ms":1,"latitude":1,"longitude":2,"satellites":3,"valid":true}]}"#,
        );
        assert!(matches!(a, Some(LiveAction::Records { ref records, .. }) if records.len() == 1));
        let a = sse_action(
            "message",
            r#"{"type":"device","imei":"1","connected":true}"#,
        );
        assert!(matches!(a, Some(LiveAction::DeviceUpdate(ref d)) if d.connected == Some(true)));
        assert!(sse_action("records", "not json").is_none());
        assert!(sse_action("other", "{}").is_none());
    }
}
