//! A capture file opened in the playground: read from the `File` in slices (never whole in
//! memory), each slice fed to core's capture analyzer, the sessions kept for the capture view.
//! Nothing leaves the browser. The analysis itself is core's (`fleetview::capture`); this
//! module only moves bytes and keeps the result.

use std::rc::Rc;

use fleetview::capture::{Analyzer, CaptureStats, SessionReport, DEFAULT_PORT};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, File};

/// Bytes read from the file at a time.
const SLICE: f64 = 1024.0 * 1024.0;

/// Largest capture opened: the sessions' decoded packets stay in the page.
pub const MAX_CAPTURE: f64 = 256.0 * 1024.0 * 1024.0;

/// A capture shared by the state and the view. Equal when it is the same capture (the same
/// allocation): a capture never changes once read, and comparing sessions deeply would cost
/// code size and time at every render.
#[derive(Clone, Debug)]
pub struct SharedCapture(pub Rc<CaptureView>);

impl PartialEq for SharedCapture {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl core::ops::Deref for SharedCapture {
    type Target = CaptureView;
    fn deref(&self) -> &CaptureView {
        &self.0
    }
}

/// A capture and what core found in it.
#[derive(Clone, Debug, PartialEq)]
pub struct CaptureView {
    /// File name.
    pub name: String,
    /// Sessions, in the order their connections closed.
    pub sessions: Vec<SessionReport>,
    /// Counters of the whole file.
    pub stats: CaptureStats,
    /// Why the file could not be read to its end.
    pub error: Option<String>,
}

impl CaptureView {
    /// A capture given as pieces (the slices of a file, or a whole file in tests).
    pub fn analyze<'a>(name: &str, pieces: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let a = fleetview::capture::analyze(DEFAULT_PORT, pieces);
        Self {
            name: name.to_string(),
            sessions: a.sessions,
            stats: a.stats,
            error: a.result.err().map(|e| e.to_string()),
        }
    }

    fn end(
        name: &str,
        mut a: Analyzer,
        mut sessions: Vec<SessionReport>,
        mut error: Option<String>,
    ) -> Self {
        let end = a.finish();
        if error.is_none() {
            error = end.err().map(|e| e.to_string());
        }
        while let Some(s) = a.poll_session() {
            sessions.push(s);
        }
        Self {
            name: name.to_string(),
            sessions,
            stats: a.stats(),
            error,
        }
    }

    /// Sessions with at least one problem.
    pub fn with_problems(&self) -> usize {
        self.sessions
            .iter()
            .filter(|s| !s.problems.is_empty())
            .count()
    }
}

async fn bytes_of(blob: &Blob) -> Result<Vec<u8>, String> {
    let buf = JsFuture::from(blob.array_buffer())
        .await
        .map_err(|_| "could not be read".to_string())?;
    Ok(js_sys::Uint8Array::new(&buf).to_vec())
}

/// The first bytes of a file (to tell a capture from a binary packet).
pub async fn head(file: &File) -> Vec<u8> {
    match file.slice_with_f64_and_f64(0.0, 8.0) {
        Ok(b) => bytes_of(&b).await.unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// Read and analyze a capture file slice by slice.
pub async fn read(file: File) -> CaptureView {
    let name = file.name();
    let size = file.size();
    let mut a = Analyzer::new(DEFAULT_PORT);
    let mut sessions = Vec::new();
    let mut error = None;
    let mut at = 0.0;
    while at < size {
        let end = (at + SLICE).min(size);
        let piece = match file.slice_with_f64_and_f64(at, end) {
            Ok(blob) => bytes_of(&blob).await,
            Err(_) => Err("could not be sliced".to_string()),
        };
        match piece {
            Ok(bytes) => {
                if let Err(e) = a.handle_input(&bytes) {
                    error = Some(e.to_string());
                    break;
                }
            }
            Err(e) => {
                error = Some(format!("{name}: {e} at byte {at}"));
                break;
            }
        }
        while let Some(s) = a.poll_session() {
            sessions.push(s);
        }
        at = end;
    }
    CaptureView::end(&name, a, sessions, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The recorded command capture (server on port 35027: the device is found by its
    /// login): one session with its command answered, whatever the slicing.
    #[test]
    fn a_recorded_capture_in_slices() {
        let file = include_bytes!("../../core/tests/captures/tcp_command.pcap");
        let whole = CaptureView::analyze("c.pcap", [&file[..]]);
        assert_eq!(whole.sessions.len(), 1);
        assert!(whole.error.is_none());
        assert_eq!(whole.with_problems(), 0);
        assert!(whole.sessions[0]
            .replies
            .iter()
            .any(|r| r.answered_by.is_some()));
        let sliced = CaptureView::analyze("c.pcap", file.chunks(100));
        assert_eq!(sliced, whole);
    }

    #[test]
    fn a_file_cut_short_keeps_its_sessions_and_says_where() {
        let file = include_bytes!("../../core/tests/captures/tcp_devices.pcap");
        let v = CaptureView::analyze("d.pcap", [&file[..file.len() - 7]]);
        assert_eq!(v.sessions.len(), 3);
        assert!(
            v.error
                .as_deref()
                .unwrap()
                .starts_with("truncated capture at byte"),
            "{:?}",
            v.error
        );
    }
}
