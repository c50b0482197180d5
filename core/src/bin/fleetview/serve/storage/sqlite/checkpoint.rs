//! The checkpointer: a thread that copies the WAL into the database file while the writer goes
//! on.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::super::Error;

/// Pause of the checkpointer thread when it has caught up with the WAL.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// A thread that copies the WAL into the database file (passive checkpoints, which never block
/// the writer) while the writer goes on: checkpoints were a third of the writer's time.
pub(super) struct Checkpointer {
    stop: Arc<(Mutex<bool>, std::sync::Condvar)>,
    thread: JoinHandle<()>,
}

impl Checkpointer {
    /// `sync`: the writer's `synchronous` setting (FULL or NORMAL).
    pub(super) fn start(path: &Path, sync: &str) -> Result<Self, Error> {
        let conn = Connection::open(path)
            .and_then(|c| {
                c.execute_batch(&format!(
                    "PRAGMA synchronous={sync}; PRAGMA busy_timeout=5000;"
                ))?;
                Ok(c)
            })
            .map_err(|e| {
                Error::open(format!("cannot open {} for checkpoints", path.display()), e)
            })?;
        let stop = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("fleetview-checkpoint".into())
            .spawn(move || {
                let (lock, cv) = &*flag;
                let mut stopped = lock.lock().unwrap_or_else(|p| p.into_inner());
                while !*stopped {
                    drop(stopped);
                    // (busy, frames in the WAL, frames copied); go again at once while behind.
                    let behind = match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                    }) {
                        Ok((log, done)) => log - done > 256,
                        Err(e) => {
                            tracing::warn!("checkpoint: {e}");
                            false
                        }
                    };
                    stopped = lock.lock().unwrap_or_else(|p| p.into_inner());
                    if !behind && !*stopped {
                        stopped = cv
                            .wait_timeout(stopped, CHECKPOINT_EVERY)
                            .map(|(g, _)| g)
                            .unwrap_or_else(|p| p.into_inner().0);
                    }
                }
            })
            .map_err(|e| Error::open("cannot start the checkpoint thread", e))?;
        Ok(Self { stop, thread })
    }

    pub(super) fn stop(self) {
        *self.stop.0.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.stop.1.notify_all();
        let _ = self.thread.join();
    }
}
