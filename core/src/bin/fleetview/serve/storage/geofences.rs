//! Geofences are created and deleted by the writer, in its transactions: the geofence events
//! it computes for a group of records and the geofences they are computed against are always
//! those of one committed state.

use fleetview::api::EventJson;

use super::outbox::OutboxEvent;
use super::{Error, Op, Outcome, Store};

/// Geofence events as the forwarders get them (the API's event object, `type` and `imei`
/// included).
pub(super) fn outbox_events(events: &[EventJson]) -> Vec<OutboxEvent> {
    events
        .iter()
        .map(|e| OutboxEvent::new(&e.imei, e.kind.as_str(), e))
        .collect()
}

impl Store {
    /// Create a geofence (`geometry`: the JSON of core's `GeofenceGeometry`, validated); its id.
    pub(crate) async fn create_geofence(
        &self,
        name: String,
        geometry: String,
    ) -> Result<i64, Error> {
        match self.run(Op::CreateGeofence { name, geometry }).await? {
            Outcome::Id(id) => Ok(id),
            _ => Err(Error::Task(
                "create geofence answered with another outcome".into(),
            )),
        }
    }

    /// Delete a geofence and its events; whether it existed.
    pub(crate) async fn delete_geofence(&self, id: i64) -> Result<bool, Error> {
        match self.run(Op::DeleteGeofence { id }).await? {
            Outcome::Deleted(found) => Ok(found),
            _ => Err(Error::Task(
                "delete geofence answered with another outcome".into(),
            )),
        }
    }
}
