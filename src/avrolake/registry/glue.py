"""AWS Glue Schema Registry through aws-glue-schema-registry's client over a boto3 ``glue`` client.

A topic's schema is the Glue schema named ``<topic>`` in the registry ``glue_registry_name``;
references are schema-version UUIDs. The registry and the schema are created on first
registration. Against moto (``endpoint_url`` set) nothing checks compatibility, which is why
``avrolake schemas register`` runs the local check first.

Failure handling: botocore connect/read timeouts of a few seconds and its "standard" retry mode
(bounded attempts, exponential backoff on throttling, 5xx and connection errors); then
``RegistryError`` naming the endpoint. A definition Glue rejects as invalid or incompatible
becomes ``SchemaError``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar
from uuid import UUID

import boto3
import botocore.exceptions
from aws_schema_registry import SchemaRegistryClient, SchemaRegistryException
from botocore.config import Config

from avrolake.errors import (
    RegistryError,
    RegistryUnavailableError,
    SchemaError,
    SchemaNotFoundError,
)
from avrolake.registry import RegisteredSchema
from avrolake.schemas import glue_mode, normalize_mode
from avrolake.settings import RegistrySettings
from avrolake.wire import WireFormat

CONNECT_TIMEOUT_S = 3
READ_TIMEOUT_S = 10
MAX_ATTEMPTS = 3
DEFAULT_COMPATIBILITY = "BACKWARD"  # what a schema is created with until set_compatibility

T = TypeVar("T")

# Glue error codes worth waiting out (throttling, service-side trouble); see botocore's
# standard retry mode, which already retried them MAX_ATTEMPTS times.
_TRANSIENT_CODES = frozenset(
    {"ThrottlingException", "InternalServiceException", "OperationTimeoutException"}
)


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


class GlueRegistry:
    """``SchemaRegistry`` over AWS Glue (or moto's Glue API).

    ``by_ref`` is cached for the life of the object (version ids are immutable); ``latest`` always
    asks Glue.
    """

    wire_format = WireFormat.GLUE

    def __init__(self, glue: Any, registry_name: str, where: str) -> None:
        self.glue = glue
        self.registry_name = registry_name
        self.where = where  # endpoint or region, for messages
        self.client = SchemaRegistryClient(glue, registry_name=registry_name)
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

    def register(self, topic: str, schema_str: str) -> RegisteredSchema:
        self._ensure_registry()
        name = schema_name(topic)
        if self._schema_exists(topic):
            version_id = self._call(
                f"register a version of schema {name}",
                lambda: self.client.register_schema_version(schema_str, name),
            )
        else:
            version_id = self._call(
                f"create schema {name}",
                lambda: self.client.create_schema(name, "AVRO", schema_str, DEFAULT_COMPATIBILITY),
            )
        return self.by_ref(str(version_id))

    def by_ref(self, ref: str, topic: str | None = None) -> RegisteredSchema:
        """``SchemaNotFoundError`` also when the version belongs to another topic's schema."""
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
                lambda: self.glue.get_schema_version(SchemaVersionId=str(version_id)),
            )
            if response.get("Status") not in _READABLE_STATUSES:
                raise SchemaNotFoundError(
                    f"schema version {ref} is {response.get('Status')}, not AVAILABLE"
                )
            registered = self._remember(response)
            cached = (registered, _owner(response["SchemaArn"]))
        registered, owner = cached
        ours = f"{self.registry_name}/{schema_name(topic)}" if topic is not None else owner
        if owner != ours:  # another topic's schema, or the same name in another registry
            raise SchemaNotFoundError(
                f"schema version {ref} belongs to Glue schema {owner}, not {ours}"
            )
        return registered

    def latest(self, topic: str) -> RegisteredSchema:
        response = self._call(
            f"get the latest version of schema {topic}",
            lambda: self.glue.get_schema_version(
                SchemaId=self._schema_id(topic), SchemaVersionNumber={"LatestVersion": True}
            ),
        )
        return self._remember(response)

    def versions(self, topic: str) -> list[RegisteredSchema]:
        # moto has no ListSchemaVersions; numbered GetSchemaVersion calls work on both.
        schema = self._call(
            f"describe schema {topic}",
            lambda: self.glue.get_schema(SchemaId=self._schema_id(topic)),
        )
        result = []
        for number in range(1, int(schema["LatestSchemaVersion"]) + 1):
            response = self._call(
                f"get version {number} of schema {topic}",
                functools.partial(
                    self.glue.get_schema_version,
                    SchemaId=self._schema_id(topic),
                    SchemaVersionNumber={"VersionNumber": number},
                ),
            )
            result.append(self._remember(response))
        return result

    def set_compatibility(self, topic: str, mode: str) -> None:
        self._call(
            f"set compatibility {glue_mode(mode)} on schema {topic}",
            lambda: self.glue.update_schema(
                SchemaId=self._schema_id(topic), Compatibility=glue_mode(mode)
            ),
        )

    def compatibility(self, topic: str) -> str:
        """The schema's mode in Confluent spelling (``FULL_ALL`` → ``FULL_TRANSITIVE``)."""
        schema = self._call(
            f"describe schema {topic}",
            lambda: self.glue.get_schema(SchemaId=self._schema_id(topic)),
        )
        return normalize_mode(schema["Compatibility"])

    # --- helpers ---------------------------------------------------------------------------------

    def _schema_id(self, topic: str) -> dict[str, str]:
        return {"SchemaName": schema_name(topic), "RegistryName": self.registry_name}

    def _ensure_registry(self) -> None:
        if self._registry_ready:
            return
        try:
            self._call(
                f"create registry {self.registry_name}",
                lambda: self.glue.create_registry(RegistryName=self.registry_name),
            )
        except RegistryError as error:
            if error.code != "AlreadyExistsException":
                raise
        self._registry_ready = True

    def _schema_exists(self, topic: str) -> bool:
        try:
            self._call(
                f"describe schema {topic}",
                lambda: self.glue.get_schema(SchemaId=self._schema_id(topic)),
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

    def _call(self, what: str, request: Callable[[], T]) -> T:
        """Run one request, translating boto and aws-glue-schema-registry failures."""
        try:
            return request()
        except SchemaRegistryException as error:
            cause = error.__cause__
            if isinstance(
                cause, (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)
            ):
                self._raise(what, cause)
            # The library's own failure, e.g. a version that failed Glue's compatibility check.
            raise SchemaError(
                f"Glue registry {self.registry_name} at {self.where} refused to {what}: {error}"
            ) from None
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            self._raise(what, error)

    def _raise(self, what: str, error: Exception) -> NoReturn:
        if isinstance(error, botocore.exceptions.ClientError):
            code = error.response.get("Error", {}).get("Code", "")
            message = error.response.get("Error", {}).get("Message", "")
            if code == "EntityNotFoundException":  # answered, and has no such schema or version
                raise SchemaNotFoundError(
                    f"Glue registry {self.registry_name} has nothing to {what}: {message}"
                ) from None
            if code == "InvalidInputException" and "efinition" in message:
                raise SchemaError(
                    f"Glue registry {self.registry_name} refused to {what}: {message}"
                ) from None
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            transient = status >= 500 or code in _TRANSIENT_CODES
            failure = (RegistryUnavailableError if transient else RegistryError)(
                f"Glue registry {self.registry_name} at {self.where} failed to {what}: "
                f"{code}: {message}"
            )
            failure.code = code
            raise failure from None
        raise RegistryUnavailableError(
            f"cannot reach the Glue schema registry at {self.where} to {what}: {error}"
        ) from None
