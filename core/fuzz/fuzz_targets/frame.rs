//! Any bytes through one-shot decoding, TCP framing, annotation and the borrowed frame view: no
//! panic, no overrun, and the view agrees with strict owned decoding.
#![no_main]
use fleetview::view::FrameView;
use fleetview::{annotate, decode, decode_frame, Content, DecodeOptions, Status};
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
    // The view is strict: same records, same errors (a command codec is a message, not a view).
    if data.len() >= 2 && data[..2] == [0, 0] {
        let owned = decode_frame(data, &DecodeOptions::default());
        match (FrameView::parse(data), owned) {
            (Ok(Status::Complete(v, n)), Ok(Status::Complete(p, m))) => {
                assert_eq!(n, m);
                assert_eq!(Content::Avl(v.data().to_avl_data()), p.content);
            }
            (Ok(Status::Partial { needed: a }), Ok(Status::Partial { needed: b })) => {
                assert_eq!(a, b)
            }
            (Err(e), _) if e.code() == "unexpected_codec" => {}
            (Err(a), Err(b)) => assert_eq!(a, b),
            (a, b) => panic!("view {a:?} owned {b:?}"),
        }
    }
});
