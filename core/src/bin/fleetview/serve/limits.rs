//! Default limits, chosen from what real devices do, and the open-files limit the connection
//! limit is sized to.

use std::sync::atomic::{AtomicUsize, Ordering};

use tracing::{info, warn};

/// Largest data frame, bytes. AVL packets are at most 1280 bytes (512 on FMB640-family
/// devices); camera chunks over Codec 12 carry up to 2048 bytes of picture in a frame of about
/// 2,070. 4096 takes every frame a device sends and keeps a partial frame small.
pub(crate) const MAX_FRAME: usize = 4096;

/// Seconds from connect to the login. A device sends its IMEI in the first segment after the
/// TCP handshake; 15 s leaves room for the retransmissions of a lossy cellular link (1 s,
/// 3 s, 7 s) and a TLS handshake of two round trips on a slow one.
pub(crate) const LOGIN_TIMEOUT: f64 = 15.0;

/// Seconds from the first byte of a frame to its last. Frames of at most a few KiB arrive in
/// one or a few segments within seconds even at GPRS speeds.
pub(crate) const FRAME_TIMEOUT: f64 = 30.0;

/// Connections from one address not logged in yet. Devices log in within a round trip, so
/// even thousands of devices behind one carrier NAT reconnecting at once (after an outage)
/// have few of them waiting at any moment; a flood from one address is held to this many.
pub(crate) const PENDING_PER_ADDRESS: usize = 128;

/// File descriptors kept for everything but device and HTTP connections: the database and
/// its WAL, the UDP socket, the listeners, the runtime.
const RESERVED_FDS: u64 = 64;

/// Raise the open-files soft limit to the hard limit, and size the connection limit to it:
/// `requested` when given (lowered, with a warning, when the files allow fewer), else all the
/// descriptors but a reserve and the HTTP API's `http_connections`.
pub(crate) fn connections(
    requested: Option<usize>,
    http_connections: usize,
) -> Result<usize, String> {
    let files = open_files();
    let reserved = RESERVED_FDS + http_connections as u64;
    let fit = usize::try_from(files.saturating_sub(reserved)).unwrap_or(usize::MAX);
    if fit == 0 {
        return Err(format!(
            "the open-files limit is {files}: no descriptor left for devices after the {reserved} the server needs \
             ({RESERVED_FDS}, and {http_connections} for --http-max-connections; raise the hard limit: ulimit -Hn, \
             LimitNOFILE= in a systemd unit)"
        ));
    }
    let max = match requested {
        Some(0) => return Err("--max-connections must be at least 1".into()),
        Some(n) if n > fit => {
            warn!(
                "--max-connections {n} lowered to {fit}: the open-files limit is {files} \
                 (raise the hard limit: ulimit -Hn, LimitNOFILE= in a systemd unit)"
            );
            fit
        }
        Some(n) => n,
        None => fit,
    };
    info!("device connections: at most {max} (open-files limit {files})");
    Ok(max)
}

/// The open-files soft limit after raising it to the hard limit.
#[cfg(unix)]
fn open_files() -> u64 {
    use rlimit::Resource;
    let before = Resource::NOFILE.get().map(|(soft, _)| soft).ok();
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(now) => {
            if before.is_some_and(|b| b < now) {
                info!(
                    "open-files limit raised from {} to {now}",
                    before.unwrap_or(0)
                );
            }
            now
        }
        Err(e) => {
            let soft = before.unwrap_or(1024);
            warn!("cannot raise the open-files limit ({e}): it stays {soft}");
            soft
        }
    }
}

#[cfg(not(unix))]
fn open_files() -> u64 {
    // Windows has no per-process descriptor limit of this kind.
    u64::MAX
}

/// Bytes of partial frames all connections may hold together (`--max-buffered-total`): 64,000
/// frames of the default largest size at once, far above what devices do, and a cap on what
/// a flood of logged-in connections sending half frames can make the server hold.
pub(crate) const BUFFERED_TOTAL: usize = 256 << 20;

/// The memory of partial frames across connections, charged and released by each connection
/// as its buffer grows and empties.
pub(crate) struct Budget {
    used: AtomicUsize,
    max: usize,
}

impl Budget {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            used: AtomicUsize::new(0),
            max,
        }
    }

    /// A connection's buffered bytes go from `from` to `to`. Err with the total when growing
    /// would go beyond the budget (the growth is charged anyway: the caller closes the
    /// connection, which releases it).
    pub(crate) fn charge(&self, from: usize, to: usize) -> Result<(), usize> {
        if to <= from {
            self.used.fetch_sub(from - to, Ordering::Relaxed);
            return Ok(());
        }
        let total = self.used.fetch_add(to - from, Ordering::Relaxed) + (to - from);
        if total > self.max {
            return Err(total);
        }
        Ok(())
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_charged_and_released() {
        let b = Budget::new(100);
        assert_eq!(b.charge(0, 60), Ok(()));
        assert_eq!(b.charge(0, 30), Ok(()));
        assert_eq!(b.charge(30, 50), Err(110));
        assert_eq!(b.charge(50, 0), Ok(()));
        assert_eq!(b.charge(60, 10), Ok(()));
        assert_eq!(b.charge(0, 90), Ok(()));
    }
}
