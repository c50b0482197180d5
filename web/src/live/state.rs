//! The live view's state: devices with their recent tracks, the selected device's fuel and
//! commands, and the connection to the server. Pure; the component performs the calls.

use std::collections::BTreeMap;
use std::rc::Rc;

use yew::Reducible;

use super::api::{ApiError, Command, Device, Fuel, FuelEvent, Position};

/// Points kept per device track (the map stays responsive with many devices).
pub const TRACK_LIMIT: usize = 500;

/// Where the connection to the server stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// First `GET /api/devices` under way.
    Probing,
    /// No API here (static hosting): the reason.
    NoServer(String),
    /// 401: ask for the token.
    NeedToken,
    /// Devices listed, event stream open.
    Live,
    /// The event stream dropped; the browser reconnects.
    Reconnecting,
}

/// A device as the view keeps it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeviceView {
    pub info: Device,
    /// Positions with a fix, ascending time, at most [`TRACK_LIMIT`].
    pub track: Vec<Position>,
}

impl DeviceView {
    /// The newest position with a fix.
    pub fn position(&self) -> Option<&Position> {
        self.track
            .last()
            .or(self.info.last_position.as_ref().filter(|p| p.record.valid))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct LiveState {
    pub status: Status,
    pub devices: BTreeMap<String, DeviceView>,
    pub selected: Option<String>,
    /// Fuel of the selected device.
    pub fuel: Option<Fuel>,
    /// Commands sent from this page, newest first.
    pub commands: Vec<Command>,
    /// The last error of a call, shown under the panel.
    pub error: Option<String>,
    /// Bumped when the map should fit all devices (first load).
    pub fit: bool,
    /// Bumped by each live `geofence` event of the selected device (its reports read again).
    pub report_tick: u64,
}

impl Default for LiveState {
    fn default() -> Self {
        Self {
            status: Status::Probing,
            devices: BTreeMap::new(),
            selected: None,
            fuel: None,
            commands: Vec::new(),
            error: None,
            fit: false,
            report_tick: 0,
        }
    }
}

pub enum LiveAction {
    /// Result of `GET /api/devices`.
    Devices(Result<Vec<Device>, ApiError>),
    StreamOpen,
    StreamError,
    /// SSE `records`.
    Records {
        imei: String,
        records: Vec<Position>,
    },
    /// SSE `device`.
    DeviceUpdate(Device),
    /// SSE `fuel`.
    FuelEvent {
        imei: String,
        event: FuelEvent,
    },
    /// SSE `geofence`: an enter or exit event of this device.
    GeofenceEvent {
        imei: String,
    },
    /// SSE `command` or a poll answer or a POST answer.
    CommandUpdate(Command),
    Select(String),
    /// `GET positions` answer.
    Track(String, Vec<Position>),
    /// `GET fuel` answer.
    FuelLoaded(String, Fuel),
    Error(String),
}

fn merge_track(track: &mut Vec<Position>, new: impl IntoIterator<Item = Position>) {
    for p in new.into_iter().filter(|p| p.record.valid) {
        if track
            .last()
            .map(|l| p.record.timestamp_ms >= l.record.timestamp_ms)
            .unwrap_or(true)
        {
            if track.last().map(|l| l.record.timestamp_ms) != Some(p.record.timestamp_ms) {
                track.push(p);
            }
        } else {
            let at = track.partition_point(|q| q.record.timestamp_ms < p.record.timestamp_ms);
            if track.get(at).map(|q| q.record.timestamp_ms) != Some(p.record.timestamp_ms) {
                track.insert(at, p);
            }
        }
    }
    if track.len() > TRACK_LIMIT {
        track.drain(..track.len() - TRACK_LIMIT);
    }
}

impl Reducible for LiveState {
    type Action = LiveAction;

    fn reduce(self: Rc<Self>, action: LiveAction) -> Rc<Self> {
        let mut s = (*self).clone();
        s.fit = false;
        match action {
            LiveAction::Devices(Ok(list)) => {
                for d in list {
                    let entry = s.devices.entry(d.imei.clone()).or_default();
                    if let Some(p) = d.last_position.clone() {
                        merge_track(&mut entry.track, [p]);
                    }
                    entry.info = d;
                }
                if s.status == Status::Probing {
                    s.fit = true;
                }
                if s.status != Status::Reconnecting {
                    s.status = Status::Live;
                }
                if s.selected.is_none() {
                    s.selected = s.devices.keys().next().cloned();
                }
            }
            LiveAction::Devices(Err(ApiError::Unauthorized)) => s.status = Status::NeedToken,
            LiveAction::Devices(Err(ApiError::NoServer(why))) => s.status = Status::NoServer(why),
            LiveAction::Devices(Err(e)) => s.status = Status::NoServer(e.to_string()),
            LiveAction::StreamOpen => {
                if matches!(s.status, Status::Reconnecting | Status::Probing) {
                    s.status = Status::Live;
                }
            }
            LiveAction::StreamError => {
                if s.status == Status::Live {
                    s.status = Status::Reconnecting;
                }
            }
            LiveAction::Records { imei, records } => {
                let entry = s.devices.entry(imei.clone()).or_insert_with(|| DeviceView {
                    info: Device {
                        imei,
                        ..Device::default()
                    },
                    track: Vec::new(),
                });
                if let Some(last) = records.iter().max_by_key(|p| p.record.timestamp_ms) {
                    entry.info.last_seen_ms = Some(
                        entry
                            .info
                            .last_seen_ms
                            .unwrap_or(0)
                            .max(last.record.timestamp_ms),
                    );
                    entry.info.last_position = Some(last.clone());
                    entry.info.records = entry.info.records.map(|n| n + records.len() as u64);
                }
                merge_track(&mut entry.track, records);
            }
            LiveAction::DeviceUpdate(d) => {
                let entry = s.devices.entry(d.imei.clone()).or_default();
                let old = std::mem::take(&mut entry.info);
                entry.info = Device {
                    imei: d.imei,
                    connected: d.connected.or(old.connected),
                    last_seen_ms: d.last_seen_ms.or(old.last_seen_ms),
                    records: d.records.or(old.records),
                    last_position: d.last_position.or(old.last_position),
                };
                if s.selected.is_none() {
                    s.selected = Some(entry.info.imei.clone());
                }
            }
            LiveAction::FuelEvent { imei, event } => {
                if s.selected.as_deref() == Some(imei.as_str()) {
                    s.fuel.get_or_insert_with(Fuel::default).events.push(event);
                }
            }
            LiveAction::GeofenceEvent { imei } => {
                if s.selected.as_deref() == Some(imei.as_str()) {
                    s.report_tick += 1;
                }
            }
            LiveAction::CommandUpdate(c) => {
                match s.commands.iter_mut().find(|o| o.id == c.id) {
                    Some(o) => *o = c,
                    None => s.commands.insert(0, c),
                }
                s.commands.truncate(20);
            }
            LiveAction::Select(imei) => {
                if s.selected.as_deref() != Some(imei.as_str()) {
                    s.selected = Some(imei);
                    s.fuel = None;
                }
            }
            LiveAction::Track(imei, positions) => {
                if let Some(d) = s.devices.get_mut(&imei) {
                    merge_track(&mut d.track, positions);
                }
            }
            LiveAction::FuelLoaded(imei, fuel) => {
                if s.selected.as_deref() == Some(imei.as_str()) {
                    s.fuel = Some(fuel);
                }
            }
            LiveAction::Error(e) => s.error = Some(e),
        }
        Rc::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(t: u64, lat: f64) -> Position {
        Position {
            record: fleetview::json::RecordJson {
                timestamp_ms: t,
                latitude: lat,
                longitude: 1.0,
                satellites: 5,
                valid: true,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn reduce(s: LiveState, a: LiveAction) -> LiveState {
        (*Rc::new(s).reduce(a)).clone()
    }

    #[test]
    fn records_move_the_device_and_extend_its_track_in_time_order() {
        let s = reduce(
            LiveState::default(),
            LiveAction::Devices(Ok(vec![Device {
                imei: "1".into(),
                ..Default::default()
            }])),
        );
        assert_eq!(s.status, Status::Live);
        assert_eq!(s.selected.as_deref(), Some("1"));
        let s = reduce(
            s,
            LiveAction::Records {
                imei: "1".into(),
                records: vec![pos(30, 3.0), pos(10, 1.0)],
            },
        );
        let s = reduce(
            s,
            LiveAction::Records {
                imei: "1".into(),
                records: vec![pos(20, 2.0), pos(20, 2.0)],
            },
        );
        let d = &s.devices["1"];
        assert_eq!(
            d.track
                .iter()
                .map(|p| p.record.timestamp_ms)
                .collect::<Vec<_>>(),
            [10, 20, 30]
        );
        assert_eq!(d.position().unwrap().record.latitude, 3.0);
    }

    #[test]
    fn no_server_and_token_states() {
        let s = reduce(
            LiveState::default(),
            LiveAction::Devices(Err(ApiError::NoServer("404".into()))),
        );
        assert_eq!(s.status, Status::NoServer("404".into()));
        let s = reduce(
            LiveState::default(),
            LiveAction::Devices(Err(ApiError::Unauthorized)),
        );
        assert_eq!(s.status, Status::NeedToken);
    }

    #[test]
    fn positions_without_fix_are_not_tracked() {
        let mut p = pos(5, 0.0);
        p.record.valid = false;
        let s = reduce(
            LiveState::default(),
            LiveAction::Records {
                imei: "2".into(),
                records: vec![p],
            },
        );
        assert!(s.devices["2"].track.is_empty());
        assert!(s.devices["2"].position().is_none());
    }
}
