//! The selected device's day (a UTC day): a day picker, its trips (each replayable on the
//! map), its stops as markers, the geofences (drawn on the map: a circle or a polygon, and
//! deleted), and its events on a timeline. Reads the reports routes of `fleetview serve`
//! (core/docs/http-api.md).

use std::cell::RefCell;
use std::rc::Rc;

use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::js;
use crate::live::api::{self, EventJson, EventKind, Fence, FenceShape, Stop, Trip};

const DAY_MS: i64 = 86_400_000;

/// What the map calls with a drawn geofence's GeoJSON (kept alive while drawing).
type Drawn = Closure<dyn FnMut(String)>;

/// `YYYY-MM-DD` of a time.
fn day_of(ms: i64) -> String {
    fleetview::time::iso8601(u64::try_from(ms).unwrap_or_default())[..10].to_string()
}

/// `HH:MM` of a time.
fn hhmm(ms: i64) -> String {
    fleetview::time::iso8601(u64::try_from(ms).unwrap_or_default())[11..16].to_string()
}

fn duration(ms: i64) -> String {
    let min = ms / 60_000;
    if min >= 60 {
        format!("{} h {} min", min / 60, min % 60)
    } else {
        format!("{min} min")
    }
}

/// What an event says, for the timeline.
fn event_text(e: &EventJson) -> String {
    let name = e.geofence_name.as_deref().unwrap_or("a geofence");
    match e.kind {
        EventKind::GeofenceEnter => format!("entered {name}"),
        EventKind::GeofenceExit => format!("left {name}"),
        EventKind::Refuel | EventKind::Drain => format!(
            "{} {:+.1}",
            e.kind.as_str(),
            e.fuel.as_ref().map_or(0.0, |f| f.change)
        ),
    }
}

/// One day of a device, as read from the API.
#[derive(Clone, Debug, Default, PartialEq)]
struct Day {
    trips: Vec<Trip>,
    stops: Vec<Stop>,
    events: Vec<EventJson>,
    /// Positions with a fix: (time, latitude, longitude).
    track: Vec<(i64, f64, f64)>,
}

async fn load_day(imei: &str, from: i64) -> Result<Day, api::ApiError> {
    let to = from + DAY_MS - 1;
    Ok(Day {
        trips: api::trips(imei, from, to).await?,
        stops: api::stops(imei, from, to).await?,
        events: api::events(imei, from, to).await?,
        track: api::positions_between(imei, from, to)
            .await?
            .into_iter()
            .filter(|p| p.record.valid)
            .map(|p| {
                (
                    p.record.timestamp_ms as i64,
                    p.record.latitude,
                    p.record.longitude,
                )
            })
            .collect(),
    })
}

/// The map's JSON (see `mapShowReport` in js/map.js).
#[derive(Serialize)]
struct MapReport<'a> {
    track: Vec<[f64; 2]>,
    stops: Vec<MapStop>,
    geofences: Vec<MapFence<'a>>,
}

#[derive(Serialize)]
struct MapStop {
    lat: f64,
    lon: f64,
    title: String,
    lines: [String; 2],
}

#[derive(Serialize)]
struct MapFence<'a> {
    id: i64,
    name: &'a str,
    circle: Option<MapCircle>,
    /// Rings of `[lat, lon]`.
    rings: Option<Vec<Vec<[f64; 2]>>>,
}

#[derive(Serialize)]
struct MapCircle {
    lat: f64,
    lon: f64,
    r: f64,
}

fn report_json(day: &Day, fences: &[Fence]) -> String {
    let geofences = fences
        .iter()
        .map(|g| {
            let (circle, rings) = match &g.shape {
                FenceShape::Circle {
                    center: [lon, lat],
                    radius_m,
                } => (
                    Some(MapCircle {
                        lat: *lat,
                        lon: *lon,
                        r: *radius_m,
                    }),
                    None,
                ),
                FenceShape::Polygon(rings) => (
                    None,
                    Some(
                        rings
                            .iter()
                            .map(|r| r.iter().map(|[x, y]| [*y, *x]).collect())
                            .collect(),
                    ),
                ),
            };
            MapFence {
                id: g.id,
                name: &g.name,
                circle,
                rings,
            }
        })
        .collect();
    let stops = day
        .stops
        .iter()
        .enumerate()
        .map(|(i, s)| MapStop {
            lat: s.latitude,
            lon: s.longitude,
            title: format!("Stop {}", i + 1),
            lines: [
                format!("{}–{} UTC", hhmm(s.start_ms), hhmm(s.end_ms)),
                duration(s.duration_ms),
            ],
        })
        .collect();
    let report = MapReport {
        track: day.track.iter().map(|(_, la, lo)| [*la, *lo]).collect(),
        stops,
        geofences,
    };
    serde_json::to_string(&report).unwrap_or_default()
}

#[derive(Properties, PartialEq)]
pub struct ReportsProps {
    pub imei: String,
    /// The device's latest record: its day is shown first.
    pub last_ms: Option<i64>,
    /// Bumped by each live `geofence` event of the device: its events are read again.
    pub tick: u64,
}

#[function_component(ReportsPanel)]
pub fn reports_panel(props: &ReportsProps) -> Html {
    let first_day = day_of(props.last_ms.unwrap_or_else(|| js_sys::Date::now() as i64));
    let day = use_state(|| first_day.clone());
    let data = use_state(|| None::<Rc<Day>>);
    let fences = use_state(Vec::<Fence>::new);
    let fences_version = use_state(|| 0u32);
    let error = use_state(|| None::<String>);
    let drawing = use_state(|| None::<&'static str>);
    let name = use_state(String::new);
    let node = use_node_ref();
    let handle: Rc<RefCell<JsValue>> = use_mut_ref(|| JsValue::NULL);
    let on_drawn: Rc<RefCell<Option<Drawn>>> = use_mut_ref(|| None);

    {
        // Another device: its own latest day.
        let day = day.clone();
        use_effect_with(props.imei.clone(), move |_| day.set(first_day));
    }
    {
        let (node, handle) = (node.clone(), handle.clone());
        use_effect_with((), move |_| {
            if let Some(el) = node.cast::<web_sys::Element>() {
                *handle.borrow_mut() = js::map_create(&el);
            }
            let handle = handle.clone();
            move || js::map_destroy(&handle.borrow())
        });
    }
    {
        let (data, error) = (data.clone(), error.clone());
        use_effect_with(
            (props.imei.clone(), (*day).clone(), props.tick),
            move |(imei, day, _)| {
                let (imei, day) = (imei.clone(), day.clone());
                wasm_bindgen_futures::spawn_local(async move {
                    let Some(from) = fleetview::time::parse_iso8601(&day) else {
                        error.set(Some(format!("{day:?} is not a day")));
                        return;
                    };
                    match load_day(&imei, from).await {
                        Ok(d) => {
                            data.set(Some(Rc::new(d)));
                            error.set(None);
                        }
                        Err(e) => error.set(Some(format!("reports of {imei}: {e}"))),
                    }
                });
            },
        );
    }
    {
        let (fences, error) = (fences.clone(), error.clone());
        use_effect_with(*fences_version, move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                match api::geofences().await {
                    Ok(list) => fences.set(list),
                    Err(e) => error.set(Some(format!("geofences: {e}"))),
                }
            });
        });
    }
    {
        let handle = handle.clone();
        use_effect_with(((*data).clone(), (*fences).clone()), move |(d, f)| {
            let day = d.as_deref().cloned().unwrap_or_default();
            js::map_show_report(&handle.borrow(), &report_json(&day, f), true);
        });
    }

    let on_day = {
        let day = day.clone();
        Callback::from(move |e: Event| {
            let v = e.target_unchecked_into::<HtmlInputElement>().value();
            if !v.is_empty() {
                day.set(v);
            }
        })
    };
    let shift = |by: i64| {
        let day = day.clone();
        Callback::from(move |_: MouseEvent| {
            if let Some(ms) = fleetview::time::parse_iso8601(&day) {
                day.set(day_of(ms + by * DAY_MS));
            }
        })
    };
    let replay = |t: &Trip| {
        let (handle, data) = (handle.clone(), data.clone());
        let (start, end) = (t.start_ms, t.end_ms);
        Callback::from(move |_: MouseEvent| {
            let pts: Vec<[f64; 2]> = data
                .as_deref()
                .map(|d| {
                    d.track
                        .iter()
                        .filter(|(ts, _, _)| (start..=end).contains(ts))
                        .map(|(_, la, lo)| [*la, *lo])
                        .collect()
                })
                .unwrap_or_default();
            js::map_replay(
                &handle.borrow(),
                &serde_json::to_string(&pts).unwrap_or_default(),
            );
        })
    };
    // The name of a geofence drawn without one.
    let next_name = format!("Geofence {}", fences.len() + 1);
    let draw = |kind: &'static str| {
        let (handle, drawing, on_drawn) = (handle.clone(), drawing.clone(), on_drawn.clone());
        let (name, error, version) = (name.clone(), error.clone(), fences_version.clone());
        let next_name = next_name.clone();
        Callback::from(move |_: MouseEvent| {
            let (drawing2, name, error, version) = (
                drawing.clone(),
                name.clone(),
                error.clone(),
                version.clone(),
            );
            let next_name = next_name.clone();
            let done = Closure::<dyn FnMut(String)>::new(move |geometry: String| {
                drawing2.set(None);
                let (name, error, version) = (name.clone(), error.clone(), version.clone());
                let next_name = next_name.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let geometry: serde_json::Value =
                        serde_json::from_str(&geometry).unwrap_or_default();
                    let label = if name.trim().is_empty() {
                        next_name
                    } else {
                        name.trim().to_string()
                    };
                    match api::create_geofence(&label, geometry).await {
                        Ok(_) => {
                            name.set(String::new());
                            version.set(*version + 1);
                        }
                        Err(e) => error.set(Some(format!("geofence: {e}"))),
                    }
                });
            });
            js::map_draw(&handle.borrow(), kind, done.as_ref().unchecked_ref());
            *on_drawn.borrow_mut() = Some(done);
            drawing.set(Some(kind));
        })
    };
    let cancel_draw = {
        let (handle, drawing) = (handle.clone(), drawing.clone());
        Callback::from(move |_: MouseEvent| {
            js::map_draw(&handle.borrow(), "", &js_sys::Function::new_no_args(""));
            drawing.set(None);
        })
    };
    let finish_draw = {
        let handle = handle.clone();
        Callback::from(move |_: MouseEvent| js::map_draw_finish(&handle.borrow()))
    };
    let remove = |id: i64| {
        let (error, version) = (error.clone(), fences_version.clone());
        Callback::from(move |_: MouseEvent| {
            let (error, version) = (error.clone(), version.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::delete_geofence(id).await {
                    Ok(()) => version.set(*version + 1),
                    Err(e) => error.set(Some(format!("geofence {id}: {e}"))),
                }
            });
        })
    };
    let on_name = {
        let name = name.clone();
        Callback::from(move |e: InputEvent| {
            name.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };

    let from = fleetview::time::parse_iso8601(&day).unwrap_or_default();
    let pct = |ms: i64| ((ms - from) as f64 / DAY_MS as f64 * 100.0).clamp(0.0, 100.0);
    let d = data.as_deref().cloned().unwrap_or_default();
    html! {
        <div class="reports" id="reports">
            <div class="row report-head">
                <h3>{ format!("Day of {}", props.imei) }</h3>
                <button class="day-prev" onclick={shift(-1)} title="previous day">{ "◀" }</button>
                <input type="date" id="report-day" value={(*day).clone()} onchange={on_day} />
                <button class="day-next" onclick={shift(1)} title="next day">{ "▶" }</button>
                <span class="sub">{ "UTC" }</span>
            </div>
            <div class="timeline" id="report-timeline" title="00:00 to 24:00 UTC">
                { for d.trips.iter().map(|t| html! {
                    <span class="span trip" style={format!("left:{:.2}%;width:{:.2}%", pct(t.start_ms), (pct(t.end_ms) - pct(t.start_ms)).max(0.3))}
                          title={format!("trip {}–{}", hhmm(t.start_ms), hhmm(t.end_ms))}></span>
                }) }
                { for d.stops.iter().map(|s| html! {
                    <span class="span stop" style={format!("left:{:.2}%;width:{:.2}%", pct(s.start_ms), (pct(s.end_ms) - pct(s.start_ms)).max(0.3))}
                          title={format!("stop {}–{}", hhmm(s.start_ms), hhmm(s.end_ms))}></span>
                }) }
                { for d.events.iter().map(|e| html! {
                    <span class={classes!("tick", e.kind.as_str())} style={format!("left:{:.2}%", pct(e.timestamp_ms))}
                          title={format!("{} {}", hhmm(e.timestamp_ms), event_text(e))}></span>
                }) }
            </div>
            <div class="report-grid">
                <div class="map report-map" id="report-map" ref={node}></div>
                <div class="report-lists">
                    <h4>{ format!("Trips ({})", d.trips.len()) }</h4>
                    <ol class="report-trips" id="report-trips">
                        { for d.trips.iter().map(|t| html! {
                            <li class="trip">
                                <b>{ format!("{}–{}", hhmm(t.start_ms), hhmm(t.end_ms)) }</b>
                                { format!(" · {:.1} km · {} · max {} km/h · avg {} km/h", t.distance_m / 1000.0, duration(t.duration_ms), t.max_speed_kmh, t.avg_speed_kmh) }
                                if let (Some(f), Some(u)) = (t.fuel_used, t.fuel_unit.as_ref()) {
                                    { format!(" · fuel {f} {u}") }
                                }
                                <button class="replay" onclick={replay(t)}>{ "Replay" }</button>
                            </li>
                        }) }
                    </ol>
                    <h4>{ format!("Stops ({})", d.stops.len()) }</h4>
                    <ol class="report-stops" id="report-stops">
                        { for d.stops.iter().map(|s| html! {
                            <li class="stop">{ format!("{}–{} · {} · {:.5}, {:.5}", hhmm(s.start_ms), hhmm(s.end_ms), duration(s.duration_ms), s.latitude, s.longitude) }</li>
                        }) }
                    </ol>
                    <h4>{ format!("Events ({})", d.events.len()) }</h4>
                    <ol class="report-events" id="report-events">
                        { for d.events.iter().map(|e| html! {
                            <li class={classes!("event", e.kind.as_str())}>{ format!("{} {}", hhmm(e.timestamp_ms), event_text(e)) }</li>
                        }) }
                    </ol>
                    <h4>{ format!("Geofences ({})", fences.len()) }</h4>
                    <div class="row geofence-tools">
                        <input type="text" id="geofence-name" placeholder="name" value={(*name).clone()} oninput={on_name} />
                        <button id="draw-circle" onclick={draw("circle")}>{ "Draw circle" }</button>
                        <button id="draw-polygon" onclick={draw("polygon")}>{ "Draw polygon" }</button>
                    </div>
                    if let Some(kind) = *drawing {
                        <p class="draw-hint">
                            { if kind == "circle" { "Click the centre on the map, then a point of the edge." } else { "Click the corners on the map; click the first one again or Finish." } }
                            if kind == "polygon" {
                                <button id="draw-finish" onclick={finish_draw}>{ "Finish" }</button>
                            }
                            <button id="draw-cancel" onclick={cancel_draw}>{ "Cancel" }</button>
                        </p>
                    }
                    <ul class="geofences" id="geofences">
                        { for fences.iter().map(|g| html! {
                            <li class="geofence" data-id={g.id.to_string()}>
                                <b>{ &g.name }</b>
                                { match &g.shape {
                                    FenceShape::Circle { radius_m, .. } => format!(" · circle {radius_m} m"),
                                    FenceShape::Polygon(rings) => format!(" · polygon, {} corners", rings.first().map_or(0, |r| r.len().saturating_sub(1))),
                                } }
                                <button class="delete-geofence" title="delete" onclick={remove(g.id)}>{ "✕" }</button>
                            </li>
                        }) }
                    </ul>
                </div>
            </div>
            if let Some(e) = &*error {
                <p class="input-error">{ e }</p>
            }
        </div>
    }
}
