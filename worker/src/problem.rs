//! Error answers. Decoding failures use the JSON model's error object unchanged
//! (`fleetview::json::ErrorJson`: kind, byte offset, field, message); the other failures of the
//! HTTP layer (authentication, allowlist, routing, query, storage) use the same
//! `{"error":{"kind","message"}}` shape without a byte offset, so a client handles one shape.

use serde::Serialize;

/// An HTTP-level failure: a status and a stable snake_case kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// HTTP status.
    pub status: u16,
    /// Stable snake_case kind (`unauthorized`, `imei_not_allowed`, `not_found`, …).
    pub kind: &'static str,
    /// What, where and why.
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    kind: &'a str,
    message: &'a str,
}

impl Problem {
    /// A problem with this status, kind and message.
    pub fn new(status: u16, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
        }
    }

    /// `{"error":{"kind":…,"message":…}}`.
    pub fn to_json(&self) -> String {
        let body = Body {
            error: Inner {
                kind: self.kind,
                message: &self.message,
            },
        };
        serde_json::to_string(&body).unwrap_or_else(|_| {
            String::from(r#"{"error":{"kind":"internal","message":"unserializable error"}}"#)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape() {
        let p = Problem::new(
            403,
            "imei_not_allowed",
            "IMEI 1 \"x\" is not in the allowlist",
        );
        let v: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
        assert_eq!(v["error"]["kind"], "imei_not_allowed");
        assert_eq!(
            v["error"]["message"],
            "IMEI 1 \"x\" is not in the allowlist"
        );
    }
}
