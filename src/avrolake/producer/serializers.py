"""One value serializer per schema version, built on the registry libraries' own serializers.

The libraries write the framing (``avrolake.wire`` only reads it):

* Confluent: confluent-kafka's ``AvroSerializer`` with that version's schema,
  ``auto.register.schemas=False`` and ``use.latest.version=False``: it looks the exact schema up
  once under ``<topic>-value`` and stamps *its* id, so each record carries its own version's id.
* Glue: aws-glue-schema-registry's ``KafkaSerializer`` with a per-version ``AvroSchema``. That
  serializer has no compression switch, so the compressed form frames the same Avro body with the
  library's ``codec.encode(..., compression=True)`` (zlib, header byte 5).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import fastavro
from aws_schema_registry import DataAndSchema, KafkaSerializer, SchemaRegistryException
from aws_schema_registry.avro import AvroSchema
from aws_schema_registry.codec import encode
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.common.avro import AVRO_TYPE
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.serde import SchemaId
from confluent_kafka.serialization import MessageField, SerializationContext

from avrolake import wire
from avrolake.errors import RegistryError, SchemaError, SerializationError
from avrolake.registry import SchemaRegistry
from avrolake.registry.confluent import ConfluentRegistry
from avrolake.registry.glue import GlueRegistry, schema_name
from avrolake.schemas import SchemaVersion
from avrolake.settings import Flavor

Serialize = Callable[[dict[str, Any]], bytes]


@dataclass(frozen=True)
class VersionSerializer:
    """Serializes events of one writer version; ``schema_ref`` is what its header carries."""

    version: int
    schema_ref: str
    serialize: Serialize


class _HashedAvroSchema(AvroSchema):
    """``AvroSchema`` whose hash is computed once. The library hashes it on every ``serialize``
    (its schema-version lookup is an ``lru_cache`` keyed on the schema) by re-dumping the JSON,
    which cost ~10 µs per record."""

    def __init__(self, definition: str) -> None:
        super().__init__(definition)
        self._hash = hash(str(self))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return super().__eq__(other)


def _confluent(
    registry: ConfluentRegistry, topic: str, version: SchemaVersion, schema_ref: str
) -> VersionSerializer:
    serializer = AvroSerializer(
        registry.client,
        version.text,
        conf={
            "auto.register.schemas": False,
            "use.latest.version": False,
            "subject.name.strategy.type": "TOPIC",
        },
    )
    ctx = SerializationContext(topic, MessageField.VALUE)

    def serialize(event: dict[str, Any]) -> bytes:
        return serializer(event, ctx)

    return VersionSerializer(version.number, schema_ref, serialize)


def _glue(
    registry: GlueRegistry, topic: str, version: SchemaVersion, schema_ref: str, compress: bool
) -> VersionSerializer:
    schema = _HashedAvroSchema(version.text)
    if compress:
        version_id = UUID(schema_ref)

        def serialize(event: dict[str, Any]) -> bytes:
            return encode(schema.write(event), version_id, compression=True)

    else:
        serializer = KafkaSerializer(registry.client, schema_naming_strategy=schema_name)

        def serialize(event: dict[str, Any]) -> bytes:
            return serializer.serialize(topic, DataAndSchema(event, schema))

    return VersionSerializer(version.number, schema_ref, serialize)


def _fast(built: VersionSerializer, version: SchemaVersion, header: bytes) -> VersionSerializer:
    """fastavro into one reused buffer behind a header the library computed once: the same bytes
    as the library serializer (``build_serializers`` compares them on a sample), ~3 µs cheaper."""
    parsed = fastavro.parse_schema(json.loads(version.text))
    buffer = io.BytesIO()
    write = fastavro.schemaless_writer

    def serialize(event: dict[str, Any]) -> bytes:
        buffer.seek(0)
        buffer.truncate()
        buffer.write(header)
        write(buffer, parsed, event)
        return buffer.getvalue()

    return VersionSerializer(built.version, built.schema_ref, serialize)


def _library_header(flavor: Flavor, schema_ref: str) -> bytes:
    """The framing header as the library writes it: confluent-kafka's ``SchemaId.id_to_bytes``
    (magic 0 + id), or aws-glue-schema-registry's ``codec.encode`` of an empty body."""
    if flavor is Flavor.CONFLUENT:
        return SchemaId(AVRO_TYPE, int(schema_ref)).id_to_bytes()
    return encode(b"", UUID(schema_ref))


def build_serializers(
    flavor: Flavor,
    registry: SchemaRegistry,
    topic: str,
    versions: list[SchemaVersion],
    *,
    register: bool = True,
    glue_compression: bool = False,
    fast: bool = False,
) -> dict[int, VersionSerializer]:
    """A serializer per version, keyed by version number.

    With ``register`` each version is registered first (idempotent, in order); without it each
    must already be registered, else ``RegistryError``. Each serializer is exercised once on a
    sample so lookups fail here, before anything is produced. ``fast`` swaps in ``_fast``
    (not for compressed Glue records) after checking it writes the library's exact bytes.
    """
    result: dict[int, VersionSerializer] = {}
    for version in versions:
        ref = _resolve_ref(flavor, registry, topic, version, register)
        if flavor is Flavor.CONFLUENT:
            assert isinstance(registry, ConfluentRegistry)
            built = _confluent(registry, topic, version, ref)
        else:
            assert isinstance(registry, GlueRegistry)
            built = _glue(registry, topic, version, ref, glue_compression)
        sample = _warm_up(built, version)
        if fast and not (flavor is Flavor.GLUE and glue_compression):
            quick = _fast(built, version, _library_header(flavor, ref))
            if quick.serialize(sample) != built.serialize(sample):
                raise SerializationError(
                    f"fast {version.label} serializer disagrees with the library"
                )
            built = quick
        result[version.number] = built
    return result


def _resolve_ref(
    flavor: Flavor, registry: SchemaRegistry, topic: str, version: SchemaVersion, register: bool
) -> str:
    if register:
        return registry.register(topic, version.text).ref
    where = f"subject {topic}-value" if flavor is Flavor.CONFLUENT else f"Glue schema {topic}"
    wanted = json.loads(version.text)
    for registered in registry.versions(topic):
        if json.loads(registered.schema_str) == wanted:  # registries may re-format the text
            return registered.ref
    raise RegistryError(f"{version.label} is not registered under {where}; drop --no-register")


def _warm_up(built: VersionSerializer, version: SchemaVersion) -> dict[str, Any]:
    """Serialize a sample record so registry lookups happen (and fail) up front."""
    from avrolake.producer.events import EventGenerator

    sample = EventGenerator(seed=0, clock=lambda: 0.0).event(version.field_names)
    try:
        frame = wire.parse(built.serialize(sample))
    except SchemaRegistryError as error:
        raise RegistryError(
            f"the registry does not know {version.label} under this topic: {error.error_message}"
        ) from None
    except SchemaRegistryException as error:
        raise RegistryError(f"Glue lookup of {version.label} failed: {error}") from None
    except (TypeError, ValueError) as error:
        raise SchemaError(f"cannot serialize a sample {version.label} event: {error}") from None
    except SerializationError as error:
        raise SchemaError(
            f"the {version.label} serializer wrote an unknown framing: {error}"
        ) from None
    if frame.schema_ref != built.schema_ref:  # the library resolved another schema than ours
        raise RegistryError(
            f"the {version.label} serializer stamps schema {frame.schema_ref}, "
            f"but the registry registered it as {built.schema_ref}"
        )
    return sample
