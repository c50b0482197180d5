//! SQLite's side of the reports (see [`crate::serve::reports`]): geofence events folded in by
//! the writer in the transaction of the records they come from, geofences created and deleted
//! by the writer, and the API's reads.

use std::sync::{Arc, LazyLock};

use fleetview::api::{EventJson, GeofenceJson};
use rusqlite::{params, Connection};

use super::super::{now_ms, Error, RecordRow};
use super::read::Pool;
use crate::serve::reports::geofence::{recompute, Fix};
use crate::serve::reports::sql;
use crate::serve::reports::sql::new_fix;
use crate::serve::reports::trip::TrackPoint;
use crate::serve::reports::{fence, Fence, FenceCache};

/// The writer's geofences (one writer thread per process).
static FENCES: LazyLock<FenceCache> = LazyLock::new(FenceCache::default);

/// The geofences, read again when they changed.
fn fences(tx: &Connection) -> rusqlite::Result<Arc<Vec<Fence>>> {
    let version: (i64, i64) = tx
        .prepare_cached(sql::FENCE_VERSION_SQL)?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if let Some(f) = FENCES.get(version) {
        return Ok(f);
    }
    let mut q = tx.prepare_cached(sql::GEOFENCES_SQL)?;
    let rows = q.query_map([], |r| {
        Ok(fence(
            r.get(0)?,
            r.get(1)?,
            &r.get::<_, String>(2)?,
            r.get(3)?,
        ))
    })?;
    let list = rows
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    Ok(FENCES.put(version, list))
}

/// Fold a batch's new records (`ids[i]` set for each record stored now) into the device's
/// geofence events; returns the events added.
pub(super) fn fold_events(
    tx: &Connection,
    imei: &str,
    device: i64,
    rows: &[RecordRow],
    ids: &[Option<i64>],
) -> rusqlite::Result<Vec<EventJson>> {
    let new: Vec<Fix> = rows
        .iter()
        .zip(ids)
        .filter(|(r, id)| id.is_some() && r.record.gps.has_fix())
        .map(|(r, _)| new_fix(r))
        .collect();
    let Some(earliest) = new.iter().map(Fix::key).min() else {
        return Ok(Vec::new());
    };
    let fences = fences(tx)?;
    if fences.is_empty() {
        return Ok(Vec::new());
    }
    let latest = new
        .iter()
        .map(|f| f.timestamp_ms)
        .max()
        .unwrap_or(earliest.0);
    let window = tx
        .prepare_cached(sql::WINDOW_SQL)?
        .query_map(params![device, earliest.0, latest], |r| sql::fix(r))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let end = window.last().map_or(latest, |f| f.timestamp_ms);
    let stored = tx
        .prepare_cached(sql::STORED_EVENTS_SQL)?
        .query_map(params![device, earliest.0, end], |r| sql::stored_event(r))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let change = recompute(&window, earliest, &fences, &stored);
    for id in change.delete {
        tx.prepare_cached(sql::DELETE_EVENT_SQL)?.execute([id])?;
    }
    let now = now_ms();
    let mut insert = tx.prepare_cached(sql::INSERT_EVENT_SQL)?;
    let mut out = Vec::with_capacity(change.insert.len());
    for c in &change.insert {
        insert.execute(params![
            device,
            c.fence,
            c.kind.as_str(),
            c.at.timestamp_ms,
            c.at.hash,
            c.at.latitude,
            c.at.longitude,
            now
        ])?;
        let name = fences
            .iter()
            .find(|f| f.id == c.fence)
            .map_or("", |f| f.name.as_str());
        out.push(sql::crossing_json(imei, c, name));
    }
    Ok(out)
}

/// Create a geofence; its id.
pub(super) fn create_geofence(
    tx: &Connection,
    name: &str,
    geometry: &str,
) -> rusqlite::Result<i64> {
    FENCES.clear();
    tx.prepare_cached(sql::CREATE_GEOFENCE_SQL)?
        .query_row(params![name, geometry, now_ms()], |r| r.get(0))
}

/// Delete a geofence and its events; whether it existed.
pub(super) fn delete_geofence(tx: &Connection, id: i64) -> rusqlite::Result<bool> {
    FENCES.clear();
    tx.prepare_cached(sql::DELETE_GEOFENCE_EVENTS_SQL)?
        .execute([id])?;
    Ok(tx.prepare_cached(sql::DELETE_GEOFENCE_SQL)?.execute([id])? > 0)
}

impl Pool {
    /// What trips and stops need of a device's records in `[from, to]`, at most `limit`.
    pub(crate) async fn track(
        &self,
        imei: String,
        from: i64,
        to: i64,
        limit: i64,
    ) -> Result<Vec<TrackPoint>, Error> {
        self.with(move |c| {
            let mut q = c.prepare_cached(sql::TRACK_SQL)?;
            let rows = q.query_map(params![imei, from, to, limit], |r| sql::track_point(r))?;
            rows.collect()
        })
        .await
    }

    /// A device's geofence events in `[from, to]`, at most `limit`.
    pub(crate) async fn events(
        &self,
        imei: String,
        from: i64,
        to: i64,
        limit: i64,
    ) -> Result<Vec<EventJson>, Error> {
        self.with(move |c| {
            let mut q = c.prepare_cached(sql::EVENTS_SQL)?;
            let rows = q.query_map(params![imei, from, to, limit], |r| sql::event_json(r))?;
            rows.collect()
        })
        .await
    }

    /// Every geofence.
    pub(crate) async fn geofences(&self) -> Result<Vec<GeofenceJson>, Error> {
        self.with(move |c| {
            let mut q = c.prepare_cached(sql::GEOFENCES_SQL)?;
            let rows = q.query_map([], |r| sql::geofence_json(r))?;
            Ok(rows
                .collect::<rusqlite::Result<Vec<_>>>()?
                .into_iter()
                .flatten()
                .collect())
        })
        .await
    }
}
