//! Any bytes as a record's IO elements (id and value, 7 bytes each): the serving cell is
//! consistent with them, and every operator code that gives an MCC and MNC gives back the code.
#![no_main]
use fleetview::composite::{Operator, ServingCell};
use fleetview::{IoElement, IoValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let io: Vec<IoElement> = data
        .chunks_exact(7)
        .map(|c| {
            let id = [21u16, 205, 206, 241, 636, 66][usize::from(c[0]) % 6];
            let v = u32::from_be_bytes([c[3], c[4], c[5], c[6]]);
            let value = match c[1] % 3 {
                0 => IoValue::U8(v as u8),
                1 => IoValue::U16(v as u16),
                _ => IoValue::U32(v),
            };
            IoElement { id, value }
        })
        .collect();
    let cell = ServingCell::from_io(&io);
    let has_cell_io = io.iter().any(|e| [205, 206, 241, 636].contains(&e.id));
    assert_eq!(cell.is_some(), has_cell_io);
    for e in &io {
        if let Some(op) = e.value.raw().and_then(Operator::from_code) {
            assert_eq!(u64::from(op.code()), e.value.raw().unwrap());
            assert!((200..=799).contains(&op.mcc));
        }
    }
});
