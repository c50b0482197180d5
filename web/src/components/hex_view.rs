//! The annotated hex view: every byte in a coloured run labelled by core's trace. Hovering a run
//! shows it in the detail panel, clicking selects it; the selected record's bytes and the byte
//! where decoding failed are highlighted. One listener on the container (event delegation) keeps
//! large captures cheap.

use std::rc::Rc;

use web_sys::Element;
use yew::prelude::*;

use fleetview::Field;

use crate::analysis::{category, spaced_hex, Analysis, Segment, HEX_VIEW_LIMIT};
use crate::state::{Action, Selection, State};

#[derive(Properties, PartialEq)]
pub struct HexViewProps {
    pub analysis: Rc<Analysis>,
    pub segments: Rc<Vec<Segment>>,
    pub selected: Selection,
    pub dispatch: UseReducerDispatcher<State>,
}

fn segment_of(e: &Event) -> Option<usize> {
    let el: Element = e.target_dyn_into()?;
    el.closest("[data-seg]")
        .ok()??
        .get_attribute("data-seg")?
        .parse()
        .ok()
}

/// Whether a run starts a new line: a new packet, or a new record/message.
fn starts_line(a: &Analysis, prev: Option<&Segment>, seg: &Segment) -> bool {
    let Some(prev) = prev else { return true };
    if prev.packet != seg.packet {
        return true;
    }
    let field = |s: &Segment| s.span.map(|i| a.spans[i].field);
    let rec = |s: &Segment| s.span.and_then(|i| a.spans[i].record);
    matches!(
        field(seg),
        Some(Field::Timestamp | Field::TimestampAndPriority | Field::MessageType)
    ) || (rec(prev).is_some() && rec(seg).is_none() && field(seg).is_some())
}

#[function_component(HexView)]
pub fn hex_view(props: &HexViewProps) -> Html {
    let a = &props.analysis;
    let onmouseover = {
        let d = props.dispatch.clone();
        Callback::from(move |e: MouseEvent| d.dispatch(Action::Hover(segment_of(&e))))
    };
    let onmouseleave = {
        let d = props.dispatch.clone();
        Callback::from(move |_: MouseEvent| d.dispatch(Action::Hover(None)))
    };
    let onclick = {
        let d = props.dispatch.clone();
        Callback::from(move |e: MouseEvent| {
            if let Some(i) = segment_of(&e) {
                d.dispatch(Action::SelectSegment(i));
            }
        })
    };
    let lit = |i: usize| -> bool {
        let s = &props.segments[i];
        match props.selected {
            Selection::Segment(j) => i == j,
            Selection::Record(p, r) => {
                s.packet == Some(p)
                    && s.span
                        .map(|k| a.spans[k].record == Some(r))
                        .unwrap_or(false)
            }
            Selection::None => false,
        }
    };
    // Group runs into lines.
    let mut lines: Vec<(usize, Vec<usize>)> = Vec::new();
    for (i, seg) in props.segments.iter().enumerate() {
        let prev = i.checked_sub(1).map(|j| &props.segments[j]);
        if starts_line(a, prev, seg) {
            lines.push((seg.offset, Vec::new()));
        }
        if let Some(l) = lines.last_mut() {
            l.1.push(i);
        }
    }
    let run = |i: usize| {
        let s = &props.segments[i];
        let cat = match s.span {
            Some(k) => category(a.spans[k].field),
            None if s.packet.is_some() => "frame",
            None => "undecoded",
        };
        let title = s.span.map(|k| a.spans[k].field.name()).unwrap_or("");
        html! {
            <span class={classes!("seg", cat, lit(i).then_some("hl"), s.error.then_some("err"))}
                data-seg={i.to_string()} data-offset={s.offset.to_string()} title={title}>
                { spaced_hex(&a.bytes[s.offset..s.offset + s.len]) }
            </span>
        }
    };
    html! {
        <section class="hexview" aria-label="Annotated hex">
            <div class="hex" {onmouseover} {onmouseleave} {onclick}>
                { for lines.iter().map(|(off, runs)| html! {
                    <div class="line">
                        <span class="off">{ format!("{off:04x}") }</span>
                        <span class="runs">{ for runs.iter().map(|&i| run(i)) }</span>
                    </div>
                }) }
            </div>
            if a.bytes.len() > HEX_VIEW_LIMIT {
                <p class="note">{ format!("Showing the first {HEX_VIEW_LIMIT} of {} bytes; the table lists every packet.", a.bytes.len()) }</p>
            }
        </section>
    }
}
