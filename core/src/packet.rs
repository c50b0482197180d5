//! One decoded unit of any kind, and one-shot decoding of complete input with auto-detection.

use alloc::vec::Vec;

use crate::avl::AvlRecord;
use crate::codec::Codec;
use crate::data::read_avl_data;
pub use crate::data::Content;
use crate::error::{DecodeError, EncodeError, ErrorKind, Warning};
use crate::field::Field;
pub use crate::frame::CrcCheck;
use crate::frame::{
    declared_len, decode_data_frame, decode_login, DataFrame, Layout as FrameLayout, Status,
    FRAME_OVERHEAD, KEEP_ALIVE,
};
use crate::imei::{Imei, MAX_IMEI_LEN};
use crate::options::{tolerate, DecodeOptions};
use crate::reader::{Reader, Span};
use crate::udp::{
    decode_datagram_traced, encode_datagram, looks_like_datagram, Datagram, UdpHeader,
};

/// How the packet travelled, with what the transport adds to the content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP: login, keep-alive (no CRC) or a CRC-protected data frame.
    Tcp {
        /// The data frame's CRC, received and computed; `None` for logins and keep-alives.
        crc: Option<CrcCheck>,
    },
    /// A UDP channel datagram, with its headers.
    Udp(UdpHeader),
    /// An AVL data array alone (codec id … Number of Data 2), as published in some documents.
    Bare,
}

impl Transport {
    /// `"tcp"`, `"udp"` or `"bare"`.
    pub fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    /// Which transport, without its data.
    pub fn kind(&self) -> TransportKind {
        match self {
            Self::Tcp { .. } => TransportKind::Tcp,
            Self::Udp(_) => TransportKind::Udp,
            Self::Bare => TransportKind::Bare,
        }
    }
}

/// A transport by name: the JSON model's `transport` (`tcp`, `udp`, `bare`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "lowercase")
)]
pub enum TransportKind {
    /// TCP.
    Tcp,
    /// A UDP channel datagram.
    Udp,
    /// An AVL data array alone.
    Bare,
}

impl TransportKind {
    /// The JSON model's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Bare => "bare",
        }
    }
}

/// What a packet carries, by name: the JSON model's `kind` (`imei`, `keepalive`, `avl`,
/// `command`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "lowercase")
)]
pub enum PacketKind {
    /// An IMEI login.
    Imei,
    /// A keep-alive.
    KeepAlive,
    /// AVL data.
    Avl,
    /// A Codec 12/13/14/15 command message.
    Command,
}

impl PacketKind {
    /// The JSON model's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Imei => "imei",
            Self::KeepAlive => "keepalive",
            Self::Avl => "avl",
            Self::Command => "command",
        }
    }
}

/// A decoded packet: what it carries, how it travelled, where it was in the input, and the
/// problems lenient decoding tolerated.
#[derive(Clone, Debug, PartialEq)]
pub struct Packet {
    /// Offset of the first byte in the input.
    pub offset: usize,
    /// Bytes it took.
    pub len: usize,
    /// TCP (with the frame's CRC), UDP (with the datagram's headers) or a bare data array.
    pub transport: Transport,
    /// The content.
    pub content: Content,
    /// Tolerated problems (lenient mode) and remarks.
    pub warnings: Vec<Warning>,
}

impl Packet {
    /// `"avl"`, `"imei"`, `"command"` or `"keepalive"`, as in the JSON model.
    pub fn kind(&self) -> PacketKind {
        match self.content {
            Content::Imei(_) => PacketKind::Imei,
            Content::KeepAlive => PacketKind::KeepAlive,
            Content::Avl(_) => PacketKind::Avl,
            Content::Command(_) => PacketKind::Command,
        }
    }

    /// The codec of a data or command packet.
    pub fn codec(&self) -> Option<Codec> {
        match &self.content {
            Content::Avl(d) => Some(d.codec),
            Content::Command(c) => Some(c.codec),
            _ => None,
        }
    }

    /// The AVL records (empty for other content).
    pub fn records(&self) -> &[AvlRecord] {
        match &self.content {
            Content::Avl(d) => &d.records,
            _ => &[],
        }
    }

    /// The IMEI, for a login or a UDP datagram.
    pub fn imei(&self) -> Option<&Imei> {
        match (&self.content, &self.transport) {
            (Content::Imei(i), _) => Some(i),
            (_, Transport::Udp(u)) => Some(&u.imei),
            _ => None,
        }
    }

    /// The CRC of a TCP data frame.
    pub fn crc(&self) -> Option<CrcCheck> {
        match self.transport {
            Transport::Tcp { crc } => crc,
            _ => None,
        }
    }

    /// The headers of a UDP datagram.
    pub fn udp(&self) -> Option<&UdpHeader> {
        match &self.transport {
            Transport::Udp(h) => Some(h),
            _ => None,
        }
    }

    /// Exactly what a server answers when it accepts everything: `01` to a login, the 4-byte
    /// record count to a TCP data frame, the 7-byte ack to a UDP datagram. `None` for
    /// keep-alives, bare arrays and command codecs, which are never acknowledged.
    pub fn ack(&self) -> Option<Vec<u8>> {
        match (&self.content, &self.transport) {
            (Content::Imei(_), _) => Some(alloc::vec![1]),
            (Content::Avl(d), Transport::Tcp { .. }) => {
                Some(tcp_ack(d.records.len() as u32).to_vec())
            }
            (Content::Avl(d), Transport::Udp(u)) => {
                Some(u.ack(d.records.len().min(255) as u8).to_vec())
            }
            _ => None,
        }
    }

    /// Encode again in the same transport (the CRC is recomputed).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        match &self.transport {
            Transport::Udp(h) => encode_datagram(h, &self.content),
            Transport::Bare => match &self.content {
                Content::Avl(d) => d.encode(),
                _ => Err(EncodeError::NotSupported {
                    what: "a bare packet without AVL data",
                    codec: "",
                }),
            },
            Transport::Tcp { .. } => crate::encode::encode_tcp(&self.content),
        }
    }

    pub(crate) fn shift(&mut self, by: usize) {
        self.offset += by;
        for w in &mut self.warnings {
            w.offset += by;
        }
    }
}

impl From<Datagram> for Packet {
    fn from(d: Datagram) -> Self {
        Self {
            offset: 0,
            len: d.len,
            transport: Transport::Udp(d.header),
            content: d.content,
            warnings: d.warnings,
        }
    }
}

impl Packet {
    /// A packet of TCP content at offset 0.
    fn tcp(content: Content, len: usize, crc: Option<CrcCheck>, warnings: Vec<Warning>) -> Self {
        Self {
            offset: 0,
            len,
            transport: Transport::Tcp { crc },
            content,
            warnings,
        }
    }

    pub(crate) fn keep_alive() -> Self {
        Self::tcp(Content::KeepAlive, 1, None, Vec::new())
    }

    pub(crate) fn login(imei: Imei, len: usize) -> Self {
        Self::tcp(Content::Imei(imei), len, None, Vec::new())
    }

    pub(crate) fn data_frame(f: DataFrame, len: usize) -> Self {
        Self::tcp(f.content, len, Some(f.crc), f.warnings)
    }
}

/// Decode one TCP unit at the start of `input`: keep-alive, IMEI login or data frame.
///
/// ```
/// use fleetview::{decode_frame, DecodeOptions, Status};
/// let hex = "000F333536333037303432343431303133";
/// let bytes = fleetview::hex::decode(hex).unwrap();
/// let Status::Complete(packet, used) = decode_frame(&bytes, &DecodeOptions::default()).unwrap() else {
///     panic!("partial")
/// };
/// assert_eq!((packet.kind().as_str(), used), ("imei", 17));
/// assert_eq!(packet.ack(), Some(vec![0x01]));
/// ```
pub fn decode_frame(input: &[u8], opts: &DecodeOptions) -> Result<Status<Packet>, DecodeError> {
    match input {
        [] => Ok(Status::Partial { needed: 1 }),
        [KEEP_ALIVE, ..] => Ok(Status::Complete(Packet::keep_alive(), 1)),
        [_] => Ok(Status::Partial { needed: 1 }),
        [0, 0, ..] => Ok(tcp_data_frame(input, opts, FrameLayout::default(), None)?),
        _ => Ok(tcp_login(input, None)?),
    }
}

/// A login as a packet.
pub(crate) fn tcp_login(
    input: &[u8],
    trace: Option<&mut Vec<Span>>,
) -> Result<Status<Packet>, DecodeError> {
    Ok(decode_login(input, trace)?.map(|imei| {
        let len = 2 + imei.as_str().len();
        Packet::login(imei, len)
    }))
}

/// A data frame as a packet.
pub(crate) fn tcp_data_frame(
    input: &[u8],
    opts: &DecodeOptions,
    layout: FrameLayout,
    trace: Option<&mut Vec<Span>>,
) -> Result<Status<Packet>, DecodeError> {
    Ok(match decode_data_frame(input, opts, layout, trace)? {
        Status::Complete(f, len) => Status::Complete(Packet::data_frame(f, len), len),
        Status::Partial { needed } => Status::Partial { needed },
    })
}

/// The 4-byte TCP ack: the number of accepted records, big-endian. Zero asks the device to send
/// the records again.
pub fn tcp_ack(accepted: u32) -> [u8; 4] {
    accepted.to_be_bytes()
}

/// Decode complete input, auto-detecting what it is: an IMEI login, TCP frames (several, with
/// keep-alives between them, as captured from a stream), a UDP datagram, a bare AVL data array or
/// a keep-alive. Stops at the first error.
///
/// ```
/// let bytes = fleetview::hex::decode("000000000000002808010000016B40D9AD80010000000000000000000000000000000103021503010101425E100000010000F22A").unwrap();
/// let packets = fleetview::decode(&bytes, &fleetview::DecodeOptions::default()).unwrap();
/// assert_eq!(packets[0].records()[0].timestamp_ms, 1_560_161_136_000);
/// assert_eq!(packets[0].ack().unwrap(), [0, 0, 0, 1]);
/// ```
pub fn decode(input: &[u8], opts: &DecodeOptions) -> Result<Vec<Packet>, DecodeError> {
    decode_each(input, opts).collect()
}

/// Like [`decode`], one packet at a time: the packets before an error stay available.
pub fn decode_each<'a>(input: &'a [u8], opts: &'a DecodeOptions) -> Packets<'a> {
    Packets {
        input,
        pos: 0,
        opts,
        done: false,
        trace: None,
    }
}

/// Decode complete input like [`decode_each`] and label every byte: the spans of all packets
/// decoded, then the packets and the error, if any. The playground's annotated hex view.
pub fn annotate(
    input: &[u8],
    opts: &DecodeOptions,
) -> (Vec<Span>, Vec<Result<Packet, DecodeError>>) {
    let mut spans = Vec::new();
    let mut results = Vec::new();
    {
        let mut it = decode_each(input, opts);
        it.trace = Some(&mut spans);
        for r in it.by_ref() {
            results.push(r);
        }
    }
    (spans, results)
}

/// Decode a bare AVL data array that fills `input`.
pub fn decode_bare(input: &[u8], opts: &DecodeOptions) -> Result<Packet, DecodeError> {
    decode_bare_traced(input, opts, None)
}

fn decode_bare_traced(
    input: &[u8],
    opts: &DecodeOptions,
    trace: Option<&mut Vec<Span>>,
) -> Result<Packet, DecodeError> {
    let mut warnings = Vec::new();
    let mut r = Reader::traced(input, 0, trace);
    let data = read_avl_data(&mut r, opts, &mut warnings)?;
    if !r.is_empty() {
        tolerate(
            opts.lenient,
            &mut warnings,
            r.error(Field::Data, ErrorKind::TrailingBytes { count: r.left() }),
        )?;
    }
    Ok(Packet {
        offset: 0,
        len: input.len(),
        transport: Transport::Bare,
        content: Content::Avl(data),
        warnings,
    })
}

/// Iterator over the packets of complete input; see [`decode_each`].
pub struct Packets<'a> {
    input: &'a [u8],
    pos: usize,
    opts: &'a DecodeOptions,
    done: bool,
    trace: Option<&'a mut Vec<Span>>,
}

impl Packets<'_> {
    fn next_packet(&mut self) -> Result<Packet, DecodeError> {
        let input = self.input;
        let rest = &input[self.pos..];
        let mark = self.trace.as_ref().map_or(0, |t| t.len());
        let trace = self.trace.as_deref_mut();
        if self.pos == 0 {
            if input.is_empty() {
                return Err(DecodeError::at(0, ErrorKind::EmptyInput));
            }
            let login = input.len() >= 2
                && input[..2] != [0, 0]
                && input[2..].iter().all(u8::is_ascii_digit);
            if !login && looks_like_datagram(input, self.opts.lenient) {
                return decode_datagram_traced(input, self.opts, trace).map(Packet::from);
            }
            if matches!(input[0], 0x07 | 0x08 | 0x8E | 0x10) {
                return decode_bare_traced(input, self.opts, trace);
            }
        }
        let status = match rest {
            [KEEP_ALIVE, ..] => {
                if let Some(t) = trace {
                    t.push(Span {
                        offset: 0,
                        len: 1,
                        field: Field::KeepAlive,
                        record: None,
                        io_id: None,
                        item: None,
                    });
                }
                Status::Complete(Packet::keep_alive(), 1)
            }
            [0, 0, ..] => complete_data_frame(rest, self.opts, trace)?,
            // A length no login has: this is not Teltonika data at all.
            [a, b, ..] if usize::from(u16::from_be_bytes([*a, *b])) > MAX_IMEI_LEN => {
                return Err(DecodeError::at(0, ErrorKind::UnrecognizedInput));
            }
            [_, _, ..] => tcp_login(rest, trace)?,
            _ => Status::Partial { needed: 1 },
        };
        match status {
            Status::Complete(mut p, _) => {
                if let Some(t) = self.trace.as_deref_mut() {
                    for s in &mut t[mark..] {
                        s.offset += self.pos;
                    }
                }
                p.shift(self.pos);
                Ok(p)
            }
            // Offsets here count from `rest`; the iterator shifts them to the input.
            Status::Partial { needed } => Err(DecodeError::at(
                rest.len(),
                ErrorKind::UnexpectedEnd {
                    needed: rest.len() + needed,
                    available: rest.len(),
                },
            )),
        }
    }
}

/// A data frame in complete input. Strict mode decodes it as its header says, and names a
/// declared length that runs past the end of the input as a length mismatch. Lenient mode, when
/// that fails (or leaves a CRC mismatch), tries the layouts that devices and published examples
/// get wrong, with the frame ending where the input does: a wrong length field (a zero length
/// with a zero CRC, a Codec 7 frame's miscounted length), and a CRC field cut to 2 bytes. A
/// layout whose CRC matches wins; otherwise the first that decodes, each inconsistency a warning.
fn complete_data_frame(
    rest: &[u8],
    opts: &DecodeOptions,
    mut trace: Option<&mut Vec<Span>>,
) -> Result<Status<Packet>, DecodeError> {
    let traced = trace.is_some();
    let attempt = |layout: FrameLayout| {
        let mut spans = Vec::new();
        let r = tcp_data_frame(rest, opts, layout, traced.then_some(&mut spans));
        (r, spans)
    };
    let keep = |trace: Option<&mut Vec<Span>>, (r, mut spans): Attempt| {
        if let Some(t) = trace {
            t.append(&mut spans);
        }
        r
    };
    let first = attempt(FrameLayout::default());
    let crc_ok = |r: &Result<Status<Packet>, DecodeError>| matches!(r, Ok(Status::Complete(p, _)) if p.crc().is_some_and(|c| c.ok()));
    let whole = rest.len() > FRAME_OVERHEAD;
    if crc_ok(&first.0) || !opts.lenient || !whole {
        return match first.0 {
            Ok(Status::Partial { .. }) if whole => Err(DecodeError::new(
                4,
                Field::DataFieldLength,
                ErrorKind::LengthMismatch {
                    declared: declared_len(rest),
                    actual: rest.len() - FRAME_OVERHEAD,
                },
            )),
            _ => keep(trace, first),
        };
    }
    let declared = declared_len(rest);
    let mut fallback: Option<Attempt> =
        matches!(first.0, Ok(Status::Complete(..))).then_some(first.clone());
    for layout in [
        FrameLayout {
            len: Some(rest.len() - FRAME_OVERHEAD),
            short_crc: false,
        },
        FrameLayout {
            len: Some(rest.len() - FRAME_OVERHEAD + 2),
            short_crc: true,
        },
    ] {
        if layout.len == Some(declared) && !layout.short_crc {
            continue;
        }
        let candidate = attempt(layout);
        if crc_ok(&candidate.0) {
            return keep(trace.take(), candidate);
        }
        if fallback.is_none() && matches!(candidate.0, Ok(Status::Complete(..))) {
            fallback = Some(candidate);
        }
    }
    match fallback {
        Some(found) => keep(trace, found),
        None => match first.0 {
            Ok(Status::Partial { .. }) => Err(DecodeError::new(
                4,
                Field::DataFieldLength,
                ErrorKind::LengthMismatch {
                    declared,
                    actual: rest.len() - FRAME_OVERHEAD,
                },
            )),
            _ => keep(trace, first),
        },
    }
}

type Attempt = (Result<Status<Packet>, DecodeError>, Vec<Span>);

impl Packets<'_> {
    /// Lenient mode: a single byte left after a TCP frame (not a keep-alive), as some
    /// published command frames have, belongs to that frame as a trailing byte, not to a packet
    /// of its own that would fail as truncated.
    fn one_byte_too_many(&mut self, mut p: Packet) -> Packet {
        let end = p.offset + p.len;
        let tcp_frame = matches!(p.transport, Transport::Tcp { crc: Some(_) });
        if self.opts.lenient
            && tcp_frame
            && self.input.len() == end + 1
            && self.input[end] != KEEP_ALIVE
        {
            p.warnings.push(Warning::from_error(&DecodeError::new(
                end,
                Field::TrailingBytes,
                ErrorKind::TrailingBytes { count: 1 },
            )));
            p.len += 1;
            if let Some(t) = self.trace.as_deref_mut() {
                t.push(Span {
                    offset: end,
                    len: 1,
                    field: Field::TrailingBytes,
                    record: None,
                    io_id: None,
                    item: None,
                });
            }
        }
        p
    }
}

impl Iterator for Packets<'_> {
    type Item = Result<Packet, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || (self.pos > 0 && self.pos >= self.input.len()) {
            return None;
        }
        let result = self.next_packet().map_err(|e| {
            if matches!(e.kind, ErrorKind::EmptyInput) || self.pos == 0 {
                e
            } else {
                e.shifted(self.pos)
            }
        });
        let result = result.map(|p| self.one_byte_too_many(p));
        match &result {
            Ok(p) => {
                self.pos = p.offset + p.len;
            }
            Err(_) => self.done = true,
        }
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One byte after a command frame: lenient mode counts it in the frame with a warning
    /// (tests/vectors/lenient_command_one_byte_too_many.json); strict mode decodes the frame,
    /// then reports the byte as truncated input at the end of the input.
    #[test]
    fn one_byte_too_many_strictly() {
        let mut bytes =
            crate::hex::decode("000000000000000F0C010500000007676574696E666F0100004312").unwrap();
        bytes.push(0);
        let results: Vec<_> = decode_each(&bytes, &DecodeOptions::default()).collect();
        assert_eq!(results.len(), 2);
        let p = results[0].as_ref().unwrap();
        assert!(p.warnings.is_empty());
        assert_eq!(p.len, 27);
        let e = results[1].as_ref().unwrap_err();
        assert_eq!((e.code(), e.offset), ("unexpected_end", 28));
    }
}
