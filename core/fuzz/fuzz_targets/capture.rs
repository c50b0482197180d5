//! A capture file (the corpus starts from real ones) fed to the analyzer whole and in two
//! pieces split where the first byte says: never a panic, and the same sessions and the same
//! error either way; every session renders as JSON and text.
#![no_main]
use fleetview::capture::{Analyzer, SessionReport};
use libfuzzer_sys::fuzz_target;

fn run(chunks: &[&[u8]]) -> (Vec<SessionReport>, Option<String>) {
    let mut a = Analyzer::new(5027);
    let mut sessions = Vec::new();
    let mut error = None;
    for c in chunks {
        if let Err(e) = a.handle_input(c) {
            error = Some(e.to_string());
            break;
        }
        while let Some(s) = a.poll_session() {
            sessions.push(s);
        }
    }
    let end = a.finish();
    if error.is_none() {
        error = end.err().map(|e| e.to_string());
    }
    while let Some(s) = a.poll_session() {
        sessions.push(s);
    }
    (sessions, error)
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
