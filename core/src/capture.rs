//! Whole captures explained (feature `capture`): a .pcap or .pcapng file in, the device
//! sessions out — each with its packets decoded, the server's replies interpreted and the
//! problems that break devices listed.
//!
//! Sans-IO like the rest of the crate: [`Analyzer::handle_input`] takes the file's bytes in
//! pieces of any size (a file read in chunks, a browser `Blob` sliced), [`Analyzer::poll_session`]
//! hands out each session as soon as its connection closes, [`Analyzer::finish`] ends the
//! file. Memory is bounded by what is open, not by the file: one capture block
//! ([`file::MAX_BLOCK`]), and per open connection its out-of-order segments
//! ([`reassembly::MAX_PENDING`] per direction), one partial frame per direction
//! ([`session::MAX_STREAM_BUFFER`]) and the bytes of the session's packets until it closes
//! (decoded again for output: [`PacketEntry::decoded`]).
//!
//! Layers, each using the ones before: [`file`] (pcap/pcapng blocks, with `pcap-parser`) →
//! [`link`] (link, IP and transport headers, with `etherparse`) → [`reassembly`] (TCP streams
//! in order, gaps) → [`session`] (decoding, replies, [`problem`]s) → [`report`] (JSON and
//! text).
//!
//! ```
//! use fleetview::capture::Analyzer;
//! let mut a = Analyzer::new(5027);
//! // A pcap header for Ethernet and nothing else: a valid capture without sessions.
//! let mut file = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
//! file.extend_from_slice(&[0; 8]);
//! file.extend_from_slice(&65535u32.to_le_bytes());
//! file.extend_from_slice(&1u32.to_le_bytes());
//! a.handle_input(&file).unwrap();
//! a.finish().unwrap();
//! assert!(a.poll_session().is_none());
//! assert_eq!(a.stats().format, Some("pcap"));
//! ```

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::SocketAddr;

pub mod error;
pub mod file;
pub mod link;
pub mod problem;
pub mod reassembly;
pub mod report;
pub mod session;
mod table;

pub use error::{CaptureError, CaptureErrorKind};
pub use problem::{Problem, ProblemKind};
pub use report::{PacketEntry, Reply, ReplyKind, SessionReport, SessionTransport, TimelineEntry};

use file::CaptureReader;
use link::{Segment, Skip, Transport};
use reassembly::{Piece, Reassembler};
use session::{Sent, SessionAnalyzer};
use table::Table;

/// The default Teltonika server port.
pub const DEFAULT_PORT: u16 = 5027;

/// Counters for the whole file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CaptureStats {
    /// `pcap` or `pcapng`.
    pub format: Option<&'static str>,
    /// Bytes of the file read.
    pub bytes: u64,
    /// Packets in the file.
    pub frames: u64,
    /// Packets that are neither TCP nor UDP.
    pub not_tcp_or_udp: u64,
    /// IP fragments (not reassembled).
    pub fragments: u64,
    /// Packets whose headers do not parse.
    pub malformed: u64,
    /// TCP or UDP packets of conversations that are not Teltonika sessions.
    pub other_traffic: u64,
    /// Sessions found.
    pub sessions: u64,
}

/// A whole capture analyzed at once: its sessions, counters, and whether it was read to its end.
#[derive(Debug)]
pub struct CaptureAnalysis {
    /// The sessions, in the order their connections closed.
    pub sessions: Vec<SessionReport>,
    /// Counters of the file.
    pub stats: CaptureStats,
    /// The error that stopped the file, if any (the sessions before it are kept).
    pub result: Result<(), CaptureError>,
}

/// Analyze a capture given as pieces of any size, in order (a file in memory, its chunks, a
/// browser `Blob`'s slices). For files larger than memory, drive an [`Analyzer`] and print each
/// session as it comes, as `fleetview pcap` does.
///
/// ```
/// // Not a capture: the error says what and where.
/// let a = fleetview::capture::analyze(5027, [&b"hello"[..]]);
/// assert!(a.sessions.is_empty());
/// assert_eq!(a.result.unwrap_err().code(), "not_a_capture");
/// ```
pub fn analyze<'a>(port: u16, pieces: impl IntoIterator<Item = &'a [u8]>) -> CaptureAnalysis {
    let mut a = Analyzer::new(port);
    let mut sessions = Vec::new();
    let mut result = Ok(());
    for piece in pieces {
        result = a.handle_input(piece);
        while let Some(s) = a.poll_session() {
            sessions.push(s);
        }
        if result.is_err() {
            break;
        }
    }
    let end = a.finish();
    if result.is_ok() {
        result = end;
    }
    while let Some(s) = a.poll_session() {
        sessions.push(s);
    }
    CaptureAnalysis {
        sessions,
        stats: a.stats(),
        result,
    }
}

/// Both addresses of a conversation, in a fixed order, and the protocol.
/// Ordered, so that a B-tree holds the conversations (no hash map in the playground's wasm).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    udp: bool,
    a: SocketAddr,
    b: SocketAddr,
}

impl Key {
    fn of(seg: &Segment<'_>) -> (Self, usize) {
        let udp = matches!(seg.transport, Transport::Udp { .. });
        if seg.src <= seg.dst {
            (
                Self {
                    udp,
                    a: seg.src,
                    b: seg.dst,
                },
                0,
            )
        } else {
            (
                Self {
                    udp,
                    a: seg.dst,
                    b: seg.src,
                },
                1,
            )
        }
    }
}

/// A conversation being followed.
struct Flow {
    /// Side (0: `Key::a`, 1: `Key::b`) of the device.
    device: usize,
    /// TCP: reassembly of each side's stream.
    streams: [Reassembler; 2],
    fin: [bool; 2],
    session: SessionAnalyzer,
    last: (u64, u64),
}

/// Not a Teltonika conversation: its packets are counted and skipped.
struct Ignored;

/// The capture analyzer. See the [module documentation](self).
pub struct Analyzer {
    reader: CaptureReader,
    state: State,
}

/// Everything but the file reader, whose buffer the segments borrow.
struct State {
    port: u16,
    flows: Table<Key, Result<Box<Flow>, Ignored>>,
    /// Sessions closed, not polled yet.
    done: Vec<SessionReport>,
    /// Each device's recent frames, by IMEI, to recognize resends across reconnections.
    recent: Table<String, Vec<Sent>>,
    next_id: usize,
    stats: CaptureStats,
    last: (u64, u64),
}

impl Analyzer {
    /// An analyzer for sessions to a server on `port` (devices are also recognized on other
    /// ports by their login or datagram).
    pub fn new(port: u16) -> Self {
        Self {
            reader: CaptureReader::new(),
            state: State {
                port,
                flows: Table::default(),
                done: Vec::new(),
                recent: Table::default(),
                next_id: 0,
                stats: CaptureStats::default(),
                last: (0, 0),
            },
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> CaptureStats {
        let mut s = self.state.stats;
        s.format = self.reader.format_name();
        s.bytes = self.reader.offset();
        s.frames = self.reader.frames();
        s
    }

    /// Connections open now.
    pub fn open_sessions(&self) -> usize {
        self.state.flows.values().filter(|f| f.is_ok()).count()
    }

    /// The next bytes of the file. An error is final (the file cannot be read on); the
    /// sessions found before it can still be polled, and [`Analyzer::finish`] closes them.
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<(), CaptureError> {
        self.reader.push(bytes);
        loop {
            let frame = match self.reader.next_frame()? {
                Some(f) => f,
                None => return Ok(()),
            };
            let state = &mut self.state;
            let (number, time_ns) = (frame.number, frame.time_ns);
            state.last = (time_ns, number);
            match link::parse(frame.link_type, frame.data, frame.orig_len) {
                Ok(seg) => state.segment(&seg, time_ns, number),
                Err(Skip::NotTcpOrUdp) => state.stats.not_tcp_or_udp += 1,
                Err(Skip::Fragment) => state.stats.fragments += 1,
                Err(Skip::Malformed) => state.stats.malformed += 1,
            }
        }
    }

    /// The end of the file: every open session ends here. Returns the error that stopped
    /// the file, if it did not end on a block boundary.
    pub fn finish(&mut self) -> Result<(), CaptureError> {
        let state = &mut self.state;
        let (time_ns, frame) = state.last;
        let mut open: Vec<(Key, Box<Flow>)> = state
            .flows
            .take_all()
            .into_iter()
            .filter_map(|(k, f)| f.ok().map(|f| (k, f)))
            .collect();
        open.sort_unstable_by_key(|(_, f)| f.session_id());
        for (_, flow) in open {
            state.close(flow, time_ns, frame);
        }
        self.reader.finish()
    }

    /// The next session whose connection closed (or all of them after [`Analyzer::finish`]).
    pub fn poll_session(&mut self) -> Option<SessionReport> {
        let done = &mut self.state.done;
        (!done.is_empty()).then(|| done.remove(0))
    }
}

impl State {
    fn segment(&mut self, seg: &Segment<'_>, time_ns: u64, frame: u64) {
        let (key, side) = Key::of(seg);
        let entry = match self.flows.get_mut(&key) {
            Some(e) => e,
            None => {
                let Some(flow) = self.start_flow(seg, side, time_ns) else {
                    // Not (yet) a device conversation: a TCP handshake or a bare ack waits
                    // for its first payload; anything else is other traffic.
                    if !payload_of(seg).is_empty() {
                        self.stats.other_traffic += 1;
                        self.flows.insert(key, Err(Ignored));
                    }
                    return;
                };
                self.flows.insert(key, Ok(Box::new(flow))).0
            }
        };
        let Ok(flow) = entry else {
            self.stats.other_traffic += 1;
            // Forget a conversation that is not a device's once it closes.
            if matches!(
                seg.transport,
                Transport::Tcp { fin: true, .. } | Transport::Tcp { rst: true, .. }
            ) {
                self.flows.remove(&key);
            }
            return;
        };
        flow.last = (time_ns, frame);
        let closed = flow.handle(seg, side, time_ns, frame, &mut self.recent);
        if closed {
            if let Some(Ok(flow)) = self.flows.remove(&key) {
                self.close(flow, time_ns, frame);
            }
        }
    }

    /// A flow starts with a SYN or the first payload: the device is the side that is not on
    /// the server port, or else the side whose first bytes are a login, a frame or a UDP
    /// channel datagram.
    fn start_flow(&mut self, seg: &Segment<'_>, side: usize, time_ns: u64) -> Option<Flow> {
        let payload = payload_of(seg);
        let udp = matches!(seg.transport, Transport::Udp { .. });
        if let Transport::Tcp { syn, .. } = seg.transport {
            // A connection starts with its SYN (or, captured mid-way, its first payload); a
            // bare ACK, FIN or RST after a connection closed starts nothing.
            if !syn && payload.is_empty() {
                return None;
            }
        }
        let src_is_server = seg.src.port() == self.port;
        let dst_is_server = seg.dst.port() == self.port;
        let device_is_src = if dst_is_server && !src_is_server {
            true
        } else if src_is_server && !dst_is_server {
            false
        } else if payload.is_empty() {
            return None;
        } else if udp {
            if !crate::udp::looks_like_datagram(payload, true) {
                return None;
            }
            true
        } else if looks_like_device(payload) {
            true
        } else {
            return None;
        };
        let device = if device_is_src { side } else { 1 - side };
        let (dev_addr, srv_addr) = if device_is_src {
            (seg.src, seg.dst)
        } else {
            (seg.dst, seg.src)
        };
        self.next_id += 1;
        self.stats.sessions += 1;
        let transport = if udp {
            SessionTransport::Udp
        } else {
            SessionTransport::Tcp
        };
        Some(Flow {
            device,
            streams: [Reassembler::new(), Reassembler::new()],
            fin: [false; 2],
            session: SessionAnalyzer::new(self.next_id, transport, dev_addr, srv_addr, time_ns),
            last: (time_ns, 0),
        })
    }

    fn close(&mut self, mut flow: Box<Flow>, time_ns: u64, frame: u64) {
        let (t, f) = if flow.last.1 > 0 {
            flow.last
        } else {
            (time_ns, frame)
        };
        flow.end_streams(t, f);
        let (report, recent) = flow.session.finish(t, f);
        if let Some(imei) = &report.imei {
            self.recent.insert(imei.clone(), recent);
        }
        self.done.push(report);
    }
}

impl Flow {
    fn session_id(&self) -> usize {
        self.session.id()
    }

    /// One segment of this conversation; returns whether the connection is now closed.
    fn handle(
        &mut self,
        seg: &Segment<'_>,
        side: usize,
        time_ns: u64,
        frame: u64,
        recent: &mut Table<String, Vec<Sent>>,
    ) -> bool {
        let from_device = side == self.device;
        let had_imei = self.session.imei().is_some();
        let mut closed = false;
        match seg.transport {
            Transport::Udp { payload, missing } => {
                if from_device {
                    self.session
                        .device_datagram(payload, missing, time_ns, frame);
                } else {
                    self.session.server_datagram(payload, time_ns, frame);
                }
            }
            Transport::Tcp {
                seq,
                ack,
                syn,
                fin,
                rst,
                payload,
                missing,
            } => {
                let session = &mut self.session;
                if let Some(ack) = ack {
                    // The acknowledgment is about the other side's stream.
                    let mut out = |p: Piece<'_>| deliver(session, !from_device, p);
                    self.streams[1 - side].acknowledged(ack, time_ns, frame, &mut out);
                }
                let mut out = |p: Piece<'_>| deliver(session, from_device, p);
                self.streams[side]
                    .segment(seq, syn, fin, payload, missing, time_ns, frame, &mut out);
                self.session.touch(time_ns);
                if fin {
                    self.fin[side] = true;
                }
                closed = rst || self.fin == [true, true];
            }
        }
        if !had_imei {
            if let Some(earlier) = self.session.imei().and_then(|i| recent.get(i)) {
                self.session.remember(earlier);
            }
        }
        closed
    }

    /// Flush both TCP streams into the session.
    fn end_streams(&mut self, time_ns: u64, frame: u64) {
        for side in 0..2 {
            let from_device = side == self.device;
            let session = &mut self.session;
            let mut out = |p: Piece<'_>| deliver(session, from_device, p);
            self.streams[side].finish(time_ns, frame, &mut out);
            let stats = self.streams[side].stats();
            self.session
                .add_stats(stats.retransmitted, stats.out_of_order);
        }
    }
}

fn deliver(session: &mut SessionAnalyzer, from_device: bool, piece: Piece<'_>) {
    match (piece, from_device) {
        (
            Piece::Data {
                offset,
                bytes,
                time_ns,
                frame,
            },
            true,
        ) => session.device_data(offset, bytes, time_ns, frame),
        (
            Piece::Data {
                offset,
                bytes,
                time_ns,
                frame,
            },
            false,
        ) => session.server_data(offset, bytes, time_ns, frame),
        (
            Piece::Gap {
                offset,
                len,
                time_ns,
                frame,
            },
            true,
        ) => session.device_gap(offset, len, time_ns, frame),
        (
            Piece::Gap {
                offset,
                len,
                time_ns,
                frame,
            },
            false,
        ) => session.server_gap(offset, len, time_ns, frame),
    }
}

fn payload_of<'a>(seg: &Segment<'a>) -> &'a [u8] {
    match seg.transport {
        Transport::Tcp { payload, .. } | Transport::Udp { payload, .. } => payload,
    }
}

/// Whether a TCP payload starts like a device's: a login (length 15, digits) or a data frame.
fn looks_like_device(payload: &[u8]) -> bool {
    let login = payload.len() >= 17
        && payload[..2] == [0x00, 0x0F]
        && payload[2..17].iter().all(u8::is_ascii_digit);
    let frame = payload.len() >= 9
        && payload[..4] == [0, 0, 0, 0]
        && crate::codec::Codec::from_id(payload[8]).is_some();
    login || frame
}
