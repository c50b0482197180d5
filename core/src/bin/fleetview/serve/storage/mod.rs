//! Storage: devices, records, commands — one interface, two engines.
//!
//! - SQLite (`--db FILE`, the default): embedded, one process. See [`sqlite`].
//! - PostgreSQL (`--db postgres://USER@HOST:PORT/DB`): shared by several `fleetview serve`
//!   nodes. See [`postgres`].
//!
//! Both work the same way. One writer owns the writing connection. Connections and the UDP
//! listener hand it jobs ([`Op`]) through a channel; it takes whatever is queued (up to
//! [`MAX_GROUP`] jobs), applies them in one transaction, commits, and only then answers each
//! job. A device is acked after that answer, so every acked record is durably committed (SQLite
//! `synchronous=FULL`, PostgreSQL `synchronous_commit = on`), one sync per group of frames.
//!
//! A record's identity is its device, its timestamp and a 64-bit FNV-1a hash of its bytes as
//! encoded alone in its codec ([`record_hash`]). A unique key on those three makes a resent
//! batch add no rows, while it is still acked.
//!
//! A record's IO is stored as compact JSON without names (`[[id,size,raw],[id,size,"hex"]]`,
//! see [`io_json`]): names, units and scaled values come from the catalogue when the API reads
//! the row.
//!
//! A command's life: `queued` (by the API) → `sent` (taken by the connection of its device) →
//! `answered` or `failed` (a nACK, or it cannot be encoded), or `unanswered` when no answer came
//! (the command timed out, the connection dropped, the server or its node stopped): whether it
//! ran on the device is unknown, so it is never sent again unless the API asks for it
//! (`POST /api/commands/{id}/retry`, which queues it again).
//!
//! Which devices have queued commands is also kept in memory ([`Pending`]), so that a connection
//! only asks the writer for a command when there may be one (not once per frame).

mod error;
mod geofences;
mod job;
pub(crate) mod outbox;
pub(crate) mod postgres;
mod record;
pub(crate) mod sqlite;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub(crate) use self::error::Error;
use self::job::{cut_at_close, drain, Applied};
pub(crate) use self::job::{CommandEnd, Job, Op, Outcome};
pub(crate) use self::record::{record_hash, RecordRow};
use super::metrics::metrics;
use super::query::Reader;

/// Most jobs committed in one transaction.
const MAX_GROUP: usize = 512;
/// Jobs waiting for the writer before senders wait too (backpressure on devices).
const QUEUE: usize = 4096;
/// Groups smaller than this wait [`LINGER`] for more jobs before they are committed.
const LINGER_BELOW: usize = 32;
/// At most this much is added to an ack's latency by the wait.
const LINGER: Duration = Duration::from_micros(500);

/// Milliseconds since 1970, from the system clock (the server's only clock).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Where the data lives: `--db`.
#[derive(Clone, Debug)]
pub(crate) enum Db {
    /// An SQLite file (created when missing).
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (`postgres://USER@HOST:PORT/DB`).
    Postgres(String),
}

impl std::str::FromStr for Db {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(Db::Postgres(s.to_string()))
        } else if s.is_empty() {
            Err("expected an SQLite file or postgres://USER@HOST:PORT/DB".into())
        } else {
            Ok(Db::Sqlite(PathBuf::from(s)))
        }
    }
}

impl std::fmt::Display for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Db::Sqlite(p) => write!(f, "SQLite {}", p.display()),
            // Without the password, should the URL hold one.
            Db::Postgres(url) => match url.parse::<tokio_postgres::Config>() {
                Ok(c) => write!(
                    f,
                    "PostgreSQL {}@{}/{}",
                    c.get_user().unwrap_or("-"),
                    c.get_hosts()
                        .first()
                        .map(|h| match h {
                            tokio_postgres::config::Host::Tcp(h) => h.clone(),
                            #[cfg(unix)]
                            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                        })
                        .unwrap_or_default(),
                    c.get_dbname().unwrap_or("-")
                ),
                Err(_) => f.write_str("PostgreSQL"),
            },
        }
    }
}

/// How durable a commit is before its ack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Sync {
    /// SQLite: fsync the WAL at every commit; PostgreSQL: `synchronous_commit = on`. Acked
    /// records survive a power cut.
    Full,
    /// SQLite: no fsync at commit (acked records survive a crash of fleetview, not of the
    /// machine); PostgreSQL: `synchronous_commit = off` (they survive a crash of fleetview, not
    /// of PostgreSQL).
    Normal,
}

/// The records of one frame or datagram.
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) imei: Arc<str>,
    /// The device's row id when known (a TCP connection whose device has a row); `None`: found
    /// or created by IMEI, with the transport and address updated.
    pub(crate) device: Option<i64>,
    pub(crate) transport: &'static str,
    pub(crate) codec: &'static str,
    pub(crate) address: Arc<str>,
    pub(crate) received_ms: i64,
    pub(crate) rows: Vec<RecordRow>,
    /// Events derived from these records, written to the outbox in their transaction (see
    /// [`outbox`]; ignored without `--forward`).
    pub(crate) events: Vec<outbox::OutboxEvent>,
    /// The geofence events its commit stored (set by the writer).
    pub(crate) geofence_events: Vec<fleetview::api::EventJson>,
}

/// The devices with queued commands, as far as this process knows: kept by the writer as it
/// queues and takes them, and (PostgreSQL) by the notifications of the other nodes and by each
/// group of records, whose commit finds which of its devices have queued commands (whatever
/// queued them: a missed NOTIFY costs no more than the device's next frame). A connection asks
/// the writer for a command only when its device is here (after each ack, among others).
#[derive(Default)]
pub(crate) struct Pending {
    count: AtomicUsize,
    imeis: Mutex<HashSet<String>>,
}

impl Pending {
    pub(crate) fn set(&self, imei: &str, queued: bool) {
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

/// The writer's handle: cheap to clone, one per task.
#[derive(Clone)]
pub(crate) struct Store {
    tx: mpsc::Sender<Job>,
    pending: Arc<Pending>,
    /// Whether the outbox is written (this node has forwarders).
    outbox: bool,
}

/// The writer (a thread for SQLite, a task for PostgreSQL); join it after [`Store::close`].
pub(crate) enum Writer {
    Thread(std::thread::JoinHandle<()>),
    Task(tokio::task::JoinHandle<()>),
}

impl Writer {
    pub(crate) async fn join(self) {
        match self {
            Writer::Thread(t) => {
                let _ = tokio::task::spawn_blocking(move || t.join()).await;
            }
            Writer::Task(t) => {
                let _ = t.await;
            }
        }
    }
}

/// An open database: the writer's handle, the writer, the readers, and (PostgreSQL) the node's
/// membership of the cluster.
pub(crate) struct Opened {
    pub(crate) store: Store,
    pub(crate) writer: Writer,
    pub(crate) reader: Reader,
    pub(crate) cluster: Option<Arc<postgres::cluster::Cluster>>,
}

/// Open (creating and migrating when needed) the database and start the writer. `node`: this
/// process in a cluster (PostgreSQL); `outbox`: whether records and events are written to the
/// outbox (there are forwarders).
pub(crate) async fn open(
    db: &Db,
    sync: Sync,
    node: &postgres::cluster::Node,
    outbox: bool,
) -> Result<Opened, Error> {
    let pending = Arc::new(Pending::default());
    let (tx, rx) = mpsc::channel(QUEUE);
    let store = Store {
        tx,
        pending: pending.clone(),
        outbox,
    };
    match db {
        Db::Sqlite(path) => {
            let path = path.clone();
            let (writer, reader) =
                tokio::task::spawn_blocking(move || sqlite::open(&path, sync, rx, pending, outbox))
                    .await
                    .map_err(|e| Error::Task(e.to_string()))??;
            Ok(Opened {
                store,
                writer,
                reader,
                cluster: None,
            })
        }
        Db::Postgres(url) => {
            let (writer, reader, cluster) =
                postgres::open(url, sync, node, rx, pending, outbox).await?;
            Ok(Opened {
                store,
                writer,
                reader,
                cluster: Some(cluster),
            })
        }
    }
}

impl Store {
    async fn run(&self, op: Op) -> Result<Outcome, Error> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { op, reply })
            .await
            .map_err(|_| Error::WriterGone)?;
        rx.await.map_err(|_| Error::WriterGone)?
    }

    /// Jobs waiting for the writer.
    pub(crate) fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Commit a batch; returns it with the new row id of each record (`None`: already stored)
    /// and the device's row id.
    pub(crate) async fn records(
        &self,
        batch: Batch,
    ) -> Result<(Batch, Vec<Option<i64>>, i64), Error> {
        match self.run(Op::Records(batch)).await? {
            Outcome::Records(b, ids, device) => {
                metrics().committed(ids.iter().flatten().count());
                Ok((b, ids, device))
            }
            _ => unreachable!("records job answered with another outcome"),
        }
    }

    /// Record that a device logged in; returns its row id when it has one (see [`Op::Seen`]).
    pub(crate) async fn seen(
        &self,
        imei: &str,
        transport: &'static str,
        address: String,
        create: bool,
    ) -> Result<Option<i64>, Error> {
        match self
            .run(Op::Seen {
                imei: imei.into(),
                transport,
                address,
                create,
            })
            .await?
        {
            Outcome::Device(id) => Ok(id),
            _ => unreachable!("seen job answered with another outcome"),
        }
    }

    /// Queue a command for a device; returns its id.
    pub(crate) async fn queue(
        &self,
        imei: &str,
        codec: &'static str,
        text: Option<String>,
        payload: Vec<u8>,
    ) -> Result<i64, Error> {
        match self
            .run(Op::Queue {
                imei: imei.into(),
                codec,
                text,
                payload,
            })
            .await?
        {
            Outcome::Id(id) => {
                metrics().command("queued");
                Ok(id)
            }
            _ => unreachable!("queue job answered with another outcome"),
        }
    }

    /// Whether the device may have a queued command (no trip to the writer).
    pub(crate) fn has_pending(&self, imei: &str) -> bool {
        self.pending.has(imei)
    }

    /// Note that the device may have a queued command (queued by another node, or not looked
    /// for yet): its connection asks the writer at its next chance.
    pub(crate) fn may_have_pending(&self, imei: &str) {
        self.pending.set(imei, true);
    }

    /// Take the device's oldest queued command and mark it sent.
    pub(crate) async fn take(&self, imei: &str) -> Result<Option<Queued>, Error> {
        match self.run(Op::Take { imei: imei.into() }).await? {
            Outcome::Taken(q) => {
                if q.is_some() {
                    metrics().command("sent");
                }
                Ok(q)
            }
            _ => unreachable!("take job answered with another outcome"),
        }
    }

    /// Queue an `unanswered` or `failed` command again; the device's IMEI when it was.
    pub(crate) async fn retry(&self, id: i64) -> Result<Option<String>, Error> {
        match self.run(Op::Retry { id }).await? {
            Outcome::Retried(imei) => {
                if imei.is_some() {
                    metrics().command("queued");
                }
                Ok(imei)
            }
            _ => unreachable!("retry job answered with another outcome"),
        }
    }

    /// Commit everything queued so far and stop the writer (shutdown).
    pub(crate) async fn close(&self) -> Result<(), Error> {
        self.run(Op::Close).await.map(drop)
    }

    /// Write events to the outbox in a transaction of their own (see [`outbox`]): for events
    /// found after their records were committed. Nothing is written without `--forward`.
    pub(crate) async fn events(&self, events: Vec<outbox::OutboxEvent>) -> Result<(), Error> {
        if !self.outbox || events.is_empty() {
            return Ok(());
        }
        self.run(Op::Events(events)).await.map(drop)
    }

    /// Create the rows of this node's forwarders (see [`Op::Register`]).
    pub(crate) async fn register_forwarders(
        &self,
        names: Vec<String>,
        only: bool,
    ) -> Result<(), Error> {
        self.run(Op::Register { names, only }).await.map(drop)
    }

    /// A forwarder delivered everything up to `at` (see [`Op::Delivered`]).
    pub(crate) async fn delivered(
        &self,
        name: &str,
        at: outbox::Cursor,
        trim: bool,
    ) -> Result<(), Error> {
        self.run(Op::Delivered {
            name: name.to_string(),
            at,
            trim,
        })
        .await
        .map(drop)
    }

    /// Store how a sent command ended.
    pub(crate) async fn end(&self, id: i64, end: CommandEnd) -> Result<(), Error> {
        let status = match &end {
            CommandEnd::Answered { error, .. } => CommandEnd::answered_status(error),
            CommandEnd::Failed(_) => "failed",
            CommandEnd::Unanswered(_) => "unanswered",
        };
        self.run(Op::End { id, end }).await?;
        metrics().command(status);
        Ok(())
    }
}
