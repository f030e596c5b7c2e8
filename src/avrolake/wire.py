"""Byte layout of the two registry framings, in Python and as Spark column expressions.

The libraries write these headers (confluent-kafka's ``AvroSerializer``, aws-glue-schema-registry's
``KafkaSerializer``); this module only reads them, and is the only place that knows the offsets.

==========  ======================================================  ===================
framing     header                                                  schema reference
==========  ======================================================  ===================
confluent   magic 0x00, 4-byte big-endian schema id                 the id, as decimal
glue        version 0x03, compression 0x00 | 0x05 (zlib), 16-byte   the UUID, lower-case
            schema-version UUID                                     8-4-4-4-12 form
==========  ======================================================  ===================
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from avrolake.errors import SerializationError

if TYPE_CHECKING:
    from pyspark.sql import Column


class WireFormat(StrEnum):
    CONFLUENT = "confluent"
    GLUE = "glue"
    UNKNOWN = "unknown"


CONFLUENT_MAGIC = 0x00
CONFLUENT_HEADER_LEN = 5  # magic + int32 id

GLUE_HEADER_VERSION = 0x03
GLUE_COMPRESSION_NONE = 0x00
GLUE_COMPRESSION_ZLIB = 0x05
GLUE_HEADER_LEN = 18  # version + compression + 16-byte UUID

HEADER_LEN = {WireFormat.CONFLUENT: CONFLUENT_HEADER_LEN, WireFormat.GLUE: GLUE_HEADER_LEN}


@dataclass(frozen=True)
class Frame:
    """A parsed record: which framing, the writer schema's reference, and the Avro body."""

    wire_format: WireFormat
    schema_ref: str
    payload: bytes  # the Avro binary body, decompressed


def detect(data: bytes | None) -> WireFormat:
    if data and len(data) >= CONFLUENT_HEADER_LEN and data[0] == CONFLUENT_MAGIC:
        return WireFormat.CONFLUENT
    if (
        data
        and len(data) >= GLUE_HEADER_LEN
        and data[0] == GLUE_HEADER_VERSION
        and data[1] in (GLUE_COMPRESSION_NONE, GLUE_COMPRESSION_ZLIB)
    ):
        return WireFormat.GLUE
    return WireFormat.UNKNOWN


def parse(data: bytes | None) -> Frame:
    """Split a framed record into header and Avro body; ``SerializationError`` if unframed."""
    wire_format = detect(data)
    if wire_format is WireFormat.CONFLUENT:
        assert data is not None
        (schema_id,) = struct.unpack(">I", data[1:CONFLUENT_HEADER_LEN])
        return Frame(wire_format, str(schema_id), data[CONFLUENT_HEADER_LEN:])
    if wire_format is WireFormat.GLUE:
        assert data is not None
        body = data[GLUE_HEADER_LEN:]
        if data[1] == GLUE_COMPRESSION_ZLIB:
            try:
                body = zlib.decompress(body)
            except zlib.error as error:
                raise SerializationError(f"corrupt zlib body in a Glue record: {error}") from None
        return Frame(wire_format, str(uuid.UUID(bytes=data[2:GLUE_HEADER_LEN])), body)
    if data is None:
        raise SerializationError("null record value")
    raise SerializationError(f"unknown wire format: first byte 0x{data[:1].hex() or '(empty)'}")


def frame_confluent(schema_id: int, payload: bytes) -> bytes:
    """Confluent framing, for tests and benchmarks that need hand-made records."""
    return struct.pack(">bI", CONFLUENT_MAGIC, schema_id) + payload


def frame_glue(version_id: str, payload: bytes, *, compress: bool = False) -> bytes:
    """Glue framing, for tests and benchmarks that need hand-made records."""
    compression = GLUE_COMPRESSION_ZLIB if compress else GLUE_COMPRESSION_NONE
    body = zlib.compress(payload) if compress else payload
    return bytes([GLUE_HEADER_VERSION, compression]) + uuid.UUID(version_id).bytes + body


# --- Spark forms of the same layout -----------------------------------------------------------
# Pure column expressions (no UDF), so bronze can parse headers on the JVM at Kafka speed.


def _byte_hex(value: Column, position: int) -> Column:
    from pyspark.sql import functions as F

    return F.hex(F.substring(value, position, 1))


def spark_wire_format(value: Column) -> Column:
    """``confluent`` | ``glue`` | ``unknown`` for a binary column of framed records."""
    from pyspark.sql import functions as F

    length = F.length(value)
    is_confluent = (length >= CONFLUENT_HEADER_LEN) & (
        _byte_hex(value, 1) == f"{CONFLUENT_MAGIC:02X}"
    )
    is_glue = (
        (length >= GLUE_HEADER_LEN)
        & (_byte_hex(value, 1) == f"{GLUE_HEADER_VERSION:02X}")
        & _byte_hex(value, 2).isin(f"{GLUE_COMPRESSION_NONE:02X}", f"{GLUE_COMPRESSION_ZLIB:02X}")
    )
    return (
        F.when(value.isNull(), F.lit(WireFormat.UNKNOWN.value))
        .when(is_confluent, F.lit(WireFormat.CONFLUENT.value))
        .when(is_glue, F.lit(WireFormat.GLUE.value))
        .otherwise(F.lit(WireFormat.UNKNOWN.value))
    )


def spark_schema_ref(value: Column, wire_format: Column) -> Column:
    """The writer schema's reference as a string (Confluent id in decimal, Glue UUID), else NULL."""
    from pyspark.sql import functions as F

    confluent_id = F.conv(F.hex(F.substring(value, 2, 4)), 16, 10)
    glue_hex = F.lower(F.hex(F.substring(value, 3, 16)))
    glue_uuid = F.concat_ws(
        "-",
        F.substring(glue_hex, 1, 8),
        F.substring(glue_hex, 9, 4),
        F.substring(glue_hex, 13, 4),
        F.substring(glue_hex, 17, 4),
        F.substring(glue_hex, 21, 12),
    )
    return F.when(wire_format == WireFormat.CONFLUENT.value, confluent_id).when(
        wire_format == WireFormat.GLUE.value, glue_uuid
    )


def spark_is_compressed(value: Column, wire_format: Column) -> Column:
    """True for Glue records whose body is zlib-compressed."""
    return (wire_format == WireFormat.GLUE.value) & (
        _byte_hex(value, 2) == f"{GLUE_COMPRESSION_ZLIB:02X}"
    )


def spark_payload(value: Column, wire_format: Column) -> Column:
    """The Avro body (still compressed for zlib Glue records); NULL when the framing is unknown."""
    from pyspark.sql import functions as F

    rest = 1 << 30  # substring to the end; a Kafka record is far smaller
    return F.when(
        wire_format == WireFormat.CONFLUENT.value,
        F.substring(value, CONFLUENT_HEADER_LEN + 1, rest),
    ).when(wire_format == WireFormat.GLUE.value, F.substring(value, GLUE_HEADER_LEN + 1, rest))
