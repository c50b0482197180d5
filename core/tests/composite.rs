//! Composite IO values: for every decoder, a value built from generated beacons, parameters or
//! codes encodes and decodes back to the same value, alone and inside a Codec 8 Extended frame
//! (with its `decoded` JSON and byte labels); any bytes under a composite id decode or give one
//! warning inside the value, never a failed record.

use fleetview::composite::{
    self, Beacon, BeaconId, BeaconList, Composite, EyeData, FaultCodes, Operator, Parameter,
    Sensor, SensorList, SensorListKind, Vin,
};
use fleetview::encode::avl_frame;
use fleetview::{
    annotate, decode, AvlData, AvlRecord, Codec, Content, DecodeOptions, Field, IoElement, IoValue,
    WarningKind,
};
use proptest::prelude::*;

fn beacon() -> impl Strategy<Value = Beacon> {
    let id = prop_oneof![
        (any::<[u8; 16]>(), any::<u16>(), any::<u16>())
            .prop_map(|(uuid, major, minor)| BeaconId::IBeacon { uuid, major, minor }),
        (any::<[u8; 10]>(), any::<[u8; 6]>()).prop_map(|(namespace, instance)| {
            BeaconId::Eddystone {
                namespace,
                instance,
            }
        }),
    ];
    (
        id,
        any::<Option<i8>>(),
        any::<Option<u16>>(),
        any::<Option<i16>>(),
    )
        .prop_map(|(id, rssi, battery_mv, temperature)| Beacon {
            id,
            rssi,
            battery_mv,
            temperature,
        })
}

fn beacon_list() -> impl Strategy<Value = BeaconList> {
    (1u8..=15)
        .prop_flat_map(|part| (Just(part), part..=15))
        .prop_flat_map(|(part, parts)| {
            prop::collection::vec(beacon(), 0..8).prop_map(move |beacons| BeaconList {
                part,
                parts,
                beacons,
            })
        })
}

fn eye() -> impl Strategy<Value = EyeData> {
    (
        any::<Option<i16>>(),
        any::<Option<u8>>(),
        any::<Option<bool>>(),
        any::<Option<u16>>(),
        any::<Option<(i8, i16)>>(),
        any::<bool>(),
        any::<Option<u8>>(),
    )
        .prop_map(
            |(temperature, humidity, magnet, movement, angle, low_battery, battery)| EyeData {
                temperature,
                humidity,
                magnet,
                movement,
                angle,
                low_battery,
                battery,
            },
        )
}

fn parameter(kind: SensorListKind) -> impl Strategy<Value = Parameter> {
    let data = match kind {
        SensorListKind::Advanced => prop::collection::vec(any::<u8>(), 0..31)
            .prop_map(|v| Parameter::Advertisement(composite::Advertisement(v)))
            .boxed(),
        SensorListKind::Eye => eye().prop_map(Parameter::Eye).boxed(),
    };
    prop_oneof![
        any::<i8>().prop_map(Parameter::Rssi),
        prop::collection::vec(any::<u8>(), 0..20).prop_map(Parameter::Id),
        data,
        "\\PC{0,6}".prop_map(Parameter::Name),
        any::<i16>().prop_map(Parameter::Temperature),
        any::<u8>().prop_map(Parameter::Humidity),
        any::<u8>().prop_map(Parameter::Magnet),
        any::<u8>().prop_map(Parameter::Movement),
        any::<u16>().prop_map(Parameter::MovementCount),
        any::<i8>().prop_map(Parameter::Pitch),
        any::<i16>().prop_map(Parameter::Roll),
        any::<u8>().prop_map(Parameter::LowBattery),
        any::<u16>().prop_map(Parameter::BatteryVoltage),
        any::<[u8; 6]>().prop_map(Parameter::Mac),
        any::<u16>().prop_map(Parameter::MagnetCount),
        (
            prop_oneof![3u8..=4, 17u8..=255],
            prop::collection::vec(any::<u8>(), 0..10)
        )
            .prop_map(|(id, value)| Parameter::Unknown { id, value }),
    ]
}

/// At most 6 parameters of at most 32 bytes each: a sensor stays within its 255-byte length.
fn sensor_list(kind: SensorListKind) -> impl Strategy<Value = SensorList> {
    let sensor =
        prop::collection::vec(parameter(kind), 0..6).prop_map(|parameters| Sensor { parameters });
    (any::<u8>(), prop::collection::vec(sensor, 0..5))
        .prop_map(|(header, sensors)| SensorList { header, sensors })
}

fn composite_id(kind: SensorListKind) -> impl Strategy<Value = u16> {
    match kind {
        SensorListKind::Advanced => Just(548u16).boxed(),
        SensorListKind::Eye => prop::sample::select(vec![10828u16, 10829, 10831, 11317]).boxed(),
    }
}

/// A Codec 8 Extended frame whose one record carries `value` under `id`, next to a cell IO.
fn frame_with(id: u16, value: Vec<u8>) -> Vec<u8> {
    let record = AvlRecord {
        timestamp_ms: 1_764_662_400_000,
        io: vec![
            IoElement {
                id: 241,
                value: IoValue::U32(24602),
            },
            IoElement {
                id,
                value: IoValue::Bytes(value),
            },
        ],
        ..AvlRecord::default()
    };
    avl_frame(&AvlData::new(Codec::Codec8Ext, vec![record])).unwrap()
}

/// Decoding the frame: no warning, the value decoded as `expected`, and the value's bytes
/// labelled piece by piece without gaps or overlaps.
fn check_in_frame(id: u16, expected: &Composite) -> Result<(), TestCaseError> {
    let value = expected.encode();
    let frame = frame_with(id, value.clone());
    let packets = decode(&frame, &DecodeOptions::default()).unwrap();
    prop_assert!(packets[0].warnings.is_empty(), "{:?}", packets[0].warnings);
    let Content::Avl(data) = &packets[0].content else {
        panic!("not AVL")
    };
    let IoValue::Bytes(bytes) = data.records[0].io(id).unwrap() else {
        panic!("not bytes")
    };
    prop_assert_eq!(composite::decode(id, bytes), Some(Ok(expected.clone())));
    // The labels: from the value's first byte to its last, one span after the other.
    let (spans, _) = annotate(&frame, &DecodeOptions::default());
    let start = frame.len() - 4 - 1 - value.len();
    let mut at = start;
    for s in spans
        .iter()
        .filter(|s| s.io_id == Some(id) && s.field != Field::IoId && s.field != Field::IoLength)
    {
        prop_assert_eq!(s.offset, at, "{:?}", s);
        at += s.len;
    }
    prop_assert_eq!(at, start + value.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn beacon_lists_round_trip(list in beacon_list()) {
        let c = Composite::Beacons(list);
        prop_assert_eq!(composite::decode(385, &c.encode()), Some(Ok(c.clone())));
        check_in_frame(385, &c)?;
    }

    #[test]
    fn eye_sensor_lists_round_trip(list in sensor_list(SensorListKind::Eye), id in composite_id(SensorListKind::Eye)) {
        let c = Composite::Sensors(list);
        prop_assert_eq!(composite::decode(id, &c.encode()), Some(Ok(c.clone())));
        check_in_frame(id, &c)?;
    }

    #[test]
    fn advanced_sensor_lists_round_trip(list in sensor_list(SensorListKind::Advanced)) {
        let c = Composite::Sensors(list);
        prop_assert_eq!(composite::decode(548, &c.encode()), Some(Ok(c.clone())));
        check_in_frame(548, &c)?;
    }

    #[test]
    fn eye_data_round_trips(e in eye()) {
        let mut bytes = Vec::new();
        e.encode_into(&mut bytes);
        prop_assert_eq!(EyeData::decode(&bytes), Ok(e));
        // Inside an advertisement, as Teltonika's manufacturer data (company 0x089A, version 01).
        let mut adv = vec![2, 0x01, 0x06, (bytes.len() + 4) as u8, 0xff, 0x9a, 0x08, 0x01];
        adv.extend_from_slice(&bytes);
        prop_assert_eq!(composite::Advertisement(adv).eye(), Some(e));
    }

    #[test]
    fn vins_round_trip(vin in "[A-HJ-NPR-Z0-9]{17}", id in prop::sample::select(vec![256u16, 325])) {
        let c = Composite::Vin(Vin(vin));
        prop_assert_eq!(composite::decode(id, &c.encode()), Some(Ok(c.clone())));
        check_in_frame(id, &c)?;
    }

    #[test]
    fn fault_codes_round_trip(codes in prop::collection::vec("[PCBU][0-3][0-9A-F]{3}", 0..12)) {
        let c = Composite::FaultCodes(FaultCodes(codes));
        prop_assert_eq!(composite::decode(281, &c.encode()), Some(Ok(c.clone())));
        check_in_frame(281, &c)?;
    }

    #[test]
    fn operator_codes_round_trip(mcc in 200u16..=799, two in any::<bool>(), mnc in 0u16..=999) {
        let op = if two {
            Operator { mcc, mnc: mnc % 100, mnc_digits: 2 }
        } else {
            Operator { mcc, mnc, mnc_digits: 3 }
        };
        prop_assert_eq!(Operator::from_code(op.code().into()), Some(op));
    }

    /// Any bytes under any composite id: decoded, or one composite warning inside the value;
    /// the record is there either way and its value unchanged.
    #[test]
    fn any_bytes_never_fail_the_record(
        id in prop::sample::select(vec![385u16, 548, 10828, 10829, 10831, 11317, 256, 325, 281]),
        value in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let frame = frame_with(id, value.clone());
        let start = frame.len() - 4 - 1 - value.len();
        for opts in [DecodeOptions::default(), DecodeOptions::lenient()] {
            let packets = decode(&frame, &opts).unwrap();
            let Content::Avl(data) = &packets[0].content else { panic!("not AVL") };
            prop_assert_eq!(data.records[0].io(id), Some(&IoValue::Bytes(value.clone())));
            match composite::decode(id, &value).unwrap() {
                Ok(_) => prop_assert!(packets[0].warnings.is_empty()),
                Err(e) => {
                    prop_assert_eq!(packets[0].warnings.len(), 1);
                    let w = &packets[0].warnings[0];
                    prop_assert_eq!(w.offset, start + e.offset);
                    prop_assert!(e.offset <= value.len());
                    let is_composite = matches!(&w.kind, WarningKind::MalformedComposite { io_id, .. } if *io_id == id);
                    prop_assert!(is_composite);
                }
            }
        }
    }
}

#[cfg(feature = "serde")]
#[test]
fn the_json_model_has_decoded_values_and_the_network() {
    use fleetview::json::{JsonOptions, PacketJson};
    let list = BeaconList {
        part: 1,
        parts: 1,
        beacons: vec![Beacon {
            id: BeaconId::Eddystone {
                namespace: [0xed; 10],
                instance: [1, 2, 3, 4, 5, 6],
            },
            rssi: Some(-80),
            battery_mv: None,
            temperature: Some(-512),
        }],
    };
    let frame = frame_with(385, Composite::Beacons(list).encode());
    let packets = decode(&frame, &DecodeOptions::default()).unwrap();
    let json = serde_json::to_value(PacketJson::new(&packets[0], &JsonOptions::default())).unwrap();
    let record = &json["records"][0];
    assert_eq!(
        record["io"][1]["decoded"],
        serde_json::json!({"part":1,"parts":1,"beacons":[{"type":"eddystone",
            "namespace":"edededededededededed","instance":"010203040506","rssi":-80,"temperature_c":-5.12}]})
    );
    assert_eq!(
        record["network"],
        serde_json::json!({"mcc":246,"mnc":2,"mnc_digits":2,"lac":null,"cell_id":null,"signal":null})
    );
}

#[test]
fn the_catalogue_names_the_ble_sensor_lists() {
    for (id, name) in [
        (10828, "BLE Beacons 1"),
        (10829, "BLE Beacons 2"),
        (10831, "BLE Beacons 3"),
        (11317, "EYE Sensor List"),
    ] {
        let info = fleetview::io_catalog::lookup(id, None).unwrap();
        assert_eq!(info.name, name);
        assert_eq!(info.io_type, fleetview::io_catalog::IoType::Hex, "{id}");
        assert_eq!(info.bytes, None, "{id} is variable-length");
    }
}
