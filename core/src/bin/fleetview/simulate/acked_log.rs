//! `--acked-log FILE`: every record the server acknowledged, one line each, so that a test can
//! hold the database to the promise the server made (an acked record is stored, exactly once).
//!
//! A line is `IMEI TIMESTAMP_MS HEX`: the device, the record's timestamp in milliseconds, and the
//! record encoded alone in its codec (an AVL data array of one record, as `AvlData::encode`
//! writes it). The hex identifies the record exactly, whatever else shares its timestamp; it is
//! also what the server keeps as the record's original bytes.
//!
//! Lines are written when the ack arrives (buffered; flushed at each progress report and at the
//! end). A write error is kept and reported at the end: the run then fails, since a log with
//! holes would prove nothing.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use fleetview::{AvlData, AvlRecord, Codec, Imei};

/// The open log.
pub(crate) struct AckedLog {
    path: PathBuf,
    inner: Mutex<Inner>,
}

struct Inner {
    out: BufWriter<File>,
    lines: u64,
    error: Option<io::Error>,
}

/// The log could not be written.
#[derive(Debug)]
pub(crate) struct AckedLogError {
    path: PathBuf,
    source: io::Error,
}

impl fmt::Display for AckedLogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "--acked-log {}: {}", self.path.display(), self.source)
    }
}

impl std::error::Error for AckedLogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl AckedLog {
    /// Create (or truncate) the file.
    pub(crate) fn create(path: &Path) -> Result<Self, AckedLogError> {
        let file = File::create(path).map_err(|source| AckedLogError {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            path: path.to_owned(),
            inner: Mutex::new(Inner {
                out: BufWriter::with_capacity(1 << 16, file),
                lines: 0,
                error: None,
            }),
        })
    }

    /// Log records the server just acked.
    pub(crate) fn acked<'a>(
        &self,
        imei: &Imei,
        codec: Codec,
        records: impl Iterator<Item = &'a AvlRecord>,
    ) {
        let mut text = String::new();
        let mut n = 0;
        for record in records {
            text.push_str(&line(imei, codec, record));
            text.push('\n');
            n += 1;
        }
        let mut inner = self.lock();
        if inner.error.is_some() {
            return;
        }
        match inner.out.write_all(text.as_bytes()) {
            Ok(()) => inner.lines += n,
            Err(e) => inner.error = Some(e),
        }
    }

    /// Push the buffered lines to the file (so that a reader sees them during the run).
    pub(crate) fn flush(&self) {
        let mut inner = self.lock();
        if inner.error.is_none() {
            if let Err(e) = inner.out.flush() {
                inner.error = Some(e);
            }
        }
    }

    /// Flush and sync; the number of lines written, or the first error.
    pub(crate) fn finish(&self) -> Result<u64, AckedLogError> {
        self.flush();
        let mut inner = self.lock();
        if inner.error.is_none() {
            if let Err(e) = inner.out.get_ref().sync_all() {
                inner.error = Some(e);
            }
        }
        match inner.error.take() {
            None => Ok(inner.lines),
            Some(source) => Err(AckedLogError {
                path: self.path.clone(),
                source,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves the buffer usable: keep logging.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One record's line, without the newline.
pub(crate) fn line(imei: &Imei, codec: Codec, record: &AvlRecord) -> String {
    let data = AvlData::new(codec, vec![record.clone()]);
    // The simulator only builds records its codec can carry (they are encoded to be sent).
    let bytes = data
        .encode()
        .unwrap_or_else(|e| panic!("the simulator built an unencodable record: {e}"));
    format!(
        "{} {} {}",
        imei.as_str(),
        record.timestamp_ms,
        fleetview::hex::encode(&bytes)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_the_imei_the_timestamp_and_the_record_alone_in_its_codec() {
        let imei = Imei::new("352093080000002").unwrap();
        let record = AvlRecord {
            timestamp_ms: 1_700_000_000_123,
            ..AvlRecord::default()
        };
        let l = line(&imei, Codec::Codec8Ext, &record);
        let mut parts = l.split(' ');
        assert_eq!(parts.next(), Some("352093080000002"));
        assert_eq!(parts.next(), Some("1700000000123"));
        let bytes = fleetview::hex::decode(parts.next().unwrap()).unwrap();
        let back = fleetview::decode(&bytes, &fleetview::DecodeOptions::default()).unwrap();
        assert_eq!(back.len(), 1, "one bare AVL data array");
        assert_eq!(back[0].records(), [record]);
        assert_eq!(parts.next(), None);
    }

    #[test]
    fn lines_reach_the_file_and_are_counted() {
        let path = std::env::temp_dir().join(format!("fleetview-acked-{}.log", std::process::id()));
        let log = AckedLog::create(&path).unwrap();
        let imei = Imei::new("352093080000002").unwrap();
        let records: Vec<AvlRecord> = (0..3)
            .map(|i| AvlRecord {
                timestamp_ms: 1000 + i,
                ..AvlRecord::default()
            })
            .collect();
        log.acked(&imei, Codec::Codec8, records.iter());
        assert_eq!(log.finish().unwrap(), 3);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let stamps: Vec<&str> = text.lines().map(|l| l.split(' ').nth(1).unwrap()).collect();
        assert_eq!(stamps, ["1000", "1001", "1002"]);
    }
}
