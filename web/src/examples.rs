//! The examples menu's packets: the official worked examples of Teltonika's documentation,
//! one per codec and transport, and a Codec 8 Extended frame with a real route, built by core's
//! encoder, so that the map has something to show (the official vectors all carry 0,0).

use fleetview::{AvlData, AvlRecord, Codec, GpsElement, IoElement, IoValue, Priority};

/// One entry of the examples menu.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    /// Stable id, used in tests (`data-example` attribute).
    pub id: &'static str,
    /// Menu group: "TCP", "UDP", "Commands", "Generated".
    pub group: &'static str,
    /// Menu text.
    pub title: &'static str,
    /// The packet as hex.
    pub hex: String,
    /// Whether the example needs lenient decoding (published with a wrong CRC, …).
    pub lenient: bool,
}

fn official(id: &'static str, group: &'static str, title: &'static str, hex: &str) -> Example {
    Example {
        id,
        group,
        title,
        hex: hex.to_string(),
        lenient: false,
    }
}

/// A record from a device in BLE beacon mode: an iBeacon with battery and temperature (IO 385),
/// an EYE sensor (11317), fault codes (281) and the serving cell (21, 205, 206, 241); the
/// example of core/docs/json-model.md.
const BEACONS_8E: &str = "000000000000008D8E010000019ADE135400000F1159E020989BEC0070005A0B002A018100070001001504000200CD609100CE0D49000100F10000601A000000030181001B1127E2C56DB5DFFB48D2B060D0F5A71096E000010002C40BE808662C350021011F0001C20F067CD9F4038A2105094559455F434152474F020793FB5D2980115F0119000B50303130312C50303330300100003024";

/// All examples, in menu order. The generated route comes first: it is what the page shows when
/// it opens without a packet in the URL.
pub fn all() -> Vec<Example> {
    let mut list = vec![Example {
        id: "route-8e",
        group: "Generated",
        title: "Codec 8E route in Vilnius (8 records, one without fix)",
        hex: fleetview::hex::encode(&route_frame()),
        lenient: false,
    }];
    list.push(Example {
        id: "beacons-8e",
        group: "Generated",
        title: "Codec 8E in beacon mode (beacon, EYE sensor, fault codes, serving cell)",
        hex: BEACONS_8E.to_string(),
        lenient: false,
    });
    list.extend([
        official("imei", "TCP", "IMEI login (ack 01)", "000F333536333037303432343431303133"),
        official(
            "tcp-8",
            "TCP",
            "Codec 8, one IO of each size (T1)",
            "000000000000003608010000016B40D8EA30010000000000000000000000000000000105021503010101425E0F01F10000601A014E0000000000000000010000C7CF",
        ),
        official(
            "tcp-8-two",
            "TCP",
            "Codec 8, two records (T3)",
            "000000000000004308020000016B40D57B480100000000000000000000000000000001010101000000000000016B40D5C198010000000000000000000000000000000101010101000000020000252C",
        ),
        official(
            "tcp-8e",
            "TCP",
            "Codec 8 Extended (T4)",
            "000000000000004A8E010000016B412CEE000100000000000000000000000000000000010005000100010100010011001D00010010015E2C880002000B000000003544C87A000E000000001DD7E06A00000100002994",
        ),
        official(
            "tcp-16",
            "TCP",
            "Codec 16, two records (T5)",
            "000000000000005F10020000016BDBC7833000000000000000000000000000000000000B05040200010000030002000B00270042563A00000000016BDBC7871800000000000000000000000000000000000B05040200010000030002000B00260042563A00000200005FB3",
        ),
        official(
            "udp-8",
            "UDP",
            "UDP Codec 8 (T14)",
            "003DCAFE0105000F33353230393330383634303336353508010000016B4F815B30010000000000000000000000000000000103021503010101425DBC000001",
        ),
        official(
            "udp-8e",
            "UDP",
            "UDP Codec 8 Extended (T15)",
            "005FCAFE0107000F3335323039333038363430333635358E010000016B4F831C680100000000000000000000000000000000010005000100010100010011009D00010010015E2C880002000B000000003544C87A000E000000001DD7E06A000001",
        ),
        official(
            "udp-16",
            "UDP",
            "UDP Codec 16 (T16)",
            "0048CAFE0107000F33353230393430383532333135393210010000015117E40FE80000000000000000000000000000000000EF05050400010000030000B40000EF01010042111A000001",
        ),
        official(
            "tcp-12",
            "Commands",
            "Codec 12 command getinfo (T6)",
            "000000000000000F0C010500000007676574696E666F0100004312",
        ),
        official(
            "tcp-12-response",
            "Commands",
            "Codec 12 response to getio (T8)",
            "00000000000000370C01060000002F4449313A31204449323A30204449333A302041494E313A302041494E323A313639323420444F313A3020444F323A3101000066E3",
        ),
        official(
            "tcp-13",
            "Commands",
            "Codec 13 message with timestamp (T13)",
            "00000000000000130d01060000000b0a81c320676574696e666f0100001d6b",
        ),
        official(
            "tcp-14",
            "Commands",
            "Codec 14 command getver to an IMEI (T9)",
            "00000000000000160E01050000000E0352093081452251676574766572010000D2C1",
        ),
        official(
            "tcp-14-response",
            "Commands",
            "Codec 14 ACK response (T10)",
            "00000000000000AB0E0106000000A303520930814522515665723A30332E31382E31345F3034204750533A41584E5F352E31305F333333332048773A464D42313230204D6F643A313520494D45493A33353230393330383134353232353120496E69743A323031382D31312D323220373A313320557074696D653A3137323334204D41433A363042444430303136323631205350433A312830292041584C3A30204F42443A3020424C3A312E362042543A340100007AAE",
        ),
        Example {
            lenient: true,
            ..official(
                "tcp-14-nack",
                "Commands",
                "Codec 14 nACK, published with a wrong CRC (T11, lenient)",
                "00000000000000100E011100000008035209308145246801000032AC",
            )
        },
        official(
            "tcp-15",
            "Commands",
            "Codec 15 message Hello! (T12)",
            "000000000000001b0f010b00000013654b65a4012345678912345648656c6c6f210a01000093d6",
        ),
        official(
            "stream",
            "TCP",
            "A captured stream: login, keep-alive, Codec 8 frame",
            "000F333536333037303432343431303133FF000000000000002808010000016B40D9AD80010000000000000000000000000000000103021503010101425E100000010000F22A",
        ),
    ]);
    list
}

/// The example with this id.
pub fn by_id(id: &str) -> Option<Example> {
    all().into_iter().find(|e| e.id == id)
}

/// A drive through Vilnius, as an FMB device would report it: ignition, movement, speed,
/// external voltage, fuel level and odometer, one record per 30 s. The fifth record has no fix
/// (0 satellites), to show that such records are listed but not plotted.
pub fn route_frame() -> Vec<u8> {
    // (latitude, longitude, speed km/h, angle, satellites)
    const ROUTE: [(f64, f64, u16, u16, u8); 8] = [
        (54.687_157, 25.279_652, 0, 0, 11),
        (54.688_410, 25.273_930, 32, 290, 12),
        (54.689_800, 25.266_820, 41, 285, 12),
        (54.690_780, 25.260_560, 38, 280, 10),
        (54.690_780, 25.260_560, 0, 0, 0),
        (54.693_540, 25.254_870, 45, 305, 9),
        (54.696_950, 25.250_010, 27, 330, 11),
        (54.698_200, 25.248_110, 0, 0, 11),
    ];
    let start_ms: u64 = 1_700_000_000_000;
    let records = ROUTE
        .iter()
        .enumerate()
        .map(|(i, &(lat, lon, speed, angle, satellites))| {
            let moving = speed > 0;
            let i16_ = i as u16;
            AvlRecord {
                timestamp_ms: start_ms + 30_000 * i as u64,
                priority: Priority::LOW,
                gps: GpsElement {
                    longitude: (lon * 1e7).round() as i32,
                    latitude: (lat * 1e7).round() as i32,
                    altitude: 112 + i as i16,
                    angle,
                    satellites,
                    speed,
                },
                event_id: if i == 0 { 239 } else { 0 },
                generation_type: None,
                io: vec![
                    IoElement {
                        id: 239,
                        value: IoValue::U8(1),
                    },
                    IoElement {
                        id: 240,
                        value: IoValue::U8(u8::from(moving)),
                    },
                    IoElement {
                        id: 21,
                        value: IoValue::U8(if satellites > 0 { 5 } else { 1 }),
                    },
                    IoElement {
                        id: 24,
                        value: IoValue::U16(speed),
                    },
                    IoElement {
                        id: 66,
                        value: IoValue::U16(12_650 + 10 * i16_),
                    },
                    IoElement {
                        id: 89,
                        value: IoValue::U8(63 - i as u8),
                    },
                    IoElement {
                        id: 16,
                        value: IoValue::U32(15_230_000 + 250 * u32::from(i16_)),
                    },
                ],
            }
        })
        .collect();
    let data = AvlData::new(Codec::Codec8Ext, records);
    fleetview::encode::avl_frame(&data).expect("the route fits Codec 8 Extended")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_decodes() {
        for e in all() {
            let bytes = fleetview::hex::decode(&e.hex).unwrap();
            let opts = fleetview::DecodeOptions {
                lenient: e.lenient,
                ..Default::default()
            };
            let packets = fleetview::decode(&bytes, &opts);
            assert!(packets.is_ok(), "{}: {:?}", e.id, packets.err());
        }
    }

    #[test]
    fn the_route_has_seven_fixes_and_one_record_without() {
        let packets = fleetview::decode(&route_frame(), &Default::default()).unwrap();
        let records = packets[0].records();
        assert_eq!(records.len(), 8);
        assert_eq!(records.iter().filter(|r| r.gps.has_fix()).count(), 7);
    }

    #[test]
    fn ids_are_unique() {
        let list = all();
        for (i, e) in list.iter().enumerate() {
            assert!(list[i + 1..].iter().all(|o| o.id != e.id), "{}", e.id);
        }
    }
}
