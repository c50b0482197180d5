//! Encoders: the bytes a device or a server puts on the wire. Used by the simulator, by the
//! command API, to build examples, and by the round-trip tests that check the decoders.

use alloc::vec::Vec;

use crate::avl::AvlData;
use crate::command::CommandPacket;
use crate::error::EncodeError;
use crate::frame::{FRAME_OVERHEAD, KEEP_ALIVE};
use crate::packet::Content;
use crate::udp::UdpHeader;

/// Wrap a data field (codec id … Number of Data 2) in a TCP frame: preamble, length, CRC.
pub fn wrap_frame(data_field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data_field.len() + FRAME_OVERHEAD);
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&(data_field.len() as u32).to_be_bytes());
    out.extend_from_slice(data_field);
    out.extend_from_slice(&u32::from(crate::crc::crc16(data_field)).to_be_bytes());
    out
}

/// A TCP frame carrying AVL records.
///
/// ```
/// use fleetview::{AvlData, AvlRecord, Codec};
/// let data = AvlData { codec: Codec::Codec8Ext, records: vec![AvlRecord::default()] };
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

/// A UDP channel datagram. The length field is computed; `header.length` is ignored.
pub fn encode_datagram(header: &UdpHeader, content: &Content) -> Result<Vec<u8>, EncodeError> {
    let imei = header.imei.as_str().as_bytes();
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&header.packet_id.to_be_bytes());
    out.push(header.packet_type);
    out.push(header.avl_packet_id);
    out.extend_from_slice(&(imei.len() as u16).to_be_bytes());
    out.extend_from_slice(imei);
    match content {
        Content::Avl(d) => d.encode_into(&mut out)?,
        Content::Command(c) => c.encode_body(&mut out)?,
        _ => {
            return Err(EncodeError::NotSupported {
                what: "a login or keep-alive in a datagram",
                codec: "",
            })
        }
    }
    let len = out.len() - 2;
    let len16 = u16::try_from(len).map_err(|_| EncodeError::OutOfRange {
        field: "datagram length",
        value: len as u64,
        max: u16::MAX.into(),
    })?;
    out[..2].copy_from_slice(&len16.to_be_bytes());
    Ok(out)
}

/// A UDP datagram carrying AVL records, as a device sends it.
pub fn avl_datagram(
    imei: &crate::Imei,
    packet_id: u16,
    avl_packet_id: u8,
    data: &AvlData,
) -> Result<Vec<u8>, EncodeError> {
    let header = UdpHeader {
        length: 0,
        packet_id,
        packet_type: 1,
        avl_packet_id,
        imei: imei.clone(),
    };
    encode_datagram(&header, &Content::Avl(data.clone()))
}
