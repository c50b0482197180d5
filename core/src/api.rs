//! The shapes of the HTTP API of `fleetview serve` (core/docs/http-api.md): a stored record
//! (`positions`, a device's `last_position`, the live `records` event), a device, a fuel series
//! and its events, a command, and the live `records`, `device` and `fuel` events (the live
//! `command` event is the command). The server serializes these types and the web UI
//! deserializes them, so both sides follow one definition.
//!
//! A stored record carries its IO elements as the type parameter `Io`: the server writes the
//! JSON model's `io` array (`Vec<IoJson>`, or the stored JSON as is), a reader that does not
//! need them reads [`serde::de::IgnoredAny`].

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::json::RecordJson;

mod reports;
pub use self::reports::{
    DistanceSource, EventJson, EventKind, FuelChange, GeofenceGeometry, GeofenceJson, Place, Stop,
    Trip,
};

/// A stored record: the JSON model's record and where it came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
// Field by field (not the container's `default`): the same for serde, and utoipa's
// derive cannot name `Self::default()` of a generic type.
#[serde(bound(deserialize = "Io: Deserialize<'de> + Default"))]
pub struct PositionJson<Io> {
    /// Row id in the server's store.
    #[serde(default)]
    pub id: i64,
    /// The record (its fields inline).
    #[serde(flatten)]
    pub record: RecordJson<Io>,
    /// The codec of the frame that carried it (`"8"`, `"8E"`, `"16"`).
    #[serde(default)]
    pub codec: String,
    /// `"tcp"` or `"udp"`.
    #[serde(default)]
    pub transport: String,
    /// When the server received it, milliseconds since 1970 UTC.
    #[serde(default)]
    pub received_ms: i64,
    /// The fuel level read from the record, when the device has a fuel sensor.
    #[serde(default)]
    pub fuel: Option<FuelReading>,
}

/// `GET /api/devices/{imei}/positions`: a device's stored records, ascending in time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
// Field by field (not the container's `default`): the same for serde, and utoipa's
// derive cannot name `Self::default()` of a generic type.
#[serde(bound(deserialize = "Io: Deserialize<'de> + Default"))]
pub struct Positions<Io> {
    /// The device.
    #[serde(default)]
    pub imei: String,
    /// The records.
    #[serde(default)]
    pub positions: Vec<PositionJson<Io>>,
}

/// A record's fuel level (the `fuel` of a stored record).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct FuelReading {
    /// The IO id of the fuel sensor.
    pub io_id: u16,
    /// Level, in `unit`.
    pub value: f64,
    /// Unit, where known.
    pub unit: Option<String>,
}

/// An item of `GET /api/devices`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
// Field by field (not the container's `default`): the same for serde, and utoipa's
// derive cannot name `Self::default()` of a generic type.
#[serde(bound(deserialize = "Io: Deserialize<'de> + Default"))]
pub struct DeviceJson<Io> {
    /// The IMEI (digits).
    #[serde(default)]
    pub imei: String,
    /// First contact, milliseconds since 1970 UTC.
    #[serde(default)]
    pub first_seen_ms: i64,
    /// Last contact, milliseconds since 1970 UTC.
    #[serde(default)]
    pub last_seen_ms: i64,
    /// `"tcp"` or `"udp"` (of the last contact).
    #[serde(default)]
    pub transport: Option<String>,
    /// Peer address of the last contact.
    #[serde(default)]
    pub address: Option<String>,
    /// Stored records.
    #[serde(default)]
    pub records: i64,
    /// Connected now (to this server or, clustered, to another node).
    #[serde(default)]
    pub connected: bool,
    /// The latest record with a valid fix, else the latest record, or `null`.
    #[serde(default)]
    pub last_position: Option<PositionJson<Io>>,
}

/// The live `records` event: the records of one device just committed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
// Field by field (not the container's `default`): the same for serde, and utoipa's
// derive cannot name `Self::default()` of a generic type.
#[serde(bound(deserialize = "Io: Deserialize<'de> + Default"))]
pub struct RecordsEvent<Io> {
    /// The device.
    #[serde(default)]
    pub imei: String,
    /// Ascending in time.
    #[serde(default)]
    pub records: Vec<PositionJson<Io>>,
}

/// The live `device` event: a login (or the first datagram after the idle timeout) or a
/// disconnect, which carries only `imei` and `connected`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct DeviceEvent {
    /// The IMEI (digits).
    pub imei: String,
    /// Connected (login) or not (disconnect).
    pub connected: bool,
    /// `"tcp"` or `"udp"`, at a login.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// Peer address, at a login.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Milliseconds since 1970 UTC, at a login.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen_ms: Option<i64>,
}

/// `GET /api/devices/{imei}/fuel`: a device's fuel levels and the refuels and drains in them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct FuelSeries {
    /// The device.
    pub imei: String,
    /// The IO id of the fuel sensor, `null` without readings.
    pub io_id: Option<u16>,
    /// The sensor's name in the IO catalogue.
    pub name: Option<String>,
    /// Unit of the levels.
    pub unit: Option<String>,
    /// The change that counts as an event, in `unit`.
    pub threshold: f64,
    /// Levels, ascending in time.
    pub levels: Vec<FuelLevel>,
    /// Refuels and drains, ascending in time.
    pub events: Vec<FuelEvent>,
}

/// One fuel level.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct FuelLevel {
    /// Milliseconds since 1970 UTC.
    pub timestamp_ms: i64,
    /// Level, in the series' unit.
    pub value: f64,
    /// Whether the vehicle stood still (speed 0, ignition off or the movement sensor at 0).
    pub stationary: bool,
}

/// Which way the level jumped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum FuelEventKind {
    /// A rise.
    #[default]
    Refuel,
    /// A fall.
    Drain,
}

impl FuelEventKind {
    /// A rise for a positive `change`, else a fall.
    pub fn of(change: f64) -> Self {
        if change > 0.0 {
            Self::Refuel
        } else {
            Self::Drain
        }
    }

    /// `refuel` or `drain`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refuel => "refuel",
            Self::Drain => "drain",
        }
    }
}

/// A sudden rise (refuel) or fall (drain) of the fuel level while the vehicle stood still.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct FuelEvent {
    /// `refuel` or `drain`.
    pub kind: FuelEventKind,
    /// When the stop ended (the last level of the stop): the moment the change is known.
    pub timestamp_ms: i64,
    /// The last level before the stop (or its first level when the series starts stopped).
    pub start_ms: i64,
    /// Level before.
    pub before: f64,
    /// Level after.
    pub after: f64,
    /// `after - before`: negative for a drain.
    pub change: f64,
    /// Where the vehicle stood.
    pub latitude: f64,
    /// Where the vehicle stood.
    pub longitude: f64,
}

/// The live `fuel` event: a refuel or drain found in newly committed records.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct FuelDetected {
    /// The device.
    pub imei: String,
    /// What was found.
    pub event: FuelEvent,
}

/// A command as `GET /api/commands/{id}` shows it (and the live `command` event). `R` is the
/// device's answer: the JSON model's command message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
// Field by field (not the container's `default`): the same for serde, and utoipa's
// derive cannot name `Self::default()` of a generic type.
#[serde(bound(deserialize = "R: Deserialize<'de> + Default"))]
pub struct CommandJson<R> {
    /// Command id.
    #[serde(default)]
    pub id: i64,
    /// The device.
    #[serde(default)]
    pub imei: String,
    /// `"12"`, `"13"`, `"14"` or `"15"`.
    #[serde(default)]
    pub codec: String,
    /// The payload as queued, when it was text.
    #[serde(default)]
    pub text: Option<String>,
    /// The payload as queued (lowercase hex), when it was bytes.
    #[serde(default)]
    pub hex: Option<String>,
    /// `queued` → `sent` → `answered`; or `failed`, or `unanswered`.
    #[serde(default)]
    pub status: String,
    /// Queued at, milliseconds since 1970 UTC.
    #[serde(default)]
    pub created_ms: i64,
    /// Sent at.
    #[serde(default)]
    pub sent_ms: Option<i64>,
    /// Answered at.
    #[serde(default)]
    pub answered_ms: Option<i64>,
    /// The device's answer.
    #[serde(default)]
    pub response: Option<R>,
    /// Why it failed or went unanswered.
    #[serde(default)]
    pub error: Option<String>,
}

impl<R> CommandJson<R> {
    /// Still waiting for the device (`queued` or `sent`).
    pub fn pending(&self) -> bool {
        matches!(self.status.as_str(), "queued" | "sent")
    }
}

impl DeviceEvent {
    /// A login over `transport` from `address`.
    pub fn login(imei: &str, transport: &str, address: String, last_seen_ms: i64) -> Self {
        Self {
            imei: imei.into(),
            connected: true,
            transport: Some(transport.into()),
            address: Some(address),
            last_seen_ms: Some(last_seen_ms),
        }
    }

    /// A disconnect.
    pub fn disconnect(imei: &str) -> Self {
        Self {
            imei: imei.into(),
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::IgnoredAny;

    #[test]
    fn a_disconnect_has_only_imei_and_connected() {
        let e = DeviceEvent::disconnect("356307042441013");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"imei":"356307042441013","connected":false}"#
        );
    }

    #[test]
    fn a_position_reads_back_without_its_io() {
        let p = PositionJson {
            id: 7,
            record: RecordJson {
                timestamp_ms: 1_700_000_000_000,
                time: "2023-11-14T22:13:20.000Z".into(),
                longitude: 25.1,
                latitude: 54.6,
                altitude: -3,
                valid: true,
                io: alloc::vec![1u8, 2],
                ..RecordJson::default()
            },
            codec: "8E".into(),
            transport: "tcp".into(),
            fuel: Some(FuelReading {
                io_id: 84,
                value: 12.5,
                unit: Some("l".into()),
            }),
            ..PositionJson::default()
        };
        let text = serde_json::to_string(&p).unwrap();
        assert!(text.starts_with(r#"{"id":7,"timestamp_ms":1700000000000,"time":"#));
        let back: PositionJson<IgnoredAny> = serde_json::from_str(&text).unwrap();
        assert_eq!(back.record.altitude, -3);
        assert_eq!(back.fuel, p.fuel);
        assert_eq!(back.codec, "8E");
    }
}
