//! SQLite storage: devices, records, commands.
//!
//! One writer thread owns the only writing connection. Connections and the UDP listener hand it
//! jobs through a channel; it takes whatever is queued (up to [`MAX_GROUP`] jobs), applies them in
//! one transaction, commits, and only then answers each job. A device is acked after that
//! answer, so every acked record is on disk (`synchronous=FULL` by default: the WAL is synced at
//! each commit, one fsync per group rather than per frame).
//!
//! A record's identity is its device, its timestamp and a 64-bit FNV-1a hash of its bytes as
//! encoded alone in its codec. `INSERT OR IGNORE` on that unique key makes a resent batch add no
//! rows, while it is still acked.
//!
//! A record's IO is stored as compact JSON without names (`[[id,size,raw],[id,size,"hex"]]`,
//! see [`io_json`]): names, units and scaled values come from the catalogue when the API reads
//! the row, so the writer neither looks them up nor writes them (they were most of a row).
//!
//! Which devices have queued commands is also kept in memory ([`Pending`]), updated by the
//! writer itself as it queues, takes and requeues them, so that a connection only asks the
//! writer for a command when there is one (not once per frame).
//!
//! Readers (the HTTP API) use their own connections ([`super::query`]): WAL lets them read
//! while the writer commits.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fleetview::{AvlRecord, IoValue};
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::{mpsc, oneshot};

use super::fuel::{FuelIds, Reading};
use super::query::Reader;

/// Most jobs committed in one transaction.
const MAX_GROUP: usize = 512;
/// Jobs waiting for the writer before senders wait too (backpressure on devices).
const QUEUE: usize = 4096;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS devices (
    id            INTEGER PRIMARY KEY,
    imei          TEXT NOT NULL UNIQUE,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    transport     TEXT,
    address       TEXT,
    records       INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS records (
    id              INTEGER PRIMARY KEY,
    device_id       INTEGER NOT NULL REFERENCES devices(id),
    timestamp_ms    INTEGER NOT NULL,
    hash            INTEGER NOT NULL,
    received_ms     INTEGER NOT NULL,
    transport       TEXT NOT NULL,
    codec           TEXT NOT NULL,
    priority        INTEGER NOT NULL,
    longitude       REAL NOT NULL,
    latitude        REAL NOT NULL,
    altitude        INTEGER NOT NULL,
    angle           INTEGER NOT NULL,
    satellites      INTEGER NOT NULL,
    speed           INTEGER NOT NULL,
    valid           INTEGER NOT NULL,
    event_id        INTEGER NOT NULL,
    generation_type INTEGER,
    io              TEXT NOT NULL,
    fuel_id         INTEGER,
    fuel_level      REAL,
    fuel_unit       TEXT,
    ignition        INTEGER,
    movement        INTEGER,
    raw             BLOB NOT NULL,
    UNIQUE (device_id, timestamp_ms, hash)
);
CREATE TABLE IF NOT EXISTS commands (
    id          INTEGER PRIMARY KEY,
    device_id   INTEGER NOT NULL REFERENCES devices(id),
    codec       TEXT NOT NULL,
    text        TEXT,
    payload     BLOB NOT NULL,
    status      TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    sent_ms     INTEGER,
    answered_ms INTEGER,
    response    TEXT,
    error       TEXT
);
CREATE INDEX IF NOT EXISTS commands_queue ON commands (device_id, status, id);
PRAGMA user_version = 1;
";

/// Milliseconds since 1970, from the system clock (the server's only clock).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// FNV-1a, 64 bits: stable across builds and platforms, unlike std's hasher, as a key stored on
/// disk must be.
pub(crate) fn record_hash(bytes: &[u8]) -> i64 {
    fleetview::identity::RecordKey::of(bytes).as_i64()
}

/// IO elements as compact JSON: `[[id,size,raw],…]` for fixed-size values (the unsigned
/// integer on the wire, exact to 2^64) and `[id,size,"hex"]` for variable-length ones. Enough to
/// rebuild every element exactly; names and scaled values are added when the row is read.
pub(crate) fn io_json(record: &AvlRecord, out: &mut String) {
    // Built as bytes (ASCII only) and checked once: this runs for every IO element stored.
    let mut b = std::mem::take(out).into_bytes();
    b.push(b'[');
    for (i, e) in record.io.iter().enumerate() {
        b.extend_from_slice(if i > 0 { b",[" } else { b"[" });
        push_u64(&mut b, e.id.into());
        b.push(b',');
        push_u64(&mut b, e.value.size() as u64);
        b.push(b',');
        match &e.value {
            IoValue::Bytes(v) => {
                b.push(b'"');
                b.extend_from_slice(fleetview::hex::encode(v).as_bytes());
                b.push(b'"');
            }
            v => push_u64(&mut b, v.raw().unwrap_or_default()),
        }
        b.push(b']');
    }
    b.push(b']');
    *out = String::from_utf8(b).unwrap_or_default();
}

/// Decimal digits of `v`, without the formatting machinery.
fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// A record ready to insert: the record itself (for live events) and what is stored of it.
#[derive(Clone, Debug)]
pub(crate) struct RecordRow {
    pub(crate) record: AvlRecord,
    /// The record encoded alone in its codec: the dedup key and the exact original.
    pub(crate) raw: Vec<u8>,
    /// [`io_json`].
    pub(crate) io: String,
    pub(crate) fuel: Option<Reading>,
    pub(crate) ignition: Option<u8>,
    pub(crate) movement: Option<u8>,
}

impl RecordRow {
    pub(crate) fn new(
        record: AvlRecord,
        codec: fleetview::Codec,
        fuel_ids: &FuelIds,
        model: Option<&str>,
    ) -> Self {
        let mut data = fleetview::AvlData::new(codec, vec![record]);
        let encoded = data.encode();
        let record = data.records.pop().unwrap_or_default();
        let mut io = String::with_capacity(16 + record.io.len() * 12);
        io_json(&record, &mut io);
        // Every decoded record re-encodes; should one not, its JSON is the identity instead.
        let raw = encoded.unwrap_or_else(|_| {
            serde_json::to_vec(&fleetview::json::RecordJson::new(&record, model))
                .unwrap_or_default()
        });
        let (fuel, ignition, movement) = fuel_ids.read(&record);
        Self {
            fuel,
            record,
            raw,
            io,
            ignition,
            movement,
        }
    }
}

/// The records of one frame or datagram.
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) imei: Arc<str>,
    /// The device's row id when known (a logged-in TCP connection); `None`: found or created
    /// by IMEI, with the transport and address updated.
    pub(crate) device: Option<i64>,
    pub(crate) transport: &'static str,
    pub(crate) codec: &'static str,
    pub(crate) address: Arc<str>,
    pub(crate) received_ms: i64,
    pub(crate) rows: Vec<RecordRow>,
}

/// The devices with queued commands, kept by the writer as it queues and takes them: a
/// connection asks the writer for a command only when its device is here.
#[derive(Default)]
pub(crate) struct Pending {
    count: AtomicUsize,
    imeis: Mutex<HashSet<String>>,
}

impl Pending {
    fn set(&self, imei: &str, queued: bool) {
        let mut set = self.imeis.lock().unwrap_or_else(|p| p.into_inner());
        if queued {
            set.insert(imei.to_string());
        } else {
            set.remove(imei);
        }
        self.count.store(set.len(), Ordering::Release);
    }

    /// Whether the device may have a queued command.
    pub(crate) fn has(&self, imei: &str) -> bool {
        self.count.load(Ordering::Acquire) > 0
            && self
                .imeis
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(imei)
    }
}

/// A command taken from the queue to send.
#[derive(Clone, Debug)]
pub(crate) struct Queued {
    pub(crate) id: i64,
    pub(crate) codec: String,
    pub(crate) payload: Vec<u8>,
}

/// How a command ended.
#[derive(Debug)]
pub(crate) enum CommandEnd {
    /// The device answered (`response` is the MessageJson); `error` set for a nACK.
    Answered {
        response: String,
        error: Option<String>,
    },
    /// Gave up: no answer in time.
    Failed(String),
    /// The connection closed before the answer: send it again on the next connection.
    Requeue,
}

enum Op {
    Records(Batch),
    Seen {
        imei: String,
        transport: &'static str,
        address: String,
    },
    Queue {
        imei: String,
        codec: &'static str,
        text: Option<String>,
        payload: Vec<u8>,
    },
    Take {
        imei: String,
    },
    End {
        id: i64,
        end: CommandEnd,
    },
    /// Commit what is queued before it, then stop: later jobs fail, nobody is acked for them.
    Close,
}

/// What a job produced.
enum Outcome {
    /// The batch back, with the new row id of each record, `None` for a duplicate.
    Records(Batch, Vec<Option<i64>>),
    Id(i64),
    Taken(Option<Queued>),
    Done,
}

struct Job {
    op: Op,
    reply: oneshot::Sender<Result<Outcome, String>>,
}

/// The writer's handle: cheap to clone, one per task.
#[derive(Clone)]
pub(crate) struct Store {
    tx: mpsc::Sender<Job>,
    pending: Arc<Pending>,
}

/// The writer thread; join it after [`Store::close`] (or after dropping every [`Store`]).
pub(crate) struct Writer {
    thread: JoinHandle<()>,
}

impl Writer {
    pub(crate) fn join(self) {
        let _ = self.thread.join();
    }
}

/// How durable a commit is before its ack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Sync {
    /// fsync the WAL at every commit: acked records survive a power cut.
    Full,
    /// No fsync at commit: acked records survive a crash of the process, not of the machine.
    Normal,
}

/// Open (creating when needed) the database and start the writer.
pub(crate) fn open(path: &Path, sync: Sync) -> Result<(Store, Writer, Reader), String> {
    // A clean stop leaves an empty (or no) WAL: anything in it means the last run was killed,
    // and the devices' record counts may lag behind the records (see COUNTS_EVERY).
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let unclean = std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0);
    let conn = Connection::open(path)
        .map_err(|e| format!("cannot open the database {}: {e}", path.display()))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(|e| format!("cannot switch {} to WAL: {e}", path.display()))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!(
            "{} does not support WAL (journal mode {mode})",
            path.display()
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
    .and_then(|()| conn.execute_batch(SCHEMA))
    .map_err(|e| format!("cannot prepare the database {}: {e}", path.display()))?;
    // Commands left `sent` by a previous run that stopped before their answer go out again.
    let requeued = conn
        .execute(
            "UPDATE commands SET status = 'queued', sent_ms = NULL WHERE status = 'sent'",
            [],
        )
        .map_err(|e| format!("cannot requeue commands: {e}"))?;
    if requeued > 0 {
        tracing::info!(
            "{requeued} commands sent before the last stop but not answered: queued again"
        );
    }
    if unclean {
        conn.execute(
            "UPDATE devices SET records = (SELECT count(*) FROM records r WHERE r.device_id = devices.id)",
            [],
        )
        .map_err(|e| format!("cannot recount the records: {e}"))?;
        tracing::info!("the last run did not stop cleanly: record counts recounted");
    }
    let pending = Arc::new(Pending::default());
    conn.prepare(
        "SELECT DISTINCT d.imei FROM commands c JOIN devices d ON d.id = c.device_id WHERE c.status = 'queued'",
    )
    .and_then(|mut q| {
        q.query_map([], |r| r.get::<_, String>(0))?
            .try_for_each(|imei| imei.map(|i| pending.set(&i, true)))
    })
    .map_err(|e| format!("cannot read the command queue: {e}"))?;
    let reader = Reader::open(path)?;
    let checkpointer = Checkpointer::start(path, sync)?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let writer_pending = pending.clone();
    let thread = std::thread::Builder::new()
        .name("fleetview-writer".into())
        .spawn(move || write_loop(conn, rx, writer_pending, checkpointer))
        .map_err(|e| format!("cannot start the writer thread: {e}"))?;
    Ok((Store { tx, pending }, Writer { thread }, reader))
}

/// What the writer keeps between groups.
struct WriterState {
    pending: Arc<Pending>,
    /// Records added and last data time per device (TCP batches) since the devices table was
    /// last updated; see [`COUNTS_EVERY`].
    counts: HashMap<i64, (i64, i64)>,
    counted_at: Instant,
}

/// The writer's page cache, KiB: the leaf pages of the records index that every device appends
/// to (one per device) stay in memory.
const CACHE_KIB: u32 = 65_536;
/// WAL pages after which the writer checkpoints itself. The checkpointer thread normally has
/// copied all but the last few frames by then, so the writer's own checkpoint is short and
/// lets the WAL start over.
const WRITER_CHECKPOINT_PAGES: u32 = 8192;
/// Pause of the checkpointer thread when it has caught up with the WAL.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// A thread that copies the WAL into the database file (passive checkpoints, which never block
/// the writer) while the writer goes on: checkpoints were a third of the writer's time.
struct Checkpointer {
    stop: Arc<(Mutex<bool>, std::sync::Condvar)>,
    thread: JoinHandle<()>,
}

impl Checkpointer {
    /// `sync`: the writer's `synchronous` setting (FULL or NORMAL).
    fn start(path: &Path, sync: &str) -> Result<Self, String> {
        let conn = Connection::open(path)
            .and_then(|c| {
                c.execute_batch(&format!(
                    "PRAGMA synchronous={sync}; PRAGMA busy_timeout=5000;"
                ))?;
                Ok(c)
            })
            .map_err(|e| format!("cannot open {} for checkpoints: {e}", path.display()))?;
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
            .map_err(|e| format!("cannot start the checkpoint thread: {e}"))?;
        Ok(Self { stop, thread })
    }

    fn stop(self) {
        *self.stop.0.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.stop.1.notify_all();
        let _ = self.thread.join();
    }
}

fn write_loop(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    pending: Arc<Pending>,
    checkpointer: Checkpointer,
) {
    let mut state = WriterState {
        pending,
        counts: HashMap::new(),
        counted_at: Instant::now(),
    };
    let mut group = Vec::with_capacity(MAX_GROUP);
    let mut closing = false;
    while !closing {
        let Some(job) = rx.blocking_recv() else { break };
        group.push(job);
        drain(&mut rx, &mut group);
        if group.len() < LINGER_BELOW
            && !matches!(group.last(), Some(j) if matches!(j.op, Op::Close))
        {
            // A commit has a fixed cost (the WAL sync, pages every commit rewrites, the page
            // cache's bookkeeping): with a few jobs only, a moment's wait lets more join it.
            std::thread::sleep(LINGER);
            drain(&mut rx, &mut group);
        }
        if let Some(at) = group.iter().position(|j| matches!(j.op, Op::Close)) {
            // Jobs queued after the close are dropped unanswered: their senders see an error.
            group.truncate(at + 1);
            closing = true;
        }
        let started = Instant::now();
        let (ops, replies): (Vec<Op>, Vec<_>) = group.drain(..).map(|j| (j.op, j.reply)).unzip();
        let outcomes = commit_group(&mut conn, ops, &mut state, closing);
        tracing::trace!(
            jobs = replies.len(),
            micros = started.elapsed().as_micros() as u64,
            "group committed"
        );
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            let _ = reply.send(outcome);
        }
    }
    drop(rx);
    checkpointer.stop();
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
        tracing::warn!("final WAL checkpoint failed: {e}");
    }
    if let Err((_, e)) = conn.close() {
        tracing::warn!("closing the database: {e}");
    }
    tracing::debug!("writer closed");
}

/// Take what is queued, up to [`MAX_GROUP`] jobs.
fn drain(rx: &mut mpsc::Receiver<Job>, group: &mut Vec<Job>) {
    while group.len() < MAX_GROUP {
        match rx.try_recv() {
            Ok(job) => group.push(job),
            Err(_) => break,
        }
    }
}

/// Groups smaller than this wait [`LINGER`] for more jobs before they are committed.
const LINGER_BELOW: usize = 32;
/// At most this much is added to an ack's latency by the wait.
const LINGER: Duration = Duration::from_micros(500);

/// The devices table's record counts and last data times are updated at most this often under
/// load (at every group when groups are small, and at shutdown): one update per device per
/// interval instead of one per frame, which rewrote the table's pages in every commit. After
/// a crash they are counted again from the records ([`open`]).
const COUNTS_EVERY: Duration = Duration::from_secs(1);
/// Groups this small update the counts at once (light load: the API is exact right away).
const SMALL_GROUP: usize = 8;

/// Apply every job in one transaction and commit. A job that fails must leave nothing behind:
/// then the transaction is rolled back and the jobs applied again each in its own savepoint
/// (savepoints cost a copy of every page a job touches, so only the rare failing group pays
/// for them). When the commit fails every job fails: nobody is acked and devices send again.
fn commit_group(
    conn: &mut Connection,
    ops: Vec<Op>,
    state: &mut WriterState,
    closing: bool,
) -> Vec<Result<Outcome, String>> {
    let n = ops.len();
    let update_counts = closing || n <= SMALL_GROUP || state.counted_at.elapsed() >= COUNTS_EVERY;
    let mut isolated = false;
    let result = loop {
        let tx = match conn.transaction() {
            Ok(tx) => tx,
            Err(e) => break Err(format!("cannot begin a transaction: {e}")),
        };
        let mut added = HashMap::new();
        let mut applied = Vec::with_capacity(n);
        let mut failed = false;
        for op in &ops {
            let r = if isolated {
                savepoint(&tx, op, &state.pending)
            } else {
                apply(&tx, op, &state.pending)
            };
            if let (
                Ok(Applied::Records {
                    device,
                    added: k,
                    at,
                    ..
                }),
                true,
            ) = (&r, matches!(op, Op::Records(b) if b.device.is_some()))
            {
                let e = added.entry(*device).or_insert((0, 0));
                e.0 += k;
                e.1 = e.1.max(*at);
            }
            if let Err(e) = &r {
                tracing::warn!("database job failed: {e}");
                failed = true;
                if !isolated {
                    break;
                }
            }
            applied.push(r.map_err(|e| e.to_string()));
        }
        if failed && !isolated {
            // Dropping `tx` rolls everything back; again, job by job.
            drop(tx);
            isolated = true;
            continue;
        }
        let counted = if update_counts {
            for (&device, &(k, at)) in &added {
                let e = state.counts.entry(device).or_insert((0, 0));
                e.0 += k;
                e.1 = e.1.max(at);
            }
            let r = write_counts(&tx, &state.counts);
            if r.is_err() {
                // Not in this commit after all: take this group's share back out.
                for (device, (k, _)) in &added {
                    if let Some(e) = state.counts.get_mut(device) {
                        e.0 -= k;
                    }
                }
            }
            r.is_ok()
        } else {
            false
        };
        let started = Instant::now();
        let committed = tx.commit();
        tracing::trace!(
            jobs = n,
            commit_micros = started.elapsed().as_micros() as u64,
            "commit"
        );
        break match committed {
            Ok(()) => {
                if counted {
                    state.counts.clear();
                    state.counted_at = Instant::now();
                } else {
                    for (device, (k, at)) in added {
                        let e = state.counts.entry(device).or_insert((0, 0));
                        e.0 += k;
                        e.1 = e.1.max(at);
                    }
                }
                Ok(applied)
            }
            Err(e) => {
                if counted {
                    // Those updates were rolled back with the group: the counts stay due,
                    // minus this group's own records, which were not stored.
                    for (device, (k, _)) in &added {
                        if let Some(e) = state.counts.get_mut(device) {
                            e.0 -= k;
                        }
                    }
                }
                tracing::error!("commit failed, {n} jobs not stored: {e}");
                Err(format!("commit failed: {e}"))
            }
        };
    };
    match result {
        Ok(applied) => ops
            .into_iter()
            .zip(applied)
            .map(|(op, r)| r.map(|a| a.outcome(op)))
            .collect(),
        Err(e) => (0..n).map(|_| Err(e.clone())).collect(),
    }
}

/// Add the counted records and data times to the devices table.
fn write_counts(tx: &Connection, counts: &HashMap<i64, (i64, i64)>) -> rusqlite::Result<()> {
    let mut update = tx.prepare_cached(
        "UPDATE devices SET records = records + ?1, last_seen_ms = max(last_seen_ms, ?2) WHERE id = ?3",
    )?;
    for (&device, &(added, at)) in counts {
        update.execute(params![added, at, device])?;
    }
    Ok(())
}

/// One job in a savepoint (statements prepared once).
fn savepoint(tx: &Connection, op: &Op, pending: &Pending) -> rusqlite::Result<Applied> {
    tx.prepare_cached("SAVEPOINT job")?.execute([])?;
    match apply(tx, op, pending) {
        Ok(out) => {
            tx.prepare_cached("RELEASE job")?.execute([])?;
            Ok(out)
        }
        Err(e) => {
            if let Err(undo) = tx.execute_batch("ROLLBACK TO job; RELEASE job") {
                tracing::error!("cannot undo a failed job: {undo}");
            }
            Err(e)
        }
    }
}

/// What applying a job produced (the job itself is turned into its [`Outcome`] after the
/// commit: a group may be applied twice).
enum Applied {
    Records {
        ids: Vec<Option<i64>>,
        device: i64,
        added: i64,
        at: i64,
    },
    Id(i64),
    Taken(Option<Queued>),
    Done,
}

impl Applied {
    fn outcome(self, op: Op) -> Outcome {
        match (self, op) {
            (Applied::Records { ids, .. }, Op::Records(batch)) => Outcome::Records(batch, ids),
            (Applied::Id(id), _) => Outcome::Id(id),
            (Applied::Taken(q), _) => Outcome::Taken(q),
            _ => Outcome::Done,
        }
    }
}

fn device_id(
    tx: &Connection,
    imei: &str,
    transport: Option<&str>,
    address: Option<&str>,
) -> rusqlite::Result<i64> {
    let now = now_ms();
    tx.prepare_cached(
        "INSERT INTO devices (imei, first_seen_ms, last_seen_ms, transport, address) VALUES (?1, ?2, ?2, ?3, ?4)
         ON CONFLICT (imei) DO UPDATE SET last_seen_ms = excluded.last_seen_ms,
           transport = coalesce(excluded.transport, transport), address = coalesce(excluded.address, address)",
    )?
    .execute(params![imei, now, transport, address])?;
    tx.prepare_cached("SELECT id FROM devices WHERE imei = ?1")?
        .query_row([imei], |r| r.get(0))
}

fn apply(tx: &Connection, op: &Op, pending: &Pending) -> rusqlite::Result<Applied> {
    match op {
        Op::Records(batch) => {
            let device = match batch.device {
                Some(id) => id,
                None => device_id(tx, &batch.imei, Some(batch.transport), Some(&batch.address))?,
            };
            let mut ids = Vec::with_capacity(batch.rows.len());
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO records (device_id, timestamp_ms, hash, received_ms, transport, codec,
                   priority, longitude, latitude, altitude, angle, satellites, speed, valid, event_id,
                   generation_type, io, fuel_id, fuel_level, fuel_unit, ignition, movement, raw)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
                   ?20, ?21, ?22, ?23)",
            )?;
            for row in &batch.rows {
                let r = &row.record;
                let n = insert.execute(params![
                    device,
                    r.timestamp_ms as i64,
                    record_hash(&row.raw),
                    batch.received_ms,
                    batch.transport,
                    batch.codec,
                    r.priority.0,
                    r.gps.longitude_deg(),
                    r.gps.latitude_deg(),
                    r.gps.altitude,
                    r.gps.angle,
                    r.gps.satellites,
                    r.gps.speed,
                    r.gps.has_fix(),
                    r.event_id,
                    r.generation_type.map(|g| g.0),
                    row.io,
                    row.fuel.as_ref().map(|f| f.id),
                    row.fuel.as_ref().map(|f| f.level),
                    row.fuel.as_ref().and_then(|f| f.unit),
                    row.ignition,
                    row.movement,
                    row.raw,
                ])?;
                ids.push((n == 1).then(|| tx.last_insert_rowid()));
            }
            let added = ids.iter().flatten().count() as i64;
            // A known device's count is updated with the others' (`write_counts`).
            if batch.device.is_none() && added > 0 {
                tx.prepare_cached("UPDATE devices SET records = records + ?1 WHERE id = ?2")?
                    .execute(params![added, device])?;
            }
            Ok(Applied::Records {
                ids,
                device,
                added,
                at: batch.received_ms,
            })
        }
        Op::Seen {
            imei,
            transport,
            address,
        } => Ok(Applied::Id(device_id(
            tx,
            imei,
            Some(transport),
            Some(address),
        )?)),
        Op::Queue {
            imei,
            codec,
            text,
            payload,
        } => {
            let device: i64 = tx
                .prepare_cached("SELECT id FROM devices WHERE imei = ?1")?
                .query_row([imei], |r| r.get(0))?;
            tx.prepare_cached(
                "INSERT INTO commands (device_id, codec, text, payload, status, created_ms) VALUES (?1, ?2, ?3, ?4, 'queued', ?5)",
            )?
            .execute(params![device, codec, text, payload, now_ms()])?;
            pending.set(imei, true);
            Ok(Applied::Id(tx.last_insert_rowid()))
        }
        Op::Take { imei } => {
            let next = tx
                .prepare_cached(
                    "SELECT c.id, c.codec, c.payload FROM commands c JOIN devices d ON d.id = c.device_id
                     WHERE d.imei = ?1 AND c.status = 'queued' ORDER BY c.id LIMIT 1",
                )?
                .query_row([imei], |r| {
                    Ok(Queued {
                        id: r.get(0)?,
                        codec: r.get(1)?,
                        payload: r.get(2)?,
                    })
                })
                .optional()?;
            match &next {
                Some(q) => {
                    tx.prepare_cached(
                        "UPDATE commands SET status = 'sent', sent_ms = ?1 WHERE id = ?2",
                    )?
                    .execute(params![now_ms(), q.id])?;
                }
                // Jobs run one at a time: no command can be queued between the look and this.
                None => pending.set(imei, false),
            }
            Ok(Applied::Taken(next))
        }
        Op::End { id, end } => {
            let id = *id;
            let now = now_ms();
            match end {
                CommandEnd::Answered { response, error } => {
                    let status = if error.is_some() {
                        "failed"
                    } else {
                        "answered"
                    };
                    tx.prepare_cached(
                        "UPDATE commands SET status = ?1, answered_ms = ?2, response = ?3, error = ?4 WHERE id = ?5",
                    )?
                    .execute(params![status, now, response, error, id])?;
                }
                CommandEnd::Failed(error) => {
                    tx.prepare_cached(
                        "UPDATE commands SET status = 'failed', error = ?1 WHERE id = ?2",
                    )?
                    .execute(params![error, id])?;
                }
                CommandEnd::Requeue => {
                    let n = tx
                        .prepare_cached(
                            "UPDATE commands SET status = 'queued', sent_ms = NULL WHERE id = ?1 AND status = 'sent'",
                        )?
                        .execute([id])?;
                    if n > 0 {
                        let imei: String = tx
                            .prepare_cached(
                                "SELECT d.imei FROM commands c JOIN devices d ON d.id = c.device_id WHERE c.id = ?1",
                            )?
                            .query_row([id], |r| r.get(0))?;
                        pending.set(&imei, true);
                    }
                }
            }
            Ok(Applied::Done)
        }
        Op::Close => Ok(Applied::Done),
    }
}

/// The writer stopped (shutdown or a fatal error).
const GONE: &str = "the database writer has stopped";

impl Store {
    async fn run(&self, op: Op) -> Result<Outcome, String> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { op, reply })
            .await
            .map_err(|_| GONE.to_string())?;
        rx.await.map_err(|_| GONE.to_string())?
    }

    /// Commit a batch; returns it with the new row id of each record (`None`: already stored).
    pub(crate) async fn records(&self, batch: Batch) -> Result<(Batch, Vec<Option<i64>>), String> {
        match self.run(Op::Records(batch)).await? {
            Outcome::Records(b, ids) => Ok((b, ids)),
            _ => unreachable!("records job answered with another outcome"),
        }
    }

    /// Record that a device logged in (creates it on first sight); returns its row id.
    pub(crate) async fn seen(
        &self,
        imei: &str,
        transport: &'static str,
        address: String,
    ) -> Result<i64, String> {
        match self
            .run(Op::Seen {
                imei: imei.into(),
                transport,
                address,
            })
            .await?
        {
            Outcome::Id(id) => Ok(id),
            _ => unreachable!("seen job answered with another outcome"),
        }
    }

    /// Queue a command for a known device; returns its id.
    pub(crate) async fn queue(
        &self,
        imei: &str,
        codec: &'static str,
        text: Option<String>,
        payload: Vec<u8>,
    ) -> Result<i64, String> {
        match self
            .run(Op::Queue {
                imei: imei.into(),
                codec,
                text,
                payload,
            })
            .await?
        {
            Outcome::Id(id) => Ok(id),
            _ => unreachable!("queue job answered with another outcome"),
        }
    }

    /// Whether the device may have a queued command (no trip to the writer).
    pub(crate) fn has_pending(&self, imei: &str) -> bool {
        self.pending.has(imei)
    }

    /// Take the device's oldest queued command and mark it sent.
    pub(crate) async fn take(&self, imei: &str) -> Result<Option<Queued>, String> {
        match self.run(Op::Take { imei: imei.into() }).await? {
            Outcome::Taken(q) => Ok(q),
            _ => unreachable!("take job answered with another outcome"),
        }
    }

    /// Commit everything queued so far and stop the writer (shutdown).
    pub(crate) async fn close(&self) -> Result<(), String> {
        self.run(Op::Close).await.map(drop)
    }

    /// Store how a sent command ended.
    pub(crate) async fn end(&self, id: i64, end: CommandEnd) -> Result<(), String> {
        self.run(Op::End { id, end }).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_json_is_compact_and_exact() {
        use fleetview::IoElement;
        let record = AvlRecord {
            io: vec![
                IoElement {
                    id: 239,
                    value: IoValue::U8(1),
                },
                IoElement {
                    id: 16,
                    value: IoValue::U64(u64::MAX),
                },
                IoElement {
                    id: 0,
                    value: IoValue::U16(0),
                },
                IoElement {
                    id: 385,
                    value: IoValue::Bytes(vec![0x0a, 0xff]),
                },
            ],
            ..AvlRecord::default()
        };
        let mut out = String::new();
        io_json(&record, &mut out);
        assert_eq!(
            out,
            r#"[[239,1,1],[16,8,18446744073709551615],[0,2,0],[385,2,"0aff"]]"#
        );
        out.clear();
        io_json(&AvlRecord::default(), &mut out);
        assert_eq!(out, "[]");
    }

    #[test]
    fn fnv1a_matches_the_reference_values() {
        // FNV-1a 64 test vectors (Fowler/Noll/Vo).
        assert_eq!(record_hash(b"") as u64, 0xcbf2_9ce4_8422_2325);
        assert_eq!(record_hash(b"a") as u64, 0xaf63_dc4c_8601_ec8c);
        assert_eq!(record_hash(b"foobar") as u64, 0x8594_4171_f739_67e8);
    }
}
