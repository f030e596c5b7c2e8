"""An oracle for silver, independent of Spark: fastavro's resolution of the same bytes, in the
Python values PySpark collects for the column ``from_avro`` makes of the reader's type.

``resolve`` decodes an Avro body with its writer schema resolved to a reader schema.
``as_collected`` turns fastavro's value into what ``DataFrame.collect()`` returns for it: fastavro
converts logical types of *written* values (``datetime``, ``UUID``, ``Decimal``) but hands
*defaults* over as their raw JSON (an ``int`` for a timestamp, a ``str`` of code points for bytes),
so the conversion follows the reader schema, not the value's Python type.
``collected`` makes a collected Spark value plain (``Row`` → ``dict``, ``bytearray`` → ``bytes``).

Spark's Avro types: enum and uuid → string, bytes and fixed → binary, decimal → decimal,
date → date, timestamp-millis/micros → timestamp (collected as a naive datetime in the Python
process's local time zone), a union of ``null`` and one type → that type, nullable.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import struct
from decimal import Decimal
from typing import Any

import fastavro
from pyspark.sql import Row

UTC_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
EPOCH_DAY = dt.date(1970, 1, 1)
_TIME_UNITS = {"timestamp-millis": "milliseconds", "timestamp-micros": "microseconds"}


def resolve(body: bytes, writer: str | dict, reader: str | dict) -> dict:
    """fastavro's reading of ``body`` (written with ``writer``) as ``reader``."""
    return fastavro.schemaless_reader(io.BytesIO(body), _parsed(writer), _parsed(reader))


def write(schema: str | dict, record: dict) -> bytes:
    """The Avro binary body of ``record``, as fastavro's ``schemaless_writer`` writes it."""
    out = io.BytesIO()
    fastavro.schemaless_writer(out, _parsed(schema), record)
    return out.getvalue()


def as_collected(value: Any, schema: str | dict | list) -> Any:
    """``value`` (fastavro's, for ``schema``) as PySpark collects the column of that type."""
    return _convert(value, fastavro.parse_schema(_json(schema), expand=True))


def record_as_collected(record: dict, schema: str | dict) -> dict:
    """A top-level record, field by field: silver's Product columns."""
    parsed = fastavro.parse_schema(_json(schema), expand=True)
    return {f["name"]: _convert(record[f["name"]], f["type"]) for f in parsed["fields"]}


def collected(value: Any) -> Any:
    """A collected Spark value made plain: rows as dicts, binary as bytes, recursively."""
    if isinstance(value, Row):
        return {k: collected(v) for k, v in value.asDict(recursive=False).items()}
    if isinstance(value, dict):
        return {k: collected(v) for k, v in value.items()}
    if isinstance(value, list):
        return [collected(v) for v in value]
    if isinstance(value, bytearray):
        return bytes(value)
    return value


def typed(value: Any) -> Any:
    """``value`` with each leaf paired with its type's name, so that a comparison also catches a
    column of the wrong type: ``0.25 == Decimal("0.25")`` and ``1 == True`` in Python."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value).__name__, value)


def local_naive(moment: dt.datetime) -> dt.datetime:
    """An aware instant as PySpark collects a timestamp: naive, in the local time zone."""
    return moment.astimezone().replace(tzinfo=None)


def _convert(value: Any, schema: Any) -> Any:
    if value is None:
        return None
    if isinstance(schema, list):
        branches = [s for s in schema if s != "null"]
        if len(branches) != 1:  # Spark makes a struct of such unions; no test here uses one
            raise NotImplementedError(f"union of several non-null types: {schema}")
        return _convert(value, branches[0])
    if isinstance(schema, str):
        return _primitive(value, schema)
    logical = schema.get("logicalType")
    kind = schema["type"]
    if logical == "decimal":
        return _decimal(value, schema.get("scale", 0))
    if logical == "date":
        return value if isinstance(value, dt.date) else EPOCH_DAY + dt.timedelta(days=value)
    if logical in _TIME_UNITS:
        if not isinstance(value, dt.datetime):
            value = UTC_EPOCH + dt.timedelta(**{_TIME_UNITS[logical]: value})
        return local_naive(value)
    if logical == "uuid":
        return str(value)
    if kind == "record":
        return {f["name"]: _convert(value[f["name"]], f["type"]) for f in schema["fields"]}
    if kind == "array":
        return [_convert(v, schema["items"]) for v in value]
    if kind == "map":
        return {k: _convert(v, schema["values"]) for k, v in value.items()}
    if kind == "enum":
        return value
    if kind == "fixed":
        return _bytes(value)
    return _convert(value, kind)  # a primitive in object form: {"type": "string"}


def _primitive(value: Any, name: str) -> Any:
    if name == "float":  # a float column holds 32 bits; fastavro promotes an int to a double
        return struct.unpack("<f", struct.pack("<f", value))[0]
    if name == "double":
        return float(value)
    if name == "bytes":
        return _bytes(value)
    return value


def _bytes(value: bytes | str) -> bytes:
    # JSON defaults of bytes and fixed are strings whose code points 0-255 are the bytes
    return value.encode("latin-1") if isinstance(value, str) else bytes(value)


def _decimal(value: Decimal | bytes | str, scale: int) -> Decimal:
    if isinstance(value, Decimal):
        return value
    unscaled = int.from_bytes(_bytes(value), "big", signed=True)
    return Decimal(unscaled).scaleb(-scale)


def _json(schema: str | dict | list) -> Any:
    """A schema's JSON text parsed; a primitive's bare name (``"float"``) and parsed JSON as is."""
    if isinstance(schema, str) and schema.lstrip().startswith(("{", "[", '"')):
        return json.loads(schema)
    return schema


def _parsed(schema: str | dict) -> Any:
    return fastavro.parse_schema(_json(schema))
