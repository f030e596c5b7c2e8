"""One value serializer per schema version, built by the registry from its library's serializer.

The registry (``SchemaRegistry.serializer``) writes the framing with its own library's Avro
serializer (confluent-kafka or aws-glue-schema-registry); ``avrolake.wire`` only reads it. This
module registers (or finds) each version, warms each serializer up on a sample so lookups fail
before anything is produced, and can swap in a faster equivalent (``_fast``). Nothing here knows
which registry it talks to.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import fastavro

from avrolake import wire
from avrolake.errors import RegistryError, SchemaError, SerializationError
from avrolake.registry import SchemaRegistry, Serialize
from avrolake.schemas import SchemaVersion


@dataclass(frozen=True)
class VersionSerializer:
    """Serializes events of one writer version; ``schema_ref`` is what its header carries."""

    version: int
    schema_ref: str
    serialize: Serialize


def _fast(built: VersionSerializer, version: SchemaVersion, header: bytes) -> VersionSerializer:
    """fastavro into one reused buffer behind a header the library wrote: the same bytes as the
    library serializer (``build_serializers`` compares them on a sample), ~3 µs cheaper."""
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


def _library_header(framed: bytes) -> bytes:
    """The framing header of one record the library wrote: everything before its Avro body."""
    body = wire.parse(framed).payload
    return framed[: len(framed) - len(body)]


def build_serializers(
    registry: SchemaRegistry,
    topic: str,
    versions: list[SchemaVersion],
    *,
    register: bool = True,
    compress: bool = False,
    fast: bool = False,
) -> dict[int, VersionSerializer]:
    """A serializer per version, keyed by version number.

    With ``register`` each version is registered first (idempotent, in order); without it each
    must already be registered, else ``RegistryError``. ``compress`` asks the registry for
    compressed bodies (Glue's zlib framing). Each serializer is exercised once on a sample so
    lookups fail here, before anything is produced. ``fast`` swaps in ``_fast`` (not for
    compressed bodies) after checking it writes the library's exact bytes.
    """
    result: dict[int, VersionSerializer] = {}
    for version in versions:
        ref = _resolve_ref(registry, topic, version, register)
        serialize = registry.serializer(topic, ref, version.text, compress=compress)
        built = VersionSerializer(version.number, ref, serialize)
        sample = _warm_up(built, version)
        if fast and not compress:
            library = built.serialize(sample)
            quick = _fast(built, version, _library_header(library))
            if quick.serialize(sample) != library:
                raise SerializationError(
                    f"fast {version.label} serializer disagrees with the library"
                )
            built = quick
        result[version.number] = built
    return result


def _resolve_ref(
    registry: SchemaRegistry, topic: str, version: SchemaVersion, register: bool
) -> str:
    if register:
        return registry.register(topic, version.text).ref
    wanted = json.loads(version.text)
    for registered in registry.versions(topic):
        if json.loads(registered.schema_str) == wanted:  # registries may re-format the text
            return registered.ref
    raise RegistryError(
        f"{version.label} is not registered under {registry.where(topic)}; drop --no-register"
    )


def _warm_up(built: VersionSerializer, version: SchemaVersion) -> dict[str, Any]:
    """Serialize a sample record so registry lookups happen (and fail) up front."""
    from avrolake.producer.events import EventGenerator

    sample = EventGenerator(seed=0, clock=lambda: 0.0).event(version.field_names)
    try:
        frame = wire.parse(built.serialize(sample))
    except RegistryError as error:  # the same kind, naming the version
        failure = type(error)(f"cannot look up {version.label} in the registry: {error}")
        failure.code = error.code
        raise failure from None
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
