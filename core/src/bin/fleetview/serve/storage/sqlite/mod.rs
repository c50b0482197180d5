//! The SQLite engine: one file, one process. WAL lets the API's read-only connections
//! ([`read`]) read while the writer ([`writer`]) commits; a checkpointer thread ([`checkpoint`])
//! copies the WAL into the database file meanwhile.

mod checkpoint;
pub(crate) mod read;
mod reports;
mod schema;
mod writer;

use std::path::Path;
use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::mpsc;

use super::{Error, Job, Pending, Sync, Writer};
use crate::serve::query::Reader;

/// The writer's page cache, KiB: the leaf pages of the records index that every device appends
/// to (one per device) stay in memory.
const CACHE_KIB: u32 = 65_536;
/// WAL pages after which the writer checkpoints itself. The checkpointer thread normally has
/// copied all but the last few frames by then, so the writer's own checkpoint is short and
/// lets the WAL start over.
const WRITER_CHECKPOINT_PAGES: u32 = 8192;

/// Open (creating and migrating when needed) the database and start the writer thread on `rx`.
pub(super) fn open(
    path: &Path,
    sync: Sync,
    rx: mpsc::Receiver<Job>,
    pending: Arc<Pending>,
    outbox: bool,
) -> Result<(Writer, Reader), Error> {
    let at = |what: &str| format!("{what} {}", path.display());
    // A clean stop leaves an empty (or no) WAL: anything in it means the last run was killed,
    // and the devices' record counts may lag behind the records (see writer::COUNTS_EVERY).
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let unclean = std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0);
    let mut conn =
        Connection::open(path).map_err(|e| Error::open(at("cannot open the database"), e))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(|e| Error::open(at("cannot switch to WAL:"), e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::open(
            at("no WAL support in"),
            format!("journal mode {mode}"),
        ));
    }
    let sync = match sync {
        Sync::Full => "FULL",
        Sync::Normal => "NORMAL",
    };
    // foreign_keys stays off on the writer: it resolves every device id itself, and the check
    // costs a lookup per record. The cache holds the index pages every device appends to.
    conn.execute_batch(&format!(
        "PRAGMA synchronous={sync}; PRAGMA busy_timeout=5000; PRAGMA cache_size=-{CACHE_KIB};
         PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES};"
    ))
    .map_err(|e| Error::open(at("cannot prepare the database"), e))?;
    schema::migrate(&mut conn).map_err(|e| match e {
        Error::TooNew { .. } => e,
        e => Error::open(at("cannot migrate the schema of"), e),
    })?;
    // Commands sent by a previous run that stopped before their answer may have run on their
    // device: marked unanswered, never sent again unless the API asks for it.
    let unanswered = conn.execute(
        "UPDATE commands SET status = 'unanswered', error = 'the server stopped before the device answered'
         WHERE status = 'sent'",
        [],
    )?;
    if unanswered > 0 {
        tracing::warn!(
            "{unanswered} commands sent before the last stop were not answered: marked unanswered (not sent again; POST /api/commands/ID/retry to send one again)"
        );
    }
    if unclean {
        conn.execute(
            "UPDATE devices SET records = (SELECT count(*) FROM records r WHERE r.device_id = devices.id)",
            [],
        )?;
        tracing::info!("the last run did not stop cleanly: record counts recounted");
    }
    conn.prepare(
        "SELECT DISTINCT d.imei FROM commands c JOIN devices d ON d.id = c.device_id WHERE c.status = 'queued'",
    )
    .and_then(|mut q| {
        q.query_map([], |r| r.get::<_, String>(0))?
            .try_for_each(|imei| imei.map(|i| pending.set(&i, true)))
    })?;
    let reader = Reader::Sqlite(read::Pool::open(path)?);
    let checkpointer = checkpoint::Checkpointer::start(path, sync)?;
    let thread = std::thread::Builder::new()
        .name("fleetview-writer".into())
        .spawn(move || writer::write_loop(conn, rx, pending, checkpointer, outbox))
        .map_err(|e| Error::open("cannot start the writer thread", e))?;
    Ok((Writer::Thread(thread), reader))
}
