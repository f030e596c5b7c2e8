"""A sequence of Product schema versions covering the evolution classes of issue 8 (adds with
defaults of every type, explicit nulls, removal, alias rename, promotions, enum symbols, nested
records, logical types), and sample records for any of them.

- v1: the base: int, long, string, bytes, an enum with an enum default, a nested record, an array
  of records, a field with a default, and the logical types decimal, date, timestamp-millis,
  timestamp-micros and uuid.
- v2: ``color`` renamed ``colour`` (alias); int→long, int→float, int→double; string→bytes and
  bytes→string; an enum symbol added; nested records gaining a field (one inside an array); added
  with defaults: string, int, double, record, array, map, enum; a nullable ``["string", "null"]``
  field with default ``"n/a"``.
- v3: a field with a default removed; long→double; added with defaults: date, timestamp-millis,
  timestamp-micros, uuid, bytes, fixed and decimal-on-fixed; the record added in v2 gains a field.
- v4: another enum symbol (``RETIRED``) and a new field.
- ``V3_AGAIN``: v3's fields registered again after v4 (a rollback): v4's ``RETIRED`` is unknown
  to it.

``event(writer, n, event_id)`` is a record of any version whose values vary with ``n``: numbers at
the limits of their types (longs beyond the int range, ``0.25`` for floats), non-ASCII strings,
empty and filled arrays and maps, an explicit null in every other nullable value, every enum
symbol in turn.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

import fastavro

from avro_oracle import UTC_EPOCH

BASE_SECONDS = 1_700_000_000  # event times (``timestamp``, unix seconds) from here, ~3 a day


def _record(name: str, fields: list[dict], **extra: Any) -> dict:
    return {"type": "record", "name": name, "fields": fields, **extra}


def _field(name: str, schema: Any, **extra: Any) -> dict:
    return {"name": name, "type": schema, **extra}


def _status(*symbols: str) -> dict:
    return {"type": "enum", "name": "Status", "symbols": list(symbols), "default": "NEW"}


def _evolve(
    fields: list[dict],
    change: dict[str, dict] | None = None,
    add: tuple[dict, ...] = (),
    drop: tuple[str, ...] = (),
) -> list[dict]:
    """``fields`` with some replaced in place (by old name), some dropped, some appended."""
    change = change or {}
    kept = [change.get(f["name"], f) for f in fields if f["name"] not in drop]
    return [*kept, *add]


def _product(fields: list[dict], **extra: Any) -> str:
    return json.dumps(_record("Product", fields, namespace="com.example.evolution", **extra))


DECIMAL = {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}
DATE = {"type": "int", "logicalType": "date"}
MILLIS = {"type": "long", "logicalType": "timestamp-millis"}
MICROS = {"type": "long", "logicalType": "timestamp-micros"}
UUID = {"type": "string", "logicalType": "uuid"}
LINE = [_field("sku", "string"), _field("n", "int")]
ORIGIN = [_field("country", "string"), _field("zip", "int")]

V1_FIELDS = [
    _field("eventId", "string"),
    _field("timestamp", "long"),
    _field("color", "string"),
    _field("qty", "int"),
    _field("ratio", "int"),
    _field("score", "int"),
    _field("total", "long"),
    _field("note", "string"),
    _field("blob", "bytes"),
    _field("status", _status("NEW", "OLD")),
    _field("dims", _record("Dims", [_field("w", "int")])),
    _field("lines", {"type": "array", "items": _record("Line", LINE)}),
    _field("obsolete", "string", default="legacy"),
    _field("price", DECIMAL),
    _field("day", DATE),
    _field("seen_ms", MILLIS),
    _field("seen_us", MICROS),
    _field("uid", UUID),
]
V2_FIELDS = _evolve(
    V1_FIELDS,
    change={
        "color": _field("colour", "string", aliases=["color"]),
        "qty": _field("qty", "long"),
        "ratio": _field("ratio", "float"),
        "score": _field("score", "double"),
        "note": _field("note", "bytes"),
        "blob": _field("blob", "string"),
        "status": _field("status", _status("NEW", "OLD", "ARCHIVED")),
        "dims": _field(
            "dims", _record("Dims", [_field("w", "int"), _field("h", "int", default=7)])
        ),
        "lines": _field(
            "lines",
            {
                "type": "array",
                "items": _record("Line", [*LINE, _field("unit", "string", default="pcs")]),
            },
        ),
    },
    add=(
        _field("label", "string", default="unlabeled"),
        _field("grade", "int", default=3),
        _field("weight", "double", default=1.5),
        _field("origin", _record("Origin", ORIGIN), default={"country": "NL", "zip": 1011}),
        _field("tags", {"type": "array", "items": "string"}, default=["new", "sale"]),
        _field("attrs", {"type": "map", "values": "long"}, default={"k": 1, "big": 2**40}),
        _field(
            "tier",
            {"type": "enum", "name": "Tier", "symbols": ["GOLD", "SILVER", "BRONZE"]},
            default="SILVER",
        ),
        _field("comment", ["string", "null"], default="n/a"),
    ),
)
V3_FIELDS = _evolve(
    V2_FIELDS,
    change={
        "total": _field("total", "double"),
        "origin": _field(
            "origin",
            _record("Origin", [*ORIGIN, _field("city", "string", default="Amsterdam")]),
            default={"country": "NL", "zip": 1011, "city": "Amsterdam"},
        ),
    },
    drop=("obsolete",),
    add=(
        _field("launched", DATE, default=19_000),
        _field("expires_ms", MILLIS, default=1_700_000_000_123),
        _field("expires_us", MICROS, default=1_700_000_000_123_456),
        _field("ref_uid", UUID, default="6f1c2a3b-0000-4000-8000-00000000abcd"),
        _field("raw", "bytes", default="\u00ff\u0000A"),
        _field("digest", {"type": "fixed", "name": "Digest", "size": 4}, default="ab\u00e9\u0001"),
        _field(
            "discount",
            {
                "type": "fixed",
                "name": "Discount",
                "size": 4,
                "logicalType": "decimal",
                "precision": 6,
                "scale": 3,
            },
            default="\u0000\u0000\u0004\u00d2",
        ),
    ),
)
V4_FIELDS = _evolve(
    V3_FIELDS,
    change={"status": _field("status", _status("NEW", "OLD", "ARCHIVED", "RETIRED"))},
    add=(_field("extra", "string", default="x"),),
)
V1, V2, V3, V4 = (_product(f) for f in (V1_FIELDS, V2_FIELDS, V3_FIELDS, V4_FIELDS))
V3_AGAIN = _product(V3_FIELDS, doc="v4 rolled back")  # Glue: what deleting v4 does elsewhere


INTS = (0, 7, -3, 2**31 - 1, -(2**31))
LONGS = (2**31, -(2**40), 5, 2**62 + 1, 2**53 + 1)  # beyond int; 2**53 + 1 rounds as a double
FLOATS = (0.25, -1.5, 3.0e-3, 1.0e30)
DOUBLES = (0.25, 0.1, -2.5e300, 5e-324)


def sample(schema: Any, n: int) -> Any:
    """A value of ``schema`` (fastavro-parsed, expanded) that varies with ``n``: numbers near the
    limits of their types, non-ASCII strings, empty and filled arrays and maps, explicit nulls in
    every other nullable value, every enum symbol in turn."""
    if isinstance(schema, list):
        branches = [s for s in schema if s != "null"]
        return None if len(branches) < len(schema) and n % 2 == 0 else sample(branches[0], n)
    if isinstance(schema, str):
        return _primitive(schema, n)
    logical = schema.get("logicalType")
    if logical == "decimal":
        return Decimal(n * 12_345 % 900_000 - 450_000).scaleb(-schema["scale"])  # 6 digits
    if logical == "date":
        return dt.date(2022, 1, 1) + dt.timedelta(days=n * 37)
    if logical == "timestamp-millis":
        return UTC_EPOCH + dt.timedelta(milliseconds=1_650_000_000_123 + n * 86_400_001)
    if logical == "timestamp-micros":
        return UTC_EPOCH + dt.timedelta(microseconds=1_650_000_000_123_456 + n * 86_400_000_001)
    if logical == "uuid":
        return uuid.UUID(int=(n + 1) * 0x1234_5678_9ABC_DEF1)
    kind = schema["type"]
    if kind == "record":
        return {f["name"]: sample(f["type"], n + i) for i, f in enumerate(schema["fields"])}
    if kind == "array":
        return [sample(schema["items"], n + i) for i in range(n % 3)]
    if kind == "map":
        return {f"k{i}": sample(schema["values"], n + i) for i in range(n % 3)}
    if kind == "enum":
        return schema["symbols"][n % len(schema["symbols"])]
    if kind == "fixed":
        return bytes((n + i) % 256 for i in range(schema["size"]))
    return sample(kind, n)


def _primitive(name: str, n: int) -> Any:
    return {
        "null": None,
        "boolean": n % 2 == 0,
        "int": INTS[n % len(INTS)],
        "long": LONGS[n % len(LONGS)],
        "float": FLOATS[n % len(FLOATS)],
        "double": DOUBLES[n % len(DOUBLES)],
        "string": f"s{n}-héllo ✓",
        "bytes": f"b{n}-naïve".encode(),  # valid UTF-8: bytes→string readers accept it
    }[name]


def event(writer: str, n: int, event_id: str) -> dict:
    record = sample(fastavro.parse_schema(json.loads(writer), expand=True), n)
    return {**record, "eventId": event_id, "timestamp": BASE_SECONDS + n * 7 * 3600}
