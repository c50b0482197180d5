//! Bindings to the small JavaScript glue around Leaflet (`js/map.js`, shipped by wasm-bindgen as
//! a snippet) and to a couple of browser calls web-sys makes awkward.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/js/map.js")]
extern "C" {
    /// A Leaflet map in `el` with the offline base layer; `null` when Leaflet is missing.
    #[wasm_bindgen(js_name = mapCreate)]
    pub fn map_create(el: &web_sys::Element) -> JsValue;
    /// Markers and track for the playground (JSON array of points).
    #[wasm_bindgen(js_name = mapShowPoints)]
    pub fn map_show_points(handle: &JsValue, json: &str);
    /// Open a marker's popup.
    #[wasm_bindgen(js_name = mapFocus)]
    pub fn map_focus(handle: &JsValue, key: &str);
    /// Moving device markers and tracks for the live view.
    #[wasm_bindgen(js_name = mapShowDevices)]
    pub fn map_show_devices(handle: &JsValue, json: &str, fit: bool);
    /// A device's day: track, stops and geofences (JSON, see js/map.js).
    #[wasm_bindgen(js_name = mapShowReport)]
    pub fn map_show_report(handle: &JsValue, json: &str, fit: bool);
    /// Run a marker along a trip (JSON array of [lat, lon]).
    #[wasm_bindgen(js_name = mapReplay)]
    pub fn map_replay(handle: &JsValue, json: &str);
    /// Draw a geofence (`"circle"`, `"polygon"`; `""` cancels); `done` gets its GeoJSON.
    #[wasm_bindgen(js_name = mapDraw)]
    pub fn map_draw(handle: &JsValue, kind: &str, done: &js_sys::Function);
    /// Close the polygon being drawn.
    #[wasm_bindgen(js_name = mapDrawFinish)]
    pub fn map_draw_finish(handle: &JsValue);
    /// The container was resized.
    #[wasm_bindgen(js_name = mapResize)]
    pub fn map_resize(handle: &JsValue);
    /// Remove the map.
    #[wasm_bindgen(js_name = mapDestroy)]
    pub fn map_destroy(handle: &JsValue);
}

/// Milliseconds since page navigation started (for the load-time figure the tests read).
pub fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or_default()
}

/// Copy text to the clipboard; resolves to whether it worked.
pub async fn copy_text(text: &str) -> bool {
    let Some(window) = web_sys::window() else {
        return false;
    };
    let promise = window.navigator().clipboard().write_text(text);
    wasm_bindgen_futures::JsFuture::from(promise).await.is_ok()
}

/// Offer `text` as a file download.
pub fn download(name: &str, mime: &str, text: &str) -> Result<(), JsValue> {
    let window = web_sys::window().ok_or("no window")?;
    let document = window.document().ok_or("no document")?;
    let parts = js_sys::Array::of1(&JsValue::from_str(text));
    let props = web_sys::BlobPropertyBag::new();
    props.set_type(mime);
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &props)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob)?;
    let a: web_sys::HtmlAnchorElement = document.create_element("a")?.dyn_into()?;
    a.set_href(&url);
    a.set_download(name);
    a.click();
    web_sys::Url::revoke_object_url(&url)?;
    Ok(())
}
