//! What breaks devices, found in a session: each a stable snake_case kind and a message for
//! people, with where it happened (capture time and packet number).

use alloc::string::String;

/// A kind of problem. Stable snake_case names ([`ProblemKind::code`]) are the JSON's `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The server acknowledged a different number of records than the frame carried: fewer
    /// makes the device send them again, more is a server bug the device ignores.
    AckCountMismatch,
    /// A data frame (or UDP datagram) never got its ack: before the device sent the next one,
    /// or before the connection closed or the capture ended.
    MissingAck,
    /// The device sent the same frame again (bytes identical to one of its recent frames):
    /// the ack of the first one was missing, short or late.
    FrameResent,
    /// The server sent a 4-byte ack after a Codec 12/13/14 message, which must never be acked:
    /// the device takes the bytes for the start of a command frame.
    AckAfterCommand,
    /// The server sent an ack with no data frame waiting for one.
    AckWithoutFrame,
    /// Bytes of the stream are not in the capture (capture loss, snap length): decoding
    /// resumed at the next frame or login.
    BytesMissing,
    /// The server answered the login with `00`: the device drops the connection.
    ImeiRejected,
    /// A device frame that does not decode (bad CRC, impossible length, malformed records): a
    /// server rejects it and the device sends it again.
    InvalidFrame,
    /// Device bytes that are not a Teltonika login, frame or keep-alive: skipped up to the next
    /// frame or login.
    UnrecognizedBytes,
    /// Server bytes that are neither a login answer, an ack nor a command frame.
    UnexpectedReply,
    /// The server sent a command while records were still waiting for their ack: devices take
    /// commands only once their records are acknowledged.
    CommandWhileUnacked,
    /// A command the device never answered before the connection closed or the capture ended.
    CommandUnanswered,
}

impl ProblemKind {
    /// Every kind.
    pub const ALL: [Self; 12] = [
        Self::AckCountMismatch,
        Self::MissingAck,
        Self::FrameResent,
        Self::AckAfterCommand,
        Self::AckWithoutFrame,
        Self::BytesMissing,
        Self::ImeiRejected,
        Self::InvalidFrame,
        Self::UnrecognizedBytes,
        Self::UnexpectedReply,
        Self::CommandWhileUnacked,
        Self::CommandUnanswered,
    ];

    /// The stable snake_case name.
    pub fn code(self) -> &'static str {
        match self {
            Self::AckCountMismatch => "ack_count_mismatch",
            Self::MissingAck => "missing_ack",
            Self::FrameResent => "frame_resent",
            Self::AckAfterCommand => "ack_after_command",
            Self::AckWithoutFrame => "ack_without_frame",
            Self::BytesMissing => "bytes_missing",
            Self::ImeiRejected => "imei_rejected",
            Self::InvalidFrame => "invalid_frame",
            Self::UnrecognizedBytes => "unrecognized_bytes",
            Self::UnexpectedReply => "unexpected_reply",
            Self::CommandWhileUnacked => "command_while_unacked",
            Self::CommandUnanswered => "command_unanswered",
        }
    }
}

impl serde::Serialize for ProblemKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

/// One problem of a session.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// What kind.
    pub kind: ProblemKind,
    /// What happened, with the packet numbers and counts involved.
    pub message: String,
    /// Capture time (ISO 8601 UTC, microseconds).
    #[serde(serialize_with = "super::report::iso_time")]
    pub time: u64,
    /// The packet number in the capture file where it shows.
    pub frame: u64,
    /// Index in the session's `packets` of the device packet it is about, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packet: Option<usize>,
}
