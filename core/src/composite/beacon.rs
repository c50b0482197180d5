//! IO 385, the beacon list of the simple BLE mode: a data part byte (high nibble this part's
//! number, low nibble the number of parts), then beacons back to back. A device splits a long
//! list over several records; each part decodes on its own and says which part it is.
//!
//! Each beacon: a flags byte (bit 0 RSSI present, bit 1 battery voltage present, bit 2
//! temperature present, bits 4–7 the beacon type: non-zero for iBeacon — devices send 0x2 —,
//! zero for Eddystone), the beacon's identity (iBeacon: UUID, major, minor; Eddystone:
//! namespace, instance), then the RSSI (i8, dBm), the battery voltage (u16, mV) and the
//! temperature (i16, hundredths of °C, as the EYE sensors send it) when their bits say so.

use alloc::string::String;
use alloc::vec::Vec;

use super::{item_index, CompositeError, CompositeProblem, Cursor, PieceKind};

const RSSI: u8 = 0x01;
const BATTERY: u8 = 0x02;
const TEMPERATURE: u8 = 0x04;
/// The type nibble devices send for an iBeacon.
const IBEACON_TYPE: u8 = 0x20;

/// One part of a beacon list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BeaconList {
    /// This part's number, from 1.
    pub part: u8,
    /// How many parts the list has.
    pub parts: u8,
    /// The beacons of this part.
    pub beacons: Vec<Beacon>,
}

/// A beacon seen by the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Beacon {
    /// Who it is.
    pub id: BeaconId,
    /// Signal strength, dBm.
    pub rssi: Option<i8>,
    /// Battery voltage, mV.
    pub battery_mv: Option<u16>,
    /// Temperature, hundredths of °C.
    pub temperature: Option<i16>,
}

/// A beacon's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BeaconId {
    /// Apple's iBeacon.
    IBeacon {
        /// Proximity UUID.
        uuid: [u8; 16],
        /// Major.
        major: u16,
        /// Minor.
        minor: u16,
    },
    /// Google's Eddystone-UID.
    Eddystone {
        /// Namespace.
        namespace: [u8; 10],
        /// Instance.
        instance: [u8; 6],
    },
}

impl BeaconList {
    pub(crate) fn read(c: &mut Cursor<'_, '_>) -> Result<Self, CompositeError> {
        let at = c.pos();
        let byte = c.u8()?;
        let (part, parts) = (byte >> 4, byte & 0x0f);
        if part == 0 || part > parts {
            return Err(c.error_at(at, CompositeProblem::CompositeBadPart { part, parts }));
        }
        c.mark(at, PieceKind::DataPart, None);
        let mut beacons = Vec::new();
        while c.left() > 0 {
            let start = c.pos();
            beacons.push(Beacon::read(c)?);
            c.mark(start, PieceKind::Beacon, item_index(beacons.len() - 1));
        }
        Ok(Self {
            part,
            parts,
            beacons,
        })
    }

    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        out.push((self.part << 4) | (self.parts & 0x0f));
        for b in &self.beacons {
            b.encode_into(out);
        }
    }

    /// Decode a beacon list (IO 385's value) alone.
    pub fn decode(value: &[u8]) -> Result<Self, CompositeError> {
        Self::read(&mut Cursor::new(value, None))
    }
}

impl Beacon {
    /// Decode one beacon from the front of `bytes`: the beacon and the bytes it took.
    pub fn decode(bytes: &[u8]) -> Result<(Self, usize), CompositeError> {
        let mut c = Cursor::new(bytes, None);
        let b = Self::read(&mut c)?;
        Ok((b, c.pos()))
    }

    fn read(c: &mut Cursor<'_, '_>) -> Result<Self, CompositeError> {
        let flags = c.u8()?;
        let id = if flags & 0xf0 != 0 {
            BeaconId::IBeacon {
                uuid: c.array()?,
                major: c.u16()?,
                minor: c.u16()?,
            }
        } else {
            BeaconId::Eddystone {
                namespace: c.array()?,
                instance: c.array()?,
            }
        };
        let rssi = if flags & RSSI != 0 {
            Some(c.u8()? as i8)
        } else {
            None
        };
        let battery_mv = if flags & BATTERY != 0 {
            Some(c.u16()?)
        } else {
            None
        };
        let temperature = if flags & TEMPERATURE != 0 {
            Some(c.u16()? as i16)
        } else {
            None
        };
        Ok(Self {
            id,
            rssi,
            battery_mv,
            temperature,
        })
    }

    /// Append the beacon as a device sends it.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut flags = match self.id {
            BeaconId::IBeacon { .. } => IBEACON_TYPE,
            BeaconId::Eddystone { .. } => 0,
        };
        for (present, bit) in [
            (self.rssi.is_some(), RSSI),
            (self.battery_mv.is_some(), BATTERY),
            (self.temperature.is_some(), TEMPERATURE),
        ] {
            if present {
                flags |= bit;
            }
        }
        out.push(flags);
        match self.id {
            BeaconId::IBeacon { uuid, major, minor } => {
                out.extend_from_slice(&uuid);
                out.extend_from_slice(&major.to_be_bytes());
                out.extend_from_slice(&minor.to_be_bytes());
            }
            BeaconId::Eddystone {
                namespace,
                instance,
            } => {
                out.extend_from_slice(&namespace);
                out.extend_from_slice(&instance);
            }
        }
        if let Some(r) = self.rssi {
            out.push(r as u8);
        }
        if let Some(b) = self.battery_mv {
            out.extend_from_slice(&b.to_be_bytes());
        }
        if let Some(t) = self.temperature {
            out.extend_from_slice(&t.to_be_bytes());
        }
    }

    /// Temperature in °C.
    pub fn temperature_c(&self) -> Option<f64> {
        self.temperature.map(|t| f64::from(t) / 100.0)
    }
}

/// A UUID as text: `6b817f8a-274d-4fbb-a2d2-a86d1b1e8ef5`.
pub fn uuid_text(uuid: &[u8; 16]) -> String {
    let hex = crate::hex::encode(uuid);
    alloc::format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_ibeacon_with_rssi_is_23_bytes() {
        let hex = "1121e2c56db5dffb48d2b060d0f5a71096e000010002c4";
        let bytes = crate::hex::decode(hex).unwrap();
        assert_eq!(bytes.len(), 23);
        let list = BeaconList::decode(&bytes).unwrap();
        assert_eq!((list.part, list.parts), (1, 1));
        assert_eq!(list.beacons.len(), 1);
        let b = &list.beacons[0];
        assert_eq!(b.rssi, Some(-60));
        match b.id {
            BeaconId::IBeacon { uuid, major, minor } => {
                assert_eq!(uuid_text(&uuid), "e2c56db5-dffb-48d2-b060-d0f5a71096e0");
                assert_eq!((major, minor), (1, 2));
            }
            other => panic!("{other:?}"),
        }
        let mut again = Vec::new();
        list.encode_into(&mut again);
        assert_eq!(again, bytes);
    }

    #[test]
    fn a_truncated_beacon_says_where() {
        let bytes = crate::hex::decode("1121e2c56db5dffb48d2b060d0f5a710").unwrap();
        let e = BeaconList::decode(&bytes).unwrap_err();
        assert_eq!(e.offset, 2);
        assert_eq!(
            e.problem,
            CompositeProblem::CompositeTruncated {
                needed: 16,
                available: 14
            }
        );
    }

    #[test]
    fn part_zero_or_beyond_the_count_is_refused() {
        for byte in [0x01, 0x32, 0x10] {
            let e = BeaconList::decode(&[byte]).unwrap_err();
            assert_eq!((e.offset, e.problem.code()), (0, "composite_bad_part"));
        }
        assert_eq!(BeaconList::decode(&[0x23]).unwrap().part, 2);
    }
}
