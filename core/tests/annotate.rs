//! `annotate` labels every byte of every vector exactly once, with absolute offsets, so the
//! playground can explain any packet; on an error the spans stop where decoding stopped.

use fleetview::{annotate, hex, DecodeOptions, Field};

fn vectors() -> Vec<(String, Vec<u8>, bool)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        // A tiny extraction to avoid a serde dependency in this test.
        let field = |k: &str| {
            let at = text.find(&format!("\"{k}\": ")).unwrap() + k.len() + 4;
            text[at..]
                .split([',', '\n'])
                .next()
                .unwrap()
                .trim()
                .trim_matches('"')
                .to_string()
        };
        out.push((
            field("name"),
            hex::decode(&field("hex")).unwrap(),
            field("lenient") == "true",
        ));
    }
    out
}

#[test]
fn every_byte_is_labelled_once() {
    for (name, bytes, lenient) in vectors() {
        let opts = if lenient {
            DecodeOptions::lenient()
        } else {
            DecodeOptions::default()
        };
        let (spans, results) = annotate(&bytes, &opts);
        if results.iter().any(Result::is_err) {
            continue;
        }
        let mut pos = 0;
        for s in &spans {
            assert_eq!(s.offset, pos, "{name}: gap or overlap at {pos} ({s:?})");
            assert!(
                s.len > 0 || matches!(s.field, Field::MessagePayload | Field::IoValue),
                "{name}: {s:?}"
            );
            pos += s.len;
        }
        assert_eq!(
            pos,
            bytes.len(),
            "{name}: {pos} of {} bytes labelled",
            bytes.len()
        );
    }
}

#[test]
fn fields_carry_record_and_io_context() {
    let bytes = hex::decode("000000000000004308020000016B40D57B480100000000000000000000000000000001010101000000000000016B40D5C198010000000000000000000000000000000101010101000000020000252C").unwrap();
    let (spans, _) = annotate(&bytes, &DecodeOptions::default());
    let lat: Vec<_> = spans
        .iter()
        .filter(|s| s.field == Field::Latitude)
        .collect();
    assert_eq!(lat.len(), 2);
    assert_eq!((lat[1].record, lat[1].offset), (Some(1), 10 + 32 + 13));
    let io = spans.iter().find(|s| s.field == Field::IoValue).unwrap();
    assert_eq!(io.io_id, Some(1));
    assert_eq!(spans.last().unwrap().field, Field::Crc);
}

#[test]
fn spans_stop_at_the_error() {
    let mut bytes = hex::decode("000000000000002808010000016B40D9AD80010000000000000000000000000000000103021503010101425E100000010000F22A").unwrap();
    bytes[9] = 0x99; // unknown codec
    let (spans, results) = annotate(&bytes, &DecodeOptions::default());
    let e = results[0].as_ref().unwrap_err();
    // CRC is checked first.
    assert_eq!(e.code(), "crc_mismatch");
    assert!(spans.len() <= 2);
}
