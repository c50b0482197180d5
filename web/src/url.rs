//! The shareable URL: the packet lives in the fragment (`#hex=…&lenient=1&model=FMB920`), so a
//! link carries the whole input and nothing is sent to a server. `#live` opens the live view.

/// What a fragment says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fragment {
    /// The packet as hex.
    pub hex: Option<String>,
    /// Lenient decoding.
    pub lenient: bool,
    /// Device model.
    pub model: Option<String>,
    /// Open the live view.
    pub live: bool,
}

impl Fragment {
    /// Parse `hex=…&lenient=1&model=…` (with or without the leading `#`). Unknown keys are ignored.
    pub fn parse(fragment: &str) -> Self {
        let mut f = Self::default();
        for pair in fragment.trim_start_matches('#').split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = js_sys::decode_uri_component(value)
                .ok()
                .and_then(|v| v.as_string())
                .unwrap_or_else(|| value.to_string());
            match key {
                "hex" if !value.is_empty() => f.hex = Some(value),
                "lenient" => f.lenient = value == "1" || value == "true",
                "model" if !value.is_empty() => f.model = Some(value),
                "live" => f.live = true,
                _ => {}
            }
        }
        f
    }

    /// The fragment text, without `#`. Hex is compacted (no spaces, lowercase).
    pub fn format(&self) -> String {
        let mut parts = Vec::new();
        if self.live {
            parts.push("live".to_string());
        }
        if let Some(hex) = &self.hex {
            let compact: String = hex
                .chars()
                .filter(|c| !c.is_whitespace() && *c != ',')
                .collect::<String>()
                .to_lowercase();
            parts.push(format!("hex={}", encode(&compact)));
        }
        if self.lenient {
            parts.push("lenient=1".to_string());
        }
        if let Some(m) = &self.model {
            parts.push(format!("model={}", encode(m)));
        }
        parts.join("&")
    }
}

fn encode(s: &str) -> String {
    String::from(js_sys::encode_uri_component(s))
}

/// The current page's fragment.
pub fn current() -> Fragment {
    web_sys::window()
        .and_then(|w| w.location().hash().ok())
        .map(|h| Fragment::parse(&h))
        .unwrap_or_default()
}

/// Replace the fragment without adding a history entry (typing must not flood the back button).
pub fn replace(fragment: &Fragment) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let text = fragment.format();
    let url = if text.is_empty() {
        let loc = window.location();
        format!(
            "{}{}",
            loc.pathname().unwrap_or_default(),
            loc.search().unwrap_or_default()
        )
    } else {
        format!("#{text}")
    };
    if let Ok(history) = window.history() {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url));
    }
}
