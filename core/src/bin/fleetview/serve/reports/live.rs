//! Geofence events after the commit that stored them: logged, and announced as the live
//! `geofence` event.

use tracing::info;

use crate::serve::hub::Hub;
use crate::serve::storage::Batch;

/// Announce the geofence events a batch's commit stored.
pub(crate) fn announce(hub: &Hub, batch: &Batch) {
    for e in &batch.geofence_events {
        info!(
            imei = %batch.imei,
            kind = e.kind.as_str(),
            geofence = e.geofence_id.unwrap_or_default(),
            timestamp_ms = e.timestamp_ms,
            "geofence event"
        );
        hub.publish("geofence", e);
    }
}
