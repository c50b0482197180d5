//! The TLV sensor lists: advanced BLE beacon data (IO 548), the BLE sensor lists (10828,
//! 10829, 10831) and the EYE sensor list (11317).
//!
//! Layout: a header byte (protocol version), then for each beacon a length byte and that many
//! bytes of parameters, each `id (u8) · length (u8) · value`. Parameter 2 holds the beacon's
//! data: in IO 548 the raw BLE advertisement (in which an EYE sensor's manufacturer data,
//! company id 0x089A version 01, carries the EYE flags), in the other lists the EYE flags byte
//! and the values it announces ([`EyeData`]). Unknown parameter ids are kept with their bytes.

use alloc::string::String;
use alloc::vec::Vec;

use super::{item_index, CompositeError, CompositeProblem, Cursor, PieceKind};

/// What parameter 2 of a list holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SensorListKind {
    /// IO 548: the raw advertisement.
    Advanced,
    /// IOs 10828, 10829, 10831, 11317: the EYE flags and values.
    Eye,
}

/// A decoded sensor list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SensorList {
    /// The first byte (protocol version).
    pub header: u8,
    /// The beacons, each a list of parameters.
    pub sensors: Vec<Sensor>,
}

/// One beacon of a sensor list: its parameters in wire order.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Sensor {
    /// The parameters.
    pub parameters: Vec<Parameter>,
}

/// One parameter of a sensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parameter {
    /// 0: signal strength, dBm.
    Rssi(i8),
    /// 1: the beacon's id (iBeacon UUID, major and minor; Eddystone namespace and instance).
    Id(Vec<u8>),
    /// 2 in IO 548: the raw advertisement.
    Advertisement(Advertisement),
    /// 2 in the EYE lists: the EYE flags and values.
    Eye(EyeData),
    /// 5: the beacon's name.
    Name(String),
    /// 6: temperature, hundredths of °C.
    Temperature(i16),
    /// 7: relative humidity, %.
    Humidity(u8),
    /// 8: magnet detected (0/1).
    Magnet(u8),
    /// 9: moving (0/1).
    Movement(u8),
    /// 10: movement count.
    MovementCount(u16),
    /// 11: pitch, degrees.
    Pitch(i8),
    /// 12: roll, degrees.
    Roll(i16),
    /// 13: low battery (0/1).
    LowBattery(u8),
    /// 14: battery voltage, mV.
    BatteryVoltage(u16),
    /// 15: MAC address.
    Mac([u8; 6]),
    /// 16: magnet trigger count.
    MagnetCount(u16),
    /// Any other id, with its bytes.
    Unknown {
        /// The parameter id.
        id: u8,
        /// Its value.
        value: Vec<u8>,
    },
}

/// A raw BLE advertisement (advertising data structures: length, AD type, data).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advertisement(pub Vec<u8>);

/// What an EYE sensor announces with its flags byte: bit 0 temperature (i16, hundredths of
/// °C), bit 1 humidity (u8, %), bit 2 magnet sensor present with bit 3 its state, bit 4
/// movement (u16: bit 15 moving, bits 0–14 the count), bit 5 angle (pitch i8, roll i16,
/// degrees), bit 6 low battery, bit 7 battery (u8: mV = 2000 + 10 × value). Values follow the
/// flags in bit order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct EyeData {
    /// Hundredths of °C.
    pub temperature: Option<i16>,
    /// Relative humidity, %.
    pub humidity: Option<u8>,
    /// The magnet sensor's state, when the sensor has one.
    pub magnet: Option<bool>,
    /// The movement word: bit 15 moving, bits 0–14 the count.
    pub movement: Option<u16>,
    /// Pitch and roll, degrees.
    pub angle: Option<(i8, i16)>,
    /// The battery is low.
    pub low_battery: bool,
    /// The battery byte (mV = 2000 + 10 × value).
    pub battery: Option<u8>,
}

/// Teltonika's Bluetooth company id, as it appears (little-endian) in manufacturer data.
const TELTONIKA_COMPANY: [u8; 2] = [0x9a, 0x08];
/// AD type of manufacturer-specific data.
const AD_MANUFACTURER: u8 = 0xff;

impl SensorList {
    pub(crate) fn read(
        c: &mut Cursor<'_, '_>,
        kind: SensorListKind,
    ) -> Result<Self, CompositeError> {
        let header = c.u8()?;
        c.mark(0, PieceKind::SensorListHeader, None);
        let mut sensors = Vec::new();
        while c.left() > 0 {
            let item = item_index(sensors.len());
            let at = c.pos();
            let len = usize::from(c.u8()?);
            if len > c.left() {
                return Err(c.error_at(
                    at,
                    CompositeProblem::CompositeLengthOverrun {
                        length: len,
                        available: c.left(),
                    },
                ));
            }
            c.mark(at, PieceKind::SensorLength, item);
            let end = c.pos() + len;
            let mut sensor = Sensor::default();
            while c.pos() < end {
                let start = c.pos();
                sensor.parameters.push(Parameter::read(c, end, kind)?);
                c.mark(start, PieceKind::SensorParameter, item);
            }
            sensors.push(sensor);
        }
        Ok(Self { header, sensors })
    }

    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(self.header);
        for s in &self.sensors {
            let at = out.len();
            out.push(0);
            for p in &s.parameters {
                p.encode_into(out);
            }
            // A sensor holds at most 255 bytes; the encoder of generated values keeps to that.
            out[at] = u8::try_from(out.len() - at - 1).unwrap_or(u8::MAX);
        }
    }

    /// Decode a list of `kind` alone.
    pub fn decode(value: &[u8], kind: SensorListKind) -> Result<Self, CompositeError> {
        Self::read(&mut Cursor::new(value, None), kind)
    }
}

impl Parameter {
    /// The parameter's id on the wire.
    pub fn id(&self) -> u8 {
        match self {
            Self::Rssi(_) => 0,
            Self::Id(_) => 1,
            Self::Advertisement(_) | Self::Eye(_) => 2,
            Self::Name(_) => 5,
            Self::Temperature(_) => 6,
            Self::Humidity(_) => 7,
            Self::Magnet(_) => 8,
            Self::Movement(_) => 9,
            Self::MovementCount(_) => 10,
            Self::Pitch(_) => 11,
            Self::Roll(_) => 12,
            Self::LowBattery(_) => 13,
            Self::BatteryVoltage(_) => 14,
            Self::Mac(_) => 15,
            Self::MagnetCount(_) => 16,
            Self::Unknown { id, .. } => *id,
        }
    }

    /// Its name for people: `"temperature"`.
    pub fn name(id: u8) -> &'static str {
        match id {
            0 => "RSSI",
            1 => "beacon id",
            2 => "beacon data",
            5 => "name",
            6 => "temperature",
            7 => "humidity",
            8 => "magnet",
            9 => "movement",
            10 => "movement count",
            11 => "pitch",
            12 => "roll",
            13 => "low battery",
            14 => "battery voltage",
            15 => "MAC address",
            16 => "magnet trigger count",
            _ => "unknown parameter",
        }
    }

    /// Read one parameter ending at or before `end`.
    fn read(
        c: &mut Cursor<'_, '_>,
        end: usize,
        kind: SensorListKind,
    ) -> Result<Self, CompositeError> {
        let at = c.pos();
        if end - at < 2 {
            return Err(c.error_at(
                at,
                CompositeProblem::CompositeTruncated {
                    needed: 2,
                    available: end - at,
                },
            ));
        }
        let id = c.u8()?;
        let len_at = c.pos();
        let len = usize::from(c.u8()?);
        if len > end - c.pos() {
            return Err(c.error_at(
                len_at,
                CompositeProblem::CompositeLengthOverrun {
                    length: len,
                    available: end - c.pos(),
                },
            ));
        }
        let v = c.take(len)?;
        Self::from_value(id, v, kind)
            .ok_or_else(|| {
                c.error_at(
                    at,
                    CompositeProblem::CompositeBadParameter {
                        parameter: id,
                        length: len,
                    },
                )
            })?
            .map_err(|(offset, problem)| c.error_at(len_at + 1 + offset, problem))
    }

    /// The parameter `id` with value `v`; `None` when its length does not fit its type, an
    /// error (offset in `v`) for a malformed value of the right length.
    #[allow(clippy::type_complexity)]
    fn from_value(
        id: u8,
        v: &[u8],
        kind: SensorListKind,
    ) -> Option<Result<Self, (usize, CompositeProblem)>> {
        let u16_of = |v: &[u8]| -> Option<u16> { Some(u16::from_be_bytes(v.try_into().ok()?)) };
        let byte = |v: &[u8]| -> Option<u8> { (v.len() == 1).then(|| v[0]) };
        Some(Ok(match id {
            0 => Self::Rssi(byte(v)? as i8),
            1 => Self::Id(v.to_vec()),
            2 => match kind {
                SensorListKind::Advanced => Self::Advertisement(Advertisement(v.to_vec())),
                SensorListKind::Eye => match EyeData::decode(v) {
                    Ok(eye) => Self::Eye(eye),
                    Err(e) => return Some(Err((e.offset, e.problem))),
                },
            },
            5 => match core::str::from_utf8(v) {
                Ok(s) => Self::Name(String::from(s)),
                Err(e) => {
                    let at = e.valid_up_to();
                    let problem = CompositeProblem::CompositeNotText { byte: v[at] };
                    return Some(Err((at, problem)));
                }
            },
            6 => Self::Temperature(u16_of(v)? as i16),
            7 => Self::Humidity(byte(v)?),
            8 => Self::Magnet(byte(v)?),
            9 => Self::Movement(byte(v)?),
            10 => Self::MovementCount(u16_of(v)?),
            11 => Self::Pitch(byte(v)? as i8),
            12 => Self::Roll(u16_of(v)? as i16),
            13 => Self::LowBattery(byte(v)?),
            14 => Self::BatteryVoltage(u16_of(v)?),
            15 => Self::Mac(v.try_into().ok()?),
            16 => Self::MagnetCount(u16_of(v)?),
            id => Self::Unknown {
                id,
                value: v.to_vec(),
            },
        }))
    }

    /// Append `id · length · value`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(self.id());
        let at = out.len();
        out.push(0);
        match self {
            Self::Rssi(v) => out.push(*v as u8),
            Self::Id(v) | Self::Unknown { value: v, .. } => out.extend_from_slice(v),
            Self::Advertisement(a) => out.extend_from_slice(&a.0),
            Self::Eye(e) => e.encode_into(out),
            Self::Name(n) => out.extend_from_slice(n.as_bytes()),
            Self::Temperature(v) => out.extend_from_slice(&v.to_be_bytes()),
            Self::Roll(v) => out.extend_from_slice(&v.to_be_bytes()),
            Self::Humidity(v) | Self::Magnet(v) | Self::Movement(v) | Self::LowBattery(v) => {
                out.push(*v)
            }
            Self::Pitch(v) => out.push(*v as u8),
            Self::MovementCount(v) | Self::BatteryVoltage(v) | Self::MagnetCount(v) => {
                out.extend_from_slice(&v.to_be_bytes())
            }
            Self::Mac(m) => out.extend_from_slice(m),
        }
        out[at] = u8::try_from(out.len() - at - 1).unwrap_or(u8::MAX);
    }
}

impl Sensor {
    /// The first parameter with this id.
    pub fn get(&self, id: u8) -> Option<&Parameter> {
        self.parameters.iter().find(|p| p.id() == id)
    }
}

impl Advertisement {
    /// The EYE data in the advertisement: its manufacturer-specific data with Teltonika's
    /// company id and version 01. `None` when there is none or it does not decode.
    pub fn eye(&self) -> Option<EyeData> {
        let mut rest = self.0.as_slice();
        while let Some((&len, after)) = rest.split_first() {
            let len = usize::from(len);
            if len == 0 || len > after.len() {
                return None;
            }
            let (structure, next) = after.split_at(len);
            if let [AD_MANUFACTURER, c0, c1, 0x01, data @ ..] = structure {
                if [*c0, *c1] == TELTONIKA_COMPANY {
                    return EyeData::decode(data).ok();
                }
            }
            rest = next;
        }
        None
    }
}

impl EyeData {
    /// Decode the flags byte and the values it announces; bytes after them are ignored.
    pub fn decode(v: &[u8]) -> Result<Self, CompositeError> {
        let mut c = Cursor::new(v, None);
        let flags = c.u8()?;
        let bit = |n: u8| flags & (1 << n) != 0;
        let temperature = if bit(0) { Some(c.u16()? as i16) } else { None };
        let humidity = if bit(1) { Some(c.u8()?) } else { None };
        let magnet = bit(2).then(|| bit(3));
        let movement = if bit(4) { Some(c.u16()?) } else { None };
        let angle = if bit(5) {
            Some((c.u8()? as i8, c.u16()? as i16))
        } else {
            None
        };
        let battery = if bit(7) { Some(c.u8()?) } else { None };
        Ok(Self {
            temperature,
            humidity,
            magnet,
            movement,
            angle,
            low_battery: bit(6),
            battery,
        })
    }

    /// Append the flags byte and the values.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut flags = 0u8;
        let mut set = |n: u8, on: bool| {
            if on {
                flags |= 1 << n;
            }
        };
        set(0, self.temperature.is_some());
        set(1, self.humidity.is_some());
        set(2, self.magnet.is_some());
        set(3, self.magnet == Some(true));
        set(4, self.movement.is_some());
        set(5, self.angle.is_some());
        set(6, self.low_battery);
        set(7, self.battery.is_some());
        out.push(flags);
        if let Some(t) = self.temperature {
            out.extend_from_slice(&t.to_be_bytes());
        }
        if let Some(h) = self.humidity {
            out.push(h);
        }
        if let Some(m) = self.movement {
            out.extend_from_slice(&m.to_be_bytes());
        }
        if let Some((pitch, roll)) = self.angle {
            out.push(pitch as u8);
            out.extend_from_slice(&roll.to_be_bytes());
        }
        if let Some(b) = self.battery {
            out.push(b);
        }
    }

    /// Battery voltage, mV.
    pub fn battery_mv(&self) -> Option<u16> {
        self.battery.map(|b| 2000 + 10 * u16::from(b))
    }

    /// Whether the sensor is moving (bit 15 of the movement word).
    pub fn moving(&self) -> Option<bool> {
        self.movement.map(|m| m & 0x8000 != 0)
    }

    /// The movement count (bits 0–14 of the movement word).
    pub fn movement_count(&self) -> Option<u16> {
        self.movement.map(|m| m & 0x7fff)
    }
}

/// A MAC address as text: `7c:d9:f4:01:02:03`.
pub fn mac_text(mac: &[u8; 6]) -> String {
    let hex = crate::hex::encode(mac);
    let mut s = String::with_capacity(17);
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.extend(pair.iter().map(|&c| char::from(c)));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eye_list() -> Vec<u8> {
        // Header 01; one sensor: RSSI -70, MAC, name "EYE_1", EYE flags (temperature 23.45,
        // humidity 40, battery 2000 + 10 × 100 mV).
        crate::hex::decode("01 1a 0001ba 0f067cd9f4010203 0505455945 5f31 0205 83 0929 28 64")
            .unwrap()
    }

    #[test]
    fn an_eye_list_decodes_its_parameters() {
        let mut bytes = eye_list();
        // Fix up the sensor length to the bytes after it.
        bytes[1] = (bytes.len() - 2) as u8;
        let list = SensorList::decode(&bytes, SensorListKind::Eye).unwrap();
        assert_eq!(list.header, 1);
        let s = &list.sensors[0];
        assert_eq!(s.get(0), Some(&Parameter::Rssi(-70)));
        assert_eq!(mac_text(&[0x7c, 0xd9, 0xf4, 1, 2, 3]), "7c:d9:f4:01:02:03");
        assert_eq!(s.get(5), Some(&Parameter::Name("EYE_1".into())));
        match s.get(2) {
            Some(Parameter::Eye(e)) => {
                assert_eq!(e.temperature, Some(2345));
                assert_eq!(e.humidity, Some(40));
                assert_eq!(e.battery_mv(), Some(3000));
            }
            other => panic!("{other:?}"),
        }
        let mut again = Vec::new();
        list.encode_into(&mut again);
        assert_eq!(again, bytes);
    }

    #[test]
    fn a_length_past_the_end_says_where() {
        // Sensor length 0x10 with 4 bytes left.
        let bytes = crate::hex::decode("01 10 000100 07").unwrap();
        let e = SensorList::decode(&bytes, SensorListKind::Eye).unwrap_err();
        assert_eq!(e.offset, 1);
        assert_eq!(e.problem.code(), "composite_length_overrun");
        // Parameter length past the sensor's end.
        let bytes = crate::hex::decode("01 04 0005 ffff").unwrap();
        let e = SensorList::decode(&bytes, SensorListKind::Eye).unwrap_err();
        assert_eq!(
            (e.offset, e.problem.code()),
            (3, "composite_length_overrun")
        );
    }

    #[test]
    fn unknown_ids_are_kept_and_bad_lengths_refused() {
        let bytes = crate::hex::decode("01 05 1403aabbcc").unwrap();
        let list = SensorList::decode(&bytes, SensorListKind::Eye).unwrap();
        assert_eq!(
            list.sensors[0].parameters,
            [Parameter::Unknown {
                id: 0x14,
                value: alloc::vec![0xaa, 0xbb, 0xcc]
            }]
        );
        let bytes = crate::hex::decode("01 05 0603aabbcc").unwrap();
        let e = SensorList::decode(&bytes, SensorListKind::Eye).unwrap_err();
        assert_eq!((e.offset, e.problem.code()), (2, "composite_bad_parameter"));
    }

    #[test]
    fn eye_data_inside_an_advertisement() {
        // Flags AD, then manufacturer data: 9a08 01, flags 0x01, temperature 0x0929.
        let adv = Advertisement(crate::hex::decode("020106 07ff9a08010109 29").unwrap());
        assert_eq!(adv.eye().unwrap().temperature, Some(0x0929));
        assert_eq!(Advertisement(alloc::vec![0x02, 0x01]).eye(), None);
    }
}
