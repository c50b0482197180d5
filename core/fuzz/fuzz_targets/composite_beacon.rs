//! Any bytes as a beacon list (IO 385): decoded or refused with an offset inside the value;
//! the traced pieces stay inside the value, in order, without overlapping; what decodes
//! encodes to bytes that decode to the same list.
#![no_main]
use fleetview::composite::{self, BeaconList, Composite};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut pieces = Vec::new();
    let traced = composite::decode_traced(385, data, &mut pieces).unwrap();
    let mut end = 0;
    for p in &pieces {
        assert!(p.offset >= end && p.offset + p.len <= data.len(), "{p:?}");
        end = p.offset + p.len;
    }
    match BeaconList::decode(data) {
        Ok(list) => {
            assert_eq!(traced, Ok(Composite::Beacons(list.clone())));
            let c = Composite::Beacons(list);
            assert_eq!(composite::decode(385, &c.encode()), Some(Ok(c)));
        }
        Err(e) => {
            assert!(e.offset <= data.len());
            assert_eq!(traced, Err(e));
        }
    }
});
