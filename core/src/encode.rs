//! Encoders: the bytes a device or a server puts on the wire. Used by the simulator, by the
//! command API, to build examples, and by the round-trip tests that check the decoders.
//!
//! Each transport encodes its own framing ([`crate::frame::wrap_frame`],
//! [`crate::udp::encode_datagram`]); this module gathers them by what they carry.

use alloc::vec::Vec;

use crate::command::CommandPacket;
use crate::data::{AvlData, Content};
use crate::error::EncodeError;
use crate::frame::KEEP_ALIVE;

pub use crate::frame::wrap_frame;
pub use crate::udp::{avl_datagram, encode_datagram};

/// A TCP frame carrying AVL records.
///
/// ```
/// use fleetview::{AvlData, AvlRecord, Codec};
/// let data = AvlData::new(Codec::Codec8Ext, vec![AvlRecord::default()]);
/// let frame = fleetview::encode::avl_frame(&data).unwrap();
/// let packets = fleetview::decode(&frame, &Default::default()).unwrap();
/// assert_eq!(packets[0].records(), &data.records[..]);
/// ```
pub fn avl_frame(data: &AvlData) -> Result<Vec<u8>, EncodeError> {
    Ok(wrap_frame(&data.encode()?))
}

/// A TCP frame carrying command messages (Codec 12, 13, 14, 15).
///
/// ```
/// let frame = fleetview::encode::command_frame(&fleetview::CommandPacket::codec12("getinfo")).unwrap();
/// assert_eq!(fleetview::hex::encode(&frame), "000000000000000f0c010500000007676574696e666f0100004312");
/// ```
pub fn command_frame(packet: &CommandPacket) -> Result<Vec<u8>, EncodeError> {
    let mut body = Vec::with_capacity(
        packet
            .messages
            .iter()
            .map(|m| m.payload.len() + 17)
            .sum::<usize>()
            + 3,
    );
    packet.encode_body(&mut body)?;
    Ok(wrap_frame(&body))
}

/// Any TCP content: login, keep-alive, AVL or command frame.
pub fn encode_tcp(content: &Content) -> Result<Vec<u8>, EncodeError> {
    match content {
        Content::Imei(imei) => Ok(imei.login_frame()),
        Content::KeepAlive => Ok(alloc::vec![KEEP_ALIVE]),
        Content::Avl(d) => avl_frame(d),
        Content::Command(c) => command_frame(c),
    }
}
