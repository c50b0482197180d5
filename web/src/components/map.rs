//! The map: Leaflet served locally, world-atlas outlines as the offline base layer, OSM tiles on
//! top when online. The playground shows a marker per record with a fix and the track; the live
//! view shows moving device markers and their tracks. Records without a fix are never plotted.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::JsValue;
use yew::prelude::*;

use crate::analysis::Analysis;
use crate::js;

/// What the map draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapMode {
    /// `mapShowPoints`: one marker per record, fitted.
    Points,
    /// `mapShowDevices`: markers that move, with tracks.
    Devices,
}

#[derive(Properties, PartialEq)]
pub struct MapProps {
    pub id: AttrValue,
    pub mode: MapMode,
    /// JSON for `mapShowPoints` / `mapShowDevices`.
    pub json: AttrValue,
    /// Marker whose popup to open.
    #[prop_or_default]
    pub focus: Option<AttrValue>,
    /// Live mode: fit the view to the devices on this update.
    #[prop_or_default]
    pub fit: bool,
}

/// The playground's points: every record with a fix, keyed `p{packet}-r{record}`, in time order
/// (devices may send records newest first; the track must follow time).
pub fn points_json(a: &Analysis) -> String {
    let mut points = Vec::new();
    for (pi, p) in a.json.iter().enumerate() {
        for (ri, r) in p
            .records
            .iter()
            .flatten()
            .enumerate()
            .filter(|(_, r)| r.valid)
        {
            let mut lines = vec![
                format!("{} UTC", r.time),
                format!("{:.6}, {:.6} · {} m", r.latitude, r.longitude, r.altitude),
                format!(
                    "{} km/h · {}° · {} satellites",
                    r.speed, r.angle, r.satellites
                ),
            ];
            // No geolocation database offline: the cell is named, not placed.
            if let Some(n) = &r.network {
                lines.push(crate::components::records_table::cell_text(n));
            }
            for (io, d) in
                r.io.iter()
                    .filter_map(|io| io.decoded.as_ref().map(|d| (io, d)))
            {
                lines.push(composite_line(io.id, d));
            }
            let plain =
                r.io.iter()
                    .filter(|io| io.name.is_some() && io.decoded.is_none());
            for io in plain.take(6) {
                let v = io
                    .value
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                lines.push(format!(
                    "{}: {v}{}",
                    io.name.unwrap_or(""),
                    io.unit.map(|u| format!(" {u}")).unwrap_or_default()
                ));
            }
            points.push((
                r.timestamp_ms,
                serde_json::json!({
                    "key": format!("p{pi}-r{ri}"),
                    "lat": r.latitude, "lon": r.longitude,
                    "title": format!("Packet {} · record {}", pi + 1, ri + 1),
                    "lines": lines,
                }),
            ));
        }
    }
    points.sort_by_key(|(t, _)| *t);
    serde_json::Value::Array(points.into_iter().map(|(_, v)| v).collect()).to_string()
}

/// A composite value in one line: `Beacons (385): 2 · strongest -55 dBm`.
fn composite_line(id: u16, d: &fleetview::json::DecodedJson) -> String {
    use fleetview::json::DecodedJson;
    match d {
        DecodedJson::Beacons(b) => {
            let strongest = b.beacons.iter().filter_map(|b| b.rssi).max();
            let rssi = strongest
                .map(|r| format!(" · strongest {r} dBm"))
                .unwrap_or_default();
            format!("Beacons ({id}): {}{rssi}", b.beacons.len())
        }
        DecodedJson::Sensors(s) => {
            let names: Vec<&str> = s.beacons.iter().filter_map(|b| b.name.as_deref()).collect();
            format!("Sensors ({id}): {} {}", s.beacons.len(), names.join(", "))
        }
        DecodedJson::Vin { vin } => format!("VIN: {vin}"),
        DecodedJson::Codes { codes } => format!("Fault codes: {}", codes.join(", ")),
    }
}

#[function_component(MapView)]
pub fn map_view(props: &MapProps) -> Html {
    let node = use_node_ref();
    let handle: Rc<RefCell<JsValue>> = use_mut_ref(|| JsValue::NULL);
    {
        let node = node.clone();
        let handle = handle.clone();
        use_effect_with((), move |_| {
            if let Some(el) = node.cast::<web_sys::Element>() {
                *handle.borrow_mut() = js::map_create(&el);
            }
            let handle = handle.clone();
            move || js::map_destroy(&handle.borrow())
        });
    }
    {
        let handle = handle.clone();
        use_effect_with(
            (props.json.clone(), props.mode, props.fit),
            move |(json, mode, fit)| {
                let h = handle.borrow();
                match mode {
                    MapMode::Points => js::map_show_points(&h, json),
                    MapMode::Devices => js::map_show_devices(&h, json, *fit),
                }
            },
        );
    }
    {
        let handle = handle.clone();
        use_effect_with(props.focus.clone(), move |focus| {
            if let Some(key) = focus {
                js::map_focus(&handle.borrow(), key);
            }
        });
    }
    html! { <div class="map" id={props.id.clone()} ref={node}></div> }
}
