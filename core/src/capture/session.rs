//! One device session read from both sides: the device's bytes decoded with the crate's own
//! decoders (the same auto-detection as `fleetview decode`), the server's bytes interpreted
//! against what the device sent (login answer, ack counts, commands), and the problems found
//! on the way. TCP streams come in order from reassembly, with gaps; UDP as datagrams.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::net::SocketAddr;

use super::problem::{Problem, ProblemKind};
use super::report::{
    decode_entry, PacketEntry, Reply, ReplyKind, SessionReport, SessionStats, SessionTransport,
};
use crate::codec::Codec;
use crate::data::Content;
use crate::error::DecodeError;
use crate::frame::{Status, FRAME_OVERHEAD};
use crate::identity::RecordKey;
use crate::options::DecodeOptions;
use crate::packet::{decode_frame, Packet};

/// Bytes of one direction buffered without a complete frame before they are given up as
/// unrecognizable: one frame of the largest size the decoder accepts, plus its overhead.
pub const MAX_STREAM_BUFFER: usize = 65_536 + FRAME_OVERHEAD;

/// How many of a device's recent frames are remembered to recognize a resend.
pub const RECENT_FRAMES: usize = 32;

/// A device frame remembered to recognize a resend: its hash, packet number and time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    key: RecordKey,
    frame: u64,
    time_ns: u64,
}

/// A data frame or datagram waiting for its ack.
#[derive(Clone, Copy, Debug)]
struct Awaiting {
    packet: usize,
    records: usize,
    frame: u64,
    /// UDP: the channel packet id and AVL packet id the ack must echo.
    udp_ids: Option<(u16, u8)>,
}

/// One direction's bytes not decoded yet.
#[derive(Debug, Default)]
struct Pending {
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    base: u64,
    time_ns: u64,
    frame: u64,
    /// After a gap or unrecognized bytes: look for the next frame or login.
    resync: bool,
}

impl Pending {
    /// Bytes at `offset` of the stream, from the packet `frame` captured at `time_ns`.
    fn push(&mut self, offset: u64, bytes: &[u8], time_ns: u64, frame: u64) {
        if self.buf.is_empty() {
            self.base = offset;
        }
        self.buf.extend_from_slice(bytes);
        self.time_ns = time_ns;
        self.frame = frame;
    }
}

/// A session under analysis. Feed it with [`SessionAnalyzer::device_data`],
/// [`SessionAnalyzer::server_data`] (TCP, in stream order), [`SessionAnalyzer::device_gap`]
/// and [`SessionAnalyzer::server_gap`], or the `*_datagram` methods (UDP); then
/// [`SessionAnalyzer::finish`].
#[derive(Debug)]
pub struct SessionAnalyzer {
    report: SessionReport,
    strict: DecodeOptions,
    lenient: DecodeOptions,
    dev: Pending,
    srv: Pending,
    awaiting: Vec<Awaiting>,
    /// A login waiting for its answer: its packet index.
    login_pending: Option<usize>,
    /// Commands waiting for the device's answer: reply indexes.
    commands: Vec<usize>,
    /// The device's last packet was a command codec message (no ack may follow).
    after_command: Option<usize>,
    recent: Vec<Sent>,
    /// Device bytes went missing since the last frame: an ack with no frame waiting may be
    /// for a frame the capture lost.
    lost_frame: bool,
}

impl SessionAnalyzer {
    /// A session between `device` and `server` whose first packet is at `time_ns`.
    pub fn new(
        id: usize,
        transport: SessionTransport,
        device: SocketAddr,
        server: SocketAddr,
        time_ns: u64,
    ) -> Self {
        Self {
            report: SessionReport {
                id,
                transport,
                device,
                server,
                imei: None,
                start_ns: time_ns,
                end_ns: time_ns,
                packets: Vec::new(),
                replies: Vec::new(),
                problems: Vec::new(),
                stats: SessionStats::default(),
            },
            strict: DecodeOptions::default(),
            lenient: DecodeOptions::lenient(),
            dev: Pending::default(),
            srv: Pending::default(),
            awaiting: Vec::new(),
            login_pending: None,
            commands: Vec::new(),
            after_command: None,
            recent: Vec::new(),
            lost_frame: false,
        }
    }

    /// The session's number (order of its first packet).
    pub fn id(&self) -> usize {
        self.report.id
    }

    /// The IMEI, once seen.
    pub fn imei(&self) -> Option<&str> {
        self.report.imei.as_deref()
    }

    /// Frames this device sent in earlier sessions, to recognize resends across reconnections.
    pub fn remember(&mut self, earlier: &[Sent]) {
        let mut merged: Vec<Sent> = earlier.to_vec();
        merged.extend(self.recent.iter().copied());
        let extra = merged.len().saturating_sub(RECENT_FRAMES);
        merged.drain(..extra);
        self.recent = merged;
    }

    /// Bytes buffered in both directions.
    pub fn buffered(&self) -> usize {
        self.dev.buf.len() + self.srv.buf.len()
    }

    /// The last time anything was seen.
    pub fn touch(&mut self, time_ns: u64) {
        self.report.end_ns = self.report.end_ns.max(time_ns);
        self.report.start_ns = self.report.start_ns.min(time_ns);
    }

    /// Add reassembly counters.
    pub fn add_stats(&mut self, retransmitted: u64, out_of_order: u64) {
        self.report.stats.retransmitted += retransmitted;
        self.report.stats.out_of_order += out_of_order;
    }

    fn problem(
        &mut self,
        kind: ProblemKind,
        frame: u64,
        time_ns: u64,
        packet: Option<usize>,
        message: String,
    ) {
        self.report.problems.push(Problem {
            kind,
            message,
            time: time_ns,
            frame,
            packet,
        });
    }

    // ===== TCP =====

    /// Device bytes at `offset` of its stream.
    pub fn device_data(&mut self, offset: u64, bytes: &[u8], time_ns: u64, frame: u64) {
        self.touch(time_ns);
        self.report.stats.device_bytes += bytes.len() as u64;
        self.dev.push(offset, bytes, time_ns, frame);
        self.decode_device(false);
    }

    /// Server bytes at `offset` of its stream.
    pub fn server_data(&mut self, offset: u64, bytes: &[u8], time_ns: u64, frame: u64) {
        self.touch(time_ns);
        self.report.stats.server_bytes += bytes.len() as u64;
        self.srv.push(offset, bytes, time_ns, frame);
        self.decode_server(false);
    }

    /// Device bytes missing from the capture.
    pub fn device_gap(&mut self, offset: u64, len: u64, time_ns: u64, frame: u64) {
        self.touch(time_ns);
        self.report.stats.missing_bytes += len;
        let cut = self.dev.buf.len();
        let mut msg = alloc::format!(
            "{len} bytes of the device's stream are missing from the capture at stream offset {offset} (packet #{frame})"
        );
        if cut > 0 {
            let _ = write!(
                msg,
                "; the {cut} bytes before them were the start of a frame, given up"
            );
        }
        msg.push_str("; decoding resumes at the next frame or login");
        self.problem(ProblemKind::BytesMissing, frame, time_ns, None, msg);
        self.dev.buf.clear();
        self.dev.base = offset + len;
        self.dev.resync = true;
        self.lost_frame = true;
    }

    /// Server bytes missing from the capture.
    pub fn server_gap(&mut self, offset: u64, len: u64, time_ns: u64, frame: u64) {
        self.touch(time_ns);
        self.report.stats.missing_bytes += len;
        self.problem(
            ProblemKind::BytesMissing,
            frame,
            time_ns,
            None,
            alloc::format!(
                "{len} bytes of the server's stream are missing from the capture at stream offset {offset} (packet #{frame}): its replies there are unknown"
            ),
        );
        self.srv.buf.clear();
        self.srv.base = offset + len;
        // Whatever it answered there is unknown: stop waiting for it.
        self.awaiting.clear();
        self.login_pending = None;
    }

    fn decode_device(&mut self, end: bool) {
        let mut pos = 0;
        loop {
            let rest = &self.dev.buf[pos..];
            if rest.is_empty() {
                break;
            }
            if self.dev.resync {
                match find_boundary(rest, &self.strict) {
                    Boundary::At(k) => {
                        pos += k;
                        self.dev.resync = false;
                        continue;
                    }
                    Boundary::Wait(k) => {
                        pos += k;
                        break;
                    }
                    Boundary::None => {
                        // Keep a possible start of a frame or login.
                        pos += rest.len().saturating_sub(16);
                        break;
                    }
                }
            }
            let at = self.dev.base + pos as u64;
            match decode_frame(rest, &self.strict) {
                Ok(Status::Complete(p, used)) => {
                    let bytes = rest[..used].to_vec();
                    self.device_packet(Ok(p), None, bytes, at, self.dev.time_ns, self.dev.frame);
                    pos += used;
                }
                Ok(Status::Partial { .. }) => break,
                Err(e) => {
                    let frame_len = known_frame_len(rest, &self.strict);
                    match frame_len {
                        Some(len) if rest.len() >= len => {
                            let bytes = rest[..len].to_vec();
                            let lenient = match decode_frame(&bytes, &self.lenient) {
                                Ok(Status::Complete(p, _)) => Ok(p),
                                Ok(Status::Partial { .. }) => Err(e.clone()),
                                Err(e2) => Err(e2),
                            };
                            self.device_packet(
                                lenient,
                                Some(e),
                                bytes,
                                at,
                                self.dev.time_ns,
                                self.dev.frame,
                            );
                            pos += len;
                        }
                        Some(_) => break,
                        None => {
                            let (time_ns, frame) = (self.dev.time_ns, self.dev.frame);
                            self.problem(
                                ProblemKind::UnrecognizedBytes,
                                frame,
                                time_ns,
                                None,
                                alloc::format!(
                                    "device bytes at stream offset {at} (packet #{frame}) are not a login, frame or keep-alive ({e}); skipped up to the next frame or login"
                                ),
                            );
                            self.dev.resync = true;
                            pos += 1;
                        }
                    }
                }
            }
        }
        self.dev.buf.drain(..pos);
        self.dev.base += pos as u64;
        if end && !self.dev.buf.is_empty() {
            let (time_ns, frame, n) = (self.dev.time_ns, self.dev.frame, self.dev.buf.len());
            if !self.dev.resync {
                self.problem(
                    ProblemKind::BytesMissing,
                    frame,
                    time_ns,
                    None,
                    alloc::format!(
                        "the device's stream ends inside a frame: {n} bytes of it at stream offset {}, the rest never came",
                        self.dev.base
                    ),
                );
            }
            self.dev.buf.clear();
        } else if self.dev.buf.len() > MAX_STREAM_BUFFER {
            let (time_ns, frame) = (self.dev.time_ns, self.dev.frame);
            self.problem(
                ProblemKind::UnrecognizedBytes,
                frame,
                time_ns,
                None,
                alloc::format!(
                    "{} device bytes at stream offset {} without a complete frame: given up",
                    self.dev.buf.len(),
                    self.dev.base
                ),
            );
            self.dev.base += self.dev.buf.len() as u64;
            self.dev.buf.clear();
            self.dev.resync = true;
        }
    }

    fn device_packet(
        &mut self,
        decoded: Result<Packet, DecodeError>,
        error: Option<DecodeError>,
        bytes: Vec<u8>,
        stream_offset: u64,
        time_ns: u64,
        frame: u64,
    ) {
        // Server bytes that could only be told apart by what follows: an ack of zero records.
        self.decode_server(true);
        let index = self.report.packets.len();
        let udp = self.report.transport == SessionTransport::Udp;
        if let Some(e) = &error {
            self.problem(
                ProblemKind::InvalidFrame,
                frame,
                time_ns,
                Some(index),
                alloc::format!(
                    "packet [{index}] (packet #{frame}) is refused by a strict decoder: {e}"
                ),
            );
        }
        if let Ok(p) = &decoded {
            if let Some(imei) = p.imei() {
                if self.report.imei.is_none() {
                    self.report.imei = Some(String::from(imei.as_str()));
                }
            }
            match &p.content {
                Content::Imei(_) => {
                    if !udp {
                        self.login_pending = Some(index);
                    }
                }
                Content::Avl(d) => {
                    self.after_command = None;
                    self.lost_frame = false;
                    let key = RecordKey::of(&bytes);
                    if let Some(first) = self.recent.iter().find(|s| s.key == key).copied() {
                        self.problem(
                            ProblemKind::FrameResent,
                            frame,
                            time_ns,
                            Some(index),
                            alloc::format!(
                                "packet [{index}] (packet #{frame}) resends the frame first sent in packet #{} at {}: its ack was missing, short or late",
                                first.frame,
                                super::report::iso8601_us(first.time_ns)
                            ),
                        );
                    } else {
                        self.recent.push(Sent {
                            key,
                            frame,
                            time_ns,
                        });
                        if self.recent.len() > RECENT_FRAMES {
                            self.recent.remove(0);
                        }
                    }
                    let udp_ids = p.udp().map(|u| (u.packet_id, u.avl_packet_id));
                    if udp {
                        // A datagram sent again with the same ids replaces the one awaiting.
                        if let Some(i) = self.awaiting.iter().position(|a| a.udp_ids == udp_ids) {
                            let old = self.awaiting.remove(i);
                            self.missing_ack(
                                old,
                                frame,
                                time_ns,
                                "before the device sent it again",
                            );
                        }
                    } else {
                        for old in core::mem::take(&mut self.awaiting) {
                            self.missing_ack(
                                old,
                                frame,
                                time_ns,
                                "before the device sent its next frame",
                            );
                        }
                    }
                    if error.is_none() {
                        self.awaiting.push(Awaiting {
                            packet: index,
                            records: d.records.len(),
                            frame,
                            udp_ids,
                        });
                    }
                }
                Content::Command(_) => {
                    self.after_command = Some(index);
                    if !self.commands.is_empty() {
                        let r = self.commands.remove(0);
                        self.report.replies[r].answered_by = Some(index);
                    }
                }
                Content::KeepAlive => {}
            }
        }
        self.report.packets.push(PacketEntry {
            time_ns,
            frame,
            stream_offset,
            bytes,
            transport: self.report.transport,
            error,
            undecodable: decoded.err(),
        });
    }

    fn missing_ack(&mut self, a: Awaiting, frame: u64, time_ns: u64, when: &str) {
        self.problem(
            ProblemKind::MissingAck,
            frame,
            time_ns,
            Some(a.packet),
            alloc::format!(
                "packet [{}] (packet #{}, {} records) got no ack {when}",
                a.packet,
                a.frame,
                a.records
            ),
        );
    }

    /// Interpret the server's buffered bytes. `settle`: the device sent something since, so
    /// a short ambiguous reply (four zero bytes) is complete.
    fn decode_server(&mut self, settle: bool) {
        let mut pos = 0;
        let (time_ns, frame) = (self.srv.time_ns, self.srv.frame);
        loop {
            let rest = &self.srv.buf[pos..];
            if rest.is_empty() {
                break;
            }
            if let Some(login) = self.login_pending.take() {
                let (kind, meaning) = match rest[0] {
                    1 => (ReplyKind::ImeiAccepted, String::from("IMEI accepted")),
                    0 => (
                        ReplyKind::ImeiRejected,
                        String::from("IMEI rejected: the device disconnects"),
                    ),
                    b => (
                        ReplyKind::Unknown,
                        alloc::format!("not a login answer (0x{b:02x}; 01 accepts, 00 rejects)"),
                    ),
                };
                self.reply(
                    rest[..1].to_vec(),
                    kind,
                    meaning,
                    Some(login),
                    time_ns,
                    frame,
                );
                match kind {
                    ReplyKind::ImeiRejected => self.problem(
                        ProblemKind::ImeiRejected,
                        frame,
                        time_ns,
                        Some(login),
                        alloc::format!("the server rejected the IMEI (packet #{frame})"),
                    ),
                    ReplyKind::Unknown => self.problem(
                        ProblemKind::UnexpectedReply,
                        frame,
                        time_ns,
                        Some(login),
                        alloc::format!(
                            "the server answered the login with 0x{:02x} (packet #{frame}): devices expect 01 or 00",
                            self.srv.buf[pos]
                        ),
                    ),
                    _ => {}
                }
                pos += 1;
                continue;
            }
            let zero = rest.len() >= 4 && rest[..4] == [0, 0, 0, 0];
            let command_like =
                zero && rest.len() >= 9 && Codec::from_id(rest[8]).is_some_and(Codec::is_command);
            if command_like {
                match decode_frame(rest, &self.lenient) {
                    Ok(Status::Complete(p, used)) => {
                        let bytes = rest[..used].to_vec();
                        self.server_command(p, bytes, time_ns, frame);
                        pos += used;
                        continue;
                    }
                    Ok(Status::Partial { .. }) => break,
                    // Not a frame after all: an ack of zero records, then more.
                    Err(_) => {}
                }
            }
            if rest.len() >= 4 && (!zero || rest.len() >= 9 || settle) {
                let bytes = rest[..4].to_vec();
                self.server_ack(bytes, time_ns, frame);
                pos += 4;
            } else if settle && rest.len() < 4 && !zero {
                let bytes = rest.to_vec();
                pos += bytes.len();
                self.unexpected(bytes, time_ns, frame, "too short for an ack");
            } else {
                break;
            }
        }
        self.srv.buf.drain(..pos);
        self.srv.base += pos as u64;
        if self.srv.buf.len() > MAX_STREAM_BUFFER {
            let bytes = core::mem::take(&mut self.srv.buf);
            self.srv.base += bytes.len() as u64;
            self.unexpected(bytes, time_ns, frame, "no reply a device understands");
        }
    }

    fn reply(
        &mut self,
        hex: Vec<u8>,
        kind: ReplyKind,
        meaning: String,
        answers: Option<usize>,
        time_ns: u64,
        frame: u64,
    ) -> usize {
        self.report.replies.push(Reply {
            time_ns,
            frame,
            hex,
            meaning,
            kind,
            answers,
            answered_by: None,
        });
        self.report.replies.len() - 1
    }

    fn unexpected(&mut self, bytes: Vec<u8>, time_ns: u64, frame: u64, why: &str) {
        let n = bytes.len();
        self.reply(
            bytes,
            ReplyKind::Unknown,
            alloc::format!("{n} bytes: {why}"),
            None,
            time_ns,
            frame,
        );
        self.problem(
            ProblemKind::UnexpectedReply,
            frame,
            time_ns,
            None,
            alloc::format!(
                "the server sent {n} bytes a device does not understand (packet #{frame}): {why}"
            ),
        );
    }

    fn server_ack(&mut self, bytes: Vec<u8>, time_ns: u64, frame: u64) {
        let count = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        if count > 255 {
            return self.unexpected(
                bytes,
                time_ns,
                frame,
                "not an ack: a frame holds at most 255 records",
            );
        }
        let count = count as usize;
        if !self.awaiting.is_empty() {
            let a = self.awaiting.remove(0);
            let meaning = alloc::format!(
                "ack: {count} of the {} records of packet [{}] accepted",
                a.records,
                a.packet
            );
            self.reply(
                bytes,
                ReplyKind::Ack,
                meaning,
                Some(a.packet),
                time_ns,
                frame,
            );
            if count != a.records {
                let effect = if count < a.records {
                    "the device sends them again"
                } else {
                    "more than it sent"
                };
                self.problem(
                    ProblemKind::AckCountMismatch,
                    frame,
                    time_ns,
                    Some(a.packet),
                    alloc::format!(
                        "the server acked {count} records (packet #{frame}) for packet [{}] (packet #{}), which has {}: {effect}",
                        a.packet, a.frame, a.records
                    ),
                );
            }
        } else if self.lost_frame {
            self.lost_frame = false;
            let meaning =
                alloc::format!("ack of {count} records, for a frame missing from the capture");
            self.reply(bytes, ReplyKind::Ack, meaning, None, time_ns, frame);
        } else if let Some(cmd) = self.after_command {
            self.reply(
                bytes,
                ReplyKind::Ack,
                alloc::format!("ack of {count} records after a command message"),
                Some(cmd),
                time_ns,
                frame,
            );
            self.problem(
                ProblemKind::AckAfterCommand,
                frame,
                time_ns,
                Some(cmd),
                alloc::format!(
                    "the server sent an ack ({count}) (packet #{frame}) after the device's command message [{cmd}]: Codec 12/13/14 messages are never acked, the device reads these bytes as the start of a frame"
                ),
            );
        } else {
            self.reply(
                bytes,
                ReplyKind::Ack,
                alloc::format!("ack of {count} records, with no frame waiting"),
                None,
                time_ns,
                frame,
            );
            self.problem(
                ProblemKind::AckWithoutFrame,
                frame,
                time_ns,
                None,
                alloc::format!("the server sent an ack ({count}) with no data frame waiting for one (packet #{frame})"),
            );
        }
    }

    fn server_command(&mut self, p: Packet, bytes: Vec<u8>, time_ns: u64, frame: u64) {
        let mut meaning = String::new();
        if let Content::Command(c) = &p.content {
            let _ = write!(meaning, "Codec {}", c.codec.name());
            for m in &c.messages {
                let _ = write!(meaning, " {}", m.message_type());
                if let Some(imei) = m.imei_digits() {
                    let _ = write!(meaning, " to IMEI {imei}");
                }
                match m.text() {
                    Some(t) => {
                        let _ = write!(meaning, " {t:?}");
                    }
                    None => {
                        let _ = write!(meaning, " {}", crate::hex::encode(&m.payload));
                    }
                }
            }
        }
        if !p.warnings.is_empty() {
            let _ = write!(
                meaning,
                " ({} warnings: {})",
                p.warnings.len(),
                p.warnings[0].message
            );
        }
        let r = self.reply(bytes, ReplyKind::Command, meaning, None, time_ns, frame);
        self.commands.push(r);
        if let Some(a) = self.awaiting.first().copied() {
            self.problem(
                ProblemKind::CommandWhileUnacked,
                frame,
                time_ns,
                Some(a.packet),
                alloc::format!(
                    "the server sent a command (packet #{frame}) while packet [{}] (packet #{}) still waited for its ack: devices take commands only once their records are acked",
                    a.packet, a.frame
                ),
            );
        }
    }

    // ===== UDP =====

    /// A datagram from the device; `missing` bytes were cut by the snap length.
    pub fn device_datagram(&mut self, payload: &[u8], missing: usize, time_ns: u64, frame: u64) {
        self.touch(time_ns);
        self.report.stats.device_bytes += payload.len() as u64;
        if missing > 0 {
            self.report.stats.missing_bytes += missing as u64;
            self.problem(
                ProblemKind::BytesMissing,
                frame,
                time_ns,
                None,
                alloc::format!("the datagram of packet #{frame} was cut by the snap length: {missing} bytes missing"),
            );
        }
        let udp = SessionTransport::Udp;
        let (decoded, error) = match decode_entry(payload, udp, &self.strict) {
            Ok(p) => (Ok(p), None),
            Err(e) => (decode_entry(payload, udp, &self.lenient), Some(e)),
        };
        let decoded = decoded.map_err(|e| error.clone().unwrap_or(e));
        self.device_packet(decoded, error, payload.to_vec(), 0, time_ns, frame);
    }

    /// A datagram from the server.
    pub fn server_datagram(&mut self, payload: &[u8], time_ns: u64, frame: u64) {
        self.touch(time_ns);
        self.report.stats.server_bytes += payload.len() as u64;
        let bytes = payload.to_vec();
        let is_ack = payload.len() == 7 && payload[..2] == [0, 5] && payload[4] == 1;
        if !is_ack {
            return self.unexpected(
                bytes,
                time_ns,
                frame,
                "not a UDP channel ack (00 05, packet id, 01, AVL packet id, count)",
            );
        }
        let ids = (u16::from_be_bytes([payload[2], payload[3]]), payload[5]);
        let count = usize::from(payload[6]);
        match self.awaiting.iter().position(|a| a.udp_ids == Some(ids)) {
            Some(i) => {
                let a = self.awaiting.remove(i);
                let meaning =
                    alloc::format!(
                    "ack of AVL packet 0x{:02x}: {count} of the {} records of packet [{}] accepted",
                    ids.1, a.records, a.packet
                );
                self.reply(
                    bytes,
                    ReplyKind::UdpAck,
                    meaning,
                    Some(a.packet),
                    time_ns,
                    frame,
                );
                if count != a.records {
                    self.problem(
                        ProblemKind::AckCountMismatch,
                        frame,
                        time_ns,
                        Some(a.packet),
                        alloc::format!(
                            "the server acked {count} records (packet #{frame}) for packet [{}] (packet #{}), which has {}",
                            a.packet, a.frame, a.records
                        ),
                    );
                }
            }
            None => {
                self.reply(
                    bytes,
                    ReplyKind::UdpAck,
                    alloc::format!(
                        "ack of AVL packet 0x{:02x} ({count} records), which no datagram waits for",
                        ids.1
                    ),
                    None,
                    time_ns,
                    frame,
                );
                self.problem(
                    ProblemKind::AckWithoutFrame,
                    frame,
                    time_ns,
                    None,
                    alloc::format!(
                        "the server acked packet id 0x{:04x}, AVL packet 0x{:02x} (packet #{frame}), which no datagram waits for",
                        ids.0, ids.1
                    ),
                );
            }
        }
    }

    // ===== the end =====

    /// The session ended (connection closed, or the end of the capture): what still waits is
    /// reported. Returns the report and the device's recent frames.
    pub fn finish(mut self, time_ns: u64, frame: u64) -> (SessionReport, Vec<Sent>) {
        self.decode_device(true);
        self.decode_server(true);
        if !self.srv.buf.is_empty() {
            let bytes = core::mem::take(&mut self.srv.buf);
            self.unexpected(
                bytes,
                self.srv.time_ns,
                self.srv.frame,
                "the stream ends inside a reply",
            );
        }
        if let Some(login) = self.login_pending.take() {
            self.problem(
                ProblemKind::MissingAck,
                frame,
                time_ns,
                Some(login),
                String::from("the server never answered the login"),
            );
        }
        for a in core::mem::take(&mut self.awaiting) {
            self.missing_ack(a, frame, time_ns, "before the session ended");
        }
        for r in core::mem::take(&mut self.commands) {
            let reply = &self.report.replies[r];
            let message = alloc::format!(
                "the device never answered the command of packet #{} ({})",
                reply.frame,
                reply.meaning
            );
            self.problem(
                ProblemKind::CommandUnanswered,
                frame,
                time_ns,
                None,
                message,
            );
        }
        (self.report, self.recent)
    }
}

/// The length of a data frame whose header is sound (preamble, plausible length): its extent
/// is known even when its body does not decode.
fn known_frame_len(rest: &[u8], opts: &DecodeOptions) -> Option<usize> {
    if rest.len() < 8 || rest[..4] != [0, 0, 0, 0] {
        return None;
    }
    let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
    (len > 0 && len <= opts.max_frame_len).then_some(len + FRAME_OVERHEAD)
}

enum Boundary {
    /// A frame or login starts here.
    At(usize),
    /// Something that may be a frame starts here; wait for more bytes.
    Wait(usize),
    None,
}

/// The next place where a frame (preamble, plausible length, a known codec, a CRC that
/// verifies) or a login (length 15, digits) starts.
fn find_boundary(rest: &[u8], opts: &DecodeOptions) -> Boundary {
    for k in 0..rest.len() {
        let r = &rest[k..];
        if r.len() >= 4 && r[..4] == [0, 0, 0, 0] {
            if r.len() < 9 {
                return Boundary::Wait(k);
            }
            if known_frame_len(r, opts).is_some() && Codec::from_id(r[8]).is_some() {
                match decode_frame(r, opts) {
                    Ok(Status::Complete(..)) => return Boundary::At(k),
                    Ok(Status::Partial { .. }) => return Boundary::Wait(k),
                    Err(_) => {}
                }
            }
        } else if r.len() >= 2 && r[..2] == [0x00, 0x0F] {
            if r.len() < 17 {
                return Boundary::Wait(k);
            }
            if r[2..17].iter().all(u8::is_ascii_digit) {
                return Boundary::At(k);
            }
        }
    }
    Boundary::None
}
