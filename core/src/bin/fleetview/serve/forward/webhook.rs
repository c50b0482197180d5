//! Webhook forwarder: one `POST` of a JSON array per batch (records in the JSON model with
//! `type` and `imei`, and events), answered `2xx` when the receiver has it.
//!
//! With a secret, `X-Fleetview-Signature: sha256=<hex>` is the HMAC-SHA256 of the body with the
//! secret (as GitHub's webhooks do): the receiver recomputes it over the raw body and compares
//! in constant time.

use std::time::Duration;

use ring::hmac;

use super::SendError;
use crate::serve::query::Delivery;

/// The signature header.
pub(crate) const SIGNATURE_HEADER: &str = "x-fleetview-signature";
/// A receiver that does not answer within this is taken as down (the batch is sent again).
const TIMEOUT: Duration = Duration::from_secs(30);

pub(super) struct Webhook {
    url: reqwest::Url,
    client: reqwest::Client,
    key: Option<hmac::Key>,
    body: Vec<u8>,
}

impl Webhook {
    pub(super) fn new(url: reqwest::Url, secret: Option<Vec<u8>>) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!("fleetview/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("--forward {url}: cannot make an HTTP client: {e}"))?;
        Ok(Self {
            url,
            client,
            key: secret.map(|s| hmac::Key::new(hmac::HMAC_SHA256, &s)),
            body: Vec::new(),
        })
    }

    pub(super) async fn send(&mut self, batch: &[Delivery]) -> Result<(), SendError> {
        self.body.clear();
        self.body.push(b'[');
        let mut first = true;
        for item in batch.iter().flat_map(|d| &d.items) {
            if !first {
                self.body.push(b',');
            }
            first = false;
            self.body.extend_from_slice(item.as_bytes());
        }
        self.body.push(b']');
        let mut req = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(self.body.clone());
        if let Some(key) = &self.key {
            req = req.header(SIGNATURE_HEADER, signature(key, &self.body));
        }
        let resp = req
            .send()
            .await
            .map_err(|e| SendError(format!("POST {}: {}", self.url, causes(&e))))?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else {
            let text = resp.text().await.unwrap_or_default();
            let text: String = text.chars().take(200).collect();
            Err(SendError(format!("POST {}: {status} {text}", self.url)))
        }
    }
}

/// `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub(crate) fn signature(key: &hmac::Key, body: &[u8]) -> String {
    let tag = hmac::sign(key, body);
    format!("sha256={}", fleetview::hex::encode(tag.as_ref()))
}

/// An error with its causes (reqwest's own message does not say why a connection failed).
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231, test case 2.
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"Jefe");
        assert_eq!(
            signature(&key, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
