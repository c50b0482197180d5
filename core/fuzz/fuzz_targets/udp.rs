//! Any bytes as a UDP datagram and as a bare AVL data array.
#![no_main]
use fleetview::{decode_bare, udp, DecodeOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for opts in [DecodeOptions::default(), DecodeOptions::lenient()] {
        if let Ok(p) = udp::decode_datagram(data, &opts) {
            assert_eq!(p.ack().map(|a| a.len()).unwrap_or(7), 7);
        }
        let _ = decode_bare(data, &opts);
    }
});
