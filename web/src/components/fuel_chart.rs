//! Fuel level over time for the selected device, with refuel (▲) and drain (▼) events, drawn
//! as inline SVG (no chart library: a polyline and a few labels).

use std::rc::Rc;

use yew::prelude::*;

use crate::live::api::{Fuel, FuelEventKind};

#[derive(Properties, PartialEq)]
pub struct FuelChartProps {
    pub imei: String,
    pub fuel: Option<Rc<Fuel>>,
}

const W: f64 = 560.0;
const H: f64 = 160.0;
const PAD: f64 = 28.0;

#[function_component(FuelChart)]
pub fn fuel_chart(props: &FuelChartProps) -> Html {
    let Some(fuel) = props.fuel.as_deref() else {
        return html! { <div class="fuel" id="fuel"><h3>{ "Fuel" }</h3><p class="note">{ "Loading…" }</p></div> };
    };
    let unit = fuel.unit.clone().unwrap_or_default();
    let title = match (&fuel.name, fuel.io_id) {
        (Some(n), Some(id)) => format!("Fuel: {n} (IO {id})"),
        (Some(n), None) => format!("Fuel: {n}"),
        _ => "Fuel".to_string(),
    };
    if fuel.levels.is_empty() && fuel.events.is_empty() {
        return html! { <div class="fuel" id="fuel"><h3>{ title }</h3><p class="note">{ "No fuel data from this device." }</p></div> };
    }
    let t0 = fuel
        .levels
        .iter()
        .map(|l| l.timestamp_ms)
        .chain(fuel.events.iter().map(|e| e.timestamp_ms))
        .min()
        .unwrap_or(0);
    let t1 = fuel
        .levels
        .iter()
        .map(|l| l.timestamp_ms)
        .chain(fuel.events.iter().map(|e| e.timestamp_ms))
        .max()
        .unwrap_or(1)
        .max(t0 + 1);
    let vmax = fuel
        .levels
        .iter()
        .map(|l| l.value)
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let x = |t: i64| PAD + (t - t0) as f64 / (t1 - t0) as f64 * (W - 2.0 * PAD);
    let y = |v: f64| H - PAD - v / vmax * (H - 2.0 * PAD);
    let line: String = fuel
        .levels
        .iter()
        .map(|l| format!("{:.1},{:.1}", x(l.timestamp_ms), y(l.value)))
        .collect::<Vec<_>>()
        .join(" ");
    let span = |ms: i64| {
        fleetview::time::iso8601(u64::try_from(ms).unwrap_or_default())[11..16].to_string()
    };
    html! {
        <div class="fuel" id="fuel">
            <h3>{ title }</h3>
            <svg viewBox={format!("0 0 {W} {H}")} class="chart" role="img" aria-label="fuel level over time">
                <line x1={PAD.to_string()} y1={(H - PAD).to_string()} x2={(W - PAD).to_string()} y2={(H - PAD).to_string()} class="axis" />
                <line x1={PAD.to_string()} y1={PAD.to_string()} x2={PAD.to_string()} y2={(H - PAD).to_string()} class="axis" />
                <text x="2" y={(PAD + 4.0).to_string()} class="tick">{ format!("{vmax:.0}{unit}") }</text>
                <text x="2" y={(H - PAD).to_string()} class="tick">{ "0" }</text>
                <text x={PAD.to_string()} y={(H - 8.0).to_string()} class="tick">{ span(t0) }</text>
                <text x={(W - PAD - 30.0).to_string()} y={(H - 8.0).to_string()} class="tick">{ span(t1) }</text>
                <polyline points={line} class="level" />
                { for fuel.events.iter().map(|e| {
                    let v = e.after;
                    let refuel = e.kind == FuelEventKind::Refuel;
                    html! {
                        <text x={(x(e.timestamp_ms) - 5.0).to_string()} y={(y(v) + if refuel { -6.0 } else { 14.0 }).to_string()}
                            class={classes!("event", e.kind.as_str())}>
                            { if refuel { "▲" } else { "▼" } }
                            <title>{ format!("{} {:+.1}{unit}", e.kind.as_str(), e.change) }</title>
                        </text>
                    }
                }) }
            </svg>
            <ul class="fuel-events">
                { for fuel.events.iter().map(|e| html! {
                    <li class={e.kind.as_str()}>{ format!("{} at {} UTC: {:.1} → {:.1} ({:+.1}{unit})",
                        e.kind.as_str(), fleetview::time::iso8601(u64::try_from(e.timestamp_ms).unwrap_or_default()).replace('T', " ").trim_end_matches(".000Z"),
                        e.before,
                        e.after,
                        e.change) }</li>
                }) }
            </ul>
        </div>
    }
}
