"""One small interface over the two schema registries.

The producer registers and serializes through it; the Spark jobs look up writer schemas by the
reference found in each record's header and take the latest version as the reader schema.
``open_registry`` picks the implementation for a flavor; nobody else constructs a registry client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from avrolake.settings import Flavor, RegistrySettings
from avrolake.wire import WireFormat


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

    Errors: ``SchemaNotFoundError`` when the registry answered and has no such schema (a ref that
    cannot exist counts too), ``RegistryUnavailableError`` for what may pass (timeouts, 5xx,
    throttling), ``SchemaError`` for a refused definition, ``RegistryError`` for the rest."""

    wire_format: WireFormat  # the framing this registry's serializers write

    def register(self, topic: str, schema_str: str) -> RegisteredSchema:
        """Register (idempotently) and return the version; an incompatible schema raises
        ``SchemaError`` naming the reason the registry gave."""
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
