//! The protocol's field names: what a [`crate::Span`] labels and what a
//! [`crate::DecodeError`] was reading. One list, so that the playground, the error JSON and the
//! decoders agree on every name.

use core::fmt;

/// The broad class of a field, for colouring a byte map (`"frame"`, `"gps"`, `"io-value"` …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SpanKind {
    /// Framing: preamble, lengths, codec id, record and message counts, keep-alive.
    Frame,
    /// The CRC trailer.
    Crc,
    /// Record head: timestamp, priority, event id, generation type, masks.
    Record,
    /// The GPS element.
    Gps,
    /// IO group counts.
    IoCount,
    /// IO ids.
    IoId,
    /// IO values and their lengths.
    IoValue,
    /// The IMEI and its length.
    Imei,
    /// UDP channel headers.
    Udp,
    /// Command message fields.
    Message,
    /// Beacons of the beacon list (IO 385) and its data part byte.
    Beacon,
    /// Sensor lists (IOs 548, 10828, 10829, 10831, 11317): header, lengths, parameters.
    Sensor,
    /// Bytes that should not be there.
    Bad,
}

impl SpanKind {
    /// A short stable name, usable as a CSS class.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Frame => "frame",
            Self::Crc => "crc",
            Self::Record => "record",
            Self::Gps => "gps",
            Self::IoCount => "io-count",
            Self::IoId => "io-id",
            Self::IoValue => "io-value",
            Self::Imei => "imei",
            Self::Udp => "udp",
            Self::Message => "message",
            Self::Beacon => "beacon",
            Self::Sensor => "sensor",
            Self::Bad => "bad",
        }
    }
}

macro_rules! fields {
    ($($(#[$doc:meta])* $variant:ident = $name:literal, $kind:ident;)*) => {
        /// A protocol field. [`Field::name`] is the stable name used in error JSON and
        /// messages (`"data field length"`, `"io value"`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Field {
            $($(#[$doc])* $variant,)*
        }

        impl Field {
            /// Every field, in protocol order.
            pub const ALL: &'static [Field] = &[$(Field::$variant),*];

            /// The field's name as errors and traces give it, e.g. `"data field length"`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }

            /// The broad class of the field.
            pub fn kind(self) -> SpanKind {
                match self {
                    $(Self::$variant => SpanKind::$kind,)*
                }
            }
        }
    };
}

fields! {
    /// TCP: four zero bytes before the data field length.
    Preamble = "preamble", Frame;
    /// TCP: bytes from the codec id to Number of Data 2.
    DataFieldLength = "data field length", Frame;
    /// TCP: the data field as a whole.
    DataField = "data field", Frame;
    /// The `0xFF` keep-alive byte.
    KeepAlive = "keep-alive", Frame;
    /// A bare AVL data array as a whole.
    Data = "data", Frame;
    /// The codec id byte.
    CodecId = "codec id", Frame;
    /// Number of Data 1 (records before them).
    NumberOfData1 = "number of data 1", Frame;
    /// Number of Data 2 (records after them).
    NumberOfData2 = "number of data 2", Frame;
    /// Command codecs: Quantity 1.
    Quantity1 = "quantity 1", Frame;
    /// Command codecs: Quantity 2.
    Quantity2 = "quantity 2", Frame;
    /// TCP: the CRC-16/IBM trailer.
    Crc = "crc", Crc;
    /// The IMEI length field (login, UDP).
    ImeiLength = "imei length", Imei;
    /// The IMEI digits (login, UDP).
    Imei = "imei", Imei;
    /// Record timestamp, ms since 1970.
    Timestamp = "timestamp", Record;
    /// Codec 7: 2 bits of priority and 30 of seconds since 2007.
    TimestampAndPriority = "timestamp and priority", Record;
    /// Record priority.
    Priority = "priority", Record;
    /// Longitude.
    Longitude = "longitude", Gps;
    /// Latitude.
    Latitude = "latitude", Gps;
    /// Altitude.
    Altitude = "altitude", Gps;
    /// Angle (heading).
    Angle = "angle", Gps;
    /// Visible satellites.
    Satellites = "satellites", Gps;
    /// Speed.
    Speed = "speed", Gps;
    /// The IO id that triggered the record.
    EventIoId = "event io id", Record;
    /// Codec 16 generation type.
    GenerationType = "generation type", Record;
    /// Codec 7 global mask.
    GlobalMask = "global mask", Record;
    /// Codec 7 GPS element mask.
    GpsMask = "gps mask", Gps;
    /// Codec 7 location area code.
    LocationAreaCode = "location area code", Gps;
    /// Codec 7 cell id.
    CellId = "cell id", Gps;
    /// Codec 7 GSM signal quality.
    SignalQuality = "signal quality", Gps;
    /// Codec 7 operator code.
    OperatorCode = "operator code", Gps;
    /// Total IO element count.
    IoCount = "io count", IoCount;
    /// Count of the 1-byte IO group.
    IoCount1 = "io count 1 byte", IoCount;
    /// Count of the 2-byte IO group.
    IoCount2 = "io count 2 bytes", IoCount;
    /// Count of the 4-byte IO group.
    IoCount4 = "io count 4 bytes", IoCount;
    /// Count of the 8-byte IO group.
    IoCount8 = "io count 8 bytes", IoCount;
    /// Count of the variable-length IO group (Codec 8 Extended).
    IoCountVariable = "io count variable", IoCount;
    /// An IO id.
    IoId = "io id", IoId;
    /// The length of a variable-length IO value.
    IoLength = "io length", IoValue;
    /// An IO value.
    IoValue = "io value", IoValue;
    /// The beacon list's data part byte: this part's number and the number of parts.
    DataPart = "data part", Beacon;
    /// One beacon of the beacon list: flags, identity, RSSI, battery, temperature.
    Beacon = "beacon", Beacon;
    /// The first byte of a sensor list (protocol version).
    SensorListHeader = "sensor list header", Sensor;
    /// A sensor's length byte.
    SensorLength = "sensor length", Sensor;
    /// One parameter of a sensor: id, length and value.
    SensorParameter = "sensor parameter", Sensor;
    /// Command message type.
    MessageType = "message type", Message;
    /// Command message size.
    MessageSize = "message size", Message;
    /// Codec 13/15 message timestamp.
    MessageTimestamp = "message timestamp", Message;
    /// Codec 14/15 addressed IMEI (BCD).
    MessageImei = "message imei", Imei;
    /// Command text or response.
    MessagePayload = "message payload", Message;
    /// UDP: bytes after the length field.
    Length = "length", Udp;
    /// UDP: channel packet id.
    PacketId = "packet id", Udp;
    /// UDP: packet type.
    PacketType = "packet type", Udp;
    /// UDP: AVL packet id.
    AvlPacketId = "avl packet id", Udp;
    /// Bytes after the last field of a length-delimited structure.
    TrailingBytes = "trailing bytes", Bad;
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Field {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        for (i, a) in Field::ALL.iter().enumerate() {
            for b in &Field::ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
            }
        }
    }
}
