//! Forwarders (`--forward URL`): deliver what the outbox holds (see [`super::storage::outbox`])
//! to the operator's backend — at least once, in order (per device and overall), in batches,
//! with retries and exponential backoff, from a position stored in the database, so that a
//! restart or a `kill -9` resumes where the last confirmed delivery ended.
//!
//! - `http://…` / `https://…` ([`webhook`]): one POST of a JSON array per batch, signed with
//!   HMAC-SHA256 when a secret is set (`--forward-secret-file`, `FLEETVIEW_FORWARD_SECRET`).
//! - `mqtt://HOST:PORT/PREFIX` ([`mqtt`]): one message per item on `PREFIX/IMEI`, QoS 1.
//!
//! Several nodes on one PostgreSQL database: a forwarder runs on the node holding its advisory
//! lock (a session lock: released when that node dies or loses its connection), so that each
//! entry is delivered by one node; the others wait for the lock.

mod mqtt;
mod webhook;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tracing::{info, warn};

use super::query::{Delivery, Reader};
use super::storage::outbox::Cursor;
use super::storage::{now_ms, Error, Store};
// (A forwarder reads and sends one batch at a time: reading the next one meanwhile made it
// faster but took the CPU the connections need for their acks, in the load test.)

/// Outbox entries read at most per batch (a frame's records are one entry on SQLite, each
/// record one on PostgreSQL); the batch then stops at [`ITEMS_PER_BATCH`].
const ENTRIES_PER_BATCH: i64 = 10_000;
/// Items (records and events) sent at most per batch.
pub(super) const ITEMS_PER_BATCH: usize = 10_000;
/// How often an idle forwarder looks for new entries.
const POLL: Duration = Duration::from_millis(50);
/// First wait after a failed delivery; doubled at each failure up to [`BACKOFF_MAX`].
const BACKOFF: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// The forwarder's position is stored (and delivered entries trimmed, and its row marked as
/// run) at least this often, and as often as the writer takes it under load.
const STORE_EVERY: Duration = Duration::from_secs(1);

/// Where a forwarder delivers.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    Webhook(reqwest::Url),
    Mqtt {
        host: String,
        port: u16,
        prefix: String,
    },
}

impl Target {
    /// A `--forward` value: `http(s)://…` or `mqtt://HOST[:PORT]/PREFIX`.
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let url = reqwest::Url::parse(s).map_err(|e| {
            format!(
                "--forward {s}: not a URL ({e}); expected http(s)://… or mqtt://HOST:PORT/PREFIX"
            )
        })?;
        match url.scheme() {
            "http" | "https" => Ok(Target::Webhook(url)),
            "mqtt" => {
                let host = url
                    .host_str()
                    .ok_or_else(|| format!("--forward {s}: no host"))?
                    .to_string();
                let prefix = url.path().trim_matches('/').to_string();
                if prefix.is_empty()
                    || prefix.contains(['+', '#'])
                    || url.fragment().is_some()
                    || url.query().is_some()
                {
                    return Err(format!(
                        "--forward {s}: expected a topic prefix without wildcards after the host (mqtt://HOST:PORT/PREFIX)"
                    ));
                }
                Ok(Target::Mqtt {
                    host,
                    port: url.port().unwrap_or(1883),
                    prefix,
                })
            }
            other => Err(format!(
                "--forward {s}: scheme {other} not supported (http, https, mqtt)"
            )),
        }
    }

    /// The forwarder's name: its URL without credentials, query or fragment (the key of its
    /// position in the database; the same on every node).
    pub(crate) fn name(&self) -> String {
        match self {
            Target::Webhook(url) => {
                let mut u = url.clone();
                let _ = u.set_username("");
                let _ = u.set_password(None);
                u.set_query(None);
                u.set_fragment(None);
                u.to_string()
            }
            Target::Mqtt { host, port, prefix } => format!("mqtt://{host}:{port}/{prefix}"),
        }
    }
}

/// What a forwarder shows in `GET /api/forwarders` and in the metrics.
#[derive(Default)]
pub(crate) struct Status {
    pub(crate) name: String,
    /// Items (records and events) delivered since the start.
    pub(crate) delivered: AtomicU64,
    /// Batches delivered since the start.
    pub(crate) batches: AtomicU64,
    /// Failed attempts since the start.
    pub(crate) failures: AtomicU64,
    /// Failures in a row (0 after a delivery).
    pub(crate) failing: AtomicU64,
    /// When the last delivery succeeded (ms since 1970; 0: never).
    pub(crate) last_delivery_ms: AtomicI64,
    /// Whether this node runs it now (PostgreSQL: holds its lock).
    pub(crate) active: std::sync::atomic::AtomicBool,
    /// The last error, if the last attempt failed.
    pub(crate) last_error: Mutex<Option<String>>,
    /// The position delivered up to.
    pub(crate) at: Mutex<Cursor>,
}

/// A forwarder as `GET /api/forwarders` shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ForwarderJson {
    pub(crate) name: String,
    /// Whether this node delivers it now (on PostgreSQL, one node at a time does).
    pub(crate) active: bool,
    pub(crate) delivered: u64,
    pub(crate) batches: u64,
    pub(crate) failures: u64,
    pub(crate) failing: u64,
    pub(crate) last_delivery_ms: Option<i64>,
    pub(crate) last_error: Option<String>,
    /// Entries not delivered yet.
    pub(crate) pending: i64,
    /// Age of the oldest entry not delivered, in seconds (0 when none).
    pub(crate) lag_seconds: f64,
}

impl Status {
    fn new(name: String) -> Self {
        Self {
            name,
            ..Self::default()
        }
    }

    fn at(&self) -> Cursor {
        *self.at.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn failed(&self, e: &str) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.failing.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
    }

    fn succeeded(&self, items: usize, at: Cursor) {
        self.delivered.fetch_add(items as u64, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.failing.store(0, Ordering::Relaxed);
        self.last_delivery_ms.store(now_ms(), Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
        *self.at.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }

    /// The JSON of `GET /api/forwarders`, with the lag read from the database (from the
    /// stored position when another node delivers it).
    pub(crate) async fn json(&self, reader: &Reader) -> ForwarderJson {
        let active = self.active.load(Ordering::Relaxed);
        let mut at = self.at();
        if !active {
            if let Ok(rows) = reader.forwarders().await {
                if let Some(r) = rows.iter().find(|r| r.name == self.name) {
                    at = r.at;
                }
            }
        }
        let (pending, oldest) = reader.outbox_lag(at).await.unwrap_or((0, None));
        let lag_seconds = oldest.map_or(0.0, |t| ((now_ms() - t).max(0) as f64) / 1000.0);
        let last = self.last_delivery_ms.load(Ordering::Relaxed);
        ForwarderJson {
            name: self.name.clone(),
            active,
            delivered: self.delivered.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            failing: self.failing.load(Ordering::Relaxed),
            last_delivery_ms: (last > 0).then_some(last),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            pending,
            lag_seconds,
        }
    }
}

/// A delivery failure: what went wrong, for the log and `GET /api/forwarders`.
#[derive(Debug)]
pub(crate) struct SendError(pub(crate) String);

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One way of sending a batch.
enum Sender {
    Webhook(Box<webhook::Webhook>),
    Mqtt(Box<mqtt::Mqtt>),
}

impl Sender {
    async fn send(&mut self, batch: &[Delivery]) -> Result<(), SendError> {
        match self {
            Sender::Webhook(w) => w.send(batch).await,
            Sender::Mqtt(m) => m.send(batch).await,
        }
    }
}

/// The HMAC secret of the webhooks: `--forward-secret-file PATH` or `FLEETVIEW_FORWARD_SECRET`.
pub(crate) const SECRET_ENV: &str = "FLEETVIEW_FORWARD_SECRET";

/// Read the webhooks' secret (whitespace around it ignored).
pub(crate) fn secret(file: Option<&std::path::Path>) -> Result<Option<Vec<u8>>, String> {
    let text = match file {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| format!("--forward-secret-file {}: {e}", p.display()))?,
        None => match std::env::var(SECRET_ENV) {
            Ok(s) => s,
            Err(_) => return Ok(None),
        },
    };
    let s = text.trim();
    if s.is_empty() {
        return Err("the forwarders' secret is empty".into());
    }
    Ok(Some(s.as_bytes().to_vec()))
}

/// The running forwarders of this node.
#[derive(Default)]
pub(crate) struct Forwarders {
    pub(crate) all: Vec<Arc<Status>>,
}

/// Start a task per target; each runs until `shutdown`.
pub(crate) async fn start(
    targets: Vec<Target>,
    secret: Option<Vec<u8>>,
    store: Store,
    reader: Reader,
    model: Option<String>,
    lock: Option<super::storage::postgres::read::Pool>,
    shutdown: watch::Receiver<bool>,
) -> Result<(Forwarders, Vec<tokio::task::JoinHandle<()>>), String> {
    let names: Vec<String> = targets.iter().map(Target::name).collect();
    store
        .register_forwarders(names, lock.is_none())
        .await
        .map_err(|e| format!("cannot register the forwarders: {e}"))?;
    let rows = reader
        .forwarders()
        .await
        .map_err(|e| format!("cannot read the forwarders' positions: {e}"))?;
    let mut out = Forwarders::default();
    let mut tasks = Vec::new();
    for target in targets {
        let status = Arc::new(Status::new(target.name()));
        if let Some(row) = rows.iter().find(|r| r.name == status.name) {
            *status.at.lock().unwrap_or_else(|p| p.into_inner()) = row.at;
        }
        let sender = match &target {
            Target::Webhook(url) => Sender::Webhook(Box::new(webhook::Webhook::new(
                url.clone(),
                secret.clone(),
            )?)),
            Target::Mqtt { host, port, prefix } => {
                Sender::Mqtt(Box::new(mqtt::Mqtt::new(host, *port, prefix, &status.name)))
            }
        };
        info!(forwarder = %status.name, "forwarding from the outbox");
        out.all.push(status.clone());
        let (delivered, positions) = watch::channel(status.at());
        tasks.push(tokio::spawn(store_positions(
            status.name.clone(),
            store.clone(),
            positions,
        )));
        tasks.push(tokio::spawn(run(
            status,
            sender,
            delivered,
            reader.clone(),
            model.clone(),
            lock.clone(),
            shutdown.clone(),
        )));
    }
    Ok((out, tasks))
}

/// The key of a forwarder's advisory lock (PostgreSQL): FNV-1a of its name.
fn lock_key(name: &str) -> i64 {
    fleetview::identity::RecordKey::of(name.as_bytes()).as_i64()
}

async fn run(
    status: Arc<Status>,
    mut sender: Sender,
    delivered: watch::Sender<Cursor>,
    reader: Reader,
    model: Option<String>,
    lock: Option<super::storage::postgres::read::Pool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let name = status.name.clone();
    let mut backoff = BACKOFF;
    let mut held: Option<deadpool_postgres::Object> = None;
    while !*shutdown.borrow() {
        if let Some(pool) = &lock {
            // One node at a time: the holder of the forwarder's session lock.
            if held.as_ref().is_none_or(|c| c.is_closed()) {
                status.active.store(false, Ordering::Relaxed);
                held = None;
                match take_lock(pool, &name).await {
                    Ok(Some(c)) => {
                        // Another node may have delivered meanwhile: its position.
                        if let Ok(rows) = reader.forwarders().await {
                            if let Some(r) = rows.iter().find(|r| r.name == name) {
                                *status.at.lock().unwrap_or_else(|p| p.into_inner()) = r.at;
                            }
                        }
                        info!(forwarder = %name, "this node delivers it now");
                        held = Some(c);
                    }
                    Ok(None) => {
                        wait(&mut shutdown, Duration::from_secs(1)).await;
                        continue;
                    }
                    Err(e) => {
                        warn!(forwarder = %name, "cannot take the forwarder's lock: {e}");
                        wait(&mut shutdown, Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
        }
        status.active.store(true, Ordering::Relaxed);
        let at = status.at();
        let started = std::time::Instant::now();
        let batch = reader
            .outbox(at, ENTRIES_PER_BATCH, ITEMS_PER_BATCH, model.clone())
            .await;
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                warn!(forwarder = %name, "cannot read the outbox: {e}");
                wait(&mut shutdown, Duration::from_secs(1)).await;
                continue;
            }
        };
        let batch = cut(batch);
        let Some(last) = batch.last().map(|d| d.at) else {
            wait(&mut shutdown, POLL).await;
            continue;
        };
        let items: usize = batch.iter().map(|d| d.items.len()).sum();
        let read = started.elapsed();
        match sender.send(&batch).await {
            Ok(()) => {
                tracing::debug!(forwarder = %name, items, read_ms = read.as_millis() as u64,
                    send_ms = (started.elapsed() - read).as_millis() as u64, "batch delivered");
                if status.failing.load(Ordering::Relaxed) > 0 {
                    info!(forwarder = %name, "delivering again");
                }
                backoff = BACKOFF;
                // Delivered: the position moves on, stored by `store_positions` while the
                // next batch goes (a crash before it is committed delivers again from the last
                // stored position: at least once).
                status.succeeded(items, last);
                delivered.send_replace(last);
            }
            Err(e) => {
                let n = status.failing.load(Ordering::Relaxed) + 1;
                warn!(forwarder = %name, failures_in_a_row = n, retry_in_ms = backoff.as_millis() as u64,
                    "delivery of {items} items failed: {e}");
                status.failed(&e.0);
                wait(&mut shutdown, backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
    status.active.store(false, Ordering::Relaxed);
    if let Some(c) = held.take() {
        // Out of the pool and closed: the session's lock goes with it, at once.
        drop(deadpool_postgres::Object::take(c));
    }
}

/// Store the forwarder's position as it is delivered: the latest one, one update in flight at
/// a time (under load the writer's queue is long: the forwarder does not wait for it), and at
/// least every [`STORE_EVERY`] (marking the forwarder as run, which keeps its entries from
/// being trimmed, and trimming what every forwarder has delivered). A last update when the
/// forwarder stops (its sender is dropped).
async fn store_positions(name: String, store: Store, mut delivered: watch::Receiver<Cursor>) {
    loop {
        let stopping = tokio::select! {
            r = delivered.changed() => r.is_err(),
            _ = tokio::time::sleep(STORE_EVERY) => false,
        };
        let at = *delivered.borrow_and_update();
        if let Err(e) = store.delivered(&name, at, true).await {
            warn!(forwarder = %name, "cannot store its position: {e}");
        }
        if stopping {
            return;
        }
    }
}

/// The entries of a batch up to [`ITEMS_PER_BATCH`] items (at least one entry).
fn cut(mut batch: Vec<Delivery>) -> Vec<Delivery> {
    let mut items = 0;
    let mut keep = 0;
    for d in &batch {
        if keep > 0 && items + d.items.len() > ITEMS_PER_BATCH {
            break;
        }
        items += d.items.len();
        keep += 1;
    }
    batch.truncate(keep);
    batch
}

/// A connection holding the forwarder's advisory lock, or `None` when another node holds it.
async fn take_lock(
    pool: &super::storage::postgres::read::Pool,
    name: &str,
) -> Result<Option<deadpool_postgres::Object>, Error> {
    let c = pool.lock_client().await?;
    let got: bool = c
        .query_one("SELECT pg_try_advisory_lock($1)", &[&lock_key(name)])
        .await?
        .try_get(0)?;
    if got {
        // The lock lives as long as this session: the connection leaves the pool for good.
        Ok(Some(c))
    } else {
        Ok(None)
    }
}

/// Sleep, or return at once on shutdown.
async fn wait(shutdown: &mut watch::Receiver<bool>, d: Duration) {
    let _ = tokio::time::timeout(d, shutdown.changed()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_name_without_credentials() {
        let t = Target::parse("https://user:pw@example.com:8443/hook?x=1").unwrap();
        assert!(matches!(t, Target::Webhook(_)));
        assert_eq!(t.name(), "https://example.com:8443/hook");
        let t = Target::parse("mqtt://broker.local/fleet/data").unwrap();
        assert_eq!(t.name(), "mqtt://broker.local:1883/fleet/data");
        assert!(Target::parse("mqtt://broker.local").is_err());
        assert!(Target::parse("mqtt://broker.local/a/#").is_err());
        assert!(Target::parse("ftp://x/y").is_err());
        assert!(Target::parse("not a url").is_err());
    }
}
