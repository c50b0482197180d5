//! PostgreSQL's side of the reports (see [`crate::serve::reports`]): geofence events folded in
//! by the writer in the transaction of the records they come from, geofences created and
//! deleted by the writer, and the API's reads.
//!
//! Any node may create or delete a geofence: each writer checks the geofences' version in its
//! transaction before folding a group's records, so a record committed after a geofence's
//! creation is tested against it, whichever node holds the device. A transaction-scoped
//! advisory lock per device serializes the folding of one device's records across the
//! node's two writers and across nodes (a device that moved to another node while its last
//! frames were being committed here).

use std::sync::{Arc, LazyLock};

use deadpool_postgres::Transaction;
use fleetview::api::{EventJson, GeofenceJson};

use super::super::geofences::outbox_events;
use super::super::outbox;
use super::super::{now_ms, Applied, Error, Op, RecordRow};
use super::read::Pool;
use crate::serve::reports::geofence::{recompute, Fix};
use crate::serve::reports::sql::{self, new_fix};
use crate::serve::reports::trip::TrackPoint;
use crate::serve::reports::{fence, Fence, FenceCache, Version};

/// This node's geofences, shared by its writers.
static FENCES: LazyLock<FenceCache> = LazyLock::new(FenceCache::default);
/// The advisory lock space of geofence folding (the key's first half; the device id is the
/// second).
const FOLD_LOCK: i32 = 7_245_102;

/// The geofences' version (pipelined with the group's insert).
pub(super) async fn version(tx: &Transaction<'_>) -> Result<Version, tokio_postgres::Error> {
    let q = tx.prepare_cached(sql::FENCE_VERSION_SQL).await?;
    let r = tx.query_one(&q, &[]).await?;
    Ok((r.try_get(0)?, r.try_get(1)?))
}

/// The geofences of `version`, read again when they changed.
async fn fences(tx: &Transaction<'_>, version: Version) -> Result<Arc<Vec<Fence>>, Error> {
    if let Some(f) = FENCES.get(version) {
        return Ok(f);
    }
    let rows = tx.query(sql::GEOFENCES_SQL, &[]).await?;
    let mut list = Vec::with_capacity(rows.len());
    for r in rows {
        let geometry: String = r.try_get(2)?;
        list.extend(fence(
            r.try_get(0)?,
            r.try_get(1)?,
            &geometry,
            r.try_get(3)?,
        ));
    }
    Ok(FENCES.put(version, list))
}

/// Fold each batch's new records into its device's geofence events (devices in id order, so
/// that the advisory locks are always taken in the same order), setting the events of each
/// `Applied::Records`.
pub(super) async fn fold_group(
    tx: &Transaction<'_>,
    ops: &[Op],
    applied: &mut [Option<Applied>],
    version: Version,
    outbox: bool,
) -> Result<(), Error> {
    let mut todo: Vec<(i64, usize)> = ops
        .iter()
        .zip(applied.iter())
        .enumerate()
        .filter_map(|(i, (op, a))| match (op, a) {
            (Op::Records(_), Some(Applied::Records { ids, device, .. }))
                if ids.iter().any(Option::is_some) =>
            {
                Some((*device, i))
            }
            _ => None,
        })
        .collect();
    if todo.is_empty() {
        return Ok(());
    }
    if version.1 == 0 {
        // No geofence: nothing to read.
        return Ok(());
    }
    let fences = fences(tx, version).await?;
    todo.sort_unstable();
    for (device, i) in todo {
        let (Op::Records(b), Some(Applied::Records { ids, events, .. })) =
            (&ops[i], &mut applied[i])
        else {
            continue;
        };
        *events = fold_events(tx, &fences, &b.imei, device, &b.rows, ids).await?;
        if outbox && !events.is_empty() {
            // To the forwarders, after the records they come from (their entries were
            // written by the insert).
            let stmt = tx.prepare_cached(outbox::EVENT_SQL).await?;
            let now = now_ms();
            for e in outbox_events(events) {
                tx.execute(&stmt, &[&e.kind, &e.body, &now, &e.imei])
                    .await?;
            }
        }
    }
    Ok(())
}

/// Fold a batch's new records (`ids[i]` set for each record stored now) into the device's
/// geofence events; returns the events added.
pub(super) async fn fold_events(
    tx: &Transaction<'_>,
    fences: &[Fence],
    imei: &str,
    device: i64,
    rows: &[RecordRow],
    ids: &[Option<i64>],
) -> Result<Vec<EventJson>, Error> {
    let new: Vec<Fix> = rows
        .iter()
        .zip(ids)
        .filter(|(r, id)| id.is_some() && r.record.gps.has_fix())
        .map(|(r, _)| new_fix(r))
        .collect();
    let Some(earliest) = new.iter().map(Fix::key).min() else {
        return Ok(Vec::new());
    };
    if fences.is_empty() {
        return Ok(Vec::new());
    }
    let device32 = (device & 0x7fff_ffff) as i32;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&FOLD_LOCK, &device32],
    )
    .await?;
    let latest = new
        .iter()
        .map(|f| f.timestamp_ms)
        .max()
        .unwrap_or(earliest.0);
    let q = tx.prepare_cached(sql::WINDOW_SQL).await?;
    let window = tx
        .query(&q, &[&device, &earliest.0, &latest])
        .await?
        .iter()
        .map(sql::fix)
        .collect::<Result<Vec<_>, _>>()?;
    let end = window.last().map_or(latest, |f| f.timestamp_ms);
    let q = tx.prepare_cached(sql::STORED_EVENTS_SQL).await?;
    let stored = tx
        .query(&q, &[&device, &earliest.0, &end])
        .await?
        .iter()
        .map(sql::stored_event)
        .collect::<Result<Vec<_>, _>>()?;
    let change = recompute(&window, earliest, fences, &stored);
    if !change.delete.is_empty() {
        tx.execute(
            "DELETE FROM geofence_events WHERE id = ANY($1)",
            &[&change.delete],
        )
        .await?;
    }
    let now = now_ms();
    let insert = tx.prepare_cached(sql::INSERT_EVENT_SQL).await?;
    let mut out = Vec::with_capacity(change.insert.len());
    for c in &change.insert {
        tx.execute(
            &insert,
            &[
                &device,
                &c.fence,
                &c.kind.as_str(),
                &c.at.timestamp_ms,
                &c.at.hash,
                &c.at.latitude,
                &c.at.longitude,
                &now,
            ],
        )
        .await?;
        let name = fences
            .iter()
            .find(|f| f.id == c.fence)
            .map_or("", |f| f.name.as_str());
        out.push(sql::crossing_json(imei, c, name));
    }
    Ok(out)
}

/// Create a geofence; its id.
pub(super) async fn create_geofence(
    tx: &Transaction<'_>,
    name: &str,
    geometry: &str,
) -> Result<i64, Error> {
    FENCES.clear();
    Ok(tx
        .query_one(sql::CREATE_GEOFENCE_SQL, &[&name, &geometry, &now_ms()])
        .await?
        .try_get(0)?)
}

/// Delete a geofence and its events; whether it existed.
pub(super) async fn delete_geofence(tx: &Transaction<'_>, id: i64) -> Result<bool, Error> {
    FENCES.clear();
    tx.execute(sql::DELETE_GEOFENCE_EVENTS_SQL, &[&id]).await?;
    Ok(tx.execute(sql::DELETE_GEOFENCE_SQL, &[&id]).await? > 0)
}

/// [`sql::TRACK_SQL`]'s columns as one row of arrays: a month of records comes back as seven
/// arrays rather than 260,000 rows, each of which the client would parse on its own (the
/// order does not matter: the trips sort the records; every array comes from one pass).
static TRACK_ARRAYS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT array_agg(t.timestamp_ms), array_agg(t.hash), array_agg(t.latitude),
           array_agg(t.longitude), array_agg(t.packed), array_agg(t.odometer), array_agg(t.fuel_level)
         FROM ({}) AS t",
        sql::TRACK_SQL
    )
});

impl Pool {
    /// What trips and stops need of a device's records in `[from, to]`, at most `limit`.
    pub(crate) async fn track(
        &self,
        imei: String,
        from: i64,
        to: i64,
        limit: i64,
    ) -> Result<Vec<TrackPoint>, Error> {
        let c = self.0.get().await?;
        let q = c.prepare_cached(&TRACK_ARRAYS_SQL).await?;
        let r = c.query_one(&q, &[&imei, &from, &to, &limit]).await?;
        // No record: every aggregate is NULL.
        let Some(ts) = r.try_get::<_, Option<Vec<i64>>>(0)? else {
            return Ok(Vec::new());
        };
        let hash: Vec<i64> = r.try_get(1)?;
        let lat: Vec<f64> = r.try_get(2)?;
        let lon: Vec<f64> = r.try_get(3)?;
        let packed: Vec<i64> = r.try_get(4)?;
        let odometer: Vec<Option<i64>> = r.try_get(5)?;
        let level: Vec<Option<f64>> = r.try_get(6)?;
        let n = ts.len();
        if [
            hash.len(),
            lat.len(),
            lon.len(),
            packed.len(),
            odometer.len(),
            level.len(),
        ]
        .iter()
        .any(|&l| l != n)
        {
            return Err(Error::Task("track arrays of different lengths".into()));
        }
        Ok((0..n)
            .map(|i| {
                sql::unpack(
                    [ts[i], hash[i], packed[i]],
                    [lat[i], lon[i]],
                    odometer[i],
                    level[i],
                )
            })
            .collect())
    }

    /// A device's geofence events in `[from, to]`, at most `limit`.
    pub(crate) async fn events(
        &self,
        imei: String,
        from: i64,
        to: i64,
        limit: i64,
    ) -> Result<Vec<EventJson>, Error> {
        let c = self.0.get().await?;
        let q = c.prepare_cached(sql::EVENTS_SQL).await?;
        let rows = c.query(&q, &[&imei, &from, &to, &limit]).await?;
        Ok(rows
            .iter()
            .map(sql::event_json)
            .collect::<Result<Vec<_>, _>>()?)
    }

    /// Every geofence.
    pub(crate) async fn geofences(&self) -> Result<Vec<GeofenceJson>, Error> {
        let c = self.0.get().await?;
        let rows = c.query(sql::GEOFENCES_SQL, &[]).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.extend(sql::geofence_json(r)?);
        }
        Ok(out)
    }
}
