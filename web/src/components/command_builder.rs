//! Command builder: Codec 12 or 14 text → the hex frame a server sends (core's encoder), with a
//! button to decode the frame in the playground.

use fleetview::{Codec, CommandPacket};
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::state::{Action, State};

#[derive(Properties, PartialEq)]
pub struct CommandBuilderProps {
    pub dispatch: UseReducerDispatcher<State>,
}

/// The frame for a command, or why it cannot be built.
pub fn build(text: &str, codec: &str, imei: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("Type a command, e.g. getinfo".into());
    }
    let codec = Codec::from_name(codec).unwrap_or(Codec::Codec12);
    let imei = (codec == Codec::Codec14).then(|| imei.trim());
    let packet = CommandPacket::new(codec, text, imei).map_err(|e| e.to_string())?;
    fleetview::encode::command_frame(&packet)
        .map(|f| fleetview::hex::encode(&f))
        .map_err(|e| e.to_string())
}

#[function_component(CommandBuilder)]
pub fn command_builder(props: &CommandBuilderProps) -> Html {
    let text = use_state(|| "getinfo".to_string());
    let codec = use_state(|| "12".to_string());
    let imei = use_state(|| "352093081452251".to_string());
    let result = build(&text, &codec, &imei);
    let on_text = {
        let text = text.clone();
        Callback::from(move |e: InputEvent| {
            text.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let on_imei = {
        let imei = imei.clone();
        Callback::from(move |e: InputEvent| {
            imei.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let on_codec = {
        let codec = codec.clone();
        Callback::from(move |e: Event| {
            codec.set(e.target_unchecked_into::<HtmlSelectElement>().value())
        })
    };
    let decode = {
        let d = props.dispatch.clone();
        let frame = result.clone().ok();
        Callback::from(move |_: MouseEvent| {
            if let Some(f) = &frame {
                d.dispatch(Action::SetText(f.clone()));
            }
        })
    };
    html! {
        <details class="command-builder" id="command-builder">
            <summary>{ "Command builder (Codec 12 / 14)" }</summary>
            <div class="row">
                <select id="cmd-codec" onchange={on_codec}>
                    <option value="12" selected={*codec == "12"}>{ "Codec 12" }</option>
                    <option value="14" selected={*codec == "14"}>{ "Codec 14 (to an IMEI)" }</option>
                </select>
                <input id="cmd-text" type="text" value={(*text).clone()} oninput={on_text} placeholder="getinfo" />
                if *codec == "14" {
                    <input id="cmd-imei" type="text" value={(*imei).clone()} oninput={on_imei} placeholder="IMEI" inputmode="numeric" />
                }
            </div>
            { match &result {
                Ok(hex) => html! {
                    <div class="row">
                        <code id="cmd-frame" class="frame">{ hex }</code>
                        <button id="cmd-decode" onclick={decode}>{ "Decode it" }</button>
                    </div>
                },
                Err(e) => html! { <p class="input-error">{ e }</p> },
            } }
        </details>
    }
}

#[cfg(test)]
mod tests {
    use super::build;

    #[test]
    fn builds_the_official_frames() {
        assert_eq!(
            build("getinfo", "12", "").unwrap(),
            "000000000000000f0c010500000007676574696e666f0100004312"
        );
        assert_eq!(
            build("getver", "14", "352093081452251").unwrap(),
            "00000000000000160e01050000000e0352093081452251676574766572010000d2c1"
        );
        assert!(build("getver", "14", "35x").is_err());
        assert!(build("", "12", "").is_err());
    }
}
