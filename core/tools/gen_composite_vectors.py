#!/usr/bin/env python3
"""Write the composite IO value test vectors (core/tests/vectors/composite_*.json).

A Codec 8 Extended TCP frame as an FMB device in BLE beacon mode sends it: 24 records, each
with the beacon list (IO 385, one list split over two records in one place), EYE sensor lists
(548 with raw advertisements, 11317 with EYE flags), fault codes (281), the VIN (256) and the
serving cell IOs (241, 206, 205, 636, 21); and a frame whose composite values are malformed
(a truncated beacon, a sensor length past the end, a bad part byte, a fault code that is not
text), with the warnings the decoder must give and their byte offsets.

The expected `decoded` objects are computed here from the layouts (not by the Rust decoder),
so the vectors check the decoder against an independent reading.

Usage: python3 core/tools/gen_composite_vectors.py
"""
import json
import pathlib
import struct

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "vectors"


def crc16_ibm(data):
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def ibeacon(uuid, major, minor, rssi, battery=None, temp=None):
    flags = 0x21 | (0x02 if battery is not None else 0) | (0x04 if temp is not None else 0)
    b = bytes([flags]) + bytes.fromhex(uuid.replace("-", "")) + struct.pack(">HHb", major, minor, rssi)
    j = {"type": "ibeacon", "uuid": uuid, "major": major, "minor": minor, "rssi": rssi}
    if battery is not None:
        b += struct.pack(">H", battery)
        j["battery_mv"] = battery
    if temp is not None:
        b += struct.pack(">h", temp)
        j["temperature_c"] = temp / 100
    return b, j


def eddystone(namespace, instance, rssi):
    b = bytes([0x01]) + bytes.fromhex(namespace) + bytes.fromhex(instance) + struct.pack(">b", rssi)
    return b, {"type": "eddystone", "namespace": namespace, "instance": instance, "rssi": rssi}


def beacon_list(part, parts, beacons):
    value = bytes([(part << 4) | parts]) + b"".join(b for b, _ in beacons)
    return value, {"part": part, "parts": parts, "beacons": [j for _, j in beacons]}


def param(pid, value):
    return bytes([pid, len(value)]) + value


def eye_flags(temp=None, humidity=None, battery=None, movement=None, low_battery=False):
    flags, body, j = 0, b"", {}
    if temp is not None:
        flags |= 0x01
        body += struct.pack(">h", temp)
        j["temperature_c"] = temp / 100
    if humidity is not None:
        flags |= 0x02
        body += bytes([humidity])
        j["humidity"] = humidity
    if movement is not None:
        flags |= 0x10
        moving, count = movement
        body += struct.pack(">H", (0x8000 if moving else 0) | count)
        j["movement"] = moving
        j["movement_count"] = count
    if low_battery:
        flags |= 0x40
    j["low_battery"] = low_battery
    if battery is not None:
        flags |= 0x80
        body += bytes([battery])
        j["battery_mv"] = 2000 + 10 * battery
    return bytes([flags]) + body, j


def mac_text(mac):
    return ":".join(f"{b:02x}" for b in mac)


def advertisement(eye_bytes):
    """A raw BLE advertisement: a flags AD, then Teltonika manufacturer data (company id
    0x089A little-endian, version 01) carrying the EYE flags and values."""
    manufacturer = b"\xff\x9a\x08\x01" + eye_bytes
    return bytes([2, 0x01, 0x06, len(manufacturer)]) + manufacturer


def eye_sensor(rssi, mac, name, temp, humidity, battery, movement, raw=False):
    """An EYE sensor: in the EYE lists parameter 2 is the flags and values; in IO 548
    (`raw`) the advertisement that carries them."""
    flags, eye = eye_flags(temp, humidity, battery, movement)
    data = advertisement(flags) if raw else flags
    body = (param(0, struct.pack(">b", rssi)) + param(15, mac) + param(5, name.encode())
            + param(2, data))
    j = {"rssi": rssi, "mac": mac_text(mac), "name": name, "eye": eye}
    if raw:
        j["advertisement"] = data.hex()
    return bytes([len(body)]) + body, j


def advanced_sensor(rssi, beacon_id, temp, battery_mv):
    flags, eye = eye_flags(temp=temp)
    adv = advertisement(flags)
    body = (param(0, struct.pack(">b", rssi)) + param(1, beacon_id) + param(2, adv)
            + param(14, struct.pack(">H", battery_mv)) + param(20, b"\x01\x02"))
    j = {"rssi": rssi, "id": beacon_id.hex(), "advertisement": adv.hex(), "eye": eye,
         "battery_mv": battery_mv, "unknown": [{"id": 20, "hex": "0102"}]}
    return bytes([len(body)]) + body, j


def sensor_list(sensors):
    return b"\x01" + b"".join(b for b, _ in sensors), {"header": 1, "beacons": [j for _, j in sensors]}


class Record:
    def __init__(self, ts, lon, lat, speed, fixed, nx):
        self.ts, self.lon, self.lat, self.speed, self.fixed, self.nx = ts, lon, lat, speed, fixed, nx

    def encode(self):
        head = struct.pack(">QBiihHBH", self.ts, 0, self.lon, self.lat, 112, 90, 11, self.speed)
        groups = [(1, self.fixed[1]), (2, self.fixed[2]), (4, self.fixed[4]), (8, [])]
        total = sum(len(g) for _, g in groups) + len(self.nx)
        out = head + struct.pack(">HH", 385 if self.nx else 0, total)
        for size, items in groups:
            out += struct.pack(">H", len(items))
            for i, v in items:
                out += struct.pack(">H", i) + v.to_bytes(size, "big")
        out += struct.pack(">H", len(self.nx))
        offsets = []
        for i, v in self.nx:
            out += struct.pack(">HH", i, len(v))
            offsets.append(len(out))
            out += v
        return out, offsets


def frame(records):
    data = bytes([0x8E, len(records)])
    value_offsets = []
    for r in records:
        body, offsets = r.encode()
        value_offsets.append([8 + len(data) + o for o in offsets])
        data += body
    data += bytes([len(records)])
    crc = crc16_ibm(data)
    return struct.pack(">IL", 0, len(data)) + data + struct.pack(">L", crc), value_offsets


def fixed_io(i, cell_id, lte=None):
    one = [(239, 1), (240, 1), (21, 4 - i % 2), (69, 1)]
    two = [(66, 13800 + i), (67, 4090), (205, cell_id), (206, 3401)]
    four = [(241, 24602), (16, 120000 + 350 * i)]
    if lte is not None:
        four.append((636, lte))
    return {1: one, 2: two, 4: four}


def main():
    uuid_a = "e2c56db5-dffb-48d2-b060-d0f5a71096e0"
    uuid_b = "fda50693-a4e2-4fb1-afcf-c6eb07647825"
    mac_a = bytes.fromhex("7cd9f4038a21")
    mac_b = bytes.fromhex("7cd9f40412b0")
    records, expected = [], []
    t0 = 1_764_662_400_000  # 2025-12-02T08:00:00Z
    for i in range(24):
        nx, decoded = [], {}
        if i == 5:
            # A long list split over two records: part 1 of 2 here, part 2 in the next.
            v, j = beacon_list(1, 2, [ibeacon(uuid_a, 1, k, -60 - k) for k in range(1, 4)])
        elif i == 6:
            v, j = beacon_list(2, 2, [ibeacon(uuid_a, 1, 4, -71), eddystone("edd1ebeac04e5defa017", "0123456789ab", -80)])
        else:
            beacons = [ibeacon(uuid_a, 1, 2, -55 - i % 7, battery=3048 - i, temp=2150 + 10 * i)]
            if i % 3 == 0:
                beacons.append(ibeacon(uuid_b, 10065, 26049 + i, -77))
            if i % 4 == 1:
                beacons.append(eddystone("edd1ebeac04e5defa017", "0000000000%02x" % i, -66))
            v, j = beacon_list(1, 1, beacons)
        nx.append((385, v))
        decoded[385] = j
        if i % 3 == 0:
            v, j = sensor_list([eye_sensor(-61 - i % 5, mac_a, "EYE_CARGO", -1187 + i, 41 + i % 3, 95, (i % 4 == 0, 17 + i))])
            nx.append((11317, v))
            decoded[11317] = j
        if i % 6 == 1:
            v, j = sensor_list([advanced_sensor(-70, bytes.fromhex("fda50693a4e24fb1afcfc6eb07647825") + struct.pack(">HH", 10065, 26049), 2305, 3010),
                                eye_sensor(-82, mac_b, "EYE_DOOR", 1960, 52, 90, (False, 3), raw=True)])
            nx.append((548, v))
            decoded[548] = j
        if i in (0, 12):
            nx.append((256, b"WVWZZZ1KZAW000152"))
            decoded[256] = {"vin": "WVWZZZ1KZAW000152"}
        if i in (9, 10):
            nx.append((281, b"P0101,P0300"))
            decoded[281] = {"codes": ["P0101", "P0300"]}
        lte = 27_449_604 if i >= 12 else None
        fixed = fixed_io(i, 24721 + (i // 8), lte)
        r = Record(t0 + 30_000 * i, 252_795_360 + 900 * i, 546_872_300 + 700 * i, 40 + i, fixed, nx)
        records.append(r)
        io = [{"id": k, "raw": v} for size in (1, 2, 4) for k, v in fixed[size]]
        io += [{"id": k, "hex": v.hex(), "decoded": decoded[k]} for k, v in nx]
        network = {"mcc": 246, "mnc": 2, "mnc_digits": 2, "lac": 3401,
                   "cell_id": lte if lte is not None else 24721 + (i // 8), "signal": 4 - i % 2}
        expected.append({"timestamp_ms": r.ts, "io": io, "network": network})
    data, _ = frame(records)
    write("composite_fmb_codec8e_24_records_beacons_sensors", {
        "source": "hand-assembled (core/tools/gen_composite_vectors.py) from the layouts of the beacon list (IO 385), the TLV sensor lists (548, 11317), fault codes (281), VIN (256) and the serving cell IOs: an FMB device in BLE beacon mode, 24 records, one beacon list split over two records",
        "hex": data.hex().upper(),
        "lenient": False,
        "expect": [{"kind": "avl", "codec": "8E", "ack": "%08x" % 24, "warnings": [], "records": expected}],
    })

    # Malformed composite values: each record keeps its value as hex, the packet gets a warning.
    cells = fixed_io(0, 24721)
    good_beacon, _ = beacon_list(1, 1, [ibeacon(uuid_a, 1, 2, -60)])
    truncated = good_beacon[:-5]  # the beacon stops inside its major/minor
    overrun = b"\x01\x20" + param(0, b"\xc4") + param(7, b"\x28")  # sensor length 0x20, 6 bytes left
    bad_part = b"\x30" + good_beacon[1:]  # part 3 of 0
    not_text = b"P0101,P0\x013"
    bad = [(385, truncated), (11317, overrun), (385, bad_part), (281, not_text)]
    records = [Record(t0 + 3_600_000 + 1000 * k, 252_795_360, 546_872_300, 0, cells, [nx]) for k, nx in enumerate(bad)]
    data, offsets = frame(records)
    # Where each problem is, from the first byte of its value.
    # The truncated beacon is 23 - 5 = 18 bytes: part byte, flags, UUID at 2..18; the major
    # needs 2 bytes at offset 18 and none is left.
    problems = [("composite_truncated", 18), ("composite_length_overrun", 1),
                ("composite_bad_part", 0), ("composite_not_text", 8)]
    warnings = [{"kind": kind, "offset": offsets[k][0] + at} for k, (kind, at) in enumerate(problems)]
    recs = []
    for (io_id, v) in bad:
        io = [{"id": k} for size in (1, 2, 4) for k, _ in cells[size]]
        io.append({"id": io_id, "hex": v.hex()})
        recs.append({"io": io})
    write("composite_malformed_values", {
        "source": "hand-assembled (core/tools/gen_composite_vectors.py): malformed composite values — a truncated beacon, a sensor length past the end, a bad data part byte, a fault code that is not text — decoded strictly with a warning each, the values kept as hex",
        "hex": data.hex().upper(),
        "lenient": False,
        "expect": [{"kind": "avl", "codec": "8E", "ack": "%08x" % 4, "warnings": warnings, "records": recs}],
    })


def write(name, body):
    path = OUT / f"{name}.json"
    path.write_text(json.dumps({"name": name, **body}, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {path.relative_to(OUT.parent.parent.parent)} ({len(body['hex']) // 2} bytes)")


if __name__ == "__main__":
    main()
