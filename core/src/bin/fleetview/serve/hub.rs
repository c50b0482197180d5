//! What the tasks share: the device connections (to wake one when a command is queued for it),
//! the live event bus behind `GET /api/live`, and the live fuel state of each device.
//!
//! Events are serialized once, when published, and only when someone listens: without a
//! subscriber publishing costs nothing ([`Hub::watched`]).
//!
//! Per-device state lives only while the device does: a TCP device's entries go when its
//! connection closes, a UDP device's once it has been silent for the idle timeout (swept as
//! new devices arrive), so memory follows the devices online, not every IMEI ever seen.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;
use tokio::sync::{broadcast, mpsc, Notify};

use super::fuel::{FuelEvent, Point, Tracker};

/// One Server-Sent Event: its name (`records`, `device`, `fuel`, `command`) and JSON data.
#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) event: &'static str,
    pub(crate) data: String,
}

/// A device's TCP connection as seen from outside its task.
pub(crate) struct Registration {
    pub(crate) id: u64,
    /// Woken when a command is queued for the device.
    pub(crate) wake: Arc<Notify>,
    /// Woken when the same device logs in on a newer connection: this one is stale.
    pub(crate) kick: Arc<Notify>,
}

/// A logged-in TCP connection, as the hub keeps it.
#[derive(Clone)]
struct Held {
    id: u64,
    wake: Arc<Notify>,
    kick: Arc<Notify>,
    address: String,
}

#[derive(Default)]
struct Devices {
    tcp: HashMap<String, Held>,
    /// Last datagram per UDP device, ms since 1970.
    udp: HashMap<String, i64>,
    /// Sweep `udp` of silent devices when it grows past this.
    udp_sweep_at: usize,
}

/// Smallest `udp` map size that triggers a sweep.
const UDP_SWEEP_MIN: usize = 1024;

/// Fuel events remembered per device (the latest): enough for the stops a batch can touch.
const ANNOUNCED_KEPT: usize = 32;

/// Shared state of the listeners and the API.
pub(crate) struct Hub {
    live: broadcast::Sender<Arc<Live>>,
    devices: Mutex<Devices>,
    next_id: AtomicU64,
    fuel: Mutex<HashMap<String, DeviceFuel>>,
    /// Another node of the cluster has live subscribers: events are relayed to it.
    others_watch: AtomicBool,
    /// Where events for the other nodes go (the cluster's relay), when in a cluster.
    relay: OnceLock<mpsc::Sender<Arc<Live>>>,
}

/// A device's live fuel state.
#[derive(Default)]
struct DeviceFuel {
    /// Where its series ends; `None` until read from the database.
    tracker: Option<Tracker>,
    /// Events announced: start of the event → change.
    announced: HashMap<i64, f64>,
}

impl DeviceFuel {
    /// Keep the latest [`ANNOUNCED_KEPT`] events: older stops are over and never looked at
    /// again, and a device on the road for months must not grow this without end.
    fn trim_announced(&mut self) {
        if self.announced.len() <= 2 * ANNOUNCED_KEPT {
            return;
        }
        let mut starts: Vec<i64> = self.announced.keys().copied().collect();
        starts.sort_unstable();
        for old in &starts[..starts.len() - ANNOUNCED_KEPT] {
            self.announced.remove(old);
        }
    }
}

impl Hub {
    pub(crate) fn new() -> Self {
        Self {
            live: broadcast::channel(4096).0,
            devices: Mutex::new(Devices::default()),
            next_id: AtomicU64::new(1),
            fuel: Mutex::new(HashMap::new()),
            others_watch: AtomicBool::new(false),
            relay: OnceLock::new(),
        }
    }

    /// Relay published events to the other nodes through `tx` (while they have subscribers).
    pub(crate) fn relay_to(&self, tx: mpsc::Sender<Arc<Live>>) {
        let _ = self.relay.set(tx);
    }

    /// Whether another node has live subscribers.
    pub(crate) fn set_others_watch(&self, on: bool) {
        self.others_watch.store(on, Ordering::Release);
    }

    /// Whether this node has live subscribers.
    pub(crate) fn locally_watched(&self) -> bool {
        self.live.receiver_count() > 0
    }

    /// An event published by another node: to this node's subscribers only.
    pub(crate) fn publish_relayed(&self, event: &str, data: &str) {
        let event = match event {
            "records" => "records",
            "device" => "device",
            "fuel" => "fuel",
            "command" => "command",
            "geofence" => "geofence",
            _ => return,
        };
        let _ = self.live.send(Arc::new(Live {
            event,
            data: data.to_string(),
        }));
    }

    fn with_devices<T>(&self, f: impl FnOnce(&mut Devices) -> T) -> T {
        f(&mut self.devices.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Whether anyone listens to live events (here or on another node).
    pub(crate) fn watched(&self) -> bool {
        self.locally_watched() || self.others_watch.load(Ordering::Acquire)
    }

    /// Send a live event to every `/api/live` subscriber (none listening is fine: nothing is
    /// serialized then).
    pub(crate) fn publish(&self, event: &'static str, data: &impl Serialize) {
        if !self.watched() {
            return;
        }
        let Ok(data) = serde_json::to_string(data) else {
            return;
        };
        let live = Arc::new(Live { event, data });
        if self.others_watch.load(Ordering::Acquire) {
            if let Some(relay) = self.relay.get() {
                if relay.try_send(live.clone()).is_err() {
                    tracing::warn!(
                        event,
                        "the relay to the other nodes is behind: a live event is not relayed"
                    );
                }
            }
        }
        if self.locally_watched() {
            let _ = self.live.send(live);
        }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Live>> {
        self.live.subscribe()
    }

    /// Register a logged-in TCP device. A previous connection of the same IMEI is kicked; its
    /// address is returned.
    pub(crate) fn register(&self, imei: &str, address: &str) -> (Registration, Option<String>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let wake = Arc::new(Notify::new());
        let kick = Arc::new(Notify::new());
        let held = Held {
            id,
            wake: wake.clone(),
            kick: kick.clone(),
            address: address.to_string(),
        };
        let old = self.with_devices(|d| d.tcp.insert(imei.to_string(), held));
        let old = old.map(|o| {
            o.kick.notify_one();
            o.address
        });
        (Registration { id, wake, kick }, old)
    }

    /// Remove a connection; false when a newer connection of the device replaced it. The
    /// device's live fuel state goes with its last connection (it is read again from the
    /// database when the device is back).
    pub(crate) fn unregister(&self, imei: &str, id: u64) -> bool {
        let (removed, gone) = self.with_devices(|d| match d.tcp.get(imei) {
            Some(held) if held.id == id => {
                d.tcp.remove(imei);
                (true, !d.udp.contains_key(imei))
            }
            _ => (false, false),
        });
        if gone {
            self.forget_fuel([imei]);
        }
        removed
    }

    fn forget_fuel<'a>(&self, imeis: impl IntoIterator<Item = &'a str>) {
        let mut all = self.fuel.lock().unwrap_or_else(|p| p.into_inner());
        for imei in imeis {
            all.remove(imei);
        }
    }

    /// Devices with in-memory state: connected over TCP, recently seen over UDP, with live
    /// fuel state.
    #[cfg(test)]
    fn sizes(&self) -> (usize, usize, usize) {
        let (tcp, udp) = self.with_devices(|d| (d.tcp.len(), d.udp.len()));
        let fuel = self.fuel.lock().unwrap_or_else(|p| p.into_inner()).len();
        (tcp, udp, fuel)
    }

    /// Close the device's connection here (it logged in on another node); its address.
    pub(crate) fn kick(&self, imei: &str) -> Option<String> {
        self.with_devices(|d| d.tcp.get(imei).cloned()).map(|held| {
            held.kick.notify_one();
            held.address
        })
    }

    /// Whether this node holds a TCP connection of the device.
    pub(crate) fn holds(&self, imei: &str) -> bool {
        self.with_devices(|d| d.tcp.contains_key(imei))
    }

    /// The TCP connections held: (IMEI, connection id, address).
    pub(crate) fn tcp_sessions(&self) -> Vec<(String, u64, String)> {
        self.with_devices(|d| {
            d.tcp
                .iter()
                .map(|(imei, h)| (imei.clone(), h.id, h.address.clone()))
                .collect()
        })
    }

    /// Wake the device's connection: a command waits for it.
    pub(crate) fn wake(&self, imei: &str) {
        if let Some(held) = self.with_devices(|d| d.tcp.get(imei).cloned()) {
            held.wake.notify_one();
        }
    }

    /// Note a datagram; true when the device was not seen within `fresh_ms` (it came online).
    /// Devices silent for longer than `fresh_ms` are swept out as the map grows (amortized:
    /// a sweep each time it doubles).
    pub(crate) fn udp_seen(&self, imei: &str, now_ms: i64, fresh_ms: i64) -> bool {
        let (online, swept) = self.with_devices(|d| {
            let before = d.udp.insert(imei.to_string(), now_ms);
            let mut swept = Vec::new();
            if d.udp.len() >= d.udp_sweep_at.max(UDP_SWEEP_MIN) {
                let tcp = &d.tcp;
                d.udp.retain(|k, &mut t| {
                    let keep = now_ms - t <= fresh_ms;
                    if !keep && !tcp.contains_key(k) {
                        swept.push(k.clone());
                    }
                    keep
                });
                d.udp_sweep_at = d.udp.len() * 2;
            }
            (before.is_none_or(|t| now_ms - t > fresh_ms), swept)
        });
        self.forget_fuel(swept.iter().map(String::as_str));
        online
    }

    /// Connected over TCP now, or a datagram within `fresh_ms`.
    pub(crate) fn connected(&self, imei: &str, now_ms: i64, fresh_ms: i64) -> bool {
        self.with_devices(|d| {
            d.tcp.contains_key(imei) || d.udp.get(imei).is_some_and(|&t| now_ms - t <= fresh_ms)
        })
    }

    /// The fuel events to announce for a device's new readings (`(sensor, point)`, ascending,
    /// just stored), found from its live state. `None` when that state cannot take them (not
    /// read yet, or readings out of order): read the series and call [`Hub::fuel_seed`].
    pub(crate) fn fuel_push(
        &self,
        imei: &str,
        readings: Vec<(u16, Point)>,
        threshold: f64,
    ) -> Option<Vec<FuelEvent>> {
        let mut all = self.fuel.lock().unwrap_or_else(|p| p.into_inner());
        let dev = all.get_mut(imei)?;
        // Taken out: put back only when every reading extends the series.
        let mut tracker = dev.tracker.take()?;
        // The last state of each stop this batch touched, as one look at the series would see.
        let mut found: Vec<FuelEvent> = Vec::new();
        for (sensor, point) in readings {
            match tracker.push(sensor, point, threshold) {
                None => return None,
                Some(Some(e)) => match found.last_mut() {
                    Some(last) if last.start_ms == e.start_ms => *last = e,
                    _ => found.push(e),
                },
                Some(None) => {}
            }
        }
        dev.tracker = Some(tracker);
        found.retain(|e| {
            let before = dev.announced.insert(e.start_ms, e.change);
            before.is_none_or(|c| (c - e.change).abs() > 1e-9)
        });
        dev.trim_announced();
        Some(found)
    }

    /// Set a device's live fuel state from its series (`sensor` and `points` as
    /// [`super::fuel::series`] gives them) and return which of `events` (found in those points)
    /// to announce: those not announced yet (or whose change grew, as a stop goes on) that end
    /// at or after `since`, the earliest reading just stored. Older ones are history:
    /// remembered, not news (after a restart too).
    pub(crate) fn fuel_seed(
        &self,
        imei: &str,
        sensor: Option<u16>,
        points: &[Point],
        events: &[FuelEvent],
        since: i64,
    ) -> Vec<usize> {
        let mut all = self.fuel.lock().unwrap_or_else(|p| p.into_inner());
        let dev = all.entry(imei.to_string()).or_default();
        dev.tracker = Tracker::seed(sensor, points);
        let mut fresh = Vec::new();
        for (i, e) in events.iter().enumerate() {
            let before = dev.announced.insert(e.start_ms, e.change);
            if e.timestamp_ms >= since && before.is_none_or(|c| (c - e.change).abs() > 1e-9) {
                fresh.push(i);
            }
        }
        dev.trim_announced();
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_login_kicks_the_older_connection() {
        let hub = Hub::new();
        let (a, none) = hub.register("1", "10.0.0.1:1");
        assert_eq!(none, None);
        let (b, old) = hub.register("1", "10.0.0.2:2");
        assert_eq!(old.as_deref(), Some("10.0.0.1:1"));
        // The kick is stored as a permit: the old connection sees it at its next wait.
        assert!(futures_util::FutureExt::now_or_never(a.kick.notified()).is_some());
        assert!(!hub.unregister("1", a.id));
        assert!(hub.connected("1", 0, 0));
        assert!(hub.unregister("1", b.id));
        assert!(!hub.connected("1", 0, 0));
    }

    #[test]
    fn state_goes_with_the_device() {
        let hub = Hub::new();
        let (a, _) = hub.register("1", "127.0.0.1:1");
        hub.fuel_seed("1", None, &[], &[ev(10, 50.0, 12)], 100);
        assert_eq!(hub.sizes(), (1, 0, 1));
        assert!(hub.unregister("1", a.id));
        assert_eq!(hub.sizes(), (0, 0, 0));
        // UDP devices silent for longer than the freshness are swept as others arrive.
        let fresh = 1000;
        for i in 0..UDP_SWEEP_MIN - 1 {
            hub.udp_seen(&format!("old{i}"), 0, fresh);
            hub.fuel_seed(&format!("old{i}"), None, &[], &[], 0);
        }
        hub.udp_seen("new", 5000, fresh);
        assert_eq!(hub.sizes(), (0, 1, 0));
        assert!(hub.connected("new", 5000, fresh) && !hub.connected("old1", 5000, fresh));
        // The announced events of a device are trimmed to the latest.
        let events: Vec<_> = (0..100).map(|i| ev(i * 10, 20.0, i * 10 + 5)).collect();
        hub.fuel_seed("2", None, &[], &events, 0);
        let all = hub.fuel.lock().unwrap();
        let kept = &all["2"].announced;
        assert_eq!(kept.len(), ANNOUNCED_KEPT);
        assert!(kept.contains_key(&990) && !kept.contains_key(&0));
    }

    fn ev(start: i64, change: f64, end: i64) -> FuelEvent {
        FuelEvent {
            kind: fleetview::api::FuelEventKind::of(change),
            timestamp_ms: end,
            start_ms: start,
            before: 50.0,
            after: 50.0 + change,
            change,
            latitude: 0.0,
            longitude: 0.0,
        }
    }

    fn pt(t: i64, level: f64, stationary: bool) -> Point {
        Point {
            timestamp_ms: t,
            level,
            stationary,
            latitude: 0.0,
            longitude: 0.0,
        }
    }

    #[test]
    fn fuel_history_is_not_news_but_later_events_are() {
        let hub = Hub::new();
        // Ends before the batch that triggered the look: history.
        assert!(hub
            .fuel_seed("1", None, &[], &[ev(10, 50.0, 12)], 100)
            .is_empty());
        assert_eq!(
            hub.fuel_seed("1", None, &[], &[ev(10, 50.0, 12), ev(20, -30.0, 100)], 100),
            vec![1]
        );
        // Announced once, however often it is looked at.
        assert!(hub
            .fuel_seed("1", None, &[], &[ev(10, 50.0, 12), ev(20, -30.0, 100)], 90)
            .is_empty());
        // An event that grows (the stop goes on, the tank keeps filling) is announced again.
        assert_eq!(
            hub.fuel_seed("1", None, &[], &[ev(10, 50.0, 12), ev(20, -35.0, 110)], 110),
            vec![1]
        );
    }

    #[test]
    fn fuel_push_needs_a_seed_then_announces_each_stop_once_per_change() {
        let hub = Hub::new();
        assert!(hub
            .fuel_push("1", vec![(89, pt(0, 40.0, false))], 10.0)
            .is_none());
        hub.fuel_seed("1", Some(89), &[pt(0, 40.0, false)], &[], 0);
        // A stop over two batches: the last state of each batch, then nothing new.
        let got = hub
            .fuel_push(
                "1",
                vec![
                    (89, pt(1, 40.0, true)),
                    (89, pt(2, 60.0, true)),
                    (89, pt(3, 80.0, true)),
                ],
                10.0,
            )
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].start_ms, got[0].change), (0, 40.0));
        let got = hub
            .fuel_push(
                "1",
                vec![(89, pt(4, 80.0, true)), (89, pt(5, 80.0, false))],
                10.0,
            )
            .unwrap();
        assert!(got.is_empty());
        // Out of order: the state is dropped, the caller reads the series again.
        assert!(hub
            .fuel_push("1", vec![(89, pt(1, 80.0, false))], 10.0)
            .is_none());
        assert!(hub
            .fuel_push("1", vec![(89, pt(9, 80.0, false))], 10.0)
            .is_none());
    }
}
