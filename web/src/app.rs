//! The page: header with tabs and the examples menu, the playground (input, annotated hex,
//! records, map, command builder) and the live view.

use yew::prelude::*;

use crate::components::capture_view::CapturePanel;
use crate::components::command_builder::CommandBuilder;
use crate::components::examples_menu::ExamplesMenu;
use crate::components::field_detail::FieldDetail;
use crate::components::hex_view::HexView;
use crate::components::input::Input;
use crate::components::live_view::LiveView;
use crate::components::map::{points_json, MapMode, MapView};
use crate::components::records_table::RecordsTable;
use crate::components::share_bar::ShareBar;
use crate::state::{Action, Selection, Source, State, Tab};
use crate::{js, live, url};

/// Hex text longer than this stays out of the URL (browsers cap URL length).
const URL_HEX_LIMIT: usize = 64 * 1024;

/// The capture view, when a capture is open.
fn capture_panel(state: &State, dispatch: &UseReducerDispatcher<State>) -> Html {
    match &state.capture {
        Some(capture) => html! {
            <CapturePanel capture={capture.clone()} opened={state.opened} dispatch={dispatch.clone()} />
        },
        None => html! {},
    }
}

#[function_component(App)]
pub fn app() -> Html {
    let fragment = use_memo((), |_| url::current());
    let state = use_reducer({
        let f = (*fragment).clone();
        move || State::initial(&f)
    });
    let dispatch = state.dispatcher();

    // Keep the URL shareable: the packet and options in the fragment.
    use_effect_with(
        (
            state.text.clone(),
            state.lenient,
            state.model.clone(),
            state.tab,
            state.source.clone(),
        ),
        |(text, lenient, model, tab, source)| {
            let hex =
                (!text.trim().is_empty() && text.len() <= URL_HEX_LIMIT && *source == Source::Text
                    || matches!(source, Source::File(_))
                        && text.len() <= URL_HEX_LIMIT
                        && !text.is_empty())
                .then(|| text.clone());
            url::replace(&url::Fragment {
                hex,
                lenient: *lenient,
                model: model.clone(),
                live: *tab == Tab::Live,
            });
        },
    );

    // Time to first decode on screen, for the e2e test's figure (and the curious: see the console).
    use_effect_with((), |_| {
        let ms = js::now_ms();
        if let Some(body) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.body())
        {
            let _ = body.set_attribute("data-first-render-ms", &format!("{ms:.0}"));
        }
        web_sys::console::log_1(
            &format!("fleetview: first decode on screen {ms:.0} ms after navigation start").into(),
        );
    });

    // Served by `fleetview serve`? Then open on the live view unless the URL carries a packet.
    {
        let dispatch = dispatch.clone();
        let has_packet = fragment.hex.is_some();
        use_effect_with((), move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                if !has_packet && live::api::devices().await.is_ok() {
                    dispatch.dispatch(Action::SetTab(Tab::Live));
                }
            });
        });
    }

    let tab = |t: Tab, label: &str, id: &str| {
        let d = dispatch.clone();
        html! {
            <button id={id.to_string()} class={classes!("tab", (state.tab == t).then_some("active"))}
                onclick={Callback::from(move |_| d.dispatch(Action::SetTab(t)))}>{ label.to_string() }</button>
        }
    };
    let a = state.analysis.clone();
    let focus = match state.selected {
        Selection::Record(p, r) => Some(AttrValue::from(format!("p{p}-r{r}"))),
        _ => None,
    };
    let points = use_memo(a.clone(), |a| AttrValue::from(points_json(a)));
    let error_banner = a.error.as_ref().map(|e| {
        let d = dispatch.clone();
        html! {
            <div class="error" id="error" role="alert">
                <b>{ format!("{} ", e.kind) }</b>{ &e.message }
                <button onclick={Callback::from(move |_| d.dispatch(Action::SelectError))}>{ format!("Show byte {}", e.offset) }</button>
                if !state.lenient && e.lenient_recovers {
                    <span class="hint">{ " Tick Lenient to decode it anyway." }</span>
                }
            </div>
        }
    });
    html! {
        <>
        <header>
            <h1>{ "Fleetview" }<span class="tagline">{ " · every byte of a Teltonika packet, explained" }</span></h1>
            <nav>
                { tab(Tab::Playground, "Playground", "tab-playground") }
                { tab(Tab::Live, "Live", "tab-live") }
            </nav>
            <ExamplesMenu current={state.example} dispatch={dispatch.clone()} />
        </header>
        if state.tab == Tab::Live {
            <main><LiveView /></main>
        } else {
            <main class="playground">
                <div class="top">
                    <div class="left">
                        <Input text={state.text.clone()} source={state.source.clone()} lenient={state.lenient}
                            model={state.model.clone()} input_error={a.input_error.clone()} dispatch={dispatch.clone()} />
                        <CommandBuilder dispatch={dispatch.clone()} />
                    </div>
                    <MapView id="map" mode={MapMode::Points} json={(*points).clone()} {focus} />
                </div>
                { capture_panel(&state, &dispatch) }
                { for error_banner }
                if a.is_empty() {
                    <p class="note">{ "Paste a packet above or pick one from the Examples menu." }</p>
                } else if a.input_error.is_none() {
                    <ShareBar analysis={a.clone()} model={state.model.clone()} />
                    <div class="bytes">
                        <HexView analysis={a.clone()} segments={state.segments.clone()} selected={state.selected} dispatch={dispatch.clone()} />
                        <FieldDetail analysis={a.clone()} segments={state.segments.clone()} focused={state.focused_segment()} model={state.model.clone()} />
                    </div>
                    <RecordsTable analysis={a.clone()} selected={state.selected} model={state.model.clone()} dispatch={dispatch.clone()} />
                }
            </main>
        }
        <footer>
            { "Fleetview · decoding runs in your browser (WebAssembly); nothing is uploaded. Map data © OpenStreetMap contributors, Natural Earth." }
        </footer>
        </>
    }
}
