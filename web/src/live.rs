//! The live view's client side of the `fleetview serve` HTTP API (shapes in core/docs/http-api.md):
//! [`api`] reads and writes the API, [`state`] is the live view's reducer.

pub mod api;
pub mod state;
