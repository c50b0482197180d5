//! Any bytes as a TLV sensor list, the first byte choosing the list (548: raw advertisements;
//! 11317: EYE flags): decoded or refused with an offset inside the value; the traced pieces stay
//! inside the value, in order; what decodes encodes to bytes that decode to the same list; the
//! EYE data of any advertisement decodes without panicking.
#![no_main]
use fleetview::composite::{self, Composite, Parameter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&choice, value)) = data.split_first() else { return };
    let id = if choice & 1 == 0 { 548 } else { 11317 };
    let mut pieces = Vec::new();
    let traced = composite::decode_traced(id, value, &mut pieces).unwrap();
    let mut end = 0;
    for p in &pieces {
        assert!(p.offset >= end && p.offset + p.len <= value.len(), "{p:?}");
        end = p.offset + p.len;
    }
    match traced {
        Ok(c) => {
            if let Composite::Sensors(list) = &c {
                for p in list.sensors.iter().flat_map(|s| &s.parameters) {
                    if let Parameter::Advertisement(a) = p {
                        let _ = a.eye();
                    }
                }
            }
            assert_eq!(composite::decode(id, &c.encode()), Some(Ok(c)));
        }
        Err(e) => assert!(e.offset <= value.len()),
    }
    let _ = composite::Advertisement(value.to_vec()).eye();
});
