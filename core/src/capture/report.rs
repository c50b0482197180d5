//! A device session as found in a capture — its packets, the server's replies and the problems
//! — and its two renderings: the JSON (`fleetview pcap`, docs/json-model.md) and a text
//! timeline (`--format text`).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::net::SocketAddr;

use serde::{Serialize, Serializer};

use super::problem::Problem;
use crate::error::DecodeError;
use crate::json::{ItemJson, JsonOptions};
use crate::options::DecodeOptions;
use crate::packet::{Content, Packet};

/// How the session travelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionTransport {
    /// One TCP connection.
    Tcp,
    /// The UDP datagrams between one device address and the server.
    Udp,
}

/// A device packet of a session. Only its bytes are kept: the decoded packet is made again
/// when asked for ([`PacketEntry::decoded`]), so that an open session holds its bytes, not
/// their decoded records (several times larger).
#[derive(Clone, Debug, PartialEq)]
pub struct PacketEntry {
    /// Capture time of the packet that completed it, nanoseconds since 1970.
    pub time_ns: u64,
    /// Its packet number in the file.
    pub frame: u64,
    /// Offset of its first byte in the device's stream (TCP), 0 for UDP.
    pub stream_offset: u64,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// A TCP frame (login, keep-alive, data or command frame) or a UDP datagram.
    pub transport: SessionTransport,
    /// Why strict decoding refused it (a server would too); it is then decoded leniently.
    pub error: Option<DecodeError>,
    /// Why even lenient decoding failed, if it did.
    pub undecodable: Option<DecodeError>,
}

impl PacketEntry {
    /// The decoded packet (leniently when `error` is set), or the error when it cannot be
    /// decoded at all.
    pub fn decoded(&self) -> Result<Packet, DecodeError> {
        if let Some(e) = &self.undecodable {
            return Err(e.clone());
        }
        let opts = if self.error.is_some() {
            DecodeOptions::lenient()
        } else {
            DecodeOptions::default()
        };
        decode_entry(&self.bytes, self.transport, &opts)
    }
}

/// Decode one device packet of a session: a TCP frame or a UDP datagram.
pub(crate) fn decode_entry(
    bytes: &[u8],
    transport: SessionTransport,
    opts: &DecodeOptions,
) -> Result<Packet, DecodeError> {
    match transport {
        SessionTransport::Udp => crate::udp::decode_datagram(bytes, opts).map(Packet::from),
        SessionTransport::Tcp => match crate::packet::decode_frame(bytes, opts)? {
            crate::frame::Status::Complete(p, _) => Ok(p),
            crate::frame::Status::Partial { needed } => Err(DecodeError::at(
                bytes.len(),
                crate::error::ErrorKind::UnexpectedEnd {
                    needed: bytes.len() + needed,
                    available: bytes.len(),
                },
            )),
        },
    }
}

/// What a reply of the server is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyKind {
    /// `01` to a login.
    ImeiAccepted,
    /// `00` to a login.
    ImeiRejected,
    /// The 4-byte record count after a TCP data frame.
    Ack,
    /// The 7-byte UDP channel ack.
    UdpAck,
    /// A Codec 12/13/14 command frame.
    Command,
    /// Anything else.
    Unknown,
}

/// A reply of the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reply {
    /// Capture time (ISO 8601 UTC, microseconds).
    #[serde(rename = "time", serialize_with = "iso_time")]
    pub time_ns: u64,
    /// Its packet number in the file.
    pub frame: u64,
    /// The bytes.
    #[serde(serialize_with = "hex_bytes")]
    pub hex: Vec<u8>,
    /// What it means for the device.
    pub meaning: String,
    /// What it is.
    pub kind: ReplyKind,
    /// Index in `packets` of the device packet it answers (login, data frame).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answers: Option<usize>,
    /// Commands: index in `packets` of the device's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<usize>,
}

/// Per-session counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SessionStats {
    /// Bytes the device sent (in order, as delivered).
    pub device_bytes: u64,
    /// Bytes the server sent.
    pub server_bytes: u64,
    /// Segments received again (TCP retransmissions).
    pub retransmitted: u64,
    /// Segments that arrived ahead of a hole.
    pub out_of_order: u64,
    /// Bytes missing from the capture.
    pub missing_bytes: u64,
}

/// A device session.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionReport {
    /// Order of the session's first packet among all sessions, from 1.
    pub id: usize,
    /// TCP or UDP.
    pub transport: SessionTransport,
    /// The device's address.
    pub device: SocketAddr,
    /// The server's address.
    pub server: SocketAddr,
    /// The IMEI the device logged in with (TCP) or sent in its datagrams (UDP).
    pub imei: Option<String>,
    /// Time of the first and the last packet, nanoseconds since 1970.
    pub start_ns: u64,
    /// See `start_ns`.
    pub end_ns: u64,
    /// The device's packets.
    pub packets: Vec<PacketEntry>,
    /// The server's replies.
    pub replies: Vec<Reply>,
    /// What went wrong.
    pub problems: Vec<Problem>,
    /// Counters.
    pub stats: SessionStats,
}

/// A session in the JSON model.
#[derive(Clone, Debug, Serialize)]
pub struct SessionJson<'a> {
    /// Order of the session's first packet, from 1.
    pub id: usize,
    /// `tcp` or `udp`.
    pub transport: SessionTransport,
    /// `IP:PORT` (IPv6 as `[IP]:PORT`).
    pub device: String,
    /// `IP:PORT`.
    pub server: String,
    /// The IMEI, when seen.
    pub imei: Option<&'a str>,
    /// First packet's time.
    pub start: String,
    /// Last packet's time.
    pub end: String,
    /// The device's packets: the JSON model plus `time`, `frame`, `stream_offset`, `hex`.
    pub packets: PacketsJson<'a>,
    /// The server's replies.
    pub replies: &'a [Reply],
    /// The problems' messages.
    pub problems: Vec<&'a str>,
    /// The problems with their kind, time, packet number and the packet they are about.
    pub problem_details: &'a [Problem],
    /// Counters.
    pub stats: SessionStats,
}

/// The device packets of a session in the JSON model, each made as it is written (a session's
/// JSON is never all in memory at once).
#[derive(Clone, Debug)]
pub struct PacketsJson<'a> {
    packets: &'a [PacketEntry],
    opts: JsonOptions,
}

impl PacketsJson<'_> {
    /// The JSON of every packet.
    pub fn iter(&self) -> impl Iterator<Item = PacketEntryJson> + '_ {
        self.packets.iter().map(|p| p.to_json(&self.opts))
    }
}

impl Serialize for PacketsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl PacketEntry {
    /// The packet in the JSON model, with its capture time, packet number, offset and bytes.
    pub fn to_json(&self, opts: &JsonOptions) -> PacketEntryJson {
        PacketEntryJson {
            time: iso8601_us(self.time_ns),
            frame: self.frame,
            stream_offset: self.stream_offset,
            hex: crate::hex::encode(&self.bytes),
            item: ItemJson::new(&self.decoded(), opts),
            strict_error: self
                .error
                .as_ref()
                .map(|e| crate::json::ErrorJson::from(e).error),
        }
    }
}

/// A device packet in the JSON model.
#[derive(Clone, Debug, Serialize)]
pub struct PacketEntryJson {
    /// Capture time (ISO 8601 UTC, microseconds).
    pub time: String,
    /// Packet number in the file.
    pub frame: u64,
    /// Offset of the first byte in the device's stream.
    pub stream_offset: u64,
    /// The bytes.
    pub hex: String,
    /// The JSON model of the packet, or `{"error":…}`.
    #[serde(flatten)]
    pub item: ItemJson,
    /// Why strict decoding refused it, when it decoded only leniently.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strict_error: Option<crate::json::ErrorBody>,
}

impl SessionReport {
    /// The JSON view.
    pub fn to_json(&self, opts: &JsonOptions) -> SessionJson<'_> {
        SessionJson {
            id: self.id,
            transport: self.transport,
            device: self.device.to_string(),
            server: self.server.to_string(),
            imei: self.imei.as_deref(),
            start: iso8601_us(self.start_ns),
            end: iso8601_us(self.end_ns),
            packets: PacketsJson {
                packets: &self.packets,
                opts: opts.clone(),
            },
            replies: &self.replies,
            problems: self.problems.iter().map(|p| p.message.as_str()).collect(),
            problem_details: &self.problems,
            stats: self.stats,
        }
    }

    /// The session as a readable timeline: a header line, then the device's packets, the
    /// server's replies and the problems in time order.
    pub fn write_text(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "session {}: {} device {} → server {}, IMEI {}, {} – {}: {} packets, {} replies, {} problems",
            self.id,
            match self.transport {
                SessionTransport::Tcp => "TCP",
                SessionTransport::Udp => "UDP",
            },
            self.device,
            self.server,
            self.imei.as_deref().unwrap_or("unknown"),
            iso8601_us(self.start_ns),
            iso8601_us(self.end_ns),
            self.packets.len(),
            self.replies.len(),
            self.problems.len()
        );
        for entry in self.timeline() {
            let (time, frame, line) = match entry {
                TimelineEntry::Device(i) => {
                    let p = &self.packets[i];
                    (
                        p.time_ns,
                        p.frame,
                        alloc::format!("device  [{i}] {}", p.summary()),
                    )
                }
                TimelineEntry::Server(i) => {
                    let r = &self.replies[i];
                    let mut line =
                        alloc::format!("server  {}  {}", crate::hex::encode(&r.hex), r.meaning);
                    if let Some(a) = r.answered_by {
                        let _ = write!(line, " (answered by [{a}])");
                    }
                    (r.time_ns, r.frame, line)
                }
                TimelineEntry::Problem(i) => {
                    let p = &self.problems[i];
                    (
                        p.time,
                        p.frame,
                        alloc::format!("PROBLEM {}: {}", p.kind.code(), p.message),
                    )
                }
            };
            let t = iso8601_us(time);
            let _ = writeln!(out, "  {}  #{frame:<6} {line}", &t[11..]);
        }
    }

    /// The device's packets, the server's replies and the problems, merged in capture order
    /// (time, then packet number; at the same packet: device, server, problem).
    pub fn timeline(&self) -> Vec<TimelineEntry> {
        // Each list is in capture order already: merge them (no sort needed).
        let key = |e: TimelineEntry| match e {
            TimelineEntry::Device(i) => (self.packets[i].time_ns, self.packets[i].frame, 0),
            TimelineEntry::Server(i) => (self.replies[i].time_ns, self.replies[i].frame, 1),
            TimelineEntry::Problem(i) => (self.problems[i].time, self.problems[i].frame, 2),
        };
        let lens = [self.packets.len(), self.replies.len(), self.problems.len()];
        let mut next = [0usize; 3];
        let mut out = Vec::with_capacity(lens.iter().sum());
        loop {
            let candidates = [
                (next[0] < lens[0]).then(|| TimelineEntry::Device(next[0])),
                (next[1] < lens[1]).then(|| TimelineEntry::Server(next[1])),
                (next[2] < lens[2]).then(|| TimelineEntry::Problem(next[2])),
            ];
            let Some((list, entry)) = candidates
                .iter()
                .enumerate()
                .filter_map(|(l, e)| e.map(|e| (l, e)))
                .min_by_key(|&(_, e)| key(e))
            else {
                return out;
            };
            next[list] += 1;
            out.push(entry);
        }
    }
}

/// One line of a session's timeline: an index into its packets, replies or problems.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimelineEntry {
    /// `packets[i]`.
    Device(usize),
    /// `replies[i]`.
    Server(usize),
    /// `problems[i]`.
    Problem(usize),
}

impl PacketEntry {
    /// One line about the packet: `login IMEI …`, `AVL Codec 8E, 4 records (…), 299 bytes`,
    /// `Codec 12 0x06 response "…"`, and why a strict decoder refuses it.
    pub fn summary(&self) -> String {
        describe(self)
    }
}

/// One line about a device packet.
fn describe(p: &PacketEntry) -> String {
    let mut s = match &p.decoded() {
        Err(e) => alloc::format!("undecodable {} bytes: {e}", p.bytes.len()),
        Ok(packet) => match &packet.content {
            Content::Imei(i) => alloc::format!("login IMEI {}", i.as_str()),
            Content::KeepAlive => String::from("keep-alive"),
            Content::Avl(d) => {
                let mut s = alloc::format!(
                    "AVL Codec {}, {} record{}",
                    d.codec.name(),
                    d.records.len(),
                    if d.records.len() == 1 { "" } else { "s" }
                );
                if let (Some(first), Some(last)) = (d.records.first(), d.records.last()) {
                    let _ = write!(
                        s,
                        " ({} … {})",
                        crate::time::iso8601(first.timestamp_ms),
                        crate::time::iso8601(last.timestamp_ms)
                    );
                }
                let _ = write!(s, ", {} bytes", p.bytes.len());
                s
            }
            Content::Command(c) => {
                let mut s = alloc::format!("Codec {}", c.codec.name());
                for m in &c.messages {
                    let _ = write!(s, " {}", m.message_type());
                    match m.text() {
                        Some(t) => {
                            let _ = write!(s, " {t:?}");
                        }
                        None => {
                            let _ = write!(s, " {}", crate::hex::encode(&m.payload));
                        }
                    }
                }
                s
            }
        },
    };
    if let Some(e) = &p.error {
        let _ = write!(s, " [refused strictly: {e}]");
    }
    s
}

/// `2026-12-02T19:01:07.123456Z` for nanoseconds since 1970.
pub fn iso8601_us(ns: u64) -> String {
    let mut s = crate::time::iso8601(ns / 1_000_000);
    s.pop();
    let _ = write!(s, "{:03}Z", ns / 1000 % 1000);
    s
}

pub(crate) fn iso_time<S: Serializer>(ns: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&iso8601_us(*ns))
}

fn hex_bytes<S: Serializer, B: AsRef<[u8]>>(b: &B, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::hex::encode(b.as_ref()))
}
