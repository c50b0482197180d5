//! Share and export: copy a link with the packet in the fragment, copy the JSON model, download
//! the records as GeoJSON.

use std::rc::Rc;

use yew::prelude::*;

use crate::analysis::Analysis;
use crate::js;

#[derive(Properties, PartialEq)]
pub struct ShareBarProps {
    pub analysis: Rc<Analysis>,
    pub model: Option<String>,
}

#[function_component(ShareBar)]
pub fn share_bar(props: &ShareBarProps) -> Html {
    let status = use_state(String::new);
    let copy = |what: &'static str, text: Rc<dyn Fn() -> String>| {
        let status = status.clone();
        Callback::from(move |_: MouseEvent| {
            let status = status.clone();
            let text = text();
            wasm_bindgen_futures::spawn_local(async move {
                status.set(if js::copy_text(&text).await {
                    format!("{what} copied")
                } else {
                    format!("Could not copy the {what}: the browser refused clipboard access")
                });
            });
        })
    };
    let link = copy(
        "link",
        Rc::new(|| {
            web_sys::window()
                .and_then(|w| w.location().href().ok())
                .unwrap_or_default()
        }),
    );
    let json = {
        let a = props.analysis.clone();
        let model = props.model.clone();
        copy("JSON", Rc::new(move || a.to_json(model.as_deref())))
    };
    let geojson = {
        let a = props.analysis.clone();
        let status = status.clone();
        Callback::from(move |_: MouseEvent| {
            let text = a.to_geojson();
            status.set(
                match js::download("fleetview.geojson", "application/geo+json", &text) {
                    Ok(()) => "GeoJSON downloaded".into(),
                    Err(_) => "Could not start the download".into(),
                },
            );
        })
    };
    let empty = props.analysis.packets.is_empty();
    let no_points = !props
        .analysis
        .json
        .iter()
        .any(|p| p.records.iter().flatten().any(|r| r.valid));
    html! {
        <div class="share">
            <button id="copy-link" onclick={link}>{ "Copy link" }</button>
            <button id="copy-json" onclick={json} disabled={empty && props.analysis.error.is_none()}>{ "Copy JSON" }</button>
            <button id="download-geojson" onclick={geojson} disabled={no_points}
                title={if no_points { "No record with a position fix" } else { "Records with a fix as Points, and the track" }}>{ "Download GeoJSON" }</button>
            <span class="status" role="status">{ (*status).clone() }</span>
        </div>
    }
}
