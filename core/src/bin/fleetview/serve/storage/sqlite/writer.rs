//! The SQLite writer thread: group commit (see the storage module), with savepoints only when a
//! job of the group fails.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::mpsc;

use super::super::job::{
    outcomes, ANSWERED_SQL, FAILED_SQL, QUEUE_DEVICE_SQL, RETRY_SQL, SEEN_SQL, UNANSWERED_SQL,
};
use super::super::outbox::{self, OutboxEvent};
use super::super::{
    cut_at_close, drain, now_ms, record_hash, Applied, CommandEnd, Error, Job, Op, Outcome,
    Pending, Queued, LINGER, LINGER_BELOW, MAX_GROUP,
};
use super::checkpoint::Checkpointer;

/// What the writer keeps between groups.
struct WriterState {
    pending: Arc<Pending>,
    /// Whether records and events go to the outbox too (there are forwarders).
    outbox: bool,
    /// Records added and last data time per device (TCP batches) since the devices table was
    /// last updated; see [`COUNTS_EVERY`].
    counts: HashMap<i64, (i64, i64)>,
    counted_at: Instant,
}

pub(super) fn write_loop(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    pending: Arc<Pending>,
    checkpointer: Checkpointer,
    outbox: bool,
) {
    let mut state = WriterState {
        pending,
        outbox,
        counts: HashMap::new(),
        counted_at: Instant::now(),
    };
    let mut group = Vec::with_capacity(MAX_GROUP);
    let mut closing = false;
    while !closing {
        let Some(job) = rx.blocking_recv() else { break };
        group.push(job);
        drain(&mut rx, &mut group);
        if group.len() < LINGER_BELOW && !group.iter().any(|j| matches!(j.op, Op::Close)) {
            // A commit has a fixed cost (the WAL sync, pages every commit rewrites, the page
            // cache's bookkeeping): with a few jobs only, a moment's wait lets more join it.
            std::thread::sleep(LINGER);
            drain(&mut rx, &mut group);
        }
        closing = cut_at_close(&mut group);
        let started = Instant::now();
        let (ops, replies): (Vec<Op>, Vec<_>) = group.drain(..).map(|j| (j.op, j.reply)).unzip();
        let outcomes = commit_group(&mut conn, ops, &mut state, closing);
        crate::serve::metrics::metrics().commit(started.elapsed());
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

/// The devices table's record counts and last data times are updated at most this often under
/// load (at every group when groups are small, and at shutdown): one update per device per
/// interval instead of one per frame, which rewrote the table's pages in every commit. After
/// a crash they are counted again from the records ([`super::open`]).
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
) -> Vec<Result<Outcome, Error>> {
    let n = ops.len();
    let update_counts = closing || n <= SMALL_GROUP || state.counted_at.elapsed() >= COUNTS_EVERY;
    let mut isolated = false;
    let result = loop {
        let tx = match conn.transaction() {
            Ok(tx) => tx,
            Err(e) => break Err(Error::from(e)),
        };
        let mut added = HashMap::new();
        let mut applied = Vec::with_capacity(n);
        let mut failed = false;
        for op in &ops {
            let r = if isolated {
                savepoint(&tx, op, state)
            } else {
                apply(&tx, op, state)
            };
            if let (Ok(Applied::Records { ids, device, .. }), Op::Records(b)) = (&r, op) {
                if b.device.is_some() {
                    let e = added.entry(*device).or_insert((0, 0));
                    e.0 += ids.iter().flatten().count() as i64;
                    e.1 = e.1.max(b.received_ms);
                }
            }
            if let Err(e) = &r {
                tracing::warn!("database job failed: {e}");
                failed = true;
                if !isolated {
                    break;
                }
            }
            applied.push(r.map_err(Error::from));
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
                Err(Error::from(e))
            }
        };
    };
    match result {
        Ok(applied) => outcomes(ops, applied),
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
fn savepoint(tx: &Connection, op: &Op, state: &WriterState) -> rusqlite::Result<Applied> {
    tx.prepare_cached("SAVEPOINT job")?.execute([])?;
    match apply(tx, op, state) {
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

/// Events to the outbox (see [`outbox::EVENT_SQL`]).
fn write_events(tx: &Connection, events: &[OutboxEvent]) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(outbox::EVENT_SQL)?;
    let now = now_ms();
    for e in events {
        insert.execute(params![e.kind, e.body, now, e.imei])?;
    }
    Ok(())
}

/// A command's answer to the outbox, in the transaction that stores it.
fn write_answer(tx: &Connection, id: i64) -> rusqlite::Result<()> {
    let row = tx
        .prepare_cached(outbox::ANSWER_SQL)?
        .query_row([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<String>>(5)?,
            ))
        })
        .optional()?;
    if let Some((imei, status, response, error, codec, text)) = row {
        let event = outbox::answer_event(
            id,
            &imei,
            &status,
            response.as_deref(),
            error.as_deref(),
            &codec,
            text.as_deref(),
        );
        write_events(tx, &[event])?;
    }
    Ok(())
}

fn apply(tx: &Connection, op: &Op, state: &WriterState) -> rusqlite::Result<Applied> {
    let pending = &state.pending;
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
                   generation_type, io, fuel_id, fuel_level, fuel_unit, ignition, movement, raw, odometer)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
                   ?20, ?21, ?22, ?23, ?24)",
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
                    row.odometer,
                ])?;
                ids.push((n == 1).then(|| tx.last_insert_rowid()));
            }
            let added = ids.iter().flatten().count() as i64;
            if state.outbox {
                // The new records of one batch have consecutive ids (one writer): one entry.
                let mut new = ids.iter().flatten();
                if let (Some(&first), Some(&last)) = (new.next(), ids.iter().flatten().last()) {
                    tx.prepare_cached(
                        "INSERT INTO outbox (device_id, kind, first_record, last_record, created_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![device, outbox::RECORDS, first, last, batch.received_ms])?;
                }
                write_events(tx, &batch.events)?;
            }
            // A known device's count is updated with the others' (`write_counts`).
            if batch.device.is_none() && added > 0 {
                tx.prepare_cached("UPDATE devices SET records = records + ?1 WHERE id = ?2")?
                    .execute(params![added, device])?;
            }
            // Geofence events, to the outbox after the records they come from.
            let events = super::reports::fold_events(tx, &batch.imei, device, &batch.rows, &ids)?;
            if state.outbox && !events.is_empty() {
                write_events(tx, &super::super::geofences::outbox_events(&events))?;
            }
            Ok(Applied::Records {
                ids,
                device,
                events,
            })
        }
        Op::Seen {
            imei,
            transport,
            address,
            create,
        } => {
            if *create {
                return Ok(Applied::Device(Some(device_id(
                    tx,
                    imei,
                    Some(transport),
                    Some(address),
                )?)));
            }
            let id = tx
                .prepare_cached(SEEN_SQL)?
                .query_row(params![now_ms(), transport, address, imei], |r| r.get(0))
                .optional()?;
            Ok(Applied::Device(id))
        }
        Op::Queue {
            imei,
            codec,
            text,
            payload,
        } => {
            tx.prepare_cached(QUEUE_DEVICE_SQL)?
                .execute(params![imei, now_ms()])?;
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
                    let status = CommandEnd::answered_status(error);
                    tx.prepare_cached(ANSWERED_SQL)?
                        .execute(params![status, now, response, error, id])?;
                    if state.outbox {
                        write_answer(tx, id)?;
                    }
                }
                CommandEnd::Failed(error) => {
                    tx.prepare_cached(FAILED_SQL)?.execute(params![error, id])?;
                }
                CommandEnd::Unanswered(error) => {
                    tx.prepare_cached(UNANSWERED_SQL)?
                        .execute(params![error, id])?;
                }
            }
            Ok(Applied::Done)
        }
        Op::Retry { id } => {
            let imei: Option<String> = tx
                .prepare_cached(RETRY_SQL)?
                .query_row([id], |r| r.get(0))
                .optional()?;
            if let Some(imei) = &imei {
                pending.set(imei, true);
            }
            Ok(Applied::Retried(imei))
        }
        Op::CreateGeofence { name, geometry } => Ok(Applied::Id(super::reports::create_geofence(
            tx, name, geometry,
        )?)),
        Op::DeleteGeofence { id } => {
            Ok(Applied::Deleted(super::reports::delete_geofence(tx, *id)?))
        }
        Op::Events(events) => {
            if state.outbox {
                write_events(tx, events)?;
            }
            Ok(Applied::Done)
        }
        Op::Register { names, only } => {
            let now = now_ms();
            if *only {
                let mut names_now: Vec<String> = tx
                    .prepare_cached("SELECT name FROM forwarders")?
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                names_now.retain(|n| !names.contains(n));
                for gone in names_now {
                    tracing::info!(
                        "forwarder {gone} is no longer configured: its position is dropped"
                    );
                    tx.execute("DELETE FROM forwarders WHERE name = ?1", [gone])?;
                }
            }
            for name in names {
                tx.prepare_cached(outbox::REGISTER_SQL)?
                    .execute(params![name, now])?;
            }
            Ok(Applied::Done)
        }
        Op::Delivered { name, at, trim } => {
            let now = now_ms();
            tx.prepare_cached(outbox::ADVANCE_SQL)?
                .execute(params![at.txid, at.id, now, name])?;
            if *trim {
                let upto: Option<i64> = tx
                    .prepare_cached(outbox::DELIVERED_SQL)?
                    .query_row([now - outbox::FORGET_MS], |r| r.get(1))
                    .optional()?;
                if let Some(upto) = upto {
                    tx.prepare_cached(outbox::TRIM_SQLITE_SQL)?
                        .execute([upto])?;
                }
            }
            Ok(Applied::Done)
        }
        Op::Close => Ok(Applied::Done),
    }
}
