//! A capture file (the corpus starts from real ones) fed to the analyzer whole and in two
//! pieces split where the first byte says: never a panic, and the same sessions and the same
//! error either way; every session renders as JSON and text.
#![no_main]
use fleetview::capture::{analyze, SessionReport};
use libfuzzer_sys::fuzz_target;

fn run(chunks: &[&[u8]]) -> (Vec<SessionReport>, Option<String>) {
    let a = analyze(5027, chunks.iter().copied());
    (a.sessions, a.result.err().map(|e| e.to_string()))
}

fuzz_target!(|data: &[u8]| {
    let whole = run(&[data]);
    let at = data.first().map_or(0, |&b| usize::from(b) * data.len() / 256);
    let (a, b) = data.split_at(at);
    let split = run(&[a, b]);
    assert_eq!(whole, split);
    for s in &whole.0 {
        let _ = serde_json::to_string(&s.to_json(&Default::default())).unwrap();
        let mut text = String::new();
        s.write_text(&mut text);
    }
});
