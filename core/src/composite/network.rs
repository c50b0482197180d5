//! The serving cell, from the IO elements that carry it: 241 active operator (the operator's
//! numeric code, MCC and MNC), 206 location area code, 205 GSM cell id, 636 UMTS/LTE cell id
//! (which replaces 205 when present) and 21 GSM signal (0–5). The result is what cell
//! geolocation services ask for.
//!
//! The operator code is the MCC's three digits followed by the MNC's two or three, as a number
//! (24602 is MCC 246, MNC 02; 310260 is MCC 310, MNC 260). MCCs run from 200 to 799, so a code
//! of five digits (20000–79999) has a 2-digit MNC and one of six digits (200000–799999) a
//! 3-digit MNC; the digit count resolves the ambiguity. A code outside both ranges (0 when the
//! device has no operator) gives no MCC and MNC.

use crate::avl::IoElement;

/// IO ids of the serving cell.
pub const OPERATOR: u16 = 241;
/// Location area code.
pub const LAC: u16 = 206;
/// GSM cell id.
pub const GSM_CELL_ID: u16 = 205;
/// UMTS/LTE cell id.
pub const CELL_ID: u16 = 636;
/// GSM signal, 0–5.
pub const SIGNAL: u16 = 21;

/// The mobile network operator: country code and network code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operator {
    /// Mobile country code.
    pub mcc: u16,
    /// Mobile network code.
    pub mnc: u16,
    /// 2 or 3: how many digits the MNC has (02 and 002 are different networks).
    pub mnc_digits: u8,
}

impl Operator {
    /// The operator of a numeric operator code (IO 241); `None` outside the valid ranges.
    pub fn from_code(code: u64) -> Option<Self> {
        match code {
            20_000..=79_999 => Some(Self {
                mcc: (code / 100) as u16,
                mnc: (code % 100) as u16,
                mnc_digits: 2,
            }),
            200_000..=799_999 => Some(Self {
                mcc: (code / 1000) as u16,
                mnc: (code % 1000) as u16,
                mnc_digits: 3,
            }),
            _ => None,
        }
    }

    /// The numeric operator code (the inverse of [`Operator::from_code`]).
    pub fn code(&self) -> u32 {
        let scale = if self.mnc_digits == 3 { 1000 } else { 100 };
        u32::from(self.mcc) * scale + u32::from(self.mnc)
    }
}

/// The cell a record was sent from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ServingCell {
    /// The operator (IO 241), when valid.
    pub operator: Option<Operator>,
    /// Location area code (IO 206).
    pub lac: Option<u16>,
    /// Cell id: IO 636, else IO 205.
    pub cell_id: Option<u32>,
    /// GSM signal, 0–5 (IO 21).
    pub signal: Option<u8>,
}

impl ServingCell {
    /// The serving cell of a record's IO elements; `None` without any cell IO (241, 206, 205,
    /// 636) — the signal alone is not a cell.
    pub fn from_io<'a>(io: impl IntoIterator<Item = &'a IoElement>) -> Option<Self> {
        let mut cell = Self::default();
        let mut any = false;
        let mut gsm_cell = None;
        for e in io {
            let Some(v) = e.value.raw() else { continue };
            match e.id {
                OPERATOR => {
                    any = true;
                    cell.operator = Operator::from_code(v);
                }
                LAC => {
                    any = true;
                    cell.lac = u16::try_from(v).ok();
                }
                GSM_CELL_ID => {
                    any = true;
                    gsm_cell = u32::try_from(v).ok();
                }
                CELL_ID => {
                    any = true;
                    cell.cell_id = u32::try_from(v).ok();
                }
                SIGNAL => cell.signal = u8::try_from(v).ok(),
                _ => {}
            }
        }
        cell.cell_id = cell.cell_id.or(gsm_cell);
        any.then_some(cell)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avl::IoValue;

    #[test]
    fn the_digit_count_decides_the_mnc() {
        assert_eq!(
            Operator::from_code(24602),
            Some(Operator {
                mcc: 246,
                mnc: 2,
                mnc_digits: 2
            })
        );
        let att = Operator::from_code(310_410).unwrap();
        assert_eq!((att.mcc, att.mnc, att.mnc_digits), (310, 410, 3));
        assert_eq!(att.code(), 310_410);
        assert_eq!(Operator::from_code(0), None);
        assert_eq!(Operator::from_code(9_999), None);
    }

    #[test]
    fn the_lte_cell_id_replaces_the_gsm_one() {
        let io = [
            IoElement {
                id: 21,
                value: IoValue::U8(4),
            },
            IoElement {
                id: 205,
                value: IoValue::U16(1234),
            },
            IoElement {
                id: 206,
                value: IoValue::U16(567),
            },
            IoElement {
                id: 636,
                value: IoValue::U32(98_765_432),
            },
            IoElement {
                id: 241,
                value: IoValue::U32(24602),
            },
        ];
        let c = ServingCell::from_io(&io).unwrap();
        assert_eq!(c.cell_id, Some(98_765_432));
        assert_eq!((c.lac, c.signal), (Some(567), Some(4)));
        assert_eq!(c.operator.unwrap().mcc, 246);
        assert_eq!(ServingCell::from_io(&io[..1]), None);
    }
}
