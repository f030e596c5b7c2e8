"""The silver oracle (tests/avro_oracle.py): fastavro's values as PySpark collects them."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from pyspark.sql import Row

from avro_oracle import as_collected, collected, local_naive, record_as_collected, resolve, typed
from avro_oracle import write as avro_write

MILLIS = {"type": "long", "logicalType": "timestamp-millis"}
MICROS = {"type": "long", "logicalType": "timestamp-micros"}
DATE = {"type": "int", "logicalType": "date"}
UUID = {"type": "string", "logicalType": "uuid"}
DECIMAL = {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 3}
FIXED_DECIMAL = {"type": "fixed", "name": "D", "size": 2, "logicalType": "decimal", "scale": 1,
                 "precision": 4}  # fmt: skip
INSTANT = dt.datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=dt.UTC)


def record(*fields: dict, name: str = "R") -> dict:
    return {"type": "record", "name": name, "fields": list(fields)}


def test_defaults_come_raw_from_fastavro_and_are_converted_by_the_reader_schema() -> None:
    reader = record(
        {"name": "ms", "type": MILLIS, "default": 1_700_000_000_123},
        {"name": "us", "type": MICROS, "default": 1_700_000_000_123_456},
        {"name": "day", "type": DATE, "default": 19_000},
        {"name": "id", "type": UUID, "default": "6f1c2a3b-0000-4000-8000-00000000abcd"},
        {"name": "amount", "type": DECIMAL, "default": "\u0004\u00d2"},
        {"name": "fixed_amount", "type": FIXED_DECIMAL, "default": "\u00ff\u0085"},
        {"name": "raw", "type": "bytes", "default": "\u00ff\u0000A"},
        {"name": "ratio", "type": "float", "default": 1},
        {
            "name": "nested",
            "type": record({"name": "when", "type": DATE}, name="N"),
            "default": {"when": 1},
        },
        {"name": "maybe", "type": ["string", "null"], "default": "n/a"},
    )
    got = record_as_collected(resolve(b"", record(), reader), reader)
    assert typed(got) == typed(
        {
            "ms": local_naive(INSTANT.replace(microsecond=123000)),
            "us": local_naive(INSTANT),
            "day": dt.date(2022, 1, 8),
            "id": "6f1c2a3b-0000-4000-8000-00000000abcd",
            "amount": Decimal("1.234"),
            "fixed_amount": Decimal("-12.3"),
            "raw": b"\xff\x00A",
            "ratio": 1.0,
            "nested": {"when": dt.date(1970, 1, 2)},
            "maybe": "n/a",
        }
    )


def test_written_values_keep_their_logical_types() -> None:
    schema = record(
        {"name": "ms", "type": MILLIS},
        {"name": "id", "type": UUID},
        {"name": "amount", "type": DECIMAL},
        {"name": "tags", "type": {"type": "map", "values": {"type": "array", "items": DATE}}},
        {"name": "maybe", "type": ["string", "null"], "default": "n/a"},
    )
    value = {
        "ms": INSTANT,
        "id": uuid.UUID(int=7),
        "amount": Decimal("-0.5"),
        "tags": {"a": [dt.date(2024, 2, 29)], "b": []},
        "maybe": None,  # an explicit null stays null
    }
    got = record_as_collected(resolve(avro_write(schema, value), schema, schema), schema)
    assert typed(got) == typed(
        {
            "ms": local_naive(INSTANT.replace(microsecond=123000)),
            "id": "00000000-0000-0000-0000-000000000007",
            "amount": Decimal("-0.500"),
            "tags": {"a": [dt.date(2024, 2, 29)], "b": []},
            "maybe": None,
        }
    )


def test_a_float_holds_32_bits_whatever_fastavro_promoted() -> None:
    assert as_collected(2**31 - 1, "float") == 2**31
    assert as_collected(0.25, "float") == 0.25
    assert as_collected(0.1, {"type": "float"}) == 0.10000000149011612
    assert as_collected(2**53 + 1, "double") == 2.0**53


def test_a_union_of_several_types_is_refused() -> None:
    with pytest.raises(NotImplementedError, match="several non-null types"):
        as_collected(1, ["null", "int", "string"])


def test_collected_spark_values_become_plain() -> None:
    row = Row(a=Row(b=bytearray(b"x")), c=[Row(d=1)], m={"k": Row(e=bytearray(b""))})
    assert collected(row) == {"a": {"b": b"x"}, "c": [{"d": 1}], "m": {"k": {"e": b""}}}
    assert type(collected(row)["a"]["b"]) is bytes


def test_typed_tells_apart_what_python_calls_equal() -> None:
    assert typed(1) != typed(True)
    assert typed(Decimal("0.25")) != typed(0.25)
    assert typed(0) != typed(0.0)
    assert typed({"a": [0.25]}) == typed({"a": [0.25]})
