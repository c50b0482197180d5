#!/usr/bin/env python3
"""Generate the Fleetview AVL IO catalogue table (Rust source) from avl_ids.csv.

Usage:
    python3 gen_io_catalog.py [--csv PATH] [--out PATH]

Defaults: --csv tools/avl_ids.csv (next to this script),
          --out ../src/io_catalog/table.rs (relative to this script)
(in the Fleetview crate the output lives at core/src/io_catalog/table.rs and is
declared as `mod table;` inside core/src/io_catalog.rs).

Python 3.11, standard library only. The output is deterministic: running the
script twice on the same CSV gives byte-identical output, so the generated file
can be checked in and diffed.

Why the layout looks the way it does (the table ends up in wasm builds):
  * all names and units live in ONE concatenated string `STRS`; rows refer to
    them by (u16 offset, u8 length). Names are deduplicated, and a name that is
    a substring of text already emitted re-uses that text.
  * units are a small table of (offset, len) pairs into `STRS`, groups a small
    `&[&str]` table, byte sizes and multipliers small tables; a row stores one
    byte per index.
  * the supported-model list of a row is a u128 bitset (bit i = MODELS[i]);
    the distinct bitsets are deduplicated into `MODEL_SETS` and a row stores
    a u8 index into it.
  * rows are sorted by id (binary search); within one id, the *default* row
    (see below) comes first, the other rows follow in CSV order.
  * the Description column is dropped (too big), Min/Max are dropped too
    (only used here, to infer missing multipliers).

Data-cleaning rules (each applied by a function below, in this order):
  C1 whitespace: every field is trimmed; runs of whitespace (including the
     newlines of multi-line quoted cells) inside Name/Units/Groups are
     collapsed to a single space.
  C2 type: Unsigned/Signed/HEX(Hex)/ASCII, matched case-insensitively; any
     other value is an error (the script fails loudly).
  C3 byte size: NumBytes -1 (or empty) = variable length (stored as 0).
  C4 units: '˚C' (U+02DA ring above) is normalised to '°C', 'km/H' to 'km/h',
     'Degrees °' to '°'. Empty units are filled in only when a "twin" row (same
     name case-insensitively, same Min, Max and Multiplier) has exactly one
     non-empty unit (fixes 16 Total Odometer -> m on the FMB rows, 260
     EcoDuration -> ms).
  C5 groups: case variants are merged to the first spelling seen ('Permanent
     I/O Elements' -> 'Permanent I/O elements'); a trailing '/' is removed;
     empty stays empty.
  C6 multipliers: parsed as an exact decimal (mantissa, exp10) from the
     decimal text - never through float - e.g. '0.001' -> (1, -3), '0.03125'
     -> (3125, -5), '50' -> (5, 1). Empty, '-', '0' (and anything that is not
     a positive decimal) means "not stated" and is resolved by the first rule
     that applies:
       M1 twin: rows with the same name (case-insensitive), Units, Min and Max
          that state a multiplier, all agreeing -> that multiplier
          (Dallas Temperature 1-4 and Engine/Battery Temperature on FMx6xx
          -> 0.1, Fuel Consumed/Fuel Rate on FMx6xx -> 0.1, Eco score -> 0.01,
          HV battery cell temperatures -> 0.03125, HVESS SoH -> 0.4).
       M2 description states the scaling: "multiplied by 10" -> 0.1 (and
          10^k -> 10^-k); "e.g. 100->10s" -> 10/100 = 0.1 (only powers of 10
          are accepted).
       M3 tenths-of-a-degree ranges: Units °C with (Min, Max) = (-550, 1150)
          (the -55..+115 °C Dallas/PCB sensor range, which the description
          repeats) or (-600, 1270) (the -60..+127 °C engine-temperature range
          used with an explicit 0.1 elsewhere in the table) -> 0.1.
       M4 same encoding as an M2 row: same Groups, Units, NumBytes, Min and
          Max as a row resolved by M2 -> that multiplier (10350 Ambient Air
          Temperature shares the odd -18382..18026 range of 10351 whose
          description says "multiplied by 10").
       M5 millivolt analog inputs: Units 'V' with Min 0 and Max 30000 -> 0.001
          (0..30 V sent in mV; the same family's 66/67 rows say 0..30000 mV).
       M6 otherwise -> 1 (value used as sent, e.g. 66/67 on FMx6xx are
          already in mV).
  C7 models: SupportedModels is split on ',' and trimmed; MODELS is the
     sorted set of all names (at most 128, asserted).
  C8 default row of an id (used when no model is given, the model is unknown,
     or the model has no row for the id): the row whose SupportedModels
     contains the most FMB* models; ties -> the first such row in CSV order.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
from collections import defaultdict
from decimal import Decimal, InvalidOperation

DEFAULT_CSV = os.path.join(os.path.dirname(os.path.abspath(__file__)), "avl_ids.csv")

MIT_NOTICE = """\
MIT License

Copyright (c) 2022 Alim Zanibekov

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE."""

TYPES = {"unsigned": 0, "signed": 1, "hex": 2, "ascii": 3}
TYPE_NAMES = ["Unsigned", "Signed", "Hex", "Ascii"]

UNIT_FIXES = {"˚C": "°C", "km/H": "km/h", "Degrees °": "°"}


def squash(s: str) -> str:
    """C1: trim and collapse internal whitespace."""
    return re.sub(r"\s+", " ", s).strip()


def parse_decimal(text: str) -> tuple[int, int] | None:
    """C6: exact decimal -> (mantissa, exp10), normalised (no trailing zeros).

    Returns None for empty/'-'/'0'/non-positive/unparseable ("not stated")."""
    text = text.strip()
    if text in ("", "-"):
        return None
    try:
        d = Decimal(text)
    except InvalidOperation:
        return None
    if not d.is_finite() or d <= 0:
        return None
    sign, digits, exp = d.normalize().as_tuple()
    mant = int("".join(map(str, digits)))
    while mant % 10 == 0 and mant != 0:
        mant //= 10
        exp += 1
    assert -(2**31) <= mant < 2**31 and -128 <= exp <= 127, text
    return mant, exp


def pow10_scale(k: int) -> tuple[int, int]:
    return (1, k)


def desc_scale(desc: str) -> tuple[int, int] | None:
    """M2: scaling stated in the description."""
    m = re.search(r"multiplied by (1(0+))\b", desc, re.I)
    if m:
        return pow10_scale(-len(m.group(2)))
    m = re.search(r"e\.g\.\s*(\d+)\s*->\s*(\d+)", desc, re.I)
    if m:
        a, b = int(m.group(1)), int(m.group(2))
        if a > 0 and b > 0:
            q = Decimal(b) / Decimal(a)
            p = parse_decimal(str(q))
            if p and p[0] == 1:
                return p
    return None


def load(csv_path: str) -> list[dict]:
    with open(csv_path, newline="", encoding="utf-8") as f:
        raw = list(csv.DictReader(f))
    rows = []
    group_canon: dict[str, str] = {}
    for n, r in enumerate(raw):
        ty = r["Type"].strip().lower()
        if ty not in TYPES:
            sys.exit(f"row {n + 2}: unknown Type {r['Type']!r}")
        nb = r["NumBytes"].strip()
        size = 0 if nb in ("", "-1") else int(nb)
        assert 0 <= size < 65536
        unit = squash(r["Units"])
        unit = UNIT_FIXES.get(unit, unit)
        group = squash(r["Groups"]).rstrip("/").strip()
        group = group_canon.setdefault(group.lower(), group)
        models = sorted({m.strip() for m in r["SupportedModels"].split(",") if m.strip()})
        rows.append(
            {
                "order": n,
                "id": int(r["Id"].strip()),
                "name": squash(r["Name"]),
                "size": size,
                "type": TYPES[ty],
                "min": r["Min"].strip(),
                "max": r["Max"].strip(),
                "mult_text": r["Multiplier"].strip(),
                "mult": parse_decimal(r["Multiplier"]),
                "unit": unit,
                "desc": squash(r["Description"]),
                "group": group,
                "models": models,
                "rule": "stated",
            }
        )
    return rows


def fill_units(rows: list[dict]) -> None:
    """C4 (second half): fill empty units from twin rows."""
    twins: dict[tuple, set] = defaultdict(set)
    for r in rows:
        if r["unit"]:
            twins[(r["name"].lower(), r["min"], r["max"], r["mult_text"])].add(r["unit"])
    for r in rows:
        if not r["unit"]:
            cand = twins.get((r["name"].lower(), r["min"], r["max"], r["mult_text"]), set())
            if len(cand) == 1:
                r["unit"] = next(iter(cand))
                r["unit_rule"] = "C4-twin"


def fill_multipliers(rows: list[dict]) -> None:
    """C6: resolve multipliers that are not stated (M1..M6)."""
    twins: dict[tuple, set] = defaultdict(set)
    for r in rows:
        if r["mult"] is not None:
            twins[(r["name"].lower(), r["unit"], r["min"], r["max"])].add(r["mult"])
    pending = [r for r in rows if r["mult"] is None]
    m2_keys: dict[tuple, tuple] = {}
    for r in pending:
        cand = twins.get((r["name"].lower(), r["unit"], r["min"], r["max"]), set())
        if len(cand) == 1:
            r["mult"], r["rule"] = next(iter(cand)), "M1-twin"
            continue
        d = desc_scale(r["desc"])
        if d:
            r["mult"], r["rule"] = d, "M2-description"
            m2_keys[(r["group"], r["unit"], r["size"], r["min"], r["max"])] = d
            continue
        if r["unit"] == "°C" and (r["min"], r["max"]) in (("-550", "1150"), ("-600", "1270")):
            r["mult"], r["rule"] = (1, -1), "M3-tenths-degC"
    for r in pending:
        if r["mult"] is not None:
            continue
        key = (r["group"], r["unit"], r["size"], r["min"], r["max"])
        if key in m2_keys:
            r["mult"], r["rule"] = m2_keys[key], "M4-same-encoding"
        elif r["unit"] == "V" and r["min"] == "0" and r["max"] == "30000":
            r["mult"], r["rule"] = (1, -3), "M5-millivolt"
        else:
            r["mult"], r["rule"] = (1, 0), "M6-default-1"


def rust_str(s: str) -> str:
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


class StringPool:
    """One concatenated UTF-8 string with substring re-use."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.index: dict[str, tuple[int, int]] = {}

    def add_all(self, strings) -> None:
        # Longest first so that shorter strings can be found inside longer ones.
        for s in sorted(set(strings), key=lambda x: (-len(x.encode()), x)):
            b = s.encode()
            pos = self.buf.find(b)
            if pos < 0:
                pos = len(self.buf)
                self.buf += b
            self.index[s] = (pos, len(b))

    def get(self, s: str) -> tuple[int, int]:
        return self.index[s]


def fmb_count(r: dict) -> int:
    return sum(1 for m in r["models"] if m.startswith("FMB"))


def generate(csv_path: str) -> tuple[str, dict]:
    rows = load(csv_path)
    fill_units(rows)
    fill_multipliers(rows)

    models = sorted({m for r in rows for m in r["models"]})
    assert len(models) <= 128, "model bitset is a u128"
    model_bit = {m: i for i, m in enumerate(models)}

    # C8: order rows: by id, default row first, then CSV order.
    by_id: dict[int, list[dict]] = defaultdict(list)
    for r in rows:
        by_id[r["id"]].append(r)
    ordered = []
    for i in sorted(by_id):
        group = by_id[i]
        best = max(group, key=lambda r: (fmb_count(r), -r["order"]))
        ordered.append(best)
        ordered.extend(r for r in group if r is not best)
    assert max(by_id) < 65536

    pool = StringPool()
    pool.add_all([r["name"] for r in rows] + [r["unit"] for r in rows if r["unit"]])
    assert len(pool.buf) < 65536, "name offsets are u16"

    units = sorted({r["unit"] for r in rows if r["unit"]})
    unit_idx = {u: i + 1 for i, u in enumerate(units)}  # 0 = no unit
    groups = []
    for r in rows:
        if r["group"] not in groups:
            groups.append(r["group"])
    groups.sort()
    group_idx = {g: i for i, g in enumerate(groups)}
    sizes = sorted({r["size"] for r in rows})
    size_idx = {s: i for i, s in enumerate(sizes)}
    assert len(sizes) <= 64
    scales = sorted({r["mult"] for r in rows}, key=lambda m: (m != (1, 0), m[1], m[0]))
    scale_idx = {m: i for i, m in enumerate(scales)}
    sets = []
    set_idx: dict[int, int] = {}
    for r in ordered:
        bits = 0
        for m in r["models"]:
            bits |= 1 << model_bit[m]
        r["bits"] = bits
        if bits not in set_idx:
            set_idx[bits] = len(sets)
            sets.append(bits)
    for t in (units, groups, scales, sets):
        assert len(t) < 256

    stats = {
        "rows": len(rows),
        "ids": len(by_id),
        "multi": sum(1 for g in by_id.values() if len(g) > 1),
        "models": len(models),
        "strs_bytes": len(pool.buf),
        "model_sets": len(sets),
        "rules": defaultdict(list),
    }
    for r in rows:
        if r["rule"] != "stated":
            stats["rules"][r["rule"]].append(r["id"])

    o = []
    w = o.append
    w("// @generated by gen_io_catalog.py from avl_ids.csv. DO NOT EDIT BY HAND:")
    w("// change the script (or the CSV) and re-run `python3 gen_io_catalog.py`.")
    w("//")
    w("// Source data: avl_ids.csv, Teltonika's AVL IO element list as scraped from the")
    w("// Teltonika wiki by the Go project alim-zanibekov/teltonika, distributed under")
    w("// the following licence, which this derived file must carry:")
    w("//")
    for line in MIT_NOTICE.splitlines():
        w(("// " + line).rstrip())
    w("//")
    w(f"// {stats['rows']} rows, {stats['ids']} distinct ids, {stats['multi']} ids with more than one definition,")
    w(f"// {stats['models']} models. Data-cleaning rules: see the docstring of gen_io_catalog.py.")
    w("")
    w("/// One catalogue row, 10 bytes. Rows are sorted by id; within an id the default")
    w("/// (most FMB models) row comes first, the rest follow in CSV order.")
    w("#[derive(Clone, Copy)]")
    w("pub(super) struct Row {")
    w("    /// AVL IO id.")
    w("    pub id: u16,")
    w("    /// Byte offset of the name in `STRS`.")
    w("    pub name_off: u16,")
    w("    /// Byte length of the name in `STRS`.")
    w("    pub name_len: u8,")
    w("    /// Index into `UNITS`; 0 = no unit.")
    w("    pub unit: u8,")
    w("    /// Index into `GROUPS`.")
    w("    pub group: u8,")
    w("    /// `type << 6 | size index`: type 0 Unsigned, 1 Signed, 2 Hex, 3 Ascii;")
    w("    /// size index into `SIZES`.")
    w("    pub kind: u8,")
    w("    /// Index into `SCALES`.")
    w("    pub scale: u8,")
    w("    /// Index into `MODEL_SETS`.")
    w("    pub models: u8,")
    w("}")
    w("")
    w("/// Short row constructor: keeps the generated table compact and diffable.")
    w("#[allow(clippy::too_many_arguments)]")
    w("const fn r(id: u16, name_off: u16, name_len: u8, unit: u8, group: u8, kind: u8, scale: u8, models: u8) -> Row {")
    w("    Row { id, name_off, name_len, unit, group, kind, scale, models }")
    w("}")
    w("")
    w("/// Known model names, sorted; bit i of a `MODEL_SETS` entry = `MODELS[i]`.")
    w("pub(super) static MODELS: &[&str] = &[")
    for i in range(0, len(models), 8):
        w("    " + " ".join(rust_str(m) + "," for m in models[i : i + 8]))
    w("];")
    w("")
    w("/// Distinct supported-model bitsets.")
    w("pub(super) static MODEL_SETS: &[u128] = &[")
    for b in sets:
        w(f"    0x{b:032x},")
    w("];")
    w("")
    w("/// Parameter groups (the CSV `Groups` column).")
    w("pub(super) static GROUPS: &[&str] = &[")
    for g in groups:
        w(f"    {rust_str(g)},")
    w("];")
    w("")
    w("/// Value sizes in bytes; 0 = variable length (NX).")
    w("pub(super) static SIZES: &[u16] = &[" + ", ".join(str(s) for s in sizes) + "];")
    w("")
    w("/// Exact decimal multipliers `(mantissa, exp10)`: value = raw * mantissa * 10^exp10.")
    w("pub(super) static SCALES: &[(i32, i8)] = &[" + ", ".join(f"({m}, {e})" for m, e in scales) + "];")
    w("")
    w("/// Units as `(offset, len)` into `STRS`; index 0 is the empty unit.")
    w("pub(super) static UNITS: &[(u16, u8)] = &[")
    w("    (0, 0),")
    for u in units:
        off, ln = pool.get(u)
        w(f"    ({off}, {ln}), // {u}")
    w("];")
    w("")
    w("/// All names and units, concatenated (deduplicated, substrings re-used).")
    w("pub(super) static STRS: &str = concat!(")
    text = pool.buf.decode()
    chunk = ""
    for ch in text:
        chunk += ch
        if len(chunk) >= 80:
            w(f"    {rust_str(chunk)},")
            chunk = ""
    if chunk:
        w(f"    {rust_str(chunk)},")
    w(");")
    w("")
    w("/// The catalogue rows (see `Row`).")
    w("pub(super) static ROWS: &[Row] = &[")
    for r in ordered:
        off, ln = pool.get(r["name"])
        kind = (r["type"] << 6) | size_idx[r["size"]]
        w(
            f"    r({r['id']}, {off}, {ln}, {unit_idx.get(r['unit'], 0)}, {group_idx[r['group']]}, "
            f"{kind}, {scale_idx[r['mult']]}, {set_idx[r['bits']]}), // {r['name']}".replace("\n", " ")
        )
    w("];")
    w("")
    return "\n".join(o), stats


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", default=DEFAULT_CSV)
    ap.add_argument("--out", default=os.path.join(here, "..", "src", "io_catalog", "table.rs"))
    ap.add_argument("-v", "--verbose", action="store_true", help="list ids per cleaning rule")
    a = ap.parse_args()
    src, st = generate(a.csv)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w", encoding="utf-8", newline="\n") as f:
        f.write(src)
    print(
        f"wrote {a.out}: {st['rows']} rows, {st['ids']} ids, {st['multi']} ids with >1 definition, "
        f"{st['models']} models, {st['model_sets']} model sets, STRS {st['strs_bytes']} bytes"
    )
    for rule, ids in sorted(st["rules"].items()):
        print(f"  {rule}: {len(ids)} rows" + (f" ids {ids}" if a.verbose else ""))


if __name__ == "__main__":
    main()
