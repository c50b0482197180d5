//! Any bytes as a UDP datagram and as a bare AVL data array; the borrowed data view agrees with
//! strict owned decoding of the bare array, and its IO iteration by `fold` with `next`.
#![no_main]
use fleetview::view::AvlDataView;
use fleetview::{decode_bare, udp, Content, DecodeOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for opts in [DecodeOptions::default(), DecodeOptions::lenient()] {
        if let Ok(p) = udp::decode_datagram(data, &opts) {
            assert_eq!(p.ack().map(|a| a.len()).unwrap_or(7), 7);
        }
        let _ = decode_bare(data, &opts);
    }
    match (AvlDataView::parse(data), decode_bare(data, &DecodeOptions::default())) {
        (Ok(v), Ok(p)) => {
            assert_eq!(Content::Avl(v.to_avl_data()), p.content);
            assert_eq!(v.records().count(), v.len());
            // The group loops of `fold` give what `next` gives.
            for r in v.records() {
                let by_next: Vec<_> = r.io().collect();
                let by_fold = r.io().fold(Vec::new(), |mut all, e| {
                    all.push(e);
                    all
                });
                assert_eq!(by_fold, by_next);
            }
        }
        (Err(e), _) if e.code() == "unexpected_codec" => {}
        (Err(a), Err(b)) => assert_eq!(a, b),
        (a, b) => panic!("view {a:?} owned {b:?}"),
    }
});
