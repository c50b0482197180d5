//! MQTT forwarder: each item (a record or an event) is one message on `PREFIX/IMEI`, published
//! with QoS 1; a batch is delivered when the broker has acknowledged (`PUBACK`) every message
//! of it. After a failure the connection starts over and the whole batch is sent again (at
//! least once: a subscriber may see a message twice, never miss one).

use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};

use super::{SendError, ITEMS_PER_BATCH};
use crate::serve::query::Delivery;

/// A batch whose acknowledgements take longer than this is sent again.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Messages in flight (published, not yet acknowledged) at once.
const IN_FLIGHT: u16 = 1000;

pub(super) struct Mqtt {
    host: String,
    port: u16,
    prefix: String,
    client_id: String,
    conn: Option<(AsyncClient, EventLoop)>,
}

impl Mqtt {
    pub(super) fn new(host: &str, port: u16, prefix: &str, name: &str) -> Self {
        // A client id per node and forwarder (a broker closes the older of two equal ids).
        let key = fleetview::identity::RecordKey::of(name.as_bytes()).as_i64() as u64;
        Self {
            host: host.to_string(),
            port,
            prefix: prefix.to_string(),
            client_id: format!("fleetview-{:08x}-{}", key as u32, std::process::id()),
            conn: None,
        }
    }

    fn connect(&self) -> (AsyncClient, EventLoop) {
        let mut opts = MqttOptions::new(&self.client_id, &self.host, self.port);
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_inflight(IN_FLIGHT);
        opts.set_max_packet_size(1 << 20, 1 << 20);
        AsyncClient::new(opts, ITEMS_PER_BATCH + 16)
    }

    pub(super) async fn send(&mut self, batch: &[Delivery]) -> Result<(), SendError> {
        let r = tokio::time::timeout(TIMEOUT, self.publish(batch)).await;
        let r = r.unwrap_or_else(|_| {
            Err(SendError(format!(
                "mqtt://{}:{}: no acknowledgement within {} s",
                self.host,
                self.port,
                TIMEOUT.as_secs()
            )))
        });
        if r.is_err() {
            // Start over: nothing of this connection's state is carried to the next attempt.
            self.conn = None;
        }
        r
    }

    async fn publish(&mut self, batch: &[Delivery]) -> Result<(), SendError> {
        if self.conn.is_none() {
            self.conn = Some(self.connect());
        }
        let (client, events) = self.conn.as_mut().expect("connected above");
        let mut expected = 0usize;
        for d in batch {
            let topic = format!("{}/{}", self.prefix, d.imei);
            for item in &d.items {
                client
                    .try_publish(&topic, QoS::AtLeastOnce, false, item.as_bytes().to_vec())
                    .map_err(|e| SendError(format!("MQTT publish: {e}")))?;
                expected += 1;
            }
        }
        let mut acked = 0usize;
        while acked < expected {
            match events.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(e) => {
                    return Err(SendError(format!(
                        "mqtt://{}:{}: {e}",
                        self.host, self.port
                    )))
                }
            }
        }
        Ok(())
    }
}
