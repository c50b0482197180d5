//! Geofence enter and exit events (sans-IO: the writer reads and writes, this module decides).
//!
//! A device's events are a function of its records with a fix, in time order (then by hash),
//! and of the geofences: at each record, for each geofence created at or before the record's
//! time, an `enter` when the record is inside and the record before it was outside, an `exit`
//! the other way round. The device's first record has no record before it and makes no event
//! (nobody knows where it was before); a geofence does not look at records timed before its
//! creation (a depot drawn today makes no history of past visits), but the record just
//! before its creation tells where the device was then.
//!
//! Records come late and out of order (devices resend buffered data after a reconnect), so a
//! batch is folded in by recomputing only what it can change: a new record changes the event
//! at itself and at the record after it. The writer reads the *window* — the last record
//! before the batch's earliest, every record from the earliest to the latest of the batch,
//! and the first record after — and [`recompute`] gives the events of that window against
//! those stored for it: which to delete and which to insert. Whatever order the records
//! arrive in, the stored events end up the same as for records that came in order.

use fleetview::api::EventKind;

use super::geometry::Shape;

/// A geofence as the writer holds it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Fence {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) shape: Shape,
    /// Records timed before this get no events for it.
    pub(crate) created_ms: i64,
}

/// A record with a fix: what geofence events need of it. Ordered by (time, hash).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Fix {
    pub(crate) timestamp_ms: i64,
    pub(crate) hash: i64,
    pub(crate) latitude: f64,
    pub(crate) longitude: f64,
}

impl Fix {
    pub(crate) fn key(&self) -> (i64, i64) {
        (self.timestamp_ms, self.hash)
    }
}

/// An enter or exit event at a record.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Crossing {
    pub(crate) fence: i64,
    pub(crate) kind: EventKind,
    pub(crate) at: Fix,
}

impl Crossing {
    /// What identifies a stored event: geofence, kind, record time and hash.
    pub(crate) fn key(&self) -> (i64, EventKind, i64, i64) {
        (self.fence, self.kind, self.at.timestamp_ms, self.at.hash)
    }
}

/// The events at `fixes[1..]` (sorted), each against the fix before it.
pub(crate) fn crossings(fixes: &[Fix], fences: &[Fence]) -> Vec<Crossing> {
    let mut out = Vec::new();
    for f in fences {
        let mut inside = None;
        for fix in fixes {
            let now = f.shape.contains(fix.latitude, fix.longitude);
            if let Some(before) = inside {
                if before != now && fix.timestamp_ms >= f.created_ms {
                    out.push(Crossing {
                        fence: f.id,
                        kind: if now {
                            EventKind::GeofenceEnter
                        } else {
                            EventKind::GeofenceExit
                        },
                        at: *fix,
                    });
                }
            }
            inside = Some(now);
        }
    }
    out.sort_by_key(|c| (c.at.key(), c.fence));
    out
}

/// What the window's events change among those stored.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Change<Id> {
    /// Stored events the window no longer has.
    pub(crate) delete: Vec<Id>,
    /// Events of the window not stored yet.
    pub(crate) insert: Vec<Crossing>,
}

/// Fold new records into a device's stored events. `window`: the fixes around the new ones as
/// the module doc says (sorted, new ones included; the first one is the record before the
/// earliest new one, unless the device has none). `stored`: the device's stored events at
/// records from the earliest new fix to the window's last (inclusive), with their id.
/// `earliest`: the earliest new fix's key.
pub(crate) fn recompute<Id: Copy>(
    window: &[Fix],
    earliest: (i64, i64),
    fences: &[Fence],
    stored: &[(Id, Crossing)],
) -> Change<Id> {
    let Some(end) = window.last().map(Fix::key) else {
        return Change {
            delete: Vec::new(),
            insert: Vec::new(),
        };
    };
    let fresh = crossings(window, fences);
    let in_range = |k: (i64, i64)| k >= earliest && k <= end;
    let delete = stored
        .iter()
        .filter(|(_, s)| in_range(s.at.key()) && !fresh.iter().any(|c| c.key() == s.key()))
        .map(|(id, _)| *id)
        .collect();
    let insert = fresh
        .into_iter()
        .filter(|c| in_range(c.at.key()) && !stored.iter().any(|(_, s)| s.key() == c.key()))
        .collect();
    Change { delete, insert }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn fix(min: i64, east: f64) -> Fix {
        Fix {
            timestamp_ms: min * 60_000,
            hash: min * 7,
            latitude: 54.0,
            longitude: 25.0 + east / 1000.0,
        }
    }

    /// A circle of 150 m around 25.005°E, 54°N (0.001° of longitude is 65 m there).
    fn depot() -> Fence {
        Fence {
            id: 1,
            name: "Depot".into(),
            shape: Shape::Circle {
                lat: 54.0,
                lon: 25.005,
                radius_m: 150.0,
            },
            created_ms: 0,
        }
    }

    /// Eastward through the depot, back west through it: two enters, two exits.
    fn route() -> Vec<Fix> {
        let east = [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 8.0, 6.0, 4.0, 2.0, 0.0];
        east.iter()
            .enumerate()
            .map(|(m, e)| fix(m as i64, *e))
            .collect()
    }

    fn summary(c: &[Crossing]) -> Vec<(EventKind, i64)> {
        c.iter()
            .map(|c| (c.kind, c.at.timestamp_ms / 60_000))
            .collect()
    }

    #[test]
    fn a_geofence_crossed_twice() {
        use EventKind::{GeofenceEnter as In, GeofenceExit as Out};
        let c = crossings(&route(), &[depot()]);
        // Inside: 4 and 6 thousandths east (65 m from the centre; 2 and 8 are 196 m away):
        // minutes 2-3 and 7-8.
        assert_eq!(summary(&c), [(In, 2), (Out, 4), (In, 7), (Out, 9)]);
        // A geofence created at minute 5 ignores what came before, but knows where the device
        // was at minute 5.
        let late = Fence {
            created_ms: 5 * 60_000,
            ..depot()
        };
        assert_eq!(summary(&crossings(&route(), &[late])), [(In, 7), (Out, 9)]);
        // Starting inside makes no event.
        assert_eq!(
            summary(&crossings(&route()[3..], &[depot()])),
            [(Out, 4), (In, 7), (Out, 9)]
        );
    }

    /// Stored events built batch by batch, whatever the arrival order, are those of the whole
    /// series in order.
    #[test]
    fn batches_in_any_order_give_the_events_of_the_series() {
        let all = route();
        let want = crossings(&all, &[depot()]);
        let orders: Vec<Vec<Vec<usize>>> = vec![
            (0..11).map(|i| vec![i]).collect(),
            vec![vec![10, 9, 8], vec![0, 1], vec![5], vec![2, 3, 4, 6, 7]],
            vec![vec![3], vec![7], vec![1, 9], vec![0, 2, 4, 5, 6, 8, 10]],
            (0..11).rev().map(|i| vec![i]).collect(),
        ];
        for order in orders {
            let mut records: BTreeMap<(i64, i64), Fix> = BTreeMap::new();
            let mut stored: BTreeMap<u32, Crossing> = BTreeMap::new();
            let mut next_id = 0;
            for batch in &order {
                let new: Vec<Fix> = batch.iter().map(|&i| all[i]).collect();
                for f in &new {
                    records.insert(f.key(), *f);
                }
                let earliest = new.iter().map(Fix::key).min().unwrap();
                let latest = new.iter().map(Fix::key).max().unwrap();
                // The window as the writer reads it.
                let mut window: Vec<Fix> = records
                    .range(..earliest)
                    .next_back()
                    .map(|(_, f)| *f)
                    .into_iter()
                    .collect();
                window.extend(records.range(earliest..=latest).map(|(_, f)| *f));
                window.extend(
                    records
                        .range((
                            std::ops::Bound::Excluded(latest),
                            std::ops::Bound::Unbounded,
                        ))
                        .next()
                        .map(|(_, f)| *f),
                );
                let end = window.last().unwrap().key();
                let in_window: Vec<(u32, Crossing)> = stored
                    .iter()
                    .filter(|(_, c)| c.at.key() >= earliest && c.at.key() <= end)
                    .map(|(id, c)| (*id, c.clone()))
                    .collect();
                let change = recompute(&window, earliest, &[depot()], &in_window);
                for id in change.delete {
                    stored.remove(&id);
                }
                for c in change.insert {
                    stored.insert(next_id, c);
                    next_id += 1;
                }
            }
            let mut got: Vec<Crossing> = stored.into_values().collect();
            got.sort_by_key(|c| (c.at.key(), c.fence));
            assert_eq!(got, want, "arrival order {order:?}");
        }
    }
}
