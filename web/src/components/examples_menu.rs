//! The examples menu: the official vectors, one per codec and transport, and a generated route.

use web_sys::HtmlSelectElement;
use yew::prelude::*;

use crate::examples;
use crate::state::{Action, State};

#[derive(Properties, PartialEq)]
pub struct ExamplesMenuProps {
    /// The example on screen, if the input still is one.
    pub current: Option<&'static str>,
    pub dispatch: UseReducerDispatcher<State>,
}

#[function_component(ExamplesMenu)]
pub fn examples_menu(props: &ExamplesMenuProps) -> Html {
    let list = use_memo((), |_| examples::all());
    let onchange = {
        let d = props.dispatch.clone();
        Callback::from(move |e: Event| {
            let s: HtmlSelectElement = e.target_unchecked_into();
            if !s.value().is_empty() {
                d.dispatch(Action::LoadExample(s.value()));
            }
        })
    };
    let mut groups: Vec<&str> = Vec::new();
    for e in list.iter() {
        if !groups.contains(&e.group) {
            groups.push(e.group);
        }
    }
    html! {
        <label class="examples">
            { "Examples " }
            <select id="examples" {onchange}>
                <option value="" selected={props.current.is_none()}>{ "choose a packet…" }</option>
                { for groups.iter().map(|g| html! {
                    <optgroup label={*g}>
                        { for list.iter().filter(|e| e.group == *g).map(|e| html! {
                            <option value={e.id} selected={props.current == Some(e.id)}>{ e.title }</option>
                        }) }
                    </optgroup>
                }) }
            </select>
        </label>
    }
}
