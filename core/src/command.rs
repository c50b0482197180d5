//! Command codecs: 12 (GPRS commands and responses), 13 (device messages with a timestamp),
//! 14 (IMEI-addressed commands, ACK and nACK) and 15 (FMX6 RS232 messages with timestamp and
//! IMEI). They share one layout; the extra fields are counted in the size:
//!
//! | codec | body after quantity 1 |
//! |---|---|
//! | 12 | type (1) · size (4) · payload · quantity 2 |
//! | 13 | type (1) · size (4) = 4 + payload · timestamp (4, seconds) · payload · quantity 2 |
//! | 14 | type (1) · size (4) = 8 + payload · IMEI (8, BCD) · payload · quantity 2 |
//! | 15 | type (1) · size (4) = 12 + payload · timestamp (4) · IMEI (8) · payload · quantity 2 |
//!
//! Command packets are never acknowledged.

use alloc::string::String;
use alloc::vec::Vec;

use crate::codec::Codec;
use crate::error::{DecodeError, EncodeError, ErrorKind, Warning, WarningKind};
use crate::field::Field;
use crate::imei::imei_to_bcd;
use crate::options::{tolerate, DecodeOptions};
use crate::reader::Reader;

/// A command codec's data field: one or more messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandPacket {
    /// Codec 12, 13, 14 or 15.
    pub codec: Codec,
    /// The messages, usually one.
    pub messages: Vec<CommandMessage>,
}

/// One command or response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandMessage {
    /// Message type: [`CommandMessage::COMMAND`] (0x05), [`CommandMessage::RESPONSE`] (0x06),
    /// [`CommandMessage::NACK`] (0x11), 0x0B (Codec 15), 0x0D (camera) …
    pub kind: u8,
    /// Codec 13 and 15: seconds since 1970.
    pub timestamp_s: Option<u32>,
    /// Codec 14 and 15: the addressed IMEI, 8 bytes BCD.
    pub imei: Option<[u8; 8]>,
    /// The command text or response, usually ASCII; binary is allowed.
    pub payload: Vec<u8>,
}

/// The type byte of a command message. Open: devices send types this crate does not name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageType(pub u8);

impl MessageType {
    /// Server → device command.
    pub const COMMAND: Self = Self(0x05);
    /// Device → server response (Codec 14: the IMEI matched).
    pub const RESPONSE: Self = Self(0x06);
    /// Codec 15: a message from an RS232 device.
    pub const RS232: Self = Self(0x0B);
    /// Camera data (Codec 12 with a camera).
    pub const CAMERA: Self = Self(0x0D);
    /// Codec 14 nACK: the IMEI did not match; empty payload.
    pub const NACK: Self = Self(0x11);

    /// A short name (`"command"`, `"response"`, `"nACK"` …), or `None` for other types.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::COMMAND => "command",
            Self::RESPONSE => "response",
            Self::RS232 => "RS232 message",
            Self::CAMERA => "camera data",
            Self::NACK => "nACK",
            _ => return None,
        })
    }

    /// What the type means, for people: `"command (server → device)"`, or `"other"`.
    pub fn description(self) -> &'static str {
        match self {
            Self::COMMAND => "command (server → device)",
            Self::RESPONSE => "response (device → server)",
            Self::RS232 => "RS232 message (Codec 15)",
            Self::CAMERA => "camera data",
            Self::NACK => "nACK: the IMEI did not match",
            _ => "other",
        }
    }
}

impl core::fmt::Display for MessageType {
    /// `0x05 command`, or `0x42` for a type without a name.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "0x{:02x}", self.0)?;
        match self.name() {
            Some(n) => write!(f, " {n}"),
            None => Ok(()),
        }
    }
}

impl CommandMessage {
    /// Server → device command ([`MessageType::COMMAND`]).
    pub const COMMAND: u8 = MessageType::COMMAND.0;
    /// Device → server response ([`MessageType::RESPONSE`]).
    pub const RESPONSE: u8 = MessageType::RESPONSE.0;
    /// Codec 14 nACK ([`MessageType::NACK`]).
    pub const NACK: u8 = MessageType::NACK.0;

    /// The type byte, typed.
    pub fn message_type(&self) -> MessageType {
        MessageType(self.kind)
    }

    /// A text command (type 0x05) without timestamp or IMEI, for Codec 12.
    pub fn command(text: &str) -> Self {
        Self {
            kind: Self::COMMAND,
            timestamp_s: None,
            imei: None,
            payload: text.as_bytes().to_vec(),
        }
    }

    /// The payload as text when it is valid UTF-8 without control characters other than
    /// tab, CR and LF.
    pub fn text(&self) -> Option<&str> {
        let s = core::str::from_utf8(&self.payload).ok()?;
        let printable = s
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'));
        printable.then_some(s)
    }

    /// The IMEI digits of a Codec 14/15 message.
    pub fn imei_digits(&self) -> Option<String> {
        self.imei.map(crate::imei::Imei::from_bcd)
    }
}

/// Bytes of timestamp and IMEI that a codec counts in the message size.
fn prefix_len(codec: Codec) -> (bool, bool) {
    match codec {
        Codec::Codec13 => (true, false),
        Codec::Codec14 => (false, true),
        Codec::Codec15 => (true, true),
        _ => (false, false),
    }
}

/// Read a command data field that fills `r` exactly (after the codec id).
pub(crate) fn read_command_body(
    r: &mut Reader<'_, '_>,
    codec: Codec,
    opts: &DecodeOptions,
    warnings: &mut Vec<Warning>,
) -> Result<CommandPacket, DecodeError> {
    let (has_time, has_imei) = prefix_len(codec);
    let fixed = 4 * u32::from(has_time) + 8 * u32::from(has_imei);
    let count = r.u8(Field::Quantity1)?;
    // A message takes at least type + size: bound the allocation by the bytes present.
    let mut messages = Vec::with_capacity(usize::from(count).min(r.left() / 5));
    for i in 0..count {
        r.record = Some(u32::from(i));
        let kind = r.u8(Field::MessageType)?;
        let size_at = r.offset();
        let size = r.u32(Field::MessageSize)?;
        if size < fixed {
            return Err(DecodeError::new(
                size_at,
                Field::MessageSize,
                ErrorKind::InvalidCommandSize { size, min: fixed },
            ));
        }
        let mut payload_len = (size - fixed) as usize;
        // The bytes after the payload must be the remaining messages and quantity 2. When the
        // size disagrees with a single message filling the field, lenient mode trusts the field.
        let room = r.left().saturating_sub(fixed as usize + 1);
        if count == 1 && payload_len != room && r.left() > fixed as usize {
            tolerate(
                opts.lenient,
                warnings,
                DecodeError::new(
                    size_at,
                    Field::MessageSize,
                    ErrorKind::LengthMismatch {
                        declared: size as usize,
                        actual: room + fixed as usize,
                    },
                ),
            )?;
            payload_len = room;
        }
        let timestamp_s = if has_time {
            Some(r.u32(Field::MessageTimestamp)?)
        } else {
            None
        };
        let imei = if has_imei {
            Some(r.array::<8>(Field::MessageImei)?)
        } else {
            None
        };
        let payload = r.take(payload_len, Field::MessagePayload)?.to_vec();
        messages.push(CommandMessage {
            kind,
            timestamp_s,
            imei,
            payload,
        });
    }
    r.record = None;
    let at = r.offset();
    let trailer = r.u8(Field::Quantity2)?;
    if trailer != count {
        // The wiki: quantity 2 "will not be parsed but it's recommended that it should contain
        // same value". Devices ignore it, so a mismatch is only worth a warning.
        warnings.push(Warning::from_error(&DecodeError::new(
            at,
            Field::Quantity2,
            ErrorKind::CountMismatch {
                header: count,
                trailer,
            },
        )));
    }
    if codec == Codec::Codec13 {
        for m in &messages {
            if let Some(w) = codec13_millisecond_hint(m, at) {
                warnings.push(w);
            }
        }
    }
    Ok(CommandPacket { codec, messages })
}

/// A Codec 13 example in circulation carries an 8-byte millisecond timestamp where the spec has
/// 4-byte seconds. Decoding follows the spec; this points out the likely cause of a 1970 date.
fn codec13_millisecond_hint(m: &CommandMessage, at: usize) -> Option<Warning> {
    let secs = m.timestamp_s?;
    if secs >= 946_684_800 || m.payload.len() < 4 {
        return None;
    }
    let ms =
        (u64::from(secs) << 32) | u64::from(u32::from_be_bytes(m.payload[..4].try_into().ok()?));
    // 2000-01-01 .. 2100-01-01 in milliseconds.
    (946_684_800_000..4_102_444_800_000).contains(&ms).then(|| Warning {
        offset: at,
        kind: WarningKind::TimestampSuspicious {
            seconds: secs,
            millis: ms,
        },
        message: alloc::format!(
            "Suspicious Codec 13 timestamp: {secs} s is before 2000; the 8 bytes from the timestamp read as {ms} ms since 1970, which suggests a millisecond timestamp"
        ),
    })
}

impl CommandPacket {
    /// One command (type 0x05) for a device: the one constructor behind every command the
    /// project sends (web UI, Worker, server, npm package). `payload` is the command text or
    /// bytes; Codec 14 needs the device's `imei` (the device answers nACK when it is not its own),
    /// Codec 12 takes none. Other codecs are not commands a server sends.
    ///
    /// ```
    /// use fleetview::{Codec, CommandPacket};
    /// let p = CommandPacket::new(Codec::Codec14, "getver", Some("352093081452251")).unwrap();
    /// let frame = fleetview::encode::command_frame(&p).unwrap();
    /// assert_eq!(frame[8], 0x0E);
    /// assert!(CommandPacket::new(Codec::Codec14, "getver", None).is_err());
    /// ```
    pub fn new(
        codec: Codec,
        payload: impl AsRef<[u8]>,
        imei: Option<&str>,
    ) -> Result<Self, EncodeError> {
        let imei = match (codec, imei) {
            (Codec::Codec12, None) => None,
            (Codec::Codec14, Some(digits)) => Some(imei_to_bcd(digits)?),
            (Codec::Codec14, None) => return Err(EncodeError::InvalidImei),
            (Codec::Codec12, Some(_)) => {
                return Err(EncodeError::NotSupported {
                    what: "an IMEI",
                    codec: codec.name(),
                })
            }
            _ => {
                return Err(EncodeError::NotSupported {
                    what: "server commands",
                    codec: codec.name(),
                })
            }
        };
        Ok(Self {
            codec,
            messages: alloc::vec![CommandMessage {
                kind: CommandMessage::COMMAND,
                timestamp_s: None,
                imei,
                payload: payload.as_ref().to_vec(),
            }],
        })
    }

    /// One Codec 12 text command, e.g. `getinfo`.
    pub fn codec12(text: &str) -> Self {
        Self {
            codec: Codec::Codec12,
            messages: alloc::vec![CommandMessage::command(text)],
        }
    }

    /// One Codec 14 text command addressed to `imei` (15 digits).
    pub fn codec14(text: &str, imei: &str) -> Result<Self, EncodeError> {
        let mut m = CommandMessage::command(text);
        m.imei = Some(imei_to_bcd(imei)?);
        Ok(Self {
            codec: Codec::Codec14,
            messages: alloc::vec![m],
        })
    }

    /// Encode the data field (codec id through quantity 2).
    pub fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if !self.codec.is_command() {
            return Err(EncodeError::NotSupported {
                what: "command messages",
                codec: self.codec.name(),
            });
        }
        let count = u8::try_from(self.messages.len()).map_err(|_| EncodeError::OutOfRange {
            field: "message count",
            value: self.messages.len() as u64,
            max: 255,
        })?;
        let (has_time, has_imei) = prefix_len(self.codec);
        out.push(self.codec.id());
        out.push(count);
        for m in &self.messages {
            out.push(m.kind);
            let size = m.payload.len() as u64 + 4 * u64::from(has_time) + 8 * u64::from(has_imei);
            let size = u32::try_from(size).map_err(|_| EncodeError::OutOfRange {
                field: "message size",
                value: size,
                max: u32::MAX.into(),
            })?;
            out.extend_from_slice(&size.to_be_bytes());
            if has_time {
                out.extend_from_slice(&m.timestamp_s.unwrap_or_default().to_be_bytes());
            }
            if has_imei {
                out.extend_from_slice(&m.imei.ok_or(EncodeError::InvalidImei)?);
            }
            out.extend_from_slice(&m.payload);
        }
        out.push(count);
        Ok(())
    }
}
