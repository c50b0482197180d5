//! The PostgreSQL writer task: group commit on one pooled connection. A group's records go in
//! with one `INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING` (one round trip whatever
//! its size); the other jobs follow in the same transaction. When a group fails, its jobs are
//! applied again each in its own transaction, so one bad job costs only its own ack.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::{Object, Pool, Transaction};
use tokio::sync::mpsc;

use super::super::job::{
    outcomes, ANSWERED_SQL, FAILED_SQL, QUEUE_DEVICE_SQL, RETRY_SQL, SEEN_SQL, UNANSWERED_SQL,
};
use super::super::outbox::{self, OutboxEvent};
use super::super::{
    cut_at_close, drain, now_ms, record_hash, Applied, CommandEnd, Error, Job, Op, Outcome,
    Pending, Queued, Sync, LINGER_BELOW, MAX_GROUP,
};
use super::COMMAND_CHANNEL;

/// The devices' last data times (TCP batches) are written at most this often under load (at
/// every group when groups are small, and at shutdown): one update per device per interval.
const SEEN_EVERY: Duration = Duration::from_secs(1);
/// Groups this small write the last data times at once.
const SMALL_GROUP: usize = 8;

const INSERT_RECORDS: &str = "
INSERT INTO records (device_id, timestamp_ms, hash, received_ms, transport, codec, priority, longitude,
  latitude, altitude, angle, satellites, speed, valid, event_id, generation_type, io, fuel_id, fuel_level,
  fuel_unit, ignition, movement, raw, odometer)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::text[],
  $7::bigint[], $8::float8[], $9::float8[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[],
  $14::bool[], $15::bigint[], $16::bigint[], $17::text[], $18::bigint[], $19::float8[], $20::text[],
  $21::bigint[], $22::bigint[], $23::bytea[], $24::bigint[])
ON CONFLICT (device_id, timestamp_ms, hash) DO NOTHING
RETURNING id, device_id, timestamp_ms, hash";

/// [`INSERT_RECORDS`] with an outbox entry per new record (in id order), in the same statement.
fn insert_records_with_outbox() -> String {
    format!(
        "WITH ins AS ({INSERT_RECORDS}, received_ms),
         ob AS (INSERT INTO outbox (device_id, kind, first_record, last_record, created_ms)
                SELECT device_id, '{}', id, id, received_ms FROM ins ORDER BY id)
         SELECT id, device_id, timestamp_ms, hash FROM ins",
        outbox::RECORDS
    )
}

/// What the writer keeps between groups.
struct State {
    pending: Arc<Pending>,
    node: String,
    /// The records insert ([`INSERT_RECORDS`], with the outbox when there are forwarders).
    insert_sql: Arc<str>,
    outbox: bool,
    /// Last data time per device not yet written to the devices table.
    seen: HashMap<i64, i64>,
    seen_at: Instant,
}

/// Writers committing groups side by side, each on its own connection: while one waits for
/// its COMMIT to be synced, the next group is collected and inserted by another. Each job is
/// still answered only after the commit of its own group.
const WRITERS: usize = 2;

/// Run the writers until the channel closes or a `Close` job has been committed.
pub(super) async fn run(
    pool: Pool,
    sync: Sync,
    rx: mpsc::Receiver<Job>,
    pending: Arc<Pending>,
    node: String,
    outbox: bool,
) {
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            tokio::spawn(write_loop(
                pool.clone(),
                sync,
                rx.clone(),
                pending.clone(),
                node.clone(),
                outbox,
            ))
        })
        .collect();
    for w in writers {
        let _ = w.await;
    }
    tracing::debug!("writers closed");
}

async fn write_loop(
    pool: Pool,
    sync: Sync,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    pending: Arc<Pending>,
    node: String,
    outbox: bool,
) {
    let insert_sql: Arc<str> = if outbox {
        insert_records_with_outbox().into()
    } else {
        INSERT_RECORDS.into()
    };
    let mut state = State {
        pending,
        node,
        insert_sql,
        outbox,
        seen: HashMap::new(),
        seen_at: Instant::now(),
    };
    let mut client: Option<Object> = None;
    let mut group = Vec::with_capacity(MAX_GROUP);
    let mut closing = false;
    while !closing {
        {
            // One writer collects a group at a time; the others commit theirs meanwhile.
            let mut rx = rx.lock().await;
            let Some(job) = rx.recv().await else { break };
            group.push(job);
            drain(&mut rx, &mut group);
            if group.len() < LINGER_BELOW {
                // A moment for more jobs to join a small group (the commit's sync is the cost).
                tokio::task::yield_now().await;
                drain(&mut rx, &mut group);
            }
            closing = cut_at_close(&mut group);
            if closing {
                // Nothing after the close is taken: its senders see an error. The other
                // writers finish the groups they hold and find the channel closed.
                rx.close();
                while rx.try_recv().is_ok() {}
            }
        }
        let (ops, replies): (Vec<Op>, Vec<_>) = group.drain(..).map(|j| (j.op, j.reply)).unzip();
        let started = Instant::now();
        let outcomes = match connection(&pool, &mut client, sync).await {
            Ok(c) => {
                let o = commit_group(c, ops, &mut state, closing).await;
                crate::serve::metrics::metrics().commit(started.elapsed());
                o
            }
            Err(e) => {
                tracing::error!("database: {e}; {} jobs not stored", ops.len());
                ops.iter().map(|_| Err(e.clone())).collect()
            }
        };
        if client.as_ref().is_some_and(|c| c.is_closed()) {
            // Broken (the server restarted, say): the next group takes a new connection.
            client = None;
        }
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            let _ = reply.send(outcome);
        }
    }
    if !state.seen.is_empty() {
        // The last data times this writer still holds (another writer committed the close).
        if let Ok(c) = connection(&pool, &mut client, sync).await {
            if let Err(e) = apply_group(c, &[], &mut state, true).await {
                tracing::warn!("devices' last data times not written at close: {e}");
            }
        }
    }
}

/// The writer's connection, taken from the pool when it has none.
async fn connection<'a>(
    pool: &Pool,
    client: &'a mut Option<Object>,
    sync: Sync,
) -> Result<&'a mut Object, Error> {
    if client.as_ref().is_some_and(|c| c.is_closed()) {
        // Broken since its last group (the server restarted, say): a new one.
        *client = None;
    }
    if client.is_none() {
        let c = pool.get().await?;
        // Acked means committed: the commit returns once its WAL record is on disk.
        let setting = match sync {
            Sync::Full => "on",
            Sync::Normal => "off",
        };
        c.batch_execute(&format!("SET synchronous_commit = {setting}"))
            .await?;
        *client = Some(c);
    }
    Ok(client.as_mut().expect("set above"))
}

async fn commit_group(
    client: &mut Object,
    ops: Vec<Op>,
    state: &mut State,
    closing: bool,
) -> Vec<Result<Outcome, Error>> {
    let n = ops.len();
    let write_seen = closing || n <= SMALL_GROUP || state.seen_at.elapsed() >= SEEN_EVERY;
    let applied = match apply_group(client, &ops, state, write_seen).await {
        Ok(applied) => applied.into_iter().map(Ok).collect::<Vec<_>>(),
        Err(e) if n == 1 || client.is_closed() => {
            tracing::error!("commit failed, {n} jobs not stored: {e}");
            (0..n).map(|_| Err(e.clone())).collect()
        }
        Err(e) => {
            tracing::warn!("a group of {n} jobs failed ({e}): each job again on its own");
            let mut each = Vec::with_capacity(n);
            for op in &ops {
                let r = apply_group(client, std::slice::from_ref(op), state, false).await;
                if let Err(e) = &r {
                    tracing::warn!("database job failed: {e}");
                }
                each.push(r.map(|mut a| a.pop().unwrap_or(Applied::Done)));
            }
            each
        }
    };
    outcomes(ops, applied)
}

/// The group's jobs in one transaction, committed.
async fn apply_group(
    client: &mut Object,
    ops: &[Op],
    state: &mut State,
    write_seen: bool,
) -> Result<Vec<Applied>, Error> {
    let tx = client.transaction().await?;
    let mut applied: Vec<Option<Applied>> = ops.iter().map(|_| None).collect();

    // Device rows for batches that come without one (UDP, a device's first data).
    let mut devices: HashMap<&str, i64> = HashMap::new();
    for op in ops {
        if let Op::Records(b) = op {
            if b.device.is_none() && !devices.contains_key(&*b.imei) {
                let id =
                    upsert_device(&tx, &b.imei, b.transport, &b.address, b.received_ms).await?;
                devices.insert(&b.imei, id);
            }
        }
    }
    let device_of = |b: &super::super::Batch| b.device.or_else(|| devices.get(&*b.imei).copied());

    // Every record of the group in one statement.
    let mut cols = Columns::default();
    for op in ops {
        if let Op::Records(b) = op {
            let device = device_of(b).unwrap_or_default();
            for row in &b.rows {
                cols.push(device, b, row);
            }
        }
    }
    // The devices of the group's TCP batches (whose connections take commands).
    let mut held: HashMap<i64, &str> = HashMap::new();
    for op in ops {
        if let Op::Records(b) = op {
            if b.transport == "tcp" {
                held.insert(device_of(b).unwrap_or_default(), &b.imei);
            }
        }
    }
    let insert = async {
        if cols.device.is_empty() {
            return Ok(Vec::new());
        }
        let stmt = tx.prepare_cached(&state.insert_sql).await?;
        tx.query(
            &stmt,
            &[
                &cols.device,
                &cols.timestamp,
                &cols.hash,
                &cols.received,
                &cols.transport,
                &cols.codec,
                &cols.priority,
                &cols.longitude,
                &cols.latitude,
                &cols.altitude,
                &cols.angle,
                &cols.satellites,
                &cols.speed,
                &cols.valid,
                &cols.event_id,
                &cols.generation_type,
                &cols.io,
                &cols.fuel_id,
                &cols.fuel_level,
                &cols.fuel_unit,
                &cols.ignition,
                &cols.movement,
                &cols.raw,
                &cols.odometer,
            ],
        )
        .await
    };
    // Which of them have queued commands, pipelined with the insert (no extra round trip):
    // their connections take the next one after the ack. NOTIFY has no replay; a command whose
    // notification was missed is found here at the device's next frame.
    let ids: Vec<i64> = held.keys().copied().collect();
    let queued = async {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let stmt = tx
            .prepare_cached(
                "SELECT DISTINCT device_id FROM commands WHERE status = 'queued' AND device_id = ANY($1)",
            )
            .await?;
        tx.query(&stmt, &[&ids]).await
    };
    // The geofences' version too (for the group's geofence events), in the same round trip.
    let (rows, queued, fence_version) =
        tokio::try_join!(insert, queued, super::reports::version(&tx))?;
    let mut new_ids: HashMap<(i64, i64, i64), i64> = HashMap::new();
    for r in rows {
        new_ids.insert((r.try_get(1)?, r.try_get(2)?, r.try_get(3)?), r.try_get(0)?);
    }
    let queued = queued
        .into_iter()
        .map(|r| r.try_get::<_, i64>(0))
        .collect::<Result<Vec<_>, _>>()?;
    let mut k = 0;
    let mut seen_now: HashMap<i64, i64> = HashMap::new();
    for (op, slot) in ops.iter().zip(applied.iter_mut()) {
        if let Op::Records(b) = op {
            let device = device_of(b).unwrap_or_default();
            // The first of equal keys got the row (a duplicate within the group gets `None`).
            let ids = b
                .rows
                .iter()
                .map(|_| {
                    let key = (cols.device[k], cols.timestamp[k], cols.hash[k]);
                    k += 1;
                    new_ids.remove(&key)
                })
                .collect();
            if b.device.is_some() {
                let e = seen_now.entry(device).or_insert(0);
                *e = (*e).max(b.received_ms);
            }
            *slot = Some(Applied::Records {
                ids,
                device,
                events: Vec::new(),
            });
        }
    }
    super::reports::fold_group(&tx, ops, &mut applied, fence_version, state.outbox).await?;

    if state.outbox {
        for op in ops {
            if let Op::Records(b) = op {
                write_events(&tx, &b.events).await?;
            }
        }
    }

    // The other jobs, in their order.
    for (op, slot) in ops.iter().zip(applied.iter_mut()) {
        if slot.is_none() {
            *slot = Some(apply(&tx, op, state).await?);
        }
    }

    for (device, at) in seen_now {
        let e = state.seen.entry(device).or_insert(0);
        *e = (*e).max(at);
    }
    if write_seen && !state.seen.is_empty() {
        // In id order: two nodes updating the same devices lock them in the same order.
        let mut seen: Vec<(i64, i64)> = state.seen.iter().map(|(&d, &t)| (d, t)).collect();
        seen.sort_unstable();
        let (ids, times): (Vec<i64>, Vec<i64>) = seen.into_iter().unzip();
        tx.execute(
            "UPDATE devices SET last_seen_ms = GREATEST(last_seen_ms, d.at)
             FROM unnest($1::bigint[], $2::bigint[]) AS d(id, at) WHERE devices.id = d.id",
            &[&ids, &times],
        )
        .await?;
    }
    tx.commit().await?;
    for device in queued {
        if let Some(imei) = held.get(&device) {
            state.pending.set(imei, true);
        }
    }
    if write_seen {
        state.seen.clear();
        state.seen_at = Instant::now();
    }
    Ok(applied
        .into_iter()
        .map(|a| a.unwrap_or(Applied::Done))
        .collect())
}

/// The group's records, column by column (for `unnest`).
#[derive(Default)]
struct Columns<'a> {
    device: Vec<i64>,
    timestamp: Vec<i64>,
    hash: Vec<i64>,
    received: Vec<i64>,
    transport: Vec<&'a str>,
    codec: Vec<&'a str>,
    priority: Vec<i64>,
    longitude: Vec<f64>,
    latitude: Vec<f64>,
    altitude: Vec<i64>,
    angle: Vec<i64>,
    satellites: Vec<i64>,
    speed: Vec<i64>,
    valid: Vec<bool>,
    event_id: Vec<i64>,
    generation_type: Vec<Option<i64>>,
    io: Vec<&'a str>,
    fuel_id: Vec<Option<i64>>,
    fuel_level: Vec<Option<f64>>,
    fuel_unit: Vec<Option<&'static str>>,
    ignition: Vec<Option<i64>>,
    movement: Vec<Option<i64>>,
    raw: Vec<&'a [u8]>,
    odometer: Vec<Option<i64>>,
}

impl<'a> Columns<'a> {
    fn push(&mut self, device: i64, b: &'a super::super::Batch, row: &'a super::super::RecordRow) {
        let r = &row.record;
        self.device.push(device);
        self.timestamp.push(r.timestamp_ms as i64);
        self.hash.push(record_hash(&row.raw));
        self.received.push(b.received_ms);
        self.transport.push(b.transport);
        self.codec.push(b.codec);
        self.priority.push(i64::from(r.priority.0));
        self.longitude.push(r.gps.longitude_deg());
        self.latitude.push(r.gps.latitude_deg());
        self.altitude.push(i64::from(r.gps.altitude));
        self.angle.push(i64::from(r.gps.angle));
        self.satellites.push(i64::from(r.gps.satellites));
        self.speed.push(i64::from(r.gps.speed));
        self.valid.push(r.gps.has_fix());
        self.event_id.push(i64::from(r.event_id));
        self.generation_type
            .push(r.generation_type.map(|g| i64::from(g.0)));
        self.io.push(&row.io);
        self.fuel_id
            .push(row.fuel.as_ref().map(|f| i64::from(f.id)));
        self.fuel_level.push(row.fuel.as_ref().map(|f| f.level));
        self.fuel_unit.push(row.fuel.as_ref().and_then(|f| f.unit));
        self.ignition.push(row.ignition.map(i64::from));
        self.movement.push(row.movement.map(i64::from));
        self.raw.push(&row.raw);
        self.odometer.push(row.odometer);
    }
}

/// Find or create the device's row, updating its transport, address and time.
async fn upsert_device(
    tx: &Transaction<'_>,
    imei: &str,
    transport: &str,
    address: &str,
    at: i64,
) -> Result<i64, Error> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO devices (imei, first_seen_ms, last_seen_ms, transport, address) VALUES ($1, $2, $2, $3, $4)
             ON CONFLICT (imei) DO UPDATE SET last_seen_ms = GREATEST(devices.last_seen_ms, excluded.last_seen_ms),
               transport = excluded.transport, address = excluded.address
             RETURNING id",
        )
        .await?;
    Ok(tx
        .query_one(&stmt, &[&imei, &at, &transport, &address])
        .await?
        .try_get(0)?)
}

/// Events to the outbox (see [`outbox::EVENT_SQL`]).
async fn write_events(tx: &Transaction<'_>, events: &[OutboxEvent]) -> Result<(), Error> {
    if events.is_empty() {
        return Ok(());
    }
    let stmt = tx.prepare_cached(outbox::EVENT_SQL).await?;
    let now = now_ms();
    for e in events {
        tx.execute(&stmt, &[&e.kind, &e.body, &now, &e.imei])
            .await?;
    }
    Ok(())
}

/// A command's answer to the outbox, in the transaction that stores it.
async fn write_answer(tx: &Transaction<'_>, id: i64) -> Result<(), Error> {
    if let Some(r) = tx.query_opt(outbox::ANSWER_SQL, &[&id]).await? {
        let event = outbox::answer_event(
            id,
            r.try_get(0)?,
            r.try_get(1)?,
            r.try_get(2)?,
            r.try_get(3)?,
            r.try_get(4)?,
            r.try_get(5)?,
        );
        write_events(tx, &[event]).await?;
    }
    Ok(())
}

/// Wake the node holding the device (this one included), at commit.
async fn notify_command(tx: &Transaction<'_>, imei: &str) -> Result<(), Error> {
    tx.execute("SELECT pg_notify($1, $2)", &[&COMMAND_CHANNEL, &imei])
        .await?;
    Ok(())
}

async fn apply(tx: &Transaction<'_>, op: &Op, state: &State) -> Result<Applied, Error> {
    let pending = &state.pending;
    match op {
        Op::Records(_) => unreachable!("records are inserted together"),
        Op::Seen {
            imei,
            transport,
            address,
            create,
        } => {
            if *create {
                let id = upsert_device(tx, imei, transport, address, now_ms()).await?;
                return Ok(Applied::Device(Some(id)));
            }
            let row = tx
                .query_opt(SEEN_SQL, &[&now_ms(), transport, address, imei])
                .await?;
            Ok(Applied::Device(row.map(|r| r.try_get(0)).transpose()?))
        }
        Op::Queue {
            imei,
            codec,
            text,
            payload,
        } => {
            tx.execute(QUEUE_DEVICE_SQL, &[imei, &now_ms()]).await?;
            let id: i64 = tx
                .query_one(
                    "INSERT INTO commands (device_id, codec, text, payload, status, created_ms)
                     SELECT id, $2, $3, $4, 'queued', $5 FROM devices WHERE imei = $1 RETURNING id",
                    &[imei, codec, text, payload, &now_ms()],
                )
                .await?
                .try_get(0)?;
            notify_command(tx, imei).await?;
            pending.set(imei, true);
            Ok(Applied::Id(id))
        }
        Op::Take { imei } => {
            // SKIP LOCKED: two nodes never take the same command.
            let next = tx
                .query_opt(
                    "UPDATE commands SET status = 'sent', sent_ms = $1, node = $2
                     WHERE id = (SELECT c.id FROM commands c JOIN devices d ON d.id = c.device_id
                                 WHERE d.imei = $3 AND c.status = 'queued' ORDER BY c.id LIMIT 1
                                 FOR UPDATE OF c SKIP LOCKED)
                     RETURNING id, codec, payload",
                    &[&now_ms(), &state.node, imei],
                )
                .await?;
            match next {
                Some(r) => Ok(Applied::Taken(Some(Queued {
                    id: r.try_get(0)?,
                    codec: r.try_get(1)?,
                    payload: r.try_get(2)?,
                }))),
                None => {
                    pending.set(imei, false);
                    Ok(Applied::Taken(None))
                }
            }
        }
        Op::End { id, end } => {
            let now = now_ms();
            match end {
                CommandEnd::Answered { response, error } => {
                    let status = CommandEnd::answered_status(error);
                    tx.execute(ANSWERED_SQL, &[&status, &now, response, error, id])
                        .await?;
                    if state.outbox {
                        write_answer(tx, *id).await?;
                    }
                }
                CommandEnd::Failed(error) => {
                    tx.execute(FAILED_SQL, &[error, id]).await?;
                }
                CommandEnd::Unanswered(error) => {
                    tx.execute(UNANSWERED_SQL, &[error, id]).await?;
                }
            }
            Ok(Applied::Done)
        }
        Op::Retry { id } => {
            let imei: Option<String> = tx
                .query_opt(RETRY_SQL, &[id])
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
            if let Some(imei) = &imei {
                notify_command(tx, imei).await?;
                pending.set(imei, true);
            }
            Ok(Applied::Retried(imei))
        }
        Op::CreateGeofence { name, geometry } => Ok(Applied::Id(
            super::reports::create_geofence(tx, name, geometry).await?,
        )),
        Op::DeleteGeofence { id } => Ok(Applied::Deleted(
            super::reports::delete_geofence(tx, *id).await?,
        )),
        Op::Events(events) => {
            if state.outbox {
                write_events(tx, events).await?;
            }
            Ok(Applied::Done)
        }
        Op::Register { names, only } => {
            let now = now_ms();
            if *only {
                tx.execute(
                    "DELETE FROM forwarders WHERE NOT (name = ANY($1))",
                    &[names],
                )
                .await?;
            }
            for name in names {
                tx.execute(outbox::REGISTER_SQL, &[name, &now]).await?;
            }
            Ok(Applied::Done)
        }
        Op::Delivered { name, at, trim } => {
            let now = now_ms();
            tx.execute(outbox::ADVANCE_SQL, &[&at.txid, &at.id, &now, name])
                .await?;
            if *trim {
                let since = now - outbox::FORGET_MS;
                if let Some(r) = tx.query_opt(outbox::DELIVERED_SQL, &[&since]).await? {
                    let (txid, id): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
                    tx.execute(outbox::TRIM_SQL, &[&txid, &id]).await?;
                }
            }
            Ok(Applied::Done)
        }
        Op::Close => Ok(Applied::Done),
    }
}
