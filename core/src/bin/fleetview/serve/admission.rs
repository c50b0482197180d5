//! Admission: which TCP connections the server holds when it is full.
//!
//! A real device sends its IMEI right after connecting, so a connection that has not logged in
//! is either a device one round trip away from logging in or a socket that will never say
//! anything. Such connections never keep a device out:
//! - at the connection limit, the oldest connection that has not logged in is closed to make
//!   room for the new one (only logged-in devices are never pushed out);
//! - one source address (an IPv6 /64) holds at most [`Admission::per_source`] connections
//!   that have not logged in; a new one beyond that closes the oldest of the same address.
//!   Devices behind one carrier NAT share an address but log in within a round trip, and
//!   logged-in connections do not count, so they all get in;
//! - each has a login deadline (enforced by the connection itself, [`super::listener`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Connection slots: a counter of the connections held and the queue of those that have not
/// logged in, oldest first.
pub(crate) struct Admission {
    state: Mutex<State>,
    /// Connections held at once.
    max: usize,
    /// Connections of one source address that have not logged in.
    per_source: usize,
}

#[derive(Default)]
struct State {
    held: usize,
    next: u64,
    /// Not logged in yet, by admission order (ids grow): id → (source, eviction signal).
    waiting: BTreeMap<u64, (Option<IpAddr>, Arc<Notify>)>,
    /// The waiting connections of each source address, oldest first.
    by_source: HashMap<IpAddr, VecDeque<u64>>,
}

impl State {
    /// Forget a waiting connection; its slot is free. Returns its eviction signal.
    fn remove(&mut self, id: u64) -> Option<Arc<Notify>> {
        let (source, evict) = self.waiting.remove(&id)?;
        self.held -= 1;
        if let Some(ip) = source {
            self.unlink(ip, id);
        }
        Some(evict)
    }

    fn unlink(&mut self, ip: IpAddr, id: u64) {
        if let Some(ids) = self.by_source.get_mut(&ip) {
            ids.retain(|&i| i != id);
            if ids.is_empty() {
                self.by_source.remove(&ip);
            }
        }
    }

    /// Close a waiting connection to make room: its slot is free at once, its task closes the
    /// socket when it next wakes.
    fn evict(&mut self, id: u64) {
        if let Some(evict) = self.remove(id) {
            evict.notify_one();
        }
    }
}

/// Why a connection was not admitted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Full;

/// What an admitted connection holds: its slot, released when dropped.
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    id: u64,
    logged_in: bool,
    /// Notified when the connection is closed to make room for another.
    pub(crate) evicted: Arc<Notify>,
}

impl Admission {
    pub(crate) fn new(max: usize, per_source: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::default()),
            max,
            per_source,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admit a new connection from `source` (`None` while unknown: behind a PROXY header).
    /// At the limit the oldest connection that has not logged in makes room; when every slot
    /// is held by a logged-in device, the new connection is refused.
    pub(crate) fn admit(self: &Arc<Self>, source: Option<IpAddr>) -> Result<Ticket, Full> {
        let mut s = self.lock();
        if s.held >= self.max {
            let oldest = s.waiting.keys().next().copied().ok_or(Full)?;
            s.evict(oldest);
        }
        s.held += 1;
        let id = s.next;
        s.next += 1;
        let evicted = Arc::new(Notify::new());
        s.waiting.insert(id, (None, evicted.clone()));
        drop(s);
        let ticket = Ticket {
            admission: self.clone(),
            id,
            logged_in: false,
            evicted,
        };
        if let Some(ip) = source {
            ticket.set_source(ip);
        }
        Ok(ticket)
    }

    /// Connections held, and how many of them have not logged in.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let s = self.lock();
        (s.held, s.waiting.len())
    }
}

impl Ticket {
    /// The connection's source address is known (at accept, or from its PROXY header): it
    /// counts against that address's cap, and the oldest waiting connection of the address is
    /// closed when the cap is exceeded.
    pub(crate) fn set_source(&self, ip: IpAddr) {
        let ip = source_key(ip);
        let a = &self.admission;
        let mut s = a.lock();
        let Some(entry) = s.waiting.get_mut(&self.id) else {
            return;
        };
        if let Some(old) = entry.0.replace(ip) {
            s.unlink(old, self.id);
        }
        let ids = s.by_source.entry(ip).or_default();
        ids.push_back(self.id);
        if ids.len() > a.per_source {
            if let Some(oldest) = ids.front().copied() {
                s.evict(oldest);
            }
        }
    }

    /// The device logged in: its slot can no longer be taken. False when the connection was
    /// closed to make room just before (it must close now).
    pub(crate) fn logged_in(&mut self) -> bool {
        if self.logged_in {
            return true;
        }
        let mut s = self.admission.lock();
        let Some((source, _)) = s.waiting.remove(&self.id) else {
            return false;
        };
        if let Some(ip) = source {
            s.unlink(ip, self.id);
        }
        self.logged_in = true;
        true
    }
}

/// What counts as one source: an IPv4 address, or an IPv6 /64 (a host, or a mobile device,
/// gets a whole /64 and can pick any address in it).
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut s = self.admission.lock();
        if self.logged_in {
            s.held -= 1;
        } else {
            // Still waiting: free the slot (an evicted connection's slot is already free).
            s.remove(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, n]))
    }

    fn was_evicted(t: &Ticket) -> bool {
        futures_util::FutureExt::now_or_never(t.evicted.notified()).is_some()
    }

    #[test]
    fn at_the_limit_the_oldest_waiting_connection_makes_room() {
        let a = Admission::new(3, 100);
        let mut device = a.admit(ip(1)).unwrap();
        assert!(device.logged_in());
        let idle1 = a.admit(ip(2)).unwrap();
        let idle2 = a.admit(ip(3)).unwrap();
        assert_eq!(a.counts(), (3, 2));
        let new = a.admit(ip(4)).unwrap();
        assert!(was_evicted(&idle1) && !was_evicted(&idle2) && !was_evicted(&device));
        assert_eq!(a.counts(), (3, 2));
        // The evicted connection's slot is already free: dropping it changes nothing.
        drop(idle1);
        assert_eq!(a.counts(), (3, 2));
        drop((idle2, new));
        assert_eq!(a.counts(), (1, 0));
        drop(device);
        assert_eq!(a.counts(), (0, 0));
    }

    #[test]
    fn logged_in_devices_are_never_pushed_out() {
        let a = Admission::new(2, 100);
        let mut d1 = a.admit(ip(1)).unwrap();
        let mut d2 = a.admit(ip(1)).unwrap();
        assert!(d1.logged_in() && d2.logged_in());
        assert_eq!(a.admit(ip(9)).err(), Some(Full));
        drop(d1);
        assert!(a.admit(ip(9)).is_ok());
    }

    #[test]
    fn one_address_holds_few_waiting_connections_but_any_number_of_devices() {
        let a = Admission::new(100, 2);
        // A carrier NAT: many devices from one address, each logging in at once.
        let mut devices = Vec::new();
        for _ in 0..10 {
            let mut t = a.admit(ip(1)).unwrap();
            assert!(t.logged_in());
            devices.push(t);
        }
        let w1 = a.admit(ip(1)).unwrap();
        let w2 = a.admit(ip(1)).unwrap();
        let other = a.admit(ip(2)).unwrap();
        let w3 = a.admit(ip(1)).unwrap();
        assert!(was_evicted(&w1));
        assert!(!was_evicted(&w2) && !was_evicted(&w3) && !was_evicted(&other));
        assert_eq!(a.counts(), (13, 3));
        assert!(devices.iter().all(|d| !was_evicted(d)));
    }

    #[test]
    fn an_ipv6_slash_64_is_one_source() {
        let a = Admission::new(10, 1);
        let t1 = a.admit(Some("2001:db8:1:2::1".parse().unwrap())).unwrap();
        let t2 = a
            .admit(Some("2001:db8:1:2:ffff::9".parse().unwrap()))
            .unwrap();
        let other = a.admit(Some("2001:db8:1:3::1".parse().unwrap())).unwrap();
        assert!(was_evicted(&t1) && !was_evicted(&t2) && !was_evicted(&other));
        assert_eq!(
            source_key("::ffff:10.0.0.1".parse().unwrap()),
            IpAddr::from([10, 0, 0, 1])
        );
    }

    #[test]
    fn an_evicted_connection_cannot_log_in_and_a_proxy_source_counts_once_known() {
        let a = Admission::new(1, 1);
        let mut first = a.admit(None).unwrap();
        let _second = a.admit(None).unwrap();
        assert!(!first.logged_in());
        drop(first);
        assert_eq!(a.counts(), (1, 1));

        let a = Admission::new(10, 1);
        let t1 = a.admit(None).unwrap();
        let t2 = a.admit(None).unwrap();
        t1.set_source(ip(7).unwrap());
        t2.set_source(ip(7).unwrap());
        assert!(was_evicted(&t1) && !was_evicted(&t2));
    }
}
