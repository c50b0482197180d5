//! Any bytes through one-shot decoding, TCP framing and annotation: no panic, no overrun.
#![no_main]
use fleetview::{annotate, decode, decode_frame, DecodeOptions, Status};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for opts in [DecodeOptions::default(), DecodeOptions::lenient()] {
        if let Ok(Status::Complete(p, used)) = decode_frame(data, &opts) {
            assert!(used <= data.len() && used == p.len);
        }
        for p in decode(data, &opts).into_iter().flatten() {
            assert!(p.offset + p.len <= data.len());
        }
        let (spans, _) = annotate(data, &opts);
        assert!(spans.iter().all(|s| s.offset + s.len <= data.len()));
    }
});
