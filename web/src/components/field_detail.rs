//! What the pointed-at bytes are: field name, offsets, raw bytes and decoded value.

use std::rc::Rc;

use yew::prelude::*;

use crate::analysis::{Analysis, Segment};

#[derive(Properties, PartialEq)]
pub struct FieldDetailProps {
    pub analysis: Rc<Analysis>,
    pub segments: Rc<Vec<Segment>>,
    pub focused: Option<usize>,
    pub model: Option<String>,
}

#[function_component(FieldDetail)]
pub fn field_detail(props: &FieldDetailProps) -> Html {
    let Some(seg) = props.focused.and_then(|i| props.segments.get(i)) else {
        return html! {
            <aside class="detail empty">
                { "Point at or click any byte to see its field, raw bytes and decoded value." }
                <div class="legend">
                    { for [("frame", "frame"), ("record", "record header"), ("gps", "GPS"), ("io-count", "IO counts"),
                           ("io-id", "IO id"), ("io-value", "IO value"), ("beacon", "beacon"), ("sensor", "sensor"),
                           ("imei", "IMEI"), ("udp", "UDP header"),
                           ("message", "command"), ("crc", "CRC")]
                        .iter().map(|(c, t)| html! { <span class={classes!("seg", *c)}>{ *t }</span> }) }
                </div>
            </aside>
        };
    };
    let v = props.analysis.describe(seg, props.model.as_deref());
    html! {
        <aside class={classes!("detail", seg.error.then_some("err"))} id="detail">
            <div class="label">{ &v.label }</div>
            <div class="range">{ &v.range }</div>
            <div><span class="k">{ "raw " }</span><code class="raw">{ &v.raw }</code></div>
            if !v.value.is_empty() {
                <div><span class="k">{ "value " }</span><span class="value">{ &v.value }</span></div>
            }
            if seg.error {
                if let Some(e) = &props.analysis.error {
                    <div class="why">{ &e.message }</div>
                }
            }
        </aside>
    }
}
