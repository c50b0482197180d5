//! What the tasks share: the device connections (to wake one when a command is queued for it),
//! the live event bus behind `GET /api/live`, and the fuel events already announced.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::{broadcast, Notify};

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

#[derive(Default)]
struct Devices {
    tcp: HashMap<String, (u64, Arc<Notify>, Arc<Notify>)>,
    /// Last datagram per UDP device, ms since 1970.
    udp: HashMap<String, i64>,
}

/// Shared state of the listeners and the API.
pub(crate) struct Hub {
    live: broadcast::Sender<Arc<Live>>,
    devices: Mutex<Devices>,
    next_id: AtomicU64,
    /// Fuel events seen per device: start of the event → change.
    fuel: Mutex<HashMap<String, HashMap<i64, f64>>>,
}

impl Hub {
    pub(crate) fn new() -> Self {
        Self {
            live: broadcast::channel(4096).0,
            devices: Mutex::new(Devices::default()),
            next_id: AtomicU64::new(1),
            fuel: Mutex::new(HashMap::new()),
        }
    }

    fn with_devices<T>(&self, f: impl FnOnce(&mut Devices) -> T) -> T {
        f(&mut self.devices.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Send a live event to every `/api/live` subscriber (none listening is fine).
    pub(crate) fn publish(&self, event: &'static str, data: &Value) {
        let _ = self.live.send(Arc::new(Live {
            event,
            data: data.to_string(),
        }));
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Live>> {
        self.live.subscribe()
    }

    /// Register a logged-in TCP device. A previous connection of the same IMEI is kicked.
    pub(crate) fn register(&self, imei: &str) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let wake = Arc::new(Notify::new());
        let kick = Arc::new(Notify::new());
        let old = self.with_devices(|d| {
            d.tcp
                .insert(imei.to_string(), (id, wake.clone(), kick.clone()))
        });
        if let Some((_, _, old_kick)) = old {
            old_kick.notify_one();
        }
        Registration { id, wake, kick }
    }

    /// Remove a connection; false when a newer connection of the device replaced it.
    pub(crate) fn unregister(&self, imei: &str, id: u64) -> bool {
        self.with_devices(|d| match d.tcp.get(imei) {
            Some((current, _, _)) if *current == id => {
                d.tcp.remove(imei);
                true
            }
            _ => false,
        })
    }

    /// Wake the device's connection: a command waits for it.
    pub(crate) fn wake(&self, imei: &str) {
        if let Some((_, wake, _)) = self.with_devices(|d| d.tcp.get(imei).cloned()) {
            wake.notify_one();
        }
    }

    /// Note a datagram; true when the device was not seen within `fresh_ms` (it came online).
    pub(crate) fn udp_seen(&self, imei: &str, now_ms: i64, fresh_ms: i64) -> bool {
        self.with_devices(|d| {
            let before = d.udp.insert(imei.to_string(), now_ms);
            before.is_none_or(|t| now_ms - t > fresh_ms)
        })
    }

    /// Connected over TCP now, or a datagram within `fresh_ms`.
    pub(crate) fn connected(&self, imei: &str, now_ms: i64, fresh_ms: i64) -> bool {
        self.with_devices(|d| {
            d.tcp.contains_key(imei) || d.udp.get(imei).is_some_and(|&t| now_ms - t <= fresh_ms)
        })
    }

    /// The fuel events among `events` (start, change, end) to announce: those not announced yet
    /// (or whose change grew, as a stop goes on) that end at or after `since`, the earliest
    /// record just stored. Older ones are history: remembered, not news (after a restart too).
    pub(crate) fn new_fuel_events(
        &self,
        imei: &str,
        events: &[(i64, f64, i64)],
        since: i64,
    ) -> Vec<usize> {
        let mut all = self.fuel.lock().unwrap_or_else(|p| p.into_inner());
        let known = all.entry(imei.to_string()).or_default();
        let mut fresh = Vec::new();
        for (i, &(start, change, end)) in events.iter().enumerate() {
            let before = known.insert(start, change);
            if end >= since && before.is_none_or(|c| (c - change).abs() > 1e-9) {
                fresh.push(i);
            }
        }
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_login_kicks_the_older_connection() {
        let hub = Hub::new();
        let a = hub.register("1");
        let b = hub.register("1");
        // The kick is stored as a permit: the old connection sees it at its next wait.
        assert!(futures_util::FutureExt::now_or_never(a.kick.notified()).is_some());
        assert!(!hub.unregister("1", a.id));
        assert!(hub.connected("1", 0, 0));
        assert!(hub.unregister("1", b.id));
        assert!(!hub.connected("1", 0, 0));
    }

    #[test]
    fn fuel_history_is_not_news_but_later_events_are() {
        let hub = Hub::new();
        // Ends before the batch that triggered the look: history.
        assert!(hub.new_fuel_events("1", &[(10, 50.0, 12)], 100).is_empty());
        assert_eq!(
            hub.new_fuel_events("1", &[(10, 50.0, 12), (20, -30.0, 100)], 100),
            vec![1]
        );
        // Announced once, however often it is looked at.
        assert!(hub
            .new_fuel_events("1", &[(10, 50.0, 12), (20, -30.0, 100)], 90)
            .is_empty());
        // An event that grows (the stop goes on, the tank keeps filling) is announced again.
        assert_eq!(
            hub.new_fuel_events("1", &[(10, 50.0, 12), (20, -35.0, 110)], 110),
            vec![1]
        );
    }
}
