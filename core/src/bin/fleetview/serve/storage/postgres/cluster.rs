//! This node's part in a cluster of `fleetview serve` nodes on one PostgreSQL.
//!
//! - Lease: the node's row in `nodes` says until when it is alive; it is renewed every
//!   fifth of it (`--lease`, 15 s by default). A node whose lease has expired (it died, or lost
//!   the database for longer than the lease) is swept by any other: its sessions are dropped, and the commands it had sent
//!   without an answer are marked `unanswered` (never sent again unless the API asks).
//! - Sessions: which node holds which device's TCP connection. A device that logs in here while
//!   its session is on another node makes that node close its old connection (NOTIFY on
//!   [`KICK_CHANNEL`]); both addresses are logged.
//! - Commands: the writer NOTIFYs [`super::COMMAND_CHANNEL`] at commit when a command is queued
//!   (on any node); the node holding the device wakes its connection. NOTIFY has no replay:
//!   a connection also looks at login and after each ack (the writer finds, in the transaction
//!   of a group of records, which of its devices have queued commands), and after
//!   (re)connecting its LISTEN connection and at every renewal a node looks for queued commands
//!   of the devices it holds.
//! - Live events: published to this node's subscribers and, when another node has subscribers
//!   (`nodes.watchers`), NOTIFYed on [`LIVE_CHANNEL`] after the commit they follow (payloads
//!   under PostgreSQL's 8000 bytes: a large `records` event goes as several).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio_postgres::{AsyncMessage, NoTls};
use tracing::{debug, info, warn};

use super::super::{now_ms, Error, Pending};
use super::COMMAND_CHANNEL;
use crate::serve::hub::{Hub, Live};

/// NOTIFY channel: a device logged in on a node (payload: node, IMEI, address, tab-separated).
const KICK_CHANNEL: &str = "fleetview_kick";
/// NOTIFY channel: a live event (payload: node, event name, JSON data, tab-separated).
const LIVE_CHANNEL: &str = "fleetview_live";
/// NOTIFY channel: a node's live subscribers came or went.
const WATCH_CHANNEL: &str = "fleetview_watch";
/// A node: its name (unique among running nodes) and its lease, how long it is taken for
/// alive after its last renewal (renewed every fifth of it, when the sweep and the look for
/// queued commands run too).
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) lease: Duration,
}
/// Largest NOTIFY payload sent (PostgreSQL refuses 8000 bytes and more).
const MAX_PAYLOAD: usize = 7900;

/// The node's membership.
pub(crate) struct Cluster {
    node: String,
    lease: Duration,
    config: tokio_postgres::Config,
    pool: Pool,
    pending: Arc<Pending>,
    started_ms: i64,
    /// What `nodes.watchers` says for this node.
    watching: AtomicBool,
}

impl Cluster {
    /// Register the node (its lease) before it serves.
    pub(super) async fn join(
        config: tokio_postgres::Config,
        pool: Pool,
        me: &Node,
        pending: Arc<Pending>,
    ) -> Result<Arc<Self>, Error> {
        let node = me.name.as_str();
        let c = Arc::new(Self {
            node: node.to_string(),
            lease: me.lease,
            config,
            pool,
            pending,
            started_ms: now_ms(),
            watching: AtomicBool::new(false),
        });
        let fresh = c.renew(false).await?;
        if !fresh {
            // Names are unique per running node: this is a restart, and what the previous run
            // left is over (its connections are gone; its commands in flight may have run).
            warn!(node, "this node was registered already: taken for a restart of it (two running nodes must not share a --node-id)");
            c.release_previous_run().await?;
        }
        info!(node, "joined the cluster");
        Ok(c)
    }

    /// What a previous run of this node left: its sessions and its commands in flight.
    async fn release_previous_run(&self) -> Result<(), Error> {
        let c = self.pool.get().await?;
        c.execute("DELETE FROM sessions WHERE node = $1", &[&self.node])
            .await?;
        let n = c
            .execute(
                "UPDATE commands SET status = 'unanswered', error = 'the server stopped before the device answered'
                 WHERE status = 'sent' AND node = $1",
                &[&self.node],
            )
            .await?;
        if n > 0 {
            warn!("{n} commands sent before the last stop were not answered: marked unanswered (not sent again; POST /api/commands/ID/retry to send one again)");
        }
        Ok(())
    }

    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    /// Start the LISTEN loop, the lease loop and the live relay; returns once the node listens
    /// to the others (or, should that take long, after a while: it goes on trying).
    pub(crate) async fn start(self: &Arc<Self>, hub: Arc<Hub>, shutdown: watch::Receiver<bool>) {
        let (tx, rx) = mpsc::channel(4096);
        hub.relay_to(tx);
        let (listening, ready) = tokio::sync::oneshot::channel();
        tokio::spawn(
            self.clone()
                .listen_loop(hub.clone(), shutdown.clone(), listening),
        );
        if tokio::time::timeout(Duration::from_secs(10), ready)
            .await
            .is_err()
        {
            warn!("not listening to the other nodes yet: serving meanwhile");
        }
        tokio::spawn(self.clone().lease_loop(hub.clone(), shutdown));
        tokio::spawn(self.clone().relay_loop(rx));
    }

    /// Renew the lease (and publish whether this node has live subscribers); true when the
    /// node's row was created (first time, or after another node swept it as expired).
    async fn renew(&self, watching: bool) -> Result<bool, Error> {
        let now = now_ms();
        let row = self
            .pool
            .get()
            .await?
            .query_one(
                "INSERT INTO nodes (node, started_ms, lease_until_ms, watchers) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (node) DO UPDATE SET lease_until_ms = excluded.lease_until_ms, watchers = excluded.watchers
                 RETURNING (xmax = 0)",
                &[
                    &self.node,
                    &self.started_ms,
                    &(now + self.lease.as_millis() as i64),
                    &i64::from(watching),
                ],
            )
            .await?;
        Ok(row.try_get(0)?)
    }

    /// A device logged in here on connection `conn`: its session moves to this node. Returns
    /// the node and address of its previous session when that was on another (live) node, which
    /// is told to close it.
    pub(crate) async fn login(
        &self,
        imei: &str,
        conn: u64,
        address: &str,
    ) -> Result<Option<(String, String)>, Error> {
        let c = self.pool.get().await?;
        let row = c
            .query_one(
                "WITH old AS (SELECT s.node, s.address FROM sessions s JOIN nodes n ON n.node = s.node
                              WHERE s.imei = $1 AND n.lease_until_ms > $5)
                 INSERT INTO sessions (imei, node, conn, address, since_ms) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (imei) DO UPDATE SET node = excluded.node, conn = excluded.conn,
                   address = excluded.address, since_ms = excluded.since_ms
                 RETURNING (SELECT node FROM old), (SELECT address FROM old)",
                &[&imei, &self.node, &(conn as i64), &address, &now_ms()],
            )
            .await?;
        let old: Option<String> = row.try_get(0)?;
        let old = match old {
            Some(node) if node != self.node => Some((node, row.try_get::<_, String>(1)?)),
            _ => None,
        };
        if old.is_some() {
            let payload = format!("{}\t{imei}\t{address}", self.node);
            c.execute("SELECT pg_notify($1, $2)", &[&KICK_CHANNEL, &payload])
                .await?;
        }
        Ok(old)
    }

    /// The connection `conn` of a device closed: its session ends (unless a newer one took it).
    pub(crate) async fn logout(&self, imei: &str, conn: u64) {
        let r = async {
            self.pool
                .get()
                .await?
                .execute(
                    "DELETE FROM sessions WHERE imei = $1 AND node = $2 AND conn = $3",
                    &[&imei, &self.node, &(conn as i64)],
                )
                .await?;
            Ok::<_, Error>(())
        }
        .await;
        if let Err(e) = r {
            warn!(imei = %imei, "cannot end the session: {e}");
        }
    }

    /// This node's live subscribers came or went: tell the other nodes at once.
    pub(crate) async fn set_watching(&self, watching: bool) {
        if self.watching.swap(watching, Ordering::AcqRel) == watching {
            return;
        }
        let r = async {
            self.renew(watching).await?;
            self.announce_watching(watching).await
        }
        .await;
        if let Err(e) = r {
            warn!("cannot announce live subscribers to the other nodes: {e}");
        }
    }

    /// NOTIFY the other nodes whether this one has live subscribers (payload: node, 1 or 0).
    async fn announce_watching(&self, watching: bool) -> Result<(), Error> {
        let payload = format!("{}\t{}", self.node, u8::from(watching));
        self.pool
            .get()
            .await?
            .execute("SELECT pg_notify($1, $2)", &[&WATCH_CHANNEL, &payload])
            .await?;
        Ok(())
    }

    /// Leave at shutdown: the node's row and sessions go (its connections are closed already).
    pub(crate) async fn leave(&self) {
        let r = async {
            let c = self.pool.get().await?;
            c.execute("DELETE FROM sessions WHERE node = $1", &[&self.node])
                .await?;
            c.execute("DELETE FROM nodes WHERE node = $1", &[&self.node])
                .await?;
            Ok::<_, Error>(())
        }
        .await;
        match r {
            Ok(()) => info!(node = %self.node, "left the cluster"),
            Err(e) => warn!("cannot leave the cluster cleanly (the lease will expire): {e}"),
        }
    }

    async fn lease_loop(self: Arc<Self>, hub: Arc<Hub>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.lease / 5) => {}
                _ = shutdown.wait_for(|&s| s) => return,
            }
            let watching = hub.locally_watched();
            let changed = self.watching.swap(watching, Ordering::AcqRel) != watching;
            match self.renew(watching).await {
                Ok(true) => {
                    warn!(node = %self.node, "this node's lease had expired (database unreachable?): registering its sessions again");
                    self.restore_sessions(&hub).await;
                }
                Ok(false) => {}
                Err(e) => {
                    warn!("cannot renew the lease: {e}");
                    continue;
                }
            }
            if changed {
                if let Err(e) = self.announce_watching(watching).await {
                    warn!("cannot announce live subscribers to the other nodes: {e}");
                }
            }
            if let Err(e) = self.sweep().await {
                warn!("sweep of expired nodes: {e}");
            }
            self.look_for_commands(&hub).await;
            self.refresh_watchers(&hub).await;
        }
    }

    /// After the node's row was swept: its connections are still here, their sessions again.
    async fn restore_sessions(&self, hub: &Hub) {
        for (imei, conn, address) in hub.tcp_sessions() {
            if let Err(e) = self.login(&imei, conn, &address).await {
                warn!(imei = %imei, "cannot register the session again: {e}");
            }
        }
    }

    /// Drop what expired nodes left: their rows, their sessions, their commands in flight.
    async fn sweep(&self) -> Result<(), Error> {
        let c = self.pool.get().await?;
        for r in c
            .query(
                "DELETE FROM nodes WHERE lease_until_ms < $1 RETURNING node",
                &[&now_ms()],
            )
            .await?
        {
            let node: String = r.try_get(0)?;
            warn!(node, "the node's lease expired: its sessions are dropped, its commands in flight marked unanswered");
        }
        c.execute(
            "DELETE FROM sessions WHERE node NOT IN (SELECT node FROM nodes)",
            &[],
        )
        .await?;
        let n = c
            .execute(
                "UPDATE commands SET status = 'unanswered',
                   error = 'node ' || node || ' stopped before the device answered'
                 WHERE status = 'sent' AND node IS NOT NULL AND node NOT IN (SELECT node FROM nodes)",
                &[],
            )
            .await?;
        if n > 0 {
            warn!("{n} commands in flight on expired nodes marked unanswered (not sent again; POST /api/commands/ID/retry to send one again)");
        }
        Ok(())
    }

    /// The devices held here with queued commands: their connections look (NOTIFY has no
    /// replay).
    async fn look_for_commands(&self, hub: &Hub) {
        let r = async {
            let rows = self
                .pool
                .get()
                .await?
                .query(
                    "SELECT DISTINCT d.imei FROM sessions s JOIN devices d ON d.imei = s.imei
                     JOIN commands c ON c.device_id = d.id WHERE s.node = $1 AND c.status = 'queued'",
                    &[&self.node],
                )
                .await?;
            Ok::<_, Error>(rows)
        }
        .await;
        match r {
            Ok(rows) => {
                for r in rows {
                    if let Ok(imei) = r.try_get::<_, String>(0) {
                        self.pending.set(&imei, true);
                        hub.wake(&imei);
                    }
                }
            }
            Err(e) => warn!("cannot look for queued commands: {e}"),
        }
    }

    /// Whether another live node has live subscribers.
    async fn refresh_watchers(&self, hub: &Hub) {
        let r = async {
            let row = self
                .pool
                .get()
                .await?
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM nodes WHERE node <> $1 AND watchers > 0 AND lease_until_ms > $2)",
                    &[&self.node, &now_ms()],
                )
                .await?;
            Ok::<bool, Error>(row.try_get(0)?)
        }
        .await;
        match r {
            Ok(others) => hub.set_others_watch(others),
            Err(e) => warn!("cannot read the other nodes' live subscribers: {e}"),
        }
    }

    async fn listen_loop(
        self: Arc<Self>,
        hub: Arc<Hub>,
        mut shutdown: watch::Receiver<bool>,
        listening: tokio::sync::oneshot::Sender<()>,
    ) {
        let mut backoff = Duration::from_millis(100);
        let mut listening = Some(listening);
        loop {
            match self.listen(&hub, &mut shutdown, &mut listening).await {
                Ok(()) => return,
                Err(e) => warn!("LISTEN connection lost: {e}; connecting again in {backoff:?}"),
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.wait_for(|&s| s) => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// One LISTEN connection, until it breaks (an error) or the server stops (`Ok`).
    async fn listen(
        &self,
        hub: &Arc<Hub>,
        shutdown: &mut watch::Receiver<bool>,
        listening: &mut Option<tokio::sync::oneshot::Sender<()>>,
    ) -> Result<(), Error> {
        let (client, mut connection) = self.config.connect(NoTls).await?;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        if tx.send(n).is_err() {
                            return Ok(());
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e),
                    None => return Ok(()),
                }
            }
        });
        client
            .batch_execute(&format!(
                "LISTEN {COMMAND_CHANNEL}; LISTEN {KICK_CHANNEL}; LISTEN {LIVE_CHANNEL}; LISTEN {WATCH_CHANNEL}"
            ))
            .await?;
        debug!("listening for the other nodes");
        // Anything NOTIFYed while not listening is lost: look now.
        self.look_for_commands(hub).await;
        self.refresh_watchers(hub).await;
        if let Some(l) = listening.take() {
            let _ = l.send(());
        }
        loop {
            let n = tokio::select! {
                n = rx.recv() => n,
                _ = shutdown.wait_for(|&s| s) => return Ok(()),
            };
            let Some(n) = n else { break };
            self.on_notification(hub, n.channel(), n.payload()).await;
        }
        drop(client);
        match driver.await {
            Ok(Err(e)) => Err(e.into()),
            _ => Err(Error::open("LISTEN connection", "closed by the server")),
        }
    }

    async fn on_notification(&self, hub: &Hub, channel: &str, payload: &str) {
        match channel {
            COMMAND_CHANNEL if hub.holds(payload) => {
                self.pending.set(payload, true);
                hub.wake(payload);
            }
            KICK_CHANNEL => {
                let mut it = payload.splitn(3, '\t');
                let (Some(node), Some(imei), Some(address)) = (it.next(), it.next(), it.next())
                else {
                    return;
                };
                if node != self.node {
                    if let Some(here) = hub.kick(imei) {
                        warn!(imei = %imei, here = %here, there = %address, node = %node, "the device logged in on another node: closing its connection here");
                    }
                }
            }
            LIVE_CHANNEL => {
                let mut it = payload.splitn(3, '\t');
                if let (Some(node), Some(event), Some(data)) = (it.next(), it.next(), it.next()) {
                    if node != self.node {
                        hub.publish_relayed(event, data);
                    }
                }
            }
            // Subscribers on another node: relay from now on, before any query. Gone: look
            // whether any other node still has some.
            WATCH_CHANNEL if payload.ends_with("\t1") => hub.set_others_watch(true),
            WATCH_CHANNEL => self.refresh_watchers(hub).await,
            _ => {}
        }
    }

    /// NOTIFY the live events published here, for the other nodes' subscribers.
    async fn relay_loop(self: Arc<Self>, mut rx: mpsc::Receiver<Arc<Live>>) {
        let mut events = Vec::new();
        while rx.recv_many(&mut events, 256).await > 0 {
            let mut payloads = Vec::new();
            for live in events.drain(..) {
                payloads_of(&self.node, &live, &mut payloads);
            }
            if payloads.is_empty() {
                continue;
            }
            let r = async {
                self.pool
                    .get()
                    .await?
                    .execute(
                        "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p",
                        &[&LIVE_CHANNEL, &payloads],
                    )
                    .await?;
                Ok::<_, Error>(())
            }
            .await;
            if let Err(e) = r {
                warn!(
                    "{} live events not relayed to the other nodes: {e}",
                    payloads.len()
                );
            }
        }
    }
}

/// The NOTIFY payloads of one event of `node`: one, or (a large `records` event) several, each
/// under [`MAX_PAYLOAD`] bytes.
fn payloads_of(node: &str, live: &Live, out: &mut Vec<String>) {
    let head = format!("{node}\t{}\t", live.event);
    if head.len() + live.data.len() <= MAX_PAYLOAD {
        out.push(head + &live.data);
        return;
    }
    let split = serde_json::from_str::<Value>(&live.data)
        .ok()
        .and_then(|v| {
            let imei = v.get("imei")?.clone();
            let records = v.get("records")?.as_array()?.clone();
            Some((imei, records))
        });
    let Some((imei, records)) = split.filter(|_| live.event == "records") else {
        warn!(
            event = live.event,
            bytes = live.data.len(),
            "live event too large to relay to the other nodes"
        );
        return;
    };
    let mut chunk: Vec<String> = Vec::new();
    let mut size = 0;
    let flush = |chunk: &mut Vec<String>, out: &mut Vec<String>| {
        if !chunk.is_empty() {
            out.push(format!(
                "{head}{{\"imei\":{imei},\"records\":[{}]}}",
                chunk.join(",")
            ));
            chunk.clear();
        }
    };
    for r in records {
        let text = r.to_string();
        if head.len() + 64 + text.len() > MAX_PAYLOAD {
            warn!(
                bytes = text.len(),
                "a live record too large to relay to the other nodes"
            );
            continue;
        }
        if head.len() + 64 + size + text.len() > MAX_PAYLOAD {
            flush(&mut chunk, out);
            size = 0;
        }
        size += text.len() + 1;
        chunk.push(text);
    }
    flush(&mut chunk, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_events_fit_in_notify_payloads() {
        let small = Live {
            event: "device",
            data: r#"{"imei":"1","connected":true}"#.into(),
        };
        let mut out = Vec::new();
        payloads_of("a", &small, &mut out);
        assert_eq!(out, vec![format!("a\tdevice\t{}", small.data)]);

        // 40 records of ~600 bytes: split, every record kept once, each payload small enough.
        let records: Vec<Value> = (0..40)
            .map(|i| serde_json::json!({"id": i, "pad": "x".repeat(600)}))
            .collect();
        let big = Live {
            event: "records",
            data: serde_json::json!({"imei": "356307042441013", "records": records}).to_string(),
        };
        let mut out = Vec::new();
        payloads_of("node-a", &big, &mut out);
        assert!(out.len() > 1);
        let mut ids = Vec::new();
        for p in &out {
            assert!(p.len() < 8000, "{}", p.len());
            let data = p.strip_prefix("node-a\trecords\t").unwrap();
            let v: Value = serde_json::from_str(data).unwrap();
            assert_eq!(v["imei"], "356307042441013");
            ids.extend(
                v["records"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["id"].as_i64().unwrap()),
            );
        }
        assert_eq!(ids, (0..40).collect::<Vec<_>>());

        // Too large and not splittable: not relayed (logged).
        let huge = Live {
            event: "command",
            data: "x".repeat(9000),
        };
        let mut out = Vec::new();
        payloads_of("a", &huge, &mut out);
        assert!(out.is_empty());
    }
}
