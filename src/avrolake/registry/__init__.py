"""One small interface over the two schema registries.

The producer registers through it and takes from it a serializer per schema version; the Spark
jobs look up writer schemas by the reference found in each record's header and take the latest
version as the reader schema. ``open_registry`` picks the implementation for a flavor; nobody else
constructs a registry client or needs to know which flavor it has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from avrolake.settings import Flavor, RegistrySettings
from avrolake.wire import WireFormat

Serialize = Callable[[dict[str, Any]], bytes]
"""One record value (a dict matching the schema) → the framed bytes a Kafka record carries."""


@dataclass(frozen=True)
class RegisteredSchema:
    """One registered version of a schema.

    ``ref`` is what the wire format carries: the Confluent schema id in decimal, or the Glue
    schema-version UUID. ``version`` is the 1-based version number under the subject / schema name.
    """

    ref: str
    version: int
    schema_str: str


class SchemaRegistry(Protocol):
    """What avrolake needs of a registry. ``topic`` names the subject (``<topic>-value``) or the
    Glue schema (``<topic>``).

    Errors, by kind (all ``RegistryError``s, mapped from the libraries' status and error codes):
    ``SchemaNotFoundError`` when the registry answered and has no such schema (a ref that cannot
    exist counts too), ``SchemaIncompatibleError`` for a version the compatibility rule refuses,
    ``SchemaInvalidError`` for a definition refused as invalid, ``RegistryUnavailableError`` for
    what may pass (timeouts, connection errors, 408/429/5xx, throttling), ``RegistryError`` for
    the rest."""

    wire_format: WireFormat  # the framing this registry's serializers write

    def register(self, topic: str, schema_str: str) -> RegisteredSchema:
        """Register (idempotently) and return the version; a schema the rule refuses raises
        ``SchemaIncompatibleError`` naming the reason the registry gave."""
        ...

    def serializer(
        self, topic: str, ref: str, schema_str: str, *, compress: bool = False
    ) -> Serialize:
        """The registry library's own serializer of ``topic``'s registered version ``ref``
        (definition ``schema_str``): each record's framing names ``ref``. It looks the version up
        on its first call, raising the errors above; ``compress`` asks for compressed bodies
        (``ConfigError`` where the framing has none). Bad values raise ``TypeError`` /
        ``ValueError``."""
        ...

    def where(self, topic: str) -> str:
        """Where ``topic``'s versions live, for messages: ``subject <topic>-value`` or
        ``Glue schema <topic>``."""
        ...

    def mode_name(self, mode: str) -> str:
        """A compatibility mode (Confluent spelling, as ``compatibility`` returns it) in this
        registry's own spelling (Glue: ``FULL_TRANSITIVE`` → ``FULL_ALL``)."""
        ...

    def by_ref(self, ref: str, topic: str | None = None) -> RegisteredSchema:
        """The writer schema a record header points at (cached: refs are immutable).

        ``version`` is its version under ``topic`` when given: one Confluent schema id can be
        registered under several subjects, at a different version number in each."""
        ...

    def latest(self, topic: str) -> RegisteredSchema:
        """The newest version: the reader schema (not cached: it changes while streams run)."""
        ...

    def versions(self, topic: str) -> list[RegisteredSchema]:
        """Every version, oldest first."""
        ...

    def set_compatibility(self, topic: str, mode: str) -> None: ...

    def compatibility(self, topic: str) -> str: ...


def open_registry(settings: RegistrySettings) -> SchemaRegistry:
    if settings.flavor is Flavor.CONFLUENT:
        from avrolake.registry.confluent import ConfluentRegistry

        return ConfluentRegistry.from_settings(settings)
    from avrolake.registry.glue import GlueRegistry

    return GlueRegistry.from_settings(settings)
