//! Answers to commands: what an FMB firmware replies to `getinfo`, `getver`, `getgps`,
//! `getstatus`, `getio`, `readio N`, `getrecord`, `setdigout`, `cpureset`, and a plain
//! "Unknown command" otherwise, so that `fleetview send` and the command API have something real
//! to show.

use fleetview::{AvlRecord, Codec, CommandMessage, CommandPacket, Imei, IoValue};

/// What a device knows about itself when a command comes in.
pub(crate) struct Facts<'a> {
    pub(crate) imei: &'a Imei,
    pub(crate) index: u32,
    /// The latest record (position, IO values).
    pub(crate) last: &'a AvlRecord,
    /// The device clock when no record exists yet, milliseconds since 1970.
    pub(crate) start_ms: u64,
    pub(crate) uptime_s: u64,
    /// Records waiting for an ack.
    pub(crate) buffered: usize,
    /// Records produced since start.
    pub(crate) generated: u64,
}

/// Answer a command packet as an FMB device would: a Codec 12 response (type 06) to each
/// command, or for Codec 14 a response with the IMEI, or a nACK (type 11) when the command was
/// addressed to another IMEI. `None` when the packet holds no command.
pub(crate) fn answer(packet: &CommandPacket, device: &Facts<'_>) -> Option<CommandPacket> {
    let mut messages = Vec::new();
    for m in packet
        .messages
        .iter()
        .filter(|m| m.kind == CommandMessage::COMMAND)
    {
        let text = String::from_utf8_lossy(&m.payload);
        let reply = if packet.codec == Codec::Codec14 {
            let ours = device.imei.to_bcd().ok();
            if m.imei != ours {
                // Codec 14: a command for another IMEI gets a nACK with an empty payload.
                messages.push(CommandMessage {
                    kind: CommandMessage::NACK,
                    timestamp_s: None,
                    imei: ours,
                    payload: Vec::new(),
                });
                continue;
            }
            CommandMessage {
                kind: CommandMessage::RESPONSE,
                timestamp_s: None,
                imei: ours,
                payload: reply_text(text.trim(), device).into_bytes(),
            }
        } else {
            CommandMessage {
                kind: CommandMessage::RESPONSE,
                timestamp_s: None,
                imei: None,
                payload: reply_text(text.trim(), device).into_bytes(),
            }
        };
        messages.push(reply);
    }
    if messages.is_empty() {
        return None;
    }
    let codec = if packet.codec == Codec::Codec14 {
        Codec::Codec14
    } else {
        Codec::Codec12
    };
    Some(CommandPacket { codec, messages })
}

/// The text an FMB firmware answers to the common SMS/GPRS commands.
fn reply_text(command: &str, device: &Facts<'_>) -> String {
    let last = device.last;
    let now_ms = last.timestamp_ms.max(device.start_ms);
    let time = fleetview::time::iso8601(now_ms);
    let (date, clock) = (&time[..10], &time[11..19]);
    let uptime = device.uptime_s;
    let io = |id| last.io(id).and_then(IoValue::raw).unwrap_or(0);
    let mut words = command.split_whitespace();
    let name = words.next().unwrap_or("").to_ascii_lowercase();
    match name.as_str() {
        "getinfo" => format!(
            "RTC:{} {} Init:{} {} UpTime:{uptime}s PWR:PwrVoltage RST:0 GPS:3 SAT:{} TTFF:14 TTLL:2 NOGPS:0:0 SR:0 FG:0 FL:0 SMS:0 REC:{} MD:{} DB:0",
            date.replace('-', "/"),
            &clock[..5],
            date.replace('-', "/"),
            &clock[..5],
            last.gps.satellites,
            device.buffered,
            io(240),
        ),
        "getver" => format!(
            "Ver:03.29.00_Rev:00 GPS:AXN_5.1.9 Hw:FMB920 Mod:13 IMEI:{} Init:{date} {} Uptime:{uptime} MAC:0000{:08X} SPEC:1 Code:0 BL:1.10",
            device.imei,
            &clock[..5],
            device.index
        ),
        "getgps" => format!(
            "GPS:1 Sat:{} Lat:{:.6} Long:{:.6} Alt:{} Speed:{} Dir:{} Date: {} Time: {clock}",
            last.gps.satellites,
            last.gps.latitude_deg(),
            last.gps.longitude_deg(),
            last.gps.altitude,
            last.gps.speed,
            last.gps.angle,
            date.replace('-', "/"),
        ),
        "getstatus" => format!(
            "Data Link: 1 GPRS: 1 Phone: 0 SIM: 0 OP: 24602 Signal: {} NewSMS: 0 Roaming: 0 SMSFull: 0 LAC: 1 Cell ID: {} NetType: 1 FwUpd:-1",
            io(21),
            3000 + device.index % 1000
        ),
        "getio" => format!(
            "DI1:0 DI2:0 DI3:0 AIN1:0 DOUT1:0 DOUT2:0 IGN:{} MOV:{} FUEL:{}% ODO:{}m EXT:{}mV",
            io(239),
            io(240),
            io(89),
            io(16),
            io(66)
        ),
        "readio" => match words.next().and_then(|w| w.parse::<u16>().ok()) {
            Some(id) => match last.io(id).and_then(IoValue::raw) {
                Some(v) => format!("IO ID:{id} Value:{v}"),
                None => format!("IO ID:{id} not found"),
            },
            None => "Param ID missing".to_string(),
        },
        "getrecord" => format!("Records:{} Unsent:{}", device.generated, device.buffered),
        "cpureset" => "Reseting device".to_string(),
        "setdigout" => {
            let bits = words.next().unwrap_or("00");
            let d = |i| bits.as_bytes().get(i).map_or('0', |&b| b as char);
            format!("DOUT1:{} DOUT2:{} Timeout:INFINITY", d(0), d(1))
        }
        _ => format!("Unknown command: {command}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(imei: &'a Imei, last: &'a AvlRecord) -> Facts<'a> {
        Facts {
            imei,
            index: 3,
            last,
            start_ms: 1_700_000_000_000,
            uptime_s: 42,
            buffered: 5,
            generated: 99,
        }
    }

    #[test]
    fn codec12_commands_get_type_06_responses() {
        let imei = Imei::new("352093081452251").unwrap();
        let last = AvlRecord::default();
        let out = answer(&CommandPacket::codec12("getver"), &facts(&imei, &last)).unwrap();
        assert_eq!(out.codec, Codec::Codec12);
        assert_eq!(out.messages[0].kind, CommandMessage::RESPONSE);
        let text = out.messages[0].text().unwrap();
        assert!(
            text.starts_with("Ver:") && text.contains("IMEI:352093081452251"),
            "{text}"
        );
        let out = answer(&CommandPacket::codec12("readio 239"), &facts(&imei, &last)).unwrap();
        assert_eq!(out.messages[0].text(), Some("IO ID:239 not found"));
        let out = answer(&CommandPacket::codec12("frobnicate"), &facts(&imei, &last)).unwrap();
        assert_eq!(out.messages[0].text(), Some("Unknown command: frobnicate"));
    }

    #[test]
    fn codec14_checks_the_imei() {
        let imei = Imei::new("352093081452251").unwrap();
        let last = AvlRecord::default();
        let ours = CommandPacket::codec14("getinfo", "352093081452251").unwrap();
        let out = answer(&ours, &facts(&imei, &last)).unwrap();
        assert_eq!(
            (out.codec, out.messages[0].kind),
            (Codec::Codec14, CommandMessage::RESPONSE)
        );
        assert_eq!(out.messages[0].imei, Some(imei.to_bcd().unwrap()));
        let theirs = CommandPacket::codec14("getinfo", "123456789012345").unwrap();
        let out = answer(&theirs, &facts(&imei, &last)).unwrap();
        assert_eq!(out.messages[0].kind, CommandMessage::NACK);
        assert!(out.messages[0].payload.is_empty());
    }

    #[test]
    fn responses_are_not_answered() {
        let imei = Imei::new("1").unwrap();
        let last = AvlRecord::default();
        let mut p = CommandPacket::codec12("x");
        p.messages[0].kind = CommandMessage::RESPONSE;
        assert!(answer(&p, &facts(&imei, &last)).is_none());
    }
}
