//! Fleetview playground and live view: paste a Teltonika packet and see every byte explained,
//! its records in a table and on a map; open a capture (.pcap/.pcapng) and see its device
//! sessions and what went wrong; or, served by `fleetview serve`, watch devices live.
//!
//! Every byte of protocol goes through the `fleetview` core crate (decode, annotate, encode, the
//! IO catalogue, the JSON model); this crate only arranges views. State lives in reducers
//! ([`state`] for the playground, [`live::state`] for the live view); each view is a component
//! in [`components`]. The pure parts ([`analysis`], [`state`], [`examples`], [`live`]) are
//! unit-tested natively with `cargo test -p fleetview-web`.

pub mod analysis;
pub mod app;
pub mod capture;
pub mod components;
pub mod examples;
pub mod js;
pub mod live;
pub mod state;
pub mod url;
