"""One small interface over the two schema registries.

The producer registers through it and takes from it a serializer per schema version; the Spark
jobs look up writer schemas by the reference found in each record's header and take the latest
version as the reader schema. ``open_registry`` picks the implementation for a flavor; nobody else
constructs a registry client or needs to know which flavor it has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from avrolake.settings import Flavor, RegistrySettings
from avrolake.wire import WireFormat

Serialize = Callable[[dict[str, Any]], bytes]
"""One record value (a dict matching the schema) → the framed bytes a Kafka record carries."""


class SubjectStrategy(StrEnum):
    """Where a record type's versions live: Confluent's subject name strategies. Glue has no
    subjects: its schema name follows the same rule unless a definition names it."""

    TOPIC = "topic"  # TopicNameStrategy: <topic>-value (Glue: schema <topic>); one type per topic
    RECORD = "record"  # RecordNameStrategy: <record full name>
    TOPIC_RECORD = "topic_record"  # TopicRecordNameStrategy: <topic>-<record full name>


@dataclass(frozen=True)
class Subject:
    """One record type's place in a registry: a Confluent subject, or a Glue schema.

    A plain topic name, wherever the registry interface takes ``topic``, means
    ``Subject(topic)``: TopicNameStrategy, the only strategy before pipeline definitions.
    """

    topic: str
    strategy: SubjectStrategy = SubjectStrategy.TOPIC
    record: str | None = None  # the record type's full name; required by the record strategies
    glue_schema: str | None = None  # a Glue schema name other than the strategy's

    def __post_init__(self) -> None:
        if self.strategy is not SubjectStrategy.TOPIC and not self.record:
            raise ValueError(f"subject strategy {self.strategy} needs the record's full name")

    @property
    def confluent(self) -> str:
        """The Confluent subject name."""
        if self.strategy is SubjectStrategy.RECORD:
            return str(self.record)
        if self.strategy is SubjectStrategy.TOPIC_RECORD:
            return f"{self.topic}-{self.record}"
        return f"{self.topic}-value"

    @property
    def glue(self) -> str:
        """The Glue schema name: ``<topic>`` (the Java SerDe's default) for TopicNameStrategy."""
        if self.glue_schema:
            return self.glue_schema
        return self.topic if self.strategy is SubjectStrategy.TOPIC else self.confluent


def as_subject(topic_or_subject: str | Subject) -> Subject:
    """``Subject(topic)`` for a bare topic name (TopicNameStrategy)."""
    if isinstance(topic_or_subject, Subject):
        return topic_or_subject
    return Subject(topic_or_subject)


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
    """What avrolake needs of a registry. ``topic`` is a ``Subject`` or a bare topic
    (TopicNameStrategy): it names the Confluent subject (``Subject.confluent``) or the Glue schema
    (``Subject.glue``). Under a record strategy, ``register`` and ``serializer`` refuse a schema
    whose full name is not ``Subject.record`` (``ConfigError``).

    Errors, by kind (all ``RegistryError``s, mapped from the libraries' status and error codes):
    ``SchemaNotFoundError`` when the registry answered and has no such schema (a ref that cannot
    exist counts too), ``SchemaIncompatibleError`` for a version the compatibility rule refuses,
    ``SchemaInvalidError`` for a definition refused as invalid, ``RegistryUnavailableError`` for
    what may pass (timeouts, connection errors, 408/429/5xx, throttling), ``RegistryError`` for
    the rest."""

    wire_format: WireFormat  # the framing this registry's serializers write

    def register(self, topic: str | Subject, schema_str: str) -> RegisteredSchema:
        """Register (idempotently) and return the version; a schema the rule refuses raises
        ``SchemaIncompatibleError`` naming the reason the registry gave."""
        ...

    def serializer(
        self, topic: str | Subject, ref: str, schema_str: str, *, compress: bool = False
    ) -> Serialize:
        """The registry library's own serializer of ``topic``'s registered version ``ref``
        (definition ``schema_str``): each record's framing names ``ref``. It looks the version up
        on its first call, raising the errors above; ``compress`` asks for compressed bodies
        (``ConfigError`` where the framing has none). Bad values raise ``TypeError`` /
        ``ValueError``."""
        ...

    def where(self, topic: str | Subject) -> str:
        """Where ``topic``'s versions live, for messages: ``subject <Subject.confluent>`` or
        ``Glue schema <Subject.glue>``."""
        ...

    def mode_name(self, mode: str) -> str:
        """A compatibility mode (Confluent spelling, as ``compatibility`` returns it) in this
        registry's own spelling (Glue: ``FULL_TRANSITIVE`` → ``FULL_ALL``)."""
        ...

    def by_ref(self, ref: str, topic: str | Subject | None = None) -> RegisteredSchema:
        """The writer schema a record header points at (cached: refs are immutable).

        ``version`` is its version under ``topic`` when given: one Confluent schema id can be
        registered under several subjects, at a different version number in each.
        ``SchemaNotFoundError`` also when ``ref`` exists but not under ``topic``'s subject or Glue
        schema (silver routes a topic's record types by it)."""
        ...

    def latest(self, topic: str | Subject) -> RegisteredSchema:
        """The newest version: the reader schema (not cached: it changes while streams run)."""
        ...

    def versions(self, topic: str | Subject) -> list[RegisteredSchema]:
        """Every version, oldest first."""
        ...

    def set_compatibility(self, topic: str | Subject, mode: str) -> None: ...

    def compatibility(self, topic: str | Subject) -> str: ...


def open_registry(settings: RegistrySettings) -> SchemaRegistry:
    if settings.flavor is Flavor.CONFLUENT:
        from avrolake.registry.confluent import ConfluentRegistry

        return ConfluentRegistry.from_settings(settings)
    from avrolake.registry.glue import GlueRegistry

    return GlueRegistry.from_settings(settings)
