//! What follows a commit, once the device has its ack: the live `records` event (only when
//! someone listens) and fuel monitoring (always: fuel events are logged too).
//!
//! Fuel events come from each device's live state in the [`super::hub::Hub`], updated with the
//! readings of every stored batch; the device's stored series is read only to seed that state
//! (its first batch with fuel since the server started, or readings out of order).

use std::sync::Arc;

use fleetview::api::{FuelDetected, FuelReading, PositionJson, RecordsEvent};
use fleetview::json::RecordJson;
use tracing::{info, warn};

use super::fuel::{self, FuelEvent, Point};
use super::storage::outbox::OutboxEvent;
use super::storage::{Batch, RecordRow};
use super::Ctx;

/// How far back from the new readings the stored series is read to seed the live state.
const FUEL_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// Announce the records just committed (`ids`: the new row id of each, `None` for one stored
/// before), the geofence events committed with them, and the fuel events they complete. Called
/// after the ack.
pub(crate) async fn after_commit(ctx: &Arc<Ctx>, batch: &Batch, ids: &[Option<i64>]) {
    let new = || {
        batch
            .rows
            .iter()
            .zip(ids)
            .filter_map(|(row, id)| id.map(|id| (id, row)))
    };
    if ctx.hub.watched() {
        let model = ctx.model.as_deref();
        let records: Vec<_> = new()
            .map(|(id, row)| record(id, row, batch, model))
            .collect();
        if !records.is_empty() {
            ctx.hub.publish(
                "records",
                &RecordsEvent {
                    imei: batch.imei.to_string(),
                    records,
                },
            );
        }
    }
    // After the records they come from.
    super::reports::live::announce(&ctx.hub, batch);
    let readings: Vec<(u16, Point)> = new()
        .filter_map(|(_, row)| {
            let f = row.fuel.as_ref()?;
            let gps = &row.record.gps;
            Some((
                f.id,
                Point {
                    timestamp_ms: row.record.timestamp_ms as i64,
                    level: f.level,
                    stationary: fuel::stationary(gps.speed, row.ignition, row.movement),
                    latitude: gps.latitude_deg(),
                    longitude: gps.longitude_deg(),
                },
            ))
        })
        .collect();
    let Some(since) = readings.iter().map(|r| r.1.timestamp_ms).min() else {
        return;
    };
    let events = match ctx.hub.fuel_push(&batch.imei, readings, ctx.fuel_threshold) {
        Some(events) => events,
        None => seed_fuel(ctx, &batch.imei, since).await,
    };
    // Found after the commit of their records (they need the device's stored series): to the
    // outbox in a transaction of their own.
    let outbox = events
        .iter()
        .map(|e| OutboxEvent::new(&batch.imei, e.kind.as_str(), e))
        .collect();
    if let Err(e) = ctx.store.events(outbox).await {
        warn!(imei = %batch.imei, "fuel events not written to the outbox: {e}");
    }
    for e in &events {
        info!(imei = %batch.imei, kind = e.kind.as_str(), change = e.change, "fuel event");
        ctx.hub.publish(
            "fuel",
            &FuelDetected {
                imei: batch.imei.to_string(),
                event: e.clone(),
            },
        );
    }
}

fn record(
    id: i64,
    row: &RecordRow,
    batch: &Batch,
    model: Option<&str>,
) -> PositionJson<Vec<fleetview::json::IoJson>> {
    PositionJson {
        id,
        record: RecordJson::new(&row.record, model),
        codec: batch.codec.into(),
        transport: batch.transport.into(),
        received_ms: batch.received_ms,
        fuel: row.fuel.as_ref().map(|f| FuelReading {
            io_id: f.id,
            value: f.level,
            unit: f.unit.map(Into::into),
        }),
    }
}

/// Read the device's stored series (from a day before `since`, its earliest new reading), seed
/// its live state, and return the events to announce.
async fn seed_fuel(ctx: &Arc<Ctx>, imei: &str, since: i64) -> Vec<FuelEvent> {
    let readings = ctx
        .reader
        .fuel_points(
            imei.to_string(),
            since.saturating_sub(FUEL_WINDOW_MS),
            i64::MAX,
        )
        .await;
    let readings = match readings {
        Ok(r) => r,
        Err(e) => {
            warn!(imei = %imei, "fuel check: {e}");
            return Vec::new();
        }
    };
    let (sensor, _, points) = fuel::series(readings);
    let events = fuel::detect(&points, ctx.fuel_threshold);
    let fresh = ctx.hub.fuel_seed(imei, sensor, &points, &events, since);
    fresh.into_iter().map(|i| events[i].clone()).collect()
}
