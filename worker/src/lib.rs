//! Fleetview edge relay: a Cloudflare Worker that takes Teltonika UDP-channel datagrams over
//! HTTP, stores their records in D1 and answers with the ack the device expects.
//!
//! Devices speak UDP, Workers speak HTTP: `fleetview relay` (the native binary) listens on the
//! UDP port, POSTs each datagram to `/udp` here and sends the returned 7-byte ack back to the
//! device. Routes (core/docs/http-api.md, "The edge Worker"):
//!
//! | route | answer |
//! |---|---|
//! | `POST /udp` (raw datagram) | `200` the ack bytes; `400` error JSON; `401` bad token; `403` IMEI not allowed; `413` over 65,535 bytes; `503` no `RELAY_TOKEN` |
//! | `POST /decode` (hex or binary) | `200` the JSON model; `400` error JSON; `413` over 256 KiB, 1,000 packets or 2,000 records |
//! | `GET /devices/{imei}/positions?since=&limit=` | `200` GeoJSON FeatureCollection; `401`; `503` no `RELAY_TOKEN` |
//! | `GET /health` | `200 {"status":"ok",...}` |
//!
//! Every protocol byte goes through the `fleetview` core crate. The modules below are plain Rust
//! (routing, the ingest plan with its dedup keys, request bodies and queries, GeoJSON) and build
//! natively too, so they are unit-tested with `cargo test -p fleetview-worker`; only `edge`
//! touches the Workers runtime and D1, and it is tested in workerd through Miniflare
//! (`worker/test/`).

pub mod auth;
pub mod bounds;
pub mod geojson;
pub mod ingest;
pub mod input;
pub mod problem;
pub mod route;

#[cfg(target_arch = "wasm32")]
mod edge;
