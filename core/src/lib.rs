//! Fleetview: the Teltonika tracker protocols, decoded and encoded.
//!
//! This crate is a fully deterministic implementation of the protocol logic: it contains no
//! networking code, no threads and does not read the clock. Bytes go in, packets, events and the
//! bytes to answer come out; the npm package, the playground, the edge relay and the native
//! listener are thin shells around it.
//!
//! - One-shot decoding with auto-detection: [`decode`] (IMEI login, TCP frames, UDP datagram,
//!   bare AVL data array, keep-alive), [`decode_frame`] for one TCP unit, [`udp::decode_datagram`].
//! - Streaming: [`Session`] runs the TCP handshake and hands out records and command responses;
//!   the application decides what to accept and when to ack.
//! - Codecs 7 (GH3000), 8, 8 Extended, 16 (AVL data) and 12, 13, 14, 15 (commands), decode and
//!   encode ([`encode`]).
//! - Strict by default; [`DecodeOptions::lenient`] decodes the inconsistent frames that real
//!   devices and published examples contain and reports each problem as a [`Warning`].
//! - Errors say what, where (byte offset) and why: [`DecodeError`].
//! - The IO catalogue ([`io_catalog`]) names and scales IO values per device model; the
//!   [`json`] module (feature `serde`) renders the project's JSON model.
//!
//! ```
//! use fleetview::{decode, DecodeOptions};
//! let hex = "000000000000003608010000016B40D8EA30010000000000000000000000000000000105021503010101425E0F01F10000601A014E0000000000000000010000C7CF";
//! let packets = decode(&fleetview::hex::decode(hex).unwrap(), &DecodeOptions::default()).unwrap();
//! let record = &packets[0].records()[0];
//! assert_eq!(record.timestamp_ms, 1_560_161_086_000);
//! assert_eq!(record.io(66).and_then(|v| v.raw()), Some(0x5E0F));
//! assert_eq!(packets[0].ack().unwrap(), [0, 0, 0, 1]);
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

// Layers, each using only the ones above it in this list (checked by `core/tools/layers.py`):
// 1. options, reader, errors and the small vocabularies (codec ids, CRC, hex, time, IMEI, IO
//    catalogue, composite IO values);
// 2. the codecs: the record model (`avl`), the Codec 8 family layout, Codec 8/8E/16, Codec 7,
//    the command codecs;
// 3. data dispatch (`data`: what a data field holds, by codec id);
// 4. transports: TCP framing (`frame`), UDP datagrams (`udp`), the encoders over them, the
//    borrowed view;
// 5. packets (auto-detection) and the TCP session;
// 6. the JSON model, exports and byte explanations;
// 7. the npm package's exports (`wasm`).
pub mod codec;
pub mod composite;
pub mod crc;
pub mod error;
pub mod field;
pub mod hex;
pub mod imei;
pub mod io_catalog;
pub mod options;
mod reader;
pub mod time;

pub mod avl;
pub mod codec7;
mod codec8;
pub mod command;
mod layout;

pub mod data;
pub mod identity;

pub mod encode;
pub mod frame;
pub mod udp;
pub mod view;

pub mod packet;
pub mod session;

pub mod explain;

pub mod export;
#[cfg(feature = "serde")]
pub mod json;
// The HTTP API's shapes (feature `serde`): stored records, devices, live events.
#[cfg(feature = "serde")]
pub mod api;

// Whole captures (feature `capture`): above the JSON model, which its reports use.
#[cfg(feature = "capture")]
pub mod capture;

#[cfg(feature = "wasm")]
pub mod wasm;

pub use avl::{AvlRecord, GenerationType, GpsElement, IoElement, IoValue, Priority};
pub use codec::Codec;
pub use command::{CommandMessage, CommandPacket, MessageType};
pub use crc::crc16;
pub use data::{AvlData, Content};
pub use error::{DecodeError, EncodeError, ErrorKind, Warning, WarningKind};
pub use field::{Field, SpanKind};
pub use frame::{CrcCheck, Status};
pub use imei::Imei;
pub use options::DecodeOptions;
pub use packet::{
    annotate, decode, decode_bare, decode_each, decode_frame, tcp_ack, Packet, PacketKind,
    Transport, TransportKind,
};
pub use reader::Span;
pub use session::{Event, Session};
pub use udp::{Datagram, UdpHeader};

/// The README's Rust examples, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
