"""``wire.parse`` against bytes the registry libraries themselves write.

Confluent framing comes from confluent-kafka's ``AvroSerializer`` over its in-process ``mock://``
registry (fine for framing bytes; the integration tests use the real Apicurio). Glue framing comes
from aws-glue-schema-registry's ``KafkaSerializer`` over moto's Glue backend, in process here
(the local stack runs the same moto as a server). The library's serializer has no compression
switch in 1.1.3; its compressed form is ``codec.encode(..., compression=True)``, the function the
serializer calls, so that is what the zlib case uses.
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path
from uuid import UUID

import boto3
import fastavro
import pytest
from aws_schema_registry import DataAndSchema, KafkaSerializer, SchemaRegistryClient
from aws_schema_registry.avro import AvroSchema
from aws_schema_registry.codec import decode, encode
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry import SchemaRegistryClient as ConfluentClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from moto import mock_aws

from avrolake import wire
from avrolake.errors import SerializationError
from avrolake.producer.events import EventGenerator
from avrolake.registry.glue import schema_name
from avrolake.schemas import load_versions

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "product"
VERSIONS = load_versions(SCHEMAS)
TOPIC = "wire-test"


def _events() -> list[tuple[object, dict]]:
    generator = EventGenerator(11, clock=lambda: 1_700_000_000.5)
    return [(v, generator.event(v.field_names)) for v in VERSIONS]


def _decode(payload: bytes, schema_text: str) -> dict:
    return fastavro.schemaless_reader(
        io.BytesIO(payload), fastavro.parse_schema(json.loads(schema_text))
    )


def test_confluent_serializer_bytes() -> None:
    client = ConfluentClient.new_client({"url": "mock://wire-test"})
    ctx = SerializationContext(TOPIC, MessageField.VALUE)
    seen = []
    for version, event in _events():
        schema_id = client.register_schema(f"{TOPIC}-value", Schema(version.text, "AVRO"))
        serializer = AvroSerializer(
            client,
            version.text,
            conf={"auto.register.schemas": False, "subject.name.strategy.type": "TOPIC"},
        )
        data = serializer(event, ctx)
        frame = wire.parse(data)
        assert wire.detect(data) is wire.WireFormat.CONFLUENT
        assert frame.wire_format is wire.WireFormat.CONFLUENT
        assert frame.schema_ref == str(schema_id)
        assert data[:5] == b"\x00" + struct.pack(">I", schema_id)
        assert wire.frame_confluent(schema_id, frame.payload) == data
        decoded = _decode(frame.payload, version.text)
        assert {k: decoded[k] for k in ("productId", "eventId", "type", "timestamp")} == {
            k: event[k] for k in ("productId", "eventId", "type", "timestamp")
        }
        seen.append(frame.schema_ref)
    assert seen == ["1", "2", "3"]


@mock_aws
def test_glue_serializer_bytes_plain_and_zlib(monkeypatch: pytest.MonkeyPatch) -> None:
    # moto's in-process mock, not the local stack's server: the session's local_stack fixture
    # exports its endpoint, which boto3 would otherwise send this test's requests to
    for variable in ("AWS_ENDPOINT_URL_GLUE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(variable, raising=False)
    glue = boto3.client("glue", region_name="us-east-1")
    glue.create_registry(RegistryName="wire")
    client = SchemaRegistryClient(glue, registry_name="wire")
    serializer = KafkaSerializer(client, schema_naming_strategy=schema_name)
    for version, event in _events():
        schema = AvroSchema(version.text)
        data = serializer.serialize(TOPIC, DataAndSchema(event, schema))
        version_id = client.get_schema_by_definition(version.text, TOPIC).version_id
        frame = wire.parse(data)
        assert frame.wire_format is wire.WireFormat.GLUE
        assert frame.schema_ref == str(version_id)
        assert data[:2] == b"\x03\x00" and data[2:18] == version_id.bytes
        assert frame.payload == schema.write(event)
        assert wire.frame_glue(frame.schema_ref, frame.payload) == data

        compressed = encode(schema.write(event), version_id, compression=True)
        zframe = wire.parse(compressed)
        assert compressed[:2] == b"\x03\x05"
        assert zframe == wire.Frame(wire.WireFormat.GLUE, str(version_id), frame.payload)
        assert decode(compressed) == (frame.payload, version_id)
        assert wire.frame_glue(frame.schema_ref, frame.payload, compress=True) == compressed
        assert schema.read(zframe.payload) == schema.read(frame.payload)
    assert client.get_schema_version(UUID(frame.schema_ref)).version_number == 3


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, "null record value"),
        (b"", "unknown wire format: first byte 0x(empty)"),
        (b"\x07abcdefghijklmnopqrstuvwxyz", "unknown wire format: first byte 0x07"),
        (b"\x00\x00\x01", "unknown wire format: first byte 0x00"),  # too short for an id
        (b"\x03\x01" + bytes(16) + b"x", "unknown wire format: first byte 0x03"),  # bad compression
    ],
)
def test_unframed_bytes_raise(data: bytes | None, message: str) -> None:
    with pytest.raises(SerializationError) as error:
        wire.parse(data)
    assert str(error.value) == message


def test_corrupt_zlib_body_raises() -> None:
    data = b"\x03\x05" + bytes(16) + b"not zlib"
    with pytest.raises(SerializationError, match=r"^corrupt zlib body in a Glue record: "):
        wire.parse(data)


def _confluent_guid_serializer_bytes(schema_id_serializer) -> tuple[bytes, list, object]:
    """A v3 event through confluent-kafka's ``AvroSerializer`` with the given schema-id
    serializer, over the in-process ``mock://`` registry (which assigns GUIDs)."""
    from confluent_kafka.schema_registry import Schema as SRSchema

    client = ConfluentClient.new_client({"url": "mock://wire-guid"})
    version, event = _events()[-1]
    client.register_schema(f"{TOPIC}-value", SRSchema(version.text, "AVRO"))
    serializer = AvroSerializer(
        client,
        version.text,
        conf={"auto.register.schemas": False, "use.latest.version": True,
              "schema.id.serializer": schema_id_serializer},
    )  # fmt: skip
    headers: list = []
    data = serializer(event, SerializationContext(TOPIC, MessageField.VALUE, headers))
    registered = client.lookup_schema(f"{TOPIC}-value", SRSchema(version.text, "AVRO"))
    return data, headers, registered


def test_confluent_header_schema_id_is_read_from_the_record_header() -> None:
    from confluent_kafka.schema_registry import header_schema_id_serializer

    data, headers, registered = _confluent_guid_serializer_bytes(header_schema_id_serializer)
    assert [key for key, _ in headers] == [wire.VALUE_SCHEMA_ID_HEADER]
    frame = wire.parse(data, headers)
    assert frame == wire.Frame(
        wire.WireFormat.CONFLUENT_HEADER, f"guid:{registered.guid}", data
    )  # the value is the untouched Avro body
    assert wire.WireFormat.CONFLUENT_HEADER.flavor is wire.WireFormat.CONFLUENT


def test_confluent_header_with_an_int_id_and_guid_prefix() -> None:
    from confluent_kafka.schema_registry.common.serde import SchemaId

    body = b"\x02ab"
    by_id = SchemaId("AVRO", schema_id=258).id_to_bytes()
    assert wire.parse(body, [("other", b"x"), (wire.VALUE_SCHEMA_ID_HEADER, by_id)]) == (
        wire.Frame(wire.WireFormat.CONFLUENT_HEADER, "258", body)
    )
    guid = "6f1d2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"
    prefixed = SchemaId("AVRO", guid=guid).guid_to_bytes() + body
    assert wire.parse(prefixed) == wire.Frame(wire.WireFormat.CONFLUENT_GUID, f"guid:{guid}", body)


def test_a_malformed_schema_id_header_is_not_a_frame() -> None:
    with pytest.raises(SerializationError, match=r"^malformed __value_schema_id header$"):
        wire.parse(b"\x00\x00\x00\x00\x01ab", [(wire.VALUE_SCHEMA_ID_HEADER, b"\x07\x00")])
