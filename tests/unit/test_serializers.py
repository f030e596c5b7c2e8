"""``build_serializers`` over any ``SchemaRegistry``: it needs no flavor, only the registry's
serializers. The registry here is a stand-in writing hand-made framings (the real libraries'
bytes are in test_wire.py, the real registries' serializers in
tests/integration/test_registry.py)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import fastavro
import pytest

from avrolake import wire
from avrolake.errors import RegistryError, SchemaNotFoundError
from avrolake.producer.events import EventGenerator
from avrolake.producer.serializers import build_serializers
from avrolake.registry import RegisteredSchema, Serialize
from avrolake.schemas import load_versions

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "product"
VERSIONS = load_versions(SCHEMAS)
TOPIC = "products"


class FramingRegistry:
    """Registers in memory; serializes with fastavro behind Confluent or Glue framing."""

    def __init__(self, wire_format: wire.WireFormat, *, stamp: str | None = None) -> None:
        self.wire_format = wire_format
        self.registered: list[RegisteredSchema] = []
        self.stamp = stamp  # a ref the serializer writes instead of its own (a library mix-up)
        self.missing = False  # the serializer's lookup answers "not found"

    def _ref(self, number: int) -> str:
        if self.wire_format is wire.WireFormat.GLUE:
            return f"00000000-0000-4000-8000-{number:012d}"
        return str(100 + number)

    def register(self, topic: str, schema_str: str) -> RegisteredSchema:
        for known in self.registered:
            if known.schema_str == schema_str:
                return known
        number = len(self.registered) + 1
        self.registered.append(RegisteredSchema(self._ref(number), number, schema_str))
        return self.registered[-1]

    def versions(self, topic: str) -> list[RegisteredSchema]:
        return list(self.registered)

    def where(self, topic: str) -> str:
        return f"the stand-in's {topic}"

    def serializer(
        self, topic: str, ref: str, schema_str: str, *, compress: bool = False
    ) -> Serialize:
        parsed = fastavro.parse_schema(json.loads(schema_str))
        stamped = self.stamp or ref

        def serialize(event: dict[str, Any]) -> bytes:
            if self.missing:
                raise SchemaNotFoundError(f"no {ref} under {topic}")
            buffer = io.BytesIO()
            fastavro.schemaless_writer(buffer, parsed, event)
            if self.wire_format is wire.WireFormat.GLUE:
                return wire.frame_glue(stamped, buffer.getvalue(), compress=compress)
            return wire.frame_confluent(int(stamped), buffer.getvalue())

        return serialize


@pytest.mark.parametrize("framing", [wire.WireFormat.CONFLUENT, wire.WireFormat.GLUE])
def test_fast_serializers_write_the_registrys_bytes_for_any_framing(
    framing: wire.WireFormat,
) -> None:
    registry = FramingRegistry(framing)
    library = build_serializers(registry, TOPIC, VERSIONS)  # type: ignore[arg-type]
    fast = build_serializers(registry, TOPIC, VERSIONS, register=False, fast=True)  # type: ignore[arg-type]
    generator = EventGenerator(seed=9, clock=lambda: 1_700_000_000.0)
    for version in VERSIONS:
        assert fast[version.number].schema_ref == registry.registered[version.number - 1].ref
        for _ in range(10):
            event = generator.event(version.field_names)
            assert fast[version.number].serialize(event) == library[version.number].serialize(event)


def test_compressed_bodies_keep_the_registrys_serializer() -> None:
    registry = FramingRegistry(wire.WireFormat.GLUE)
    built = build_serializers(registry, TOPIC, VERSIONS[:1], compress=True, fast=True)  # type: ignore[arg-type]
    event = EventGenerator(seed=1).event(VERSIONS[0].field_names)
    assert built[1].serialize(event)[1] == wire.GLUE_COMPRESSION_ZLIB


def test_a_failed_lookup_keeps_its_kind_and_names_the_version() -> None:
    registry = FramingRegistry(wire.WireFormat.CONFLUENT)
    registry.missing = True
    with pytest.raises(SchemaNotFoundError) as error:
        build_serializers(registry, TOPIC, VERSIONS[:1])  # type: ignore[arg-type]
    assert str(error.value) == (
        f"cannot look up {VERSIONS[0].label} in the registry: no 101 under {TOPIC}"
    )


def test_a_serializer_stamping_another_ref_is_refused() -> None:
    registry = FramingRegistry(wire.WireFormat.CONFLUENT, stamp="999")
    with pytest.raises(RegistryError, match="stamps schema 999, but the registry registered"):
        build_serializers(registry, TOPIC, VERSIONS[:1])  # type: ignore[arg-type]
