//! Differential: whatever decodes strictly, encodes to bytes that decode to the same packets,
//! and encoding those again gives the same bytes.
#![no_main]
use fleetview::{decode, DecodeOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = DecodeOptions::default();
    let Ok(packets) = decode(data, &opts) else { return };
    for p in packets {
        let bytes = p.encode().expect("a strictly decoded packet encodes");
        let again = decode(&bytes, &opts).expect("encoded bytes decode");
        assert_eq!(again.len(), 1);
        // Compared through Debug: Codec 7 coordinates are floats, and NaN != NaN.
        assert_eq!(format!("{:?}", again[0].content), format!("{:?}", p.content));
        assert_eq!(again[0].udp(), p.udp());
        assert_eq!(again[0].encode().expect("encodes again"), bytes);
    }
});
