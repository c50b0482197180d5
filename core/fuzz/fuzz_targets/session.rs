//! Bytes fed to a Session in pieces whose sizes come from the input: every split gives the same
//! events as feeding everything at once.
#![no_main]
use fleetview::{DecodeOptions, Event, Session};
use libfuzzer_sys::fuzz_target;

fn run(chunks: &[&[u8]]) -> (Vec<Event>, Option<String>) {
    let mut s = Session::new(DecodeOptions::default());
    let mut events = Vec::new();
    let mut error = None;
    for c in chunks {
        if let Err(e) = s.handle_input(c) {
            error = Some(e.to_string());
            break;
        }
        while let Some(e) = s.poll_event() {
            if let Event::Login(_) = e {
                s.accept_imei(true);
            }
            events.push(e);
        }
    }
    while let Some(e) = s.poll_event() {
        events.push(e);
    }
    // An error found while decoding frames buffered with the login surfaces here.
    let error = error.or_else(|| s.error().map(ToString::to_string));
    (events, error)
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let step = usize::from(data[0]).max(1);
    let stream = &data[1..];
    let whole = run(&[stream]);
    let pieces: Vec<&[u8]> = stream.chunks(step).collect();
    let split = run(&pieces);
    // The same events, up to the first error (which may be noticed in a later chunk).
    assert_eq!(whole.0, split.0);
    assert_eq!(whole.1, split.1);
});
