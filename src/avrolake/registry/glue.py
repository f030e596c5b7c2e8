"""AWS Glue Schema Registry through aws-glue-schema-registry's client over a boto3 ``glue`` client.

A ``Subject``'s versions live in the Glue schema ``Subject.glue`` of the registry
``glue_registry_name``: ``<topic>`` for a bare topic (TopicNameStrategy), else the strategy's
subject name or the definition's own; references are schema-version UUIDs. The registry and the
schema are created on first registration. Against moto (``endpoint_url`` set) nothing checks
compatibility, which is why ``avrolake schemas register`` runs the local check first.

Failure handling: botocore connect/read timeouts of a few seconds and its "standard" retry mode
(bounded attempts, exponential backoff on throttling, 5xx and connection errors). Failures map by
botocore's ``Error.Code`` (kept as ``RegistryError.code``): ``EntityNotFoundException`` →
``SchemaNotFoundError``; ``InvalidInputException`` on a registration → ``SchemaInvalidError``;
throttling, ``InternalServiceException``, ``OperationTimeoutException``, 5xx and connection
errors → ``RegistryUnavailableError``; the rest (``AlreadyExistsException``,
``AccessDeniedException`` …) ``RegistryError``. A new version Glue's compatibility check refuses
ends in status ``FAILURE``: ``SchemaIncompatibleError``.

Serializers are aws-glue-schema-registry's ``KafkaSerializer`` with a per-version ``AvroSchema``
and a naming strategy giving the subject's schema name.
That serializer has no compression switch, so the compressed form frames the same Avro body with
the library's ``codec.encode(..., compression=True)`` (zlib, header byte 5).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar
from uuid import UUID

import boto3
import botocore.exceptions
from aws_schema_registry import (
    DataAndSchema,
    KafkaSerializer,
    SchemaRegistryClient,
    SchemaRegistryException,
)
from aws_schema_registry.avro import AvroSchema
from aws_schema_registry.codec import encode
from botocore.config import Config
from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from avrolake.errors import (
    RegistryError,
    RegistryUnavailableError,
    SchemaIncompatibleError,
    SchemaInvalidError,
    SchemaNotFoundError,
)
from avrolake.registry import RegisteredSchema, Serialize, Subject, as_subject
from avrolake.registry.confluent import check_record_name
from avrolake.schemas import glue_mode, normalize_mode
from avrolake.settings import RegistrySettings
from avrolake.wire import WireFormat

CONNECT_TIMEOUT_S = 3
READ_TIMEOUT_S = 10
MAX_ATTEMPTS = 3
DEFAULT_COMPATIBILITY = "BACKWARD"  # what a schema is created with until set_compatibility
CHECK_TIMEOUT_S = 60  # how long a new version may stay PENDING (Glue's compatibility check)
CHECK_POLL_S = 1

T = TypeVar("T")

# Glue error codes worth waiting out (throttling, service-side trouble); see botocore's
# standard retry mode, which already retried them MAX_ATTEMPTS times.
_TRANSIENT_CODES = frozenset(
    {"ThrottlingException", "InternalServiceException", "OperationTimeoutException"}
)
# botocore's failures to get an answer at all; its other errors (no credentials, bad parameters)
# will not pass by waiting.
_UNREACHABLE = (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError)


# A version being deleted still describes the records written with it (as Confluent's soft-deleted
# versions do); PENDING or FAILURE versions (failed a compatibility check) were never in use.
_READABLE_STATUSES = frozenset({"AVAILABLE", "DELETING"})


def _owner(schema_arn: str) -> str:
    """``<registry>/<schema>`` of a schema ARN (``arn:aws:glue:…:schema/<registry>/<schema>``)."""
    return schema_arn.split(":schema/", 1)[-1]


def glue_client(settings: RegistrySettings) -> Any:
    """A boto3 Glue client with short timeouts; dummy credentials for a local endpoint (moto)
    when the environment provides none."""
    session = boto3.session.Session(region_name=settings.region)
    config = Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
    )
    kwargs: dict[str, Any] = {"config": config}
    if settings.endpoint_url:
        kwargs["endpoint_url"] = settings.endpoint_url
        if session.get_credentials() is None:  # moto accepts any key
            kwargs["aws_access_key_id"] = "avrolake-local"
            kwargs["aws_secret_access_key"] = "avrolake-local"
    return session.client("glue", **kwargs)


def schema_name(topic: str, is_key: bool = False, schema: object = None) -> str:
    """The Glue schema holding a topic's value versions: ``<topic>`` (the Java SerDe's default).

    Shaped as an aws-glue-schema-registry naming strategy, whose own default is ``<topic>-value``.
    """
    return topic


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


class GlueRegistry:
    """``SchemaRegistry`` over AWS Glue (or moto's Glue API).

    ``by_ref`` is cached for the life of the object (version ids are immutable); ``latest`` always
    asks Glue.
    """

    wire_format = WireFormat.GLUE

    def __init__(self, glue: Any, registry_name: str, endpoint: str) -> None:
        self._glue = glue
        self.registry_name = registry_name
        self.endpoint = endpoint  # endpoint or region, for messages
        # aws-glue-schema-registry's client, for its serializer; requests go through ``_glue``
        self._serde = SchemaRegistryClient(glue, registry_name=registry_name)
        # a version id belongs to exactly one schema: remember which
        self._by_ref: dict[str, tuple[RegisteredSchema, str]] = {}
        self._lock = threading.Lock()
        self._registry_ready = False

    @classmethod
    def from_settings(cls, settings: RegistrySettings) -> GlueRegistry:
        if not settings.glue_registry_name:
            raise RegistryError("flavor glue needs a Glue registry name")
        where = settings.endpoint_url or f"AWS Glue in {settings.region}"
        return cls(glue_client(settings), settings.glue_registry_name, where)

    # --- the SchemaRegistry protocol -----------------------------------------------------------

    def register(self, topic: str | Subject, schema_str: str) -> RegisteredSchema:
        check_record_name(as_subject(topic), schema_str, self.where(topic))
        self._ensure_registry()
        name = as_subject(topic).glue
        version_id: str | None = None
        status: str | None = None
        if not self._schema_exists(topic):
            try:
                created = self._call(
                    f"create schema {name}",
                    lambda: self._glue.create_schema(
                        SchemaName=name,
                        RegistryId={"RegistryName": self.registry_name},
                        DataFormat="AVRO",
                        Compatibility=DEFAULT_COMPATIBILITY,
                        SchemaDefinition=schema_str,
                    ),
                    registering=True,
                )
                version_id, status = created["SchemaVersionId"], created.get("SchemaVersionStatus")
            except RegistryError as error:
                if error.code != "AlreadyExistsException":  # else another producer was first
                    raise
        if version_id is None:
            # Glue answers an already registered definition with its existing version.
            added = self._call(
                f"register a version of schema {name}",
                lambda: self._glue.register_schema_version(
                    SchemaId=self._schema_id(topic), SchemaDefinition=schema_str
                ),
                registering=True,
            )
            version_id, status = added["SchemaVersionId"], added.get("Status")
        if status != "AVAILABLE":
            self._check_passed(topic, str(version_id))
        return self.by_ref(str(version_id))

    def by_ref(self, ref: str, topic: str | Subject | None = None) -> RegisteredSchema:
        """``SchemaNotFoundError`` also when the version belongs to another subject's schema."""
        with self._lock:
            cached = self._by_ref.get(ref)
        if cached is None:
            try:
                version_id = UUID(ref)
            except ValueError:  # any bytes can arrive on a topic: quarantine, do not fail
                raise SchemaNotFoundError(f"{ref!r} is not a Glue schema-version UUID") from None
            # The raw API, not the library's: its answer drops the ARN, which names the registry.
            response = self._call(
                f"get schema version {ref}",
                lambda: self._glue.get_schema_version(SchemaVersionId=str(version_id)),
            )
            if response.get("Status") not in _READABLE_STATUSES:
                raise SchemaNotFoundError(
                    f"schema version {ref} is {response.get('Status')}, not AVAILABLE"
                )
            registered = self._remember(response)
            cached = (registered, _owner(response["SchemaArn"]))
        registered, owner = cached
        ours = f"{self.registry_name}/{as_subject(topic).glue}" if topic is not None else owner
        if owner != ours:  # another subject's schema, or the same name in another registry
            raise SchemaNotFoundError(
                f"schema version {ref} belongs to Glue schema {owner}, not {ours}"
            )
        return registered

    def latest(self, topic: str | Subject) -> RegisteredSchema:
        response = self._call(
            f"get the latest version of schema {as_subject(topic).glue}",
            lambda: self._glue.get_schema_version(
                SchemaId=self._schema_id(topic), SchemaVersionNumber={"LatestVersion": True}
            ),
        )
        return self._remember(response)

    def versions(self, topic: str | Subject) -> list[RegisteredSchema]:
        name = as_subject(topic).glue
        # moto has no ListSchemaVersions; numbered GetSchemaVersion calls work on both.
        schema = self._call(
            f"describe schema {name}",
            lambda: self._glue.get_schema(SchemaId=self._schema_id(topic)),
        )
        result = []
        for number in range(1, int(schema["LatestSchemaVersion"]) + 1):
            response = self._call(
                f"get version {number} of schema {name}",
                functools.partial(
                    self._glue.get_schema_version,
                    SchemaId=self._schema_id(topic),
                    SchemaVersionNumber={"VersionNumber": number},
                ),
            )
            result.append(self._remember(response))
        return result

    def set_compatibility(self, topic: str | Subject, mode: str) -> None:
        self._call(
            f"set compatibility {glue_mode(mode)} on schema {as_subject(topic).glue}",
            lambda: self._glue.update_schema(
                SchemaId=self._schema_id(topic), Compatibility=glue_mode(mode)
            ),
        )

    def compatibility(self, topic: str | Subject) -> str:
        """The schema's mode in Confluent spelling (``FULL_ALL`` → ``FULL_TRANSITIVE``)."""
        schema = self._call(
            f"describe schema {as_subject(topic).glue}",
            lambda: self._glue.get_schema(SchemaId=self._schema_id(topic)),
        )
        return normalize_mode(schema["Compatibility"])

    def serializer(
        self, topic: str | Subject, ref: str, schema_str: str, *, compress: bool = False
    ) -> Serialize:
        subject = as_subject(topic)
        check_record_name(subject, schema_str, self.where(subject))
        schema = _HashedAvroSchema(schema_str)
        if compress:
            version_id = UUID(ref)

            def compressed(event: dict[str, Any]) -> bytes:
                return encode(schema.write(event), version_id, compression=True)

            return compressed

        def naming(topic: str, is_key: bool = False, schema: object = None) -> str:
            # the library's strategies name no schema <topic>, nor a definition's own name
            return subject.glue

        serializer = KafkaSerializer(self._serde, schema_naming_strategy=naming)
        what = f"look up version {ref} of schema {subject.glue}"

        def serialize(event: dict[str, Any]) -> bytes:
            try:
                return serializer.serialize(subject.topic, DataAndSchema(event, schema))
            except SchemaRegistryException as error:
                self._raise_library(what, error)

        return serialize

    def where(self, topic: str | Subject) -> str:
        return f"Glue schema {as_subject(topic).glue}"

    def mode_name(self, mode: str) -> str:
        return glue_mode(mode)

    # --- helpers ---------------------------------------------------------------------------------

    def _schema_id(self, topic: str | Subject) -> dict[str, str]:
        return {"SchemaName": as_subject(topic).glue, "RegistryName": self.registry_name}

    def _ensure_registry(self) -> None:
        if self._registry_ready:
            return
        try:
            self._call(
                f"create registry {self.registry_name}",
                lambda: self._glue.create_registry(RegistryName=self.registry_name),
            )
        except RegistryError as error:
            if error.code != "AlreadyExistsException":
                raise
        self._registry_ready = True

    def _check_passed(self, topic: str | Subject, version_id: str) -> None:
        """Wait out Glue's compatibility check of a new version (status ``PENDING``); a version
        that ends in ``FAILURE`` failed it. moto checks nothing: its versions are ``AVAILABLE``."""

        def status() -> str:
            response = self._call(
                f"get schema version {version_id}",
                lambda: self._glue.get_schema_version(SchemaVersionId=version_id),
            )
            return str(response.get("Status"))

        retrying = Retrying(
            retry=retry_if_result(lambda answer: answer == "PENDING"),
            stop=stop_after_delay(CHECK_TIMEOUT_S),
            wait=wait_fixed(CHECK_POLL_S),
            retry_error_callback=lambda state: "PENDING",
        )
        final = retrying(status)
        where = f"Glue registry {self.registry_name} at {self.endpoint}"
        name = as_subject(topic).glue
        if final == "FAILURE":
            raise SchemaIncompatibleError(
                f"{where} refused to register a version of schema {name}: "
                f"version {version_id} failed the schema's compatibility check "
                f"({self.mode_name(self.compatibility(topic))})"
            )
        if final == "PENDING":
            raise RegistryUnavailableError(
                f"{where} did not finish checking version {version_id} of schema "
                f"{name} within {CHECK_TIMEOUT_S}s"
            )
        if final not in _READABLE_STATUSES:
            raise RegistryError(f"{where}: version {version_id} of schema {name} is {final}")

    def _schema_exists(self, topic: str | Subject) -> bool:
        try:
            self._call(
                f"describe schema {as_subject(topic).glue}",
                lambda: self._glue.get_schema(SchemaId=self._schema_id(topic)),
            )
        except SchemaNotFoundError:
            return False
        return True

    def _remember(self, response: dict[str, Any]) -> RegisteredSchema:
        registered = RegisteredSchema(
            str(response["SchemaVersionId"]),
            int(response["VersionNumber"]),
            response["SchemaDefinition"],
        )
        with self._lock:
            self._by_ref.setdefault(registered.ref, (registered, _owner(response["SchemaArn"])))
        return registered

    def _call(self, what: str, request: Callable[[], T], *, registering: bool = False) -> T:
        """Run one boto request, translating its failures; ``registering``: the request sends a
        schema definition, so invalid input means an invalid definition."""
        try:
            return request()
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            self._raise(what, error, registering=registering)

    def _raise_library(self, what: str, error: SchemaRegistryException) -> NoReturn:
        """An aws-glue-schema-registry failure: by the boto error it wraps, if any."""
        cause: BaseException | None = error
        while cause is not None:
            if isinstance(
                cause, (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)
            ):
                self._raise(what, cause)
            cause = cause.__cause__
        raise RegistryError(
            f"Glue registry {self.registry_name} at {self.endpoint} failed to {what}: {error}"
        ) from None

    def _raise(
        self,
        what: str,
        error: botocore.exceptions.BotoCoreError | botocore.exceptions.ClientError,
        *,
        registering: bool = False,
    ) -> NoReturn:
        """The avrolake error of a failed request, by its code (see the module docstring)."""
        if not isinstance(error, botocore.exceptions.ClientError):
            if isinstance(error, _UNREACHABLE):
                raise RegistryUnavailableError(
                    f"cannot reach the Glue schema registry at {self.endpoint} to {what}: {error}"
                ) from None
            raise RegistryError(
                f"Glue registry {self.registry_name} at {self.endpoint} failed to {what}: {error}"
            ) from None
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        failure: RegistryError
        if code == "EntityNotFoundException":  # answered, and has no such schema or version
            failure = SchemaNotFoundError(
                f"Glue registry {self.registry_name} has nothing to {what}: {message}"
            )
        elif code == "InvalidInputException" and registering:
            failure = SchemaInvalidError(
                f"Glue registry {self.registry_name} refused to {what}: {message}"
            )
        else:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            transient = status >= 500 or code in _TRANSIENT_CODES
            failure = (RegistryUnavailableError if transient else RegistryError)(
                f"Glue registry {self.registry_name} at {self.endpoint} failed to {what}: "
                f"{code}: {message}"
            )
        failure.code = code or None
        raise failure from None
