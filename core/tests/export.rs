//! GeoJSON (validated against RFC 7946's rules; feature `serde`) and CSV (any features) exports.

use fleetview::encode::{avl_datagram, avl_frame};
use fleetview::export::csv;
#[cfg(feature = "serde")]
use fleetview::export::feature_collection;
use fleetview::{
    decode, AvlData, AvlRecord, Codec, DecodeOptions, GpsElement, Imei, IoElement, IoValue,
};
#[cfg(feature = "serde")]
use serde_json::Value;

fn record(ts: u64, lon: f64, lat: f64, sats: u8, io: Vec<IoElement>) -> AvlRecord {
    AvlRecord {
        timestamp_ms: ts,
        gps: GpsElement {
            longitude: (lon * 1e7).round() as i32,
            latitude: (lat * 1e7).round() as i32,
            satellites: sats,
            speed: 42,
            ..GpsElement::default()
        },
        io,
        ..AvlRecord::default()
    }
}

/// A login and a TCP frame from one device, a UDP datagram from another; one record without a
/// fix (zero satellites) and one at (0, 0).
fn inputs() -> (Vec<u8>, Vec<u8>) {
    let a = Imei::new("352093086403655").unwrap();
    let b = Imei::new("356307042441013").unwrap();
    let fuel = |v: u8| {
        vec![
            IoElement {
                id: 89,
                value: IoValue::U8(v),
            },
            IoElement {
                id: 72,
                value: IoValue::U32((-105i32) as u32),
            },
        ]
    };
    let mut out = a.login_frame();
    let data = AvlData::new(
        Codec::Codec8Ext,
        vec![
            record(1_700_000_000_000, 25.2797, 54.6872, 9, fuel(80)),
            record(1_700_000_010_000, 25.2801, 54.6880, 9, fuel(79)),
            record(1_700_000_020_000, 25.2805, 54.6890, 0, fuel(79)),
        ],
    );
    out.extend(avl_frame(&data).unwrap());
    let data = AvlData::new(
        Codec::Codec8,
        vec![
            record(1_700_000_000_000, -58.3816, -34.6037, 7, vec![]),
            record(1_700_000_005_000, 0.0, 0.0, 7, vec![]),
        ],
    );
    (out, avl_datagram(&b, 0xCAFE, 1, &data).unwrap())
}

/// The TCP stream and the datagram decode separately (a datagram is one whole input).
fn packets() -> Vec<fleetview::Packet> {
    let (tcp, datagram) = inputs();
    let mut p = decode(&tcp, &DecodeOptions::default()).unwrap();
    assert_eq!(p.len(), 2);
    p.extend(decode(&datagram, &DecodeOptions::default()).unwrap());
    p
}

#[cfg(feature = "serde")]
fn is_position(v: &Value) -> bool {
    let a = v.as_array().unwrap();
    let (lon, lat) = (a[0].as_f64().unwrap(), a[1].as_f64().unwrap());
    a.len() >= 2 && (-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat)
}

#[cfg(feature = "serde")]
#[test]
fn geojson_follows_rfc_7946() {
    let fc = serde_json::to_value(feature_collection(&packets(), Some("FMB920"))).unwrap();
    assert_eq!(fc["type"], "FeatureCollection");
    let features = fc["features"].as_array().unwrap();
    for f in features {
        assert_eq!(f["type"], "Feature");
        assert!(f["properties"].is_object());
        let g = &f["geometry"];
        match g["type"].as_str().unwrap() {
            "Point" => assert!(is_position(&g["coordinates"])),
            "LineString" => {
                let line = g["coordinates"].as_array().unwrap();
                assert!(line.len() >= 2, "a LineString has two or more positions");
                assert!(line.iter().all(is_position));
            }
            other => panic!("unexpected geometry {other}"),
        }
    }
    let points: Vec<_> = features
        .iter()
        .filter(|f| f["geometry"]["type"] == "Point")
        .collect();
    // 5 records: one without satellites and one at (0, 0) are not plotted.
    assert_eq!(points.len(), 3);
    assert_eq!(fc["properties"]["records"], 5);
    assert_eq!(fc["properties"]["without_fix"], 2);
    // Longitude first.
    assert_eq!(points[0]["geometry"]["coordinates"][0], 25.2797);
    assert_eq!(points[0]["geometry"]["coordinates"][1], 54.6872);
    assert_eq!(points[2]["geometry"]["coordinates"][0], -58.3816);
    // Properties carry time, speed and IO by name, scaled.
    let p = &points[0]["properties"];
    assert_eq!(p["imei"], "352093086403655");
    assert_eq!(p["time"], "2023-11-14T22:13:20.000Z");
    assert_eq!(p["speed"], 42);
    assert_eq!(p["Fuel level"], 80);
    assert_eq!(p["Dallas Temperature 1"], -10.5);
    // One track for the device with two plotted points; the other has one point: no line.
    let lines: Vec<_> = features
        .iter()
        .filter(|f| f["geometry"]["type"] == "LineString")
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["properties"]["imei"], "352093086403655");
    assert_eq!(lines[0]["properties"]["without_fix"], 1);
}

#[test]
fn csv_one_row_per_record_one_column_per_io_name() {
    let text = csv(&packets(), None);
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 6);
    let header: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(&header[..3], ["imei", "time", "timestamp_ms"]);
    assert!(header.contains(&"Fuel level") && header.contains(&"Dallas Temperature 1"));
    let first: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(first[0], "352093086403655");
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    assert_eq!(first[col("Fuel level")], "80");
    assert_eq!(first[col("Dallas Temperature 1")], "-10.5");
    let last: Vec<&str> = lines[5].split(',').collect();
    assert_eq!(
        (last[0], last[col("valid")], last[col("Fuel level")]),
        ("356307042441013", "false", "")
    );
}
