//! Catalogue of Teltonika AVL IO elements: what an IO id *means* (name, size,
//! type, unit, exact multiplier) for a given device model, and how to render a
//! raw value accordingly.
//!
//! Why it exists: the codec layer only yields `(id, raw bytes)`; the same id can
//! mean different things on different model families (e.g. id 4 is "Pulse
//! Counter Din1" on FMB920 but "Digital Input 4" on FMB640), so the meaning
//! must be looked up per model, with a sensible fallback.
//!
//! The data is a generated, checked-in table (`io_catalog/table.rs`, produced by
//! `gen_io_catalog.py` from Teltonika's AVL id list, MIT licensed, see that
//! file's header). Nothing is parsed at run time and the module only needs
//! `core` and `alloc`, so it works in `no_std` and wasm builds.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write as _};

#[rustfmt::skip]
mod table;

use table::{Row, GROUPS, MODELS, MODEL_SETS, ROWS, SCALES, SIZES, STRS, UNITS};

/// How the raw bytes of an IO element are to be interpreted; it decides
/// whether [`IoInfo::value`] sign-extends, scales, or renders text/hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IoType {
    /// Big-endian unsigned integer (the vast majority of elements).
    Unsigned,
    /// Big-endian two's-complement integer (temperatures, axes, ...).
    Signed,
    /// Opaque bytes best shown as hex (beacons, ids, bit fields).
    Hex,
    /// Text (VIN, fault codes, ...).
    Ascii,
}

/// An exact decimal multiplier `mantissa × 10^exp10`.
///
/// Kept as a decimal rather than an `f64` so that scaling divides by an exact
/// power of ten: 24079 × 0.001 renders as `24.079`, not `24.079000000000001`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scale {
    /// Decimal mantissa (always positive in the catalogue).
    pub mantissa: i32,
    /// Power of ten applied to the mantissa.
    pub exp10: i8,
}

/// Exact powers of ten representable in an `f64` (10^0 ..= 10^22).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

fn pow10_f64(k: u32) -> f64 {
    let mut k = k as usize;
    let mut v = 1.0;
    while k > 22 {
        v *= POW10[22];
        k -= 22;
    }
    v * POW10[k]
}

impl Scale {
    /// The identity multiplier: the value is used as sent.
    pub const ONE: Scale = Scale {
        mantissa: 1,
        exp10: 0,
    };

    /// True when no scaling applies, so integer values stay integers.
    pub fn is_one(self) -> bool {
        self == Scale::ONE
    }

    /// The multiplier as a float, for callers that do their own arithmetic.
    pub fn as_f64(self) -> f64 {
        if self.exp10 >= 0 {
            self.mantissa as f64 * pow10_f64(self.exp10 as u32)
        } else {
            self.mantissa as f64 / pow10_f64(self.exp10.unsigned_abs() as u32)
        }
    }

    /// Apply the multiplier to an integer without going through a float
    /// multiplier: integer results stay integers (`Int`/`Uint`), fractional
    /// ones are one correctly rounded division by an exact power of ten.
    fn apply(self, v: i128, signed: bool) -> IoValueView {
        // Fast paths with the same results, without 128-bit arithmetic (a call into compiler
        // builtins on wasm32, where it dominated decoding): most elements are unscaled, and
        // the scaled ones hold small values.
        if self.is_one() {
            return if signed {
                IoValueView::Int(v as i64)
            } else {
                IoValueView::Uint(v as u64)
            };
        }
        if self.exp10 < 0 {
            if let Some(num) = i64::try_from(v)
                .ok()
                .and_then(|v| v.checked_mul(i64::from(self.mantissa)))
            {
                return IoValueView::Decimal(
                    num as f64 / pow10_f64(self.exp10.unsigned_abs() as u32),
                );
            }
        }
        let mantissa = self.mantissa as i128;
        if self.exp10 >= 0 {
            let product = 10i128
                .checked_pow(self.exp10 as u32)
                .and_then(|p| p.checked_mul(mantissa))
                .and_then(|f| f.checked_mul(v));
            let int = product.and_then(|x| {
                if signed {
                    i64::try_from(x).ok().map(IoValueView::Int)
                } else {
                    u64::try_from(x).ok().map(IoValueView::Uint)
                }
            });
            int.unwrap_or_else(|| IoValueView::Decimal(v as f64 * self.as_f64()))
        } else {
            // |v| < 2^64 and |mantissa| < 2^31: the product fits in an i128.
            let num = v * mantissa;
            IoValueView::Decimal(num as f64 / pow10_f64(self.exp10.unsigned_abs() as u32))
        }
    }
}

/// Renders the multiplier exactly (`0.001`, `0.03125`, `50`), e.g. for a UI
/// that shows how a value was scaled.
impl fmt::Display for Scale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (neg, digits) = if self.mantissa < 0 {
            (true, self.mantissa.unsigned_abs())
        } else {
            (false, self.mantissa as u32)
        };
        if neg {
            f.write_str("-")?;
        }
        if self.exp10 >= 0 {
            write!(f, "{digits}")?;
            for _ in 0..self.exp10 {
                f.write_str("0")?;
            }
            return Ok(());
        }
        let mut buf = [0u8; 10];
        let mut n = 0;
        let mut d = digits;
        loop {
            buf[n] = b'0' + (d % 10) as u8;
            n += 1;
            d /= 10;
            if d == 0 {
                break;
            }
        }
        let frac = self.exp10.unsigned_abs() as usize;
        // digits are in buf[..n] reversed; position `frac` is the decimal point.
        if n <= frac {
            f.write_str("0.")?;
            for _ in n..frac {
                f.write_str("0")?;
            }
            for i in (0..n).rev() {
                f.write_char(buf[i] as char)?;
            }
        } else {
            for i in (0..n).rev() {
                if i + 1 == frac {
                    f.write_str(".")?;
                }
                f.write_char(buf[i] as char)?;
            }
        }
        Ok(())
    }
}

/// The meaning of one AVL IO id on a given model: everything a UI or an
/// export needs to label and scale a raw value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoInfo {
    /// The AVL IO id.
    pub id: u16,
    /// Human readable name as on Teltonika's wiki (e.g. "External Voltage").
    pub name: &'static str,
    /// Value size in bytes; `None` = variable length (an NX element in codec 8E).
    pub bytes: Option<u16>,
    /// How to interpret the raw bytes.
    pub io_type: IoType,
    /// Unit after scaling (e.g. "V", "°C"); `None` when dimensionless/enum.
    pub unit: Option<&'static str>,
    /// Parameter group (e.g. "Permanent I/O elements", "OBD elements").
    pub group: &'static str,
    /// Exact multiplier applied by [`IoInfo::value`].
    pub scale: Scale,
    /// Supported models, bit i = `models()[i]`.
    model_bits: u128,
}

impl IoInfo {
    fn from_row(row: &Row) -> IoInfo {
        let name_start = row.name_off as usize;
        let name = STRS
            .get(name_start..name_start + row.name_len as usize)
            .unwrap_or("");
        let unit = match row.unit {
            0 => None,
            u => UNITS
                .get(u as usize)
                .and_then(|&(off, len)| STRS.get(off as usize..off as usize + len as usize)),
        };
        let io_type = match row.kind >> 6 {
            0 => IoType::Unsigned,
            1 => IoType::Signed,
            2 => IoType::Hex,
            _ => IoType::Ascii,
        };
        let bytes = match SIZES.get((row.kind & 0x3f) as usize) {
            Some(&0) | None => None,
            Some(&n) => Some(n),
        };
        let (mantissa, exp10) = SCALES.get(row.scale as usize).copied().unwrap_or((1, 0));
        IoInfo {
            id: row.id,
            name,
            bytes,
            io_type,
            unit,
            group: GROUPS.get(row.group as usize).copied().unwrap_or(""),
            scale: Scale { mantissa, exp10 },
            model_bits: MODEL_SETS.get(row.models as usize).copied().unwrap_or(0),
        }
    }

    /// The multiplier as a float (prefer [`IoInfo::scale`] or
    /// [`IoInfo::value`] for exact results).
    pub fn multiplier(&self) -> f64 {
        self.scale.as_f64()
    }

    /// Whether this definition is the one documented for `model`
    /// (case-insensitive), so a caller can tell a fallback from a real match.
    pub fn supports_model(&self, model: &str) -> bool {
        model_bit(model).is_some_and(|b| self.model_bits & (1u128 << b) != 0)
    }

    /// The models this definition is documented for, in `models()` order.
    pub fn supported_models(&self) -> impl Iterator<Item = &'static str> + 'static {
        let bits = self.model_bits;
        MODELS
            .iter()
            .enumerate()
            .filter(move |(i, _)| bits & (1u128 << i) != 0)
            .map(|(_, m)| *m)
    }

    /// Render a fixed-size value as received: `raw` holds the big-endian value
    /// of `wire_size` bytes (1..=8; other sizes are treated as 8).
    ///
    /// Signed values are sign-extended from the *wire* size (devices sometimes
    /// send a different size than documented), the multiplier is applied
    /// exactly, Hex renders the wire bytes as lowercase hex and Ascii the text
    /// of the non-NUL wire bytes.
    pub fn value(&self, wire_size: usize, raw: u64) -> IoValueView {
        let n = if (1..=8).contains(&wire_size) {
            wire_size
        } else {
            8
        };
        let shift = 64 - 8 * n as u32;
        let raw = if shift == 0 {
            raw
        } else {
            raw & (u64::MAX >> shift)
        };
        let be = raw.to_be_bytes();
        let wire = &be[8 - n..];
        match self.io_type {
            IoType::Unsigned => self.scale.apply(raw as i128, false),
            IoType::Signed => {
                let v = ((raw << shift) as i64) >> shift;
                self.scale.apply(v as i128, true)
            }
            IoType::Hex => IoValueView::Hex(hex(wire)),
            IoType::Ascii => {
                let text: Vec<u8> = wire.iter().copied().filter(|&b| b != 0).collect();
                IoValueView::Text(String::from_utf8_lossy(&text).into_owned())
            }
        }
    }

    /// Render a variable-length (NX) value: Ascii as text (invalid UTF-8
    /// replaced, leading/trailing NULs trimmed), every other type as
    /// lowercase hex of the bytes.
    pub fn value_bytes(&self, bytes: &[u8]) -> IoValueView {
        match self.io_type {
            IoType::Ascii => {
                IoValueView::Text(String::from_utf8_lossy(bytes).trim_matches('\0').to_owned())
            }
            _ => IoValueView::Hex(hex(bytes)),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

/// A rendered IO value, ready for display or export; which variant comes out
/// depends on the element's type and multiplier.
#[derive(Debug, Clone, PartialEq)]
pub enum IoValueView {
    /// Signed integer (type Signed, integral multiplier).
    Int(i64),
    /// Unsigned integer (type Unsigned, integral multiplier).
    Uint(u64),
    /// Scaled value (fractional multiplier), correctly rounded.
    Decimal(f64),
    /// Text (type Ascii).
    Text(String),
    /// Lowercase hex of the bytes (type Hex, or variable-length non-text data).
    Hex(String),
}

/// Numbers stay numbers and text stays text in the JSON model.
#[cfg(feature = "serde")]
impl serde::Serialize for IoValueView {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            IoValueView::Int(v) if v.unsigned_abs() > (1u64 << 53) => {
                s.serialize_i128(i128::from(*v))
            }
            IoValueView::Int(v) => s.serialize_i64(*v),
            IoValueView::Uint(v) if *v > (1u64 << 53) => s.serialize_u128(u128::from(*v)),
            IoValueView::Uint(v) => s.serialize_u64(*v),
            IoValueView::Decimal(v) => s.serialize_f64(*v),
            IoValueView::Text(t) | IoValueView::Hex(t) => s.serialize_str(t),
        }
    }
}

/// Plain rendering (`24.079`, `-10`, `WVW…`, `0a1b`), without unit, for
/// logs and simple UIs.
impl fmt::Display for IoValueView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IoValueView::Int(v) => write!(f, "{v}"),
            IoValueView::Uint(v) => write!(f, "{v}"),
            IoValueView::Decimal(v) => write!(f, "{v}"),
            IoValueView::Text(s) | IoValueView::Hex(s) => f.write_str(s),
        }
    }
}

/// Bit index of a model in `MODELS`, case-insensitively (the table's names
/// are all upper-case ASCII, so comparing against the upper-cased input keeps
/// the sorted order valid for a binary search).
fn model_bit(model: &str) -> Option<usize> {
    let model = model.trim();
    MODELS
        .binary_search_by(|m| m.bytes().cmp(model.bytes().map(|b| b.to_ascii_uppercase())))
        .ok()
}

/// The rows for `id` (default row first), found by binary search; an id has a few rows, so
/// they are counted by a short scan rather than a second search.
fn rows_for(id: u16) -> &'static [Row] {
    let start = ROWS.partition_point(|r| r.id < id);
    let len = ROWS[start..].iter().take_while(|r| r.id == id).count();
    &ROWS[start..start + len]
}

/// Named IO ids that the server, the simulator and the web UI read by id (FMB family numbering,
/// which most Teltonika models share). Names and units of all ids come from [`super::lookup`].
pub mod ids {
    /// Ignition (0 off, 1 on).
    pub const IGNITION: u16 = 239;
    /// Movement (0 off, 1 on).
    pub const MOVEMENT: u16 = 240;
    /// GSM signal, 0–5.
    pub const GSM_SIGNAL: u16 = 21;
    /// GNSS status (0 off … 3 sleep).
    pub const GNSS_STATUS: u16 = 69;
    /// External voltage, mV.
    pub const EXTERNAL_VOLTAGE: u16 = 66;
    /// Battery voltage, mV.
    pub const BATTERY_VOLTAGE: u16 = 67;
    /// Total odometer, m.
    pub const TOTAL_ODOMETER: u16 = 16;
    /// CAN fuel level, %.
    pub const FUEL_LEVEL_PERCENT: u16 = 89;
    /// CAN fuel level, 0.1 l.
    pub const FUEL_LEVEL_LITRES: u16 = 84;
    /// IO ids that may carry a fuel level, most preferred first: CAN level in % (89) and litres
    /// (84), OBD (48), FMS (87), OBD OEM (390), CAN adapters (34, 37), LLS sensors (201, 203,
    /// 210, 212, 214), BLE probes (270, 273, 276, 279), ultrasonic (224, 225, 327), J1939 (1066,
    /// 1070). Which one a device sends depends on its model and configuration.
    pub const FUEL_LEVELS: &[u16] = &[
        89, 84, 48, 87, 390, 34, 37, 201, 203, 210, 212, 214, 270, 273, 276, 279, 224, 225, 327,
        1066, 1070,
    ];
}

/// Look up what `id` means on `model`.
///
/// With a known model (case-insensitive) that has a definition for the id,
/// that definition is returned. Otherwise (model `None`, unknown, or without
/// a row for this id) the most common FMB-family definition is returned: the
/// row whose model list has the most FMB* models, ties going to the first row
/// in the source list. `None` only when the id is not in the catalogue at all.
/// Use [`IoInfo::supports_model`] to tell a fallback from an exact match.
pub fn lookup(id: u16, model: Option<&str>) -> Option<IoInfo> {
    let rows = rows_for(id);
    let default = rows.first()?;
    let chosen = model
        .and_then(model_bit)
        .and_then(|bit| {
            rows.iter()
                .find(|r| MODEL_SETS[r.models as usize] & (1u128 << bit) != 0)
        })
        .unwrap_or(default);
    Some(IoInfo::from_row(chosen))
}

/// Every definition of `id` across model families (default first, then in
/// source order), e.g. to show a user why a value may mean something else on
/// another device.
pub fn definitions(id: u16) -> impl Iterator<Item = IoInfo> {
    rows_for(id).iter().map(IoInfo::from_row)
}

/// The known model names, sorted: for model pickers and validation.
pub fn models() -> &'static [&'static str] {
    MODELS
}

/// Whether `model` (case-insensitive) is in the catalogue, so a caller can
/// warn that lookups for it will use the FMB-family fallback.
pub fn is_known_model(model: &str) -> bool {
    model_bit(model).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    /// `Scale::apply`'s fast paths give what the 128-bit path gives.
    #[test]
    fn apply_fast_paths_match_i128() {
        fn slow(s: Scale, v: i128, signed: bool) -> IoValueView {
            let m = s.mantissa as i128;
            if s.exp10 >= 0 {
                let p = 10i128.pow(s.exp10 as u32) * m * v;
                match (signed, i64::try_from(p), u64::try_from(p)) {
                    (true, Ok(x), _) => IoValueView::Int(x),
                    (false, _, Ok(x)) => IoValueView::Uint(x),
                    _ => IoValueView::Decimal(v as f64 * s.as_f64()),
                }
            } else {
                IoValueView::Decimal((v * m) as f64 / pow10_f64(s.exp10.unsigned_abs() as u32))
            }
        }
        let values: [i128; 9] = [
            0,
            1,
            -1,
            24_079,
            -32_768,
            (1 << 53) + 1,
            i64::MAX as i128,
            i64::MIN as i128,
            u64::MAX as i128,
        ];
        for &(mantissa, exp10) in SCALES.iter().chain(&[(1, 0), (7, -3), (3, 2)]) {
            let s = Scale { mantissa, exp10 };
            for &v in &values {
                for signed in [false, true] {
                    if signed && i64::try_from(v).is_err() || !signed && v < 0 {
                        continue;
                    }
                    assert_eq!(s.apply(v, signed), slow(s, v, signed), "{s:?} {v} {signed}");
                }
            }
        }
    }

    fn get(id: u16, model: &str) -> IoInfo {
        lookup(id, Some(model)).unwrap_or_else(|| panic!("id {id} on {model} missing"))
    }

    #[test]
    fn external_voltage_fmb920() {
        let i = get(66, "FMB920");
        assert_eq!(i.name, "External Voltage");
        assert_eq!(i.unit, Some("V"));
        assert_eq!(i.bytes, Some(2));
        assert_eq!(i.io_type, IoType::Unsigned);
        assert_eq!(
            i.scale,
            Scale {
                mantissa: 1,
                exp10: -3
            }
        );
        assert_eq!(i.value(2, 24079), IoValueView::Decimal(24.079));
        assert_eq!(i.value(2, 24079).to_string(), "24.079");
        assert!(i.supports_model("fmb920"));
    }

    #[test]
    fn battery_voltage() {
        let i = get(67, "FMB920");
        assert_eq!(i.name, "Battery Voltage");
        assert_eq!(i.unit, Some("V"));
        assert_eq!(i.value(2, 4105).to_string(), "4.105");
        // FMx6xx documents it in mV, unscaled.
        let j = get(67, "FMB640");
        assert_eq!(j.unit, Some("mV"));
        assert_eq!(j.value(2, 4105), IoValueView::Uint(4105));
    }

    #[test]
    fn dallas_temperatures_negative() {
        for id in 72..=75 {
            let i = get(id, "FMB920");
            assert!(i.name.starts_with("Dallas Temperature"), "{}", i.name);
            assert_eq!(i.io_type, IoType::Signed);
            assert_eq!(i.unit, Some("°C"));
            assert_eq!(i.value(4, 0xFFFF_FF9C), IoValueView::Decimal(-10.0));
            assert_eq!(i.value(2, 0xFF9C), IoValueView::Decimal(-10.0));
            assert_eq!(i.value(4, 215), IoValueView::Decimal(21.5));
            // The 6xx rows state multiplier 0; cleaned to 0.1 (rule M1).
            let j = get(id, "FMB640");
            assert_eq!(j.bytes, Some(2));
            assert_eq!(j.value(2, 0xFF9C), IoValueView::Decimal(-10.0));
        }
        // Dallas Temperature 5 only exists on 6xx (rule M3).
        let d5 = get(6, "FMB640");
        assert_eq!(d5.name, "Dallas Temperature 5");
        assert_eq!(d5.value(2, 0xFF9C), IoValueView::Decimal(-10.0));
    }

    #[test]
    fn fuel_ids() {
        let i = get(12, "FMB920");
        assert_eq!(i.name, "Fuel Used GPS");
        assert_eq!(
            (i.unit, i.value(4, 123_456)),
            (Some("l"), IoValueView::Decimal(123.456))
        );
        let i = get(84, "FMB920");
        assert_eq!(i.name, "Fuel Level");
        assert_eq!(
            (i.unit, i.value(2, 455)),
            (Some("l"), IoValueView::Decimal(45.5))
        );
        let i = get(89, "FMB920");
        assert_eq!(i.name, "Fuel level");
        assert_eq!((i.unit, i.value(1, 73)), (Some("%"), IoValueView::Uint(73)));
        let i = get(107, "FMB920");
        assert_eq!(i.name, "Fuel Consumed (counted)");
        assert_eq!(
            (i.unit, i.value(4, 98_761)),
            (Some("l"), IoValueView::Decimal(9876.1))
        );
        // 107 has no FMB640 row: falls back to the FMB definition.
        let f = get(107, "FMB640");
        assert_eq!(f, i);
        assert!(!f.supports_model("FMB640"));
    }

    #[test]
    fn odometer_and_axes() {
        let i = get(16, "FMB920");
        assert_eq!(i.name, "Total Odometer");
        assert_eq!(i.unit, Some("m"));
        assert_eq!(i.value(4, 1_234_567), IoValueView::Uint(1_234_567));
        for id in 17..=19 {
            let a = get(id, "FMB920");
            assert_eq!((a.io_type, a.unit), (IoType::Signed, Some("mG")));
            assert_eq!(a.value(2, 0xFC18), IoValueView::Int(-1000));
        }
    }

    #[test]
    fn vin_ascii() {
        let i = get(256, "FMB920");
        assert_eq!(i.name, "VIN");
        assert_eq!(i.io_type, IoType::Ascii);
        assert_eq!(i.bytes, Some(17));
        assert_eq!(
            i.value_bytes(b"WVWZZZ1JZXW000001"),
            IoValueView::Text("WVWZZZ1JZXW000001".into())
        );
        assert_eq!(i.value_bytes(b"WVW\0\0"), IoValueView::Text("WVW".into()));
        // Fixed-size ASCII: the non-NUL wire bytes.
        assert_eq!(i.value(4, 0x0041_4243), IoValueView::Text("ABC".into()));
    }

    #[test]
    fn hex_values() {
        let b = lookup(385, None).unwrap();
        assert_eq!(b.name, "Beacon");
        assert_eq!((b.io_type, b.bytes), (IoType::Hex, None));
        assert_eq!(
            b.value_bytes(&[0x01, 0xAB, 0x00]),
            IoValueView::Hex("01ab00".into())
        );
        assert_eq!(b.value(2, 0x0A0B), IoValueView::Hex("0a0b".into()));
        // Non-ASCII variable-length data renders as hex too.
        let u = get(66, "FMB920");
        assert_eq!(
            u.value_bytes(&[0x5E, 0x0F]),
            IoValueView::Hex("5e0f".into())
        );
    }

    #[test]
    fn definition_differs_by_family() {
        assert_eq!(get(4, "FMB920").name, "Pulse Counter Din1");
        assert_eq!(get(4, "FMB920").bytes, Some(4));
        assert_eq!(get(4, "FMB640").name, "Digital Input 4");
        assert_eq!(get(4, "FMB640").bytes, Some(1));
        assert_eq!(get(6, "FMB920").name, "Analog Input 2");
        assert_eq!(get(6, "FMB640").name, "Dallas Temperature 5");
        assert_eq!(definitions(4).count(), 2);
        assert_eq!(definitions(4).next().unwrap().name, "Pulse Counter Din1");
    }

    #[test]
    fn unknown_id_is_none() {
        assert_eq!(lookup(0, None), None);
        assert_eq!(lookup(65_535, Some("FMB920")), None);
        assert_eq!(definitions(65_535).count(), 0);
    }

    #[test]
    fn unknown_model_and_none_fall_back() {
        let fb = lookup(4, Some("NOPE999")).unwrap();
        assert_eq!(fb.name, "Pulse Counter Din1");
        assert_eq!(lookup(4, None), Some(fb));
        assert!(!is_known_model("NOPE999"));
        // Case-insensitive.
        assert_eq!(lookup(4, Some("fmb640")).unwrap().name, "Digital Input 4");
        assert!(is_known_model("fmm80a"));
    }

    #[test]
    fn models_sorted_and_complete() {
        let m = models();
        assert!(!m.is_empty());
        assert!(m.windows(2).all(|w| w[0] < w[1]));
        assert!(m.contains(&"FMB920") && m.contains(&"FMB640"));
        assert!(m.len() <= 128);
        // model_bit's binary search relies on upper-case names.
        assert!(m.iter().all(|s| !s.bytes().any(|b| b.is_ascii_lowercase())));
        let ev = get(66, "FMB920");
        assert!(ev.supported_models().any(|s| s == "FMB920"));
    }

    #[test]
    fn table_invariants() {
        assert!(ROWS.windows(2).all(|w| w[0].id <= w[1].id));
        for r in ROWS {
            let i = IoInfo::from_row(r);
            assert!(!i.name.is_empty(), "id {}", r.id);
            assert!(i.scale.mantissa > 0, "id {}", r.id);
            assert_eq!(i.unit.map(str::trim), i.unit);
        }
    }

    #[test]
    fn scale_exactness_and_display() {
        let s = |mantissa, exp10| Scale { mantissa, exp10 };
        assert_eq!(s(1, -3).to_string(), "0.001");
        assert_eq!(s(3125, -5).to_string(), "0.03125");
        assert_eq!(s(4, -1).to_string(), "0.4");
        assert_eq!(s(25, -1).to_string(), "2.5");
        assert_eq!(s(5, 1).to_string(), "50");
        assert_eq!(s(1, 0).to_string(), "1");
        assert_eq!(s(5, 1).apply(7, false), IoValueView::Uint(350));
        assert_eq!(s(3125, -5).apply(32, false), IoValueView::Decimal(1.0));
        assert_eq!(s(1, -2).apply(-1, true), IoValueView::Decimal(-0.01));
        assert_eq!(s(1, -3).as_f64(), 0.001);
        assert_eq!(get(66, "FMB920").multiplier(), 0.001);
        // Overflowing integral scaling degrades to a float instead of wrapping.
        assert!(matches!(
            s(1, 2).apply(u64::MAX as i128, false),
            IoValueView::Decimal(_)
        ));
    }
}
