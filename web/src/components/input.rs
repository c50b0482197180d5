//! The input: a text area that decodes as you type (hex with spaces, newlines, `0x`, commas), a
//! file picker and drop zone for binary captures, the strict/lenient toggle and the device model.

use wasm_bindgen_futures::JsFuture;
use web_sys::{File, HtmlInputElement, HtmlSelectElement, HtmlTextAreaElement};
use yew::prelude::*;

use crate::analysis::ErrorView;
use crate::state::{Action, Source, State};

/// Largest capture read from a file: a day of one device's traffic is far below this.
const MAX_FILE: f64 = 4.0 * 1024.0 * 1024.0;

#[derive(Properties, PartialEq)]
pub struct InputProps {
    pub text: String,
    pub source: Source,
    pub lenient: bool,
    pub model: Option<String>,
    pub input_error: Option<ErrorView>,
    pub dispatch: UseReducerDispatcher<State>,
}

/// A capture (pcap/pcapng magic number) goes to the capture view, read in slices; anything else
/// is read whole as a binary packet (or several).
fn read_file(file: File, dispatch: UseReducerDispatcher<State>) {
    wasm_bindgen_futures::spawn_local(async move {
        if fleetview::capture::file::is_capture(&crate::capture::head(&file).await) {
            read_capture(file, dispatch).await;
        } else {
            read_packet_file(file, dispatch);
        }
    });
}

async fn read_capture(file: File, dispatch: UseReducerDispatcher<State>) {
    if file.size() > crate::capture::MAX_CAPTURE {
        dispatch.dispatch(Action::FileError(format!(
            "{}: {} bytes is more than the 256 MiB of capture the playground reads (fleetview pcap reads any size)",
            file.name(),
            file.size()
        )));
        return;
    }
    let view = crate::capture::read(file).await;
    let view = crate::capture::SharedCapture(std::rc::Rc::new(view));
    dispatch.dispatch(Action::SetCapture(view));
}

fn read_packet_file(file: File, dispatch: UseReducerDispatcher<State>) {
    let name = file.name();
    if file.size() > MAX_FILE {
        dispatch.dispatch(Action::FileError(format!(
            "{name}: {} bytes is more than the 4 MiB the playground reads",
            file.size()
        )));
        return;
    }
    wasm_bindgen_futures::spawn_local(async move {
        match JsFuture::from(file.array_buffer()).await {
            Ok(buf) => {
                let bytes = js_sys::Uint8Array::new(&buf).to_vec();
                dispatch.dispatch(Action::SetFile { name, bytes });
            }
            Err(_) => dispatch.dispatch(Action::FileError(format!("{name}: could not be read"))),
        }
    });
}

#[function_component(Input)]
pub fn input(props: &InputProps) -> Html {
    let dragging = use_state(|| false);
    let oninput = {
        let d = props.dispatch.clone();
        Callback::from(move |e: InputEvent| {
            if let Some(t) = e.target_dyn_into::<HtmlTextAreaElement>() {
                d.dispatch(Action::SetText(t.value()));
            }
        })
    };
    let onfile = {
        let d = props.dispatch.clone();
        Callback::from(move |e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            if let Some(file) = input.files().and_then(|f| f.get(0)) {
                read_file(file, d.clone());
            }
            input.set_value("");
        })
    };
    let ondrop = {
        let d = props.dispatch.clone();
        let dragging = dragging.clone();
        Callback::from(move |e: DragEvent| {
            e.prevent_default();
            dragging.set(false);
            if let Some(file) = e
                .data_transfer()
                .and_then(|t| t.files())
                .and_then(|f| f.get(0))
            {
                read_file(file, d.clone());
            }
        })
    };
    let ondragover = {
        let dragging = dragging.clone();
        Callback::from(move |e: DragEvent| {
            e.prevent_default();
            dragging.set(true);
        })
    };
    let ondragleave = {
        let dragging = dragging.clone();
        Callback::from(move |_: DragEvent| dragging.set(false))
    };
    let onlenient = {
        let d = props.dispatch.clone();
        Callback::from(move |e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            d.dispatch(Action::SetLenient(input.checked()));
        })
    };
    let onmodel = {
        let d = props.dispatch.clone();
        Callback::from(move |e: Event| {
            let s: HtmlSelectElement = e.target_unchecked_into();
            let v = s.value();
            d.dispatch(Action::SetModel((!v.is_empty()).then_some(v)));
        })
    };
    let source = match &props.source {
        Source::Text => html! {},
        Source::File(name) => html! { <span class="source">{ format!("from {name}") }</span> },
    };
    let models = fleetview::io_catalog::models();
    html! {
        <section class={classes!("input", (*dragging).then_some("dragging"))}
            {ondrop} {ondragover} {ondragleave}>
            <label class="title" for="packet">{ "Packet (hex) " }{ source }</label>
            <textarea id="packet" spellcheck="false" autocomplete="off" rows="7"
                placeholder="Paste a Teltonika packet as hex — spaces, newlines, 0x prefixes and commas are fine — or drop a binary packet or a .pcap/.pcapng capture here"
                value={props.text.clone()} {oninput} />
            if let Some(e) = &props.input_error {
                <p class="input-error" role="alert">{ &e.message }</p>
            }
            <div class="options">
                <label class="file">
                    { "Open capture…" }
                    <input type="file" id="file" accept=".pcap,.pcapng,.cap,.bin,application/vnd.tcpdump.pcap,application/octet-stream" onchange={onfile} />
                </label>
                <label title="Accept CRC, length and count inconsistencies that real devices and published examples contain; each is listed as a warning">
                    <input type="checkbox" id="lenient" checked={props.lenient} onchange={onlenient} />
                    { " Lenient" }
                </label>
                <label>
                    { "Device model " }
                    <select id="model" onchange={onmodel}>
                        <option value="" selected={props.model.is_none()}>{ "any (FMB defaults)" }</option>
                        { for models.iter().map(|m| html! {
                            <option value={*m} selected={props.model.as_deref() == Some(*m)}>{ *m }</option>
                        }) }
                    </select>
                </label>
            </div>
        </section>
    }
}
