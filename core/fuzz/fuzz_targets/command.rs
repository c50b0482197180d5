//! Any bytes as the data field of each command codec (12, 13, 14, 15), wrapped in a valid frame
//! so the body decoder is reached.
#![no_main]
use fleetview::{decode, encode::wrap_frame, DecodeOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for codec in [0x0Cu8, 0x0D, 0x0E, 0x0F] {
        let mut field = vec![codec];
        field.extend_from_slice(data);
        let frame = wrap_frame(&field);
        for opts in [DecodeOptions::default(), DecodeOptions::lenient()] {
            if let Ok(packets) = decode(&frame, &opts) {
                assert_eq!(packets.len(), 1);
                assert_eq!(packets[0].ack(), None);
            }
        }
    }
});
