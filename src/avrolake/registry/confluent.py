"""Confluent Schema Registry (or Apicurio's ccompat API) through confluent-kafka's client.

A ``Subject`` names the subject (``Subject.confluent``): TopicNameStrategy ``<topic>-value`` for a
bare topic, RecordNameStrategy ``<record full name>``, TopicRecordNameStrategy
``<topic>-<record full name>``. References are schema ids in decimal.

Failure handling: every request times out after ``REQUEST_TIMEOUT_S``; the client retries
connection errors and 408/429/5xx responses ``MAX_RETRIES`` times with jittered exponential backoff
(confluent-kafka's own retry loop), then we raise ``RegistryUnavailableError`` naming the URL.
Answers map by HTTP status (``SchemaRegistryError.http_status_code``; ``error_code`` is kept as
``RegistryError.code``): 404 (40401 subject, 40402 version, 40403 schema) →
``SchemaNotFoundError``, 409 → ``SchemaIncompatibleError``, 422 (42201 invalid schema …) →
``SchemaInvalidError``, 408/429/5xx → ``RegistryUnavailableError``, the rest ``RegistryError``.

Serializers are confluent-kafka's ``AvroSerializer`` with one version's schema,
``auto.register.schemas=False`` and ``use.latest.version=False``: it looks the exact schema up once
under the subject (the library's own strategy function names it) and stamps *its* id, so each
record carries its own version's id.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar
from uuid import UUID

from confluent_kafka.schema_registry import (
    Schema,
    SchemaRegistryClient,
    record_subject_name_strategy,
    topic_record_subject_name_strategy,
    topic_subject_name_strategy,
)
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

# The client raises transport errors of httpx2 where installed (confluent-kafka 2.16+), else httpx;
# the same choice confluent-kafka makes, without importing its private module.
try:
    import httpx2 as httpx
except ImportError:  # pragma: no cover - older confluent-kafka environments
    import httpx  # type: ignore[no-redef]
from confluent_kafka.schema_registry.error import SchemaRegistryError

from avrolake.errors import (
    ConfigError,
    RegistryError,
    RegistryUnavailableError,
    SchemaIncompatibleError,
    SchemaInvalidError,
    SchemaNotFoundError,
)
from avrolake.registry import RegisteredSchema, Serialize, Subject, SubjectStrategy, as_subject
from avrolake.schema_references import full_name, inline_named_types
from avrolake.schemas import normalize_mode
from avrolake.settings import RegistrySettings
from avrolake.wire import GUID_REF_PREFIX, WireFormat

REQUEST_TIMEOUT_S = 10
MAX_RETRIES = 2
RETRY_WAIT_MS = 200
RETRY_MAX_WAIT_MS = 2000

T = TypeVar("T")


# confluent-kafka's functions of the strategies: (ctx, record full name) -> subject
_LIBRARY_STRATEGIES: dict[SubjectStrategy, Callable[..., str | None]] = {
    SubjectStrategy.TOPIC: topic_subject_name_strategy,
    SubjectStrategy.RECORD: record_subject_name_strategy,
    SubjectStrategy.TOPIC_RECORD: topic_record_subject_name_strategy,
}


def subject_for(topic: str | Subject) -> str:
    """The Confluent subject: ``<topic>-value`` for a bare topic (TopicNameStrategy)."""
    return as_subject(topic).confluent


def record_name(schema_str: str) -> str | None:
    """The full name of the named type ``schema_str`` defines; None for anything else, invalid
    JSON included (the registry reports that)."""
    try:
        definition = json.loads(schema_str)
    except ValueError:
        return None
    if not isinstance(definition, dict) or not isinstance(definition.get("name"), str):
        return None
    return full_name(definition)


def check_record_name(subject: Subject, schema_str: str, where: str) -> None:
    """Under a record strategy a subject holds one record type (``subject.record``): a schema of
    another type there is a configuration mistake, refused before it reaches the registry."""
    if subject.strategy is SubjectStrategy.TOPIC:
        return
    named = record_name(schema_str)
    if named != subject.record:
        raise ConfigError(
            f"a schema of record {named or '(none: not a named type)'} cannot go under {where}: "
            f"that {subject.strategy} subject holds record {subject.record}; fix the record's "
            "full name in the definition or the schema"
        )


class ConfluentRegistry:
    """``SchemaRegistry`` over a Confluent-compatible REST API.

    ``by_ref`` is cached for the life of the object (ids are immutable); ``latest`` always asks the
    registry, so a newly registered version is seen by the next call.
    """

    wire_format = WireFormat.CONFLUENT

    def __init__(self, client: SchemaRegistryClient, url: str) -> None:
        self._client = client
        self.url = url
        # One schema id can sit under several subjects, at a different version in each, so the
        # cache is keyed by (id, subject); subject None = "any subject".
        self._by_ref: dict[tuple[str, str | None], RegisteredSchema] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: RegistrySettings) -> ConfluentRegistry:
        if not settings.url:
            raise RegistryError("flavor confluent needs a registry URL")
        conf: dict[str, object] = {
            "url": settings.url,
            "timeout": REQUEST_TIMEOUT_S,
            "max.retries": MAX_RETRIES,
            "retries.wait.ms": RETRY_WAIT_MS,
            "retries.max.wait.ms": RETRY_MAX_WAIT_MS,
        }
        if settings.basic_auth_user and settings.basic_auth_password:
            user = settings.basic_auth_user.resolve()
            password = settings.basic_auth_password.resolve()
            conf["basic.auth.user.info"] = f"{user}:{password}"
        try:
            client = SchemaRegistryClient(conf)
        except (TypeError, ValueError) as error:
            raise RegistryError(f"bad registry URL {settings.url!r}: {error}") from None
        return cls(client, settings.url)

    def close(self) -> None:
        self._client.close()

    # --- the SchemaRegistry protocol -----------------------------------------------------------

    def register(self, topic: str | Subject, schema_str: str) -> RegisteredSchema:
        check_record_name(as_subject(topic), schema_str, self.where(topic))
        subject = subject_for(topic)
        schema = Schema(schema_str, "AVRO")
        schema_id = self._call(
            f"register a schema under {subject}",
            lambda: self._client.register_schema(subject, schema),
        )
        # The POST answer may carry only the id; the lookup gives the version number.
        found = self._call(
            f"look up the schema just registered under {subject}",
            lambda: self._client.lookup_schema(subject, schema),
        )
        registered = RegisteredSchema(str(schema_id), int(found.version or 0), schema_str)
        with self._lock:
            self._by_ref.setdefault((registered.ref, subject), registered)
        return registered

    def by_ref(self, ref: str, topic: str | Subject | None = None) -> RegisteredSchema:
        subject = subject_for(topic) if topic else None
        with self._lock:
            cached = self._by_ref.get((ref, subject))
        if cached is not None:
            return cached
        if ref.startswith(GUID_REF_PREFIX):
            return self._by_guid(ref, subject)
        # Any bytes can arrive on a topic: a ref that cannot be an id is "not found", so its
        # record is quarantined instead of failing the batch.
        if not ref.isdigit() or int(ref) >= 2**31:
            raise SchemaNotFoundError(f"{ref!r} is not a Confluent schema id")
        schema_id = int(ref)
        schema = self._call(f"get schema id {ref}", lambda: self._client.get_schema(schema_id))
        # deleted=True: a soft-deleted version still describes the records written with it.
        versions = self._call(
            f"get the subjects of schema id {ref}",
            lambda: self._client.get_schema_versions(schema_id, deleted=True),
        )
        ours = [v for v in versions if v.subject == subject] if subject else versions
        if not ours:  # another subject's schema: not a writer this subject's readers may resolve
            raise SchemaNotFoundError(f"schema id {ref} is not registered under {subject}")
        version = ours[0].version
        registered = RegisteredSchema(ref, int(version or 0), self._complete(schema))
        with self._lock:
            self._by_ref[(ref, subject)] = registered
        return registered

    def _by_guid(self, ref: str, subject: str | None) -> RegisteredSchema:
        """A ``guid:<uuid>`` ref (magic-1 framings): the schema by GUID, and its version under
        ``subject`` by looking the schema up there (which also proves it is this subject's)."""
        try:
            guid = str(UUID(ref.removeprefix(GUID_REF_PREFIX)))
        except ValueError:
            raise SchemaNotFoundError(f"{ref!r} is not a schema GUID") from None
        schema = self._call(
            f"get schema GUID {guid}", lambda: self._client.get_schema_by_guid(guid)
        )
        version = 0
        if subject is not None:
            found = self._call(
                f"find schema GUID {guid} under {subject}",
                lambda: self._client.lookup_schema(subject, schema, deleted=True),
            )
            version = int(found.version or 0)
        registered = RegisteredSchema(ref, version, self._complete(schema))
        with self._lock:
            self._by_ref[(ref, subject)] = registered
        return registered

    def latest(self, topic: str | Subject) -> RegisteredSchema:
        subject = subject_for(topic)
        self._client.clear_latest_caches()  # the client caches "latest" forever otherwise
        found = self._call(
            f"get the latest version of {subject}", lambda: self._client.get_latest_version(subject)
        )
        return self._remember(found.schema_id, found.version, self._complete(found.schema), subject)

    def versions(self, topic: str | Subject) -> list[RegisteredSchema]:
        subject = subject_for(topic)
        numbers = self._call(
            f"list versions of {subject}", lambda: self._client.get_versions(subject)
        )
        result = []
        for number in sorted(numbers):
            found = self._call(
                f"get version {number} of {subject}",
                functools.partial(self._client.get_version, subject, number),
            )
            result.append(
                self._remember(
                    found.schema_id, found.version, self._complete(found.schema), subject
                )
            )
        return result

    def set_compatibility(self, topic: str | Subject, mode: str) -> None:
        subject = subject_for(topic)
        level = normalize_mode(mode)
        self._call(
            f"set compatibility {level} on {subject}",
            lambda: self._client.set_compatibility(subject_name=subject, level=level),
        )

    def compatibility(self, topic: str | Subject) -> str:
        subject = subject_for(topic)
        return self._call(
            f"get the compatibility of {subject}",
            lambda: self._client.get_compatibility(subject_name=subject),
        )

    def serializer(
        self, topic: str | Subject, ref: str, schema_str: str, *, compress: bool = False
    ) -> Serialize:
        if compress:
            raise ConfigError("the Confluent wire format has no compressed form")
        subject = as_subject(topic)
        check_record_name(subject, schema_str, self.where(subject))
        ctx = SerializationContext(subject.topic, MessageField.VALUE)
        serializer = AvroSerializer(
            self._client,
            schema_str,
            conf={
                "auto.register.schemas": False,
                "use.latest.version": False,
                # the library's own function, as any confluent-kafka producer's: with the record
                # name checked above it names subject.confluent
                "subject.name.strategy": _LIBRARY_STRATEGIES[subject.strategy],
            },
        )
        what = f"look up schema id {ref} under {subject.confluent}"

        def serialize(event: dict[str, Any]) -> bytes:
            try:
                return serializer(event, ctx)
            except (SchemaRegistryError, httpx.TransportError) as error:
                self._raise(what, error)

        return serialize

    def where(self, topic: str | Subject) -> str:
        return f"subject {subject_for(topic)}"

    def mode_name(self, mode: str) -> str:
        return normalize_mode(mode)

    # --- helpers ---------------------------------------------------------------------------------

    def _complete(self, schema: Schema) -> str:
        """``schema``'s text, self-contained: the types it references from other subjects (and
        those reference, transitively) defined inline (``avrolake.schema_references``)."""
        text = schema.schema_str or ""
        if not schema.references:
            return text
        named: dict[str, Any] = {}  # by the definition's own full name
        seen: set[tuple[str, int]] = set()
        pending = list(schema.references)
        while pending:
            reference = pending.pop()
            subject, version = reference.subject, reference.version
            what = f"reference {reference.name} ({subject} v{version})"
            if subject is None or version is None:
                raise SchemaNotFoundError(f"{what} names no subject and version")
            if (subject, version) in seen:
                continue
            seen.add((subject, version))
            found = self._call(
                f"get {what}", functools.partial(self._client.get_version, subject, version)
            )
            definition = json.loads(found.schema.schema_str or "null")
            if not isinstance(definition, dict) or "name" not in definition:
                raise SchemaNotFoundError(f"{what} is not a named Avro type")
            named[full_name(definition)] = definition
            pending.extend(found.schema.references or [])
        return inline_named_types(text, named)

    def _remember(
        self, schema_id: int | None, version: int | None, text: str | None, subject: str
    ) -> RegisteredSchema:
        registered = RegisteredSchema(str(schema_id), int(version or 0), text or "")
        with self._lock:
            self._by_ref.setdefault((registered.ref, subject), registered)
        return registered

    def _call(self, what: str, request: Callable[[], T]) -> T:
        """Run one client request, translating its failures into avrolake errors."""
        try:
            return request()
        except (SchemaRegistryError, httpx.TransportError) as error:
            self._raise(what, error)

    def _raise(self, what: str, error: SchemaRegistryError | httpx.TransportError) -> NoReturn:
        """The avrolake error of a failed request, by HTTP status (see the module docstring)."""
        if isinstance(error, httpx.TransportError):
            raise RegistryUnavailableError(
                f"cannot reach the schema registry at {self.url} to {what}: "
                f"{type(error).__name__}: {error or 'no answer'}"
            ) from None
        status = error.http_status_code
        failure: RegistryError
        if status == 404:  # answered, and has no such schema or subject
            failure = SchemaNotFoundError(
                f"schema registry at {self.url} has nothing to {what}: {error.error_message}"
            )
        elif status in (409, 422):
            kind = SchemaIncompatibleError if status == 409 else SchemaInvalidError
            failure = kind(
                f"schema registry at {self.url} refused to {what}: {error.error_message} "
                f"(HTTP {status})"
            )
        else:
            transient = status is None or status in (408, 429) or status >= 500
            failure = (RegistryUnavailableError if transient else RegistryError)(
                f"schema registry at {self.url} failed to {what}: {error.error_message} "
                f"(HTTP {status}, code {error.error_code})"
            )
        if error.error_code is not None and error.error_code != SchemaRegistryError.UNKNOWN:
            failure.code = str(error.error_code)
        raise failure from None
