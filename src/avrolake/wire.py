"""Byte layout of the registry framings, in Python and as Spark column expressions.

The registries' libraries write these headers (confluent-kafka's Avro serializer with its prefix
or header schema-id serializers, aws-glue-schema-registry's serializer); this module only reads
them, and is the only place that knows the offsets. On the Python side confluent-kafka's own
``SchemaId`` parses the Confluent forms.

================  ===================================================  ========================
wire format       where the schema reference is                        schema reference
================  ===================================================  ========================
confluent         value prefix: magic 0x00, 4-byte big-endian id       the id, as decimal
confluent-guid    value prefix: magic 0x01, 16-byte schema GUID        ``guid:<uuid>``
confluent-header  record header ``__value_schema_id``: magic 0x00 +    the id, or
                  4-byte id, or magic 0x01 + GUID; the value is the    ``guid:<uuid>``
                  bare Avro body
glue              value prefix: version 0x03, compression 0x00 |      the UUID, lower-case
                  0x05 (zlib), 16-byte schema-version UUID             8-4-4-4-12 form
================  ===================================================  ========================

A record header takes precedence over the value prefix, as confluent-kafka's
``dual_schema_id_deserializer`` reads it; a malformed header makes the record ``unknown``.
"""

from __future__ import annotations

import io
import struct
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from avrolake.errors import SerializationError

if TYPE_CHECKING:
    from pyspark.sql import Column


class WireFormat(StrEnum):
    CONFLUENT = "confluent"
    CONFLUENT_GUID = "confluent-guid"
    CONFLUENT_HEADER = "confluent-header"
    GLUE = "glue"
    UNKNOWN = "unknown"

    @property
    def flavor(self) -> WireFormat:
        """The registry flavor that writes this framing: ``CONFLUENT``, ``GLUE`` or ``UNKNOWN``."""
        return WireFormat.CONFLUENT if self.value.startswith("confluent") else self


VALUE_SCHEMA_ID_HEADER = "__value_schema_id"  # confluent-kafka's header schema-id serializer
GUID_REF_PREFIX = "guid:"
CONFLUENT_MAGIC = 0x00
CONFLUENT_GUID_MAGIC = 0x01
CONFLUENT_HEADER_LEN = 5  # magic + int32 id
CONFLUENT_GUID_HEADER_LEN = 17  # magic + 16-byte GUID

GLUE_HEADER_VERSION = 0x03
GLUE_COMPRESSION_NONE = 0x00
GLUE_COMPRESSION_ZLIB = 0x05
GLUE_HEADER_LEN = 18  # version + compression + 16-byte UUID

HEADER_LEN = {
    WireFormat.CONFLUENT: CONFLUENT_HEADER_LEN,
    WireFormat.CONFLUENT_GUID: CONFLUENT_GUID_HEADER_LEN,
    WireFormat.CONFLUENT_HEADER: 0,  # the schema id is in a record header
    WireFormat.GLUE: GLUE_HEADER_LEN,
}
Headers = Sequence[tuple[str, bytes | None]]


@dataclass(frozen=True)
class Frame:
    """A parsed record: which framing, the writer schema's reference, and the Avro body."""

    wire_format: WireFormat
    schema_ref: str
    payload: bytes  # the Avro binary body, decompressed


def value_schema_id_header(headers: Headers | None) -> bytes | None:
    """The first ``__value_schema_id`` header's value, as confluent-kafka looks it up."""
    for key, value in headers or ():
        if key == VALUE_SCHEMA_ID_HEADER:
            return value
    return None


def _header_is_valid(header: bytes) -> bool:
    return (len(header) == CONFLUENT_HEADER_LEN and header[0] == CONFLUENT_MAGIC) or (
        len(header) == CONFLUENT_GUID_HEADER_LEN and header[0] == CONFLUENT_GUID_MAGIC
    )


def detect(data: bytes | None, headers: Headers | None = None) -> WireFormat:
    header = value_schema_id_header(headers)
    if header is not None:
        return WireFormat.CONFLUENT_HEADER if _header_is_valid(header) else WireFormat.UNKNOWN
    if data and len(data) >= CONFLUENT_HEADER_LEN and data[0] == CONFLUENT_MAGIC:
        return WireFormat.CONFLUENT
    if data and len(data) >= CONFLUENT_GUID_HEADER_LEN and data[0] == CONFLUENT_GUID_MAGIC:
        return WireFormat.CONFLUENT_GUID
    if (
        data
        and len(data) >= GLUE_HEADER_LEN
        and data[0] == GLUE_HEADER_VERSION
        and data[1] in (GLUE_COMPRESSION_NONE, GLUE_COMPRESSION_ZLIB)
    ):
        return WireFormat.GLUE
    return WireFormat.UNKNOWN


def _confluent_ref(schema_id_bytes: bytes) -> str:
    """The reference in a Confluent schema-id field, parsed by confluent-kafka's ``SchemaId``."""
    from confluent_kafka.schema_registry.common.serde import SchemaId

    schema_id = SchemaId("AVRO")
    schema_id.from_bytes(io.BytesIO(schema_id_bytes))
    if schema_id.guid is not None:
        return f"{GUID_REF_PREFIX}{schema_id.guid}"
    return str(schema_id.id)


def parse(data: bytes | None, headers: Headers | None = None) -> Frame:
    """Split a framed record into header and Avro body; ``SerializationError`` if unframed."""
    wire_format = detect(data, headers)
    if wire_format is WireFormat.CONFLUENT_HEADER:
        header = value_schema_id_header(headers)
        assert header is not None
        if data is None:
            raise SerializationError("null record value")
        return Frame(wire_format, _confluent_ref(header), data)
    if wire_format in (WireFormat.CONFLUENT, WireFormat.CONFLUENT_GUID):
        assert data is not None
        length = HEADER_LEN[wire_format]
        return Frame(wire_format, _confluent_ref(data[:length]), data[length:])
    if wire_format is WireFormat.GLUE:
        assert data is not None
        body = data[GLUE_HEADER_LEN:]
        if data[1] == GLUE_COMPRESSION_ZLIB:
            try:
                body = zlib.decompress(body)
            except zlib.error as error:
                raise SerializationError(f"corrupt zlib body in a Glue record: {error}") from None
        return Frame(wire_format, str(uuid.UUID(bytes=data[2:GLUE_HEADER_LEN])), body)
    if value_schema_id_header(headers) is not None:
        raise SerializationError(f"malformed {VALUE_SCHEMA_ID_HEADER} header")
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


def spark_value_schema_id_header(headers: Column) -> Column:
    """The first ``__value_schema_id`` header's value (NULL without one)."""
    from pyspark.sql import functions as F

    found = F.filter(headers, lambda header: header["key"] == VALUE_SCHEMA_ID_HEADER)
    return F.get(found, 0)["value"]


def spark_wire_format(value: Column, headers: Column | None = None) -> Column:
    """A ``WireFormat`` value for a binary column of framed records (and their headers)."""
    from pyspark.sql import functions as F

    length = F.length(value)
    is_confluent = (length >= CONFLUENT_HEADER_LEN) & (
        _byte_hex(value, 1) == f"{CONFLUENT_MAGIC:02X}"
    )
    is_confluent_guid = (length >= CONFLUENT_GUID_HEADER_LEN) & (
        _byte_hex(value, 1) == f"{CONFLUENT_GUID_MAGIC:02X}"
    )
    is_glue = (
        (length >= GLUE_HEADER_LEN)
        & (_byte_hex(value, 1) == f"{GLUE_HEADER_VERSION:02X}")
        & _byte_hex(value, 2).isin(f"{GLUE_COMPRESSION_NONE:02X}", f"{GLUE_COMPRESSION_ZLIB:02X}")
    )
    detected = F.when(F.lit(False), F.lit(None))
    if headers is not None:
        header = spark_value_schema_id_header(headers)
        header_ok = (
            (F.length(header) == CONFLUENT_HEADER_LEN)
            & (_byte_hex(header, 1) == f"{CONFLUENT_MAGIC:02X}")
        ) | (
            (F.length(header) == CONFLUENT_GUID_HEADER_LEN)
            & (_byte_hex(header, 1) == f"{CONFLUENT_GUID_MAGIC:02X}")
        )
        detected = F.when(header_ok, F.lit(WireFormat.CONFLUENT_HEADER.value)).when(
            header.isNotNull(), F.lit(WireFormat.UNKNOWN.value)
        )
    return (
        detected.when(value.isNull(), F.lit(WireFormat.UNKNOWN.value))
        .when(is_confluent, F.lit(WireFormat.CONFLUENT.value))
        .when(is_confluent_guid, F.lit(WireFormat.CONFLUENT_GUID.value))
        .when(is_glue, F.lit(WireFormat.GLUE.value))
        .otherwise(F.lit(WireFormat.UNKNOWN.value))
    )


def _spark_uuid(binary: Column, position: int) -> Column:
    """16 bytes from ``position`` as a lower-case 8-4-4-4-12 UUID string."""
    from pyspark.sql import functions as F

    digits = F.lower(F.hex(F.substring(binary, position, 16)))
    return F.concat_ws(
        "-",
        *(F.substring(digits, start, size) for start, size in ((1, 8), (9, 4), (13, 4), (17, 4),
                                                             (21, 12)))
    )  # fmt: skip


def _spark_confluent_ref(schema_id: Column) -> Column:
    """The reference in a Confluent schema-id field (magic 0 + id, or magic 1 + GUID)."""
    from pyspark.sql import functions as F

    return F.when(
        _byte_hex(schema_id, 1) == f"{CONFLUENT_MAGIC:02X}",
        F.conv(F.hex(F.substring(schema_id, 2, 4)), 16, 10),
    ).otherwise(F.concat(F.lit(GUID_REF_PREFIX), _spark_uuid(schema_id, 2)))


def spark_schema_ref(value: Column, wire_format: Column, headers: Column | None = None) -> Column:
    """The writer schema's reference as a string (see the module's table), else NULL."""
    from pyspark.sql import functions as F

    ref = F.when(
        wire_format.isin(WireFormat.CONFLUENT.value, WireFormat.CONFLUENT_GUID.value),
        _spark_confluent_ref(value),
    ).when(wire_format == WireFormat.GLUE.value, _spark_uuid(value, 3))
    if headers is not None:
        header = spark_value_schema_id_header(headers)
        ref = ref.when(
            wire_format == WireFormat.CONFLUENT_HEADER.value, _spark_confluent_ref(header)
        )
    return ref


def spark_flavor(wire_format: Column) -> Column:
    """``confluent`` for every Confluent framing, else the wire format itself."""
    from pyspark.sql import functions as F

    return F.when(
        wire_format.startswith(WireFormat.CONFLUENT.value), F.lit(WireFormat.CONFLUENT.value)
    ).otherwise(wire_format)


def spark_is_compressed(value: Column, wire_format: Column) -> Column:
    """True for Glue records whose body is zlib-compressed."""
    return (wire_format == WireFormat.GLUE.value) & (
        _byte_hex(value, 2) == f"{GLUE_COMPRESSION_ZLIB:02X}"
    )


def spark_payload(value: Column, wire_format: Column) -> Column:
    """The Avro body (still compressed for zlib Glue records); NULL when the framing is unknown."""
    from pyspark.sql import functions as F

    rest = 1 << 30  # substring to the end; a Kafka record is far smaller
    payload = F.when(wire_format == WireFormat.CONFLUENT_HEADER.value, value)
    for framing in (WireFormat.CONFLUENT, WireFormat.CONFLUENT_GUID, WireFormat.GLUE):
        payload = payload.when(
            wire_format == framing.value, F.substring(value, HEADER_LEN[framing] + 1, rest)
        )
    return payload
