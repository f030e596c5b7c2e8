"""Settings and secrets: the one place that reads the environment, CLI arguments and secret scopes.

Settings are frozen dataclasses validated at construction. Secrets are held as ``SecretRef`` (an
environment variable for laptops and CI, a Databricks secret scope and key on a cluster) and
resolved only when a client is built, so they never sit in a settings object, a log line or a repr.

Defaults point at the embedded local stack (``avrolake local up``); its ports can be moved with
``AVROLAKE_KAFKA_PORT``, ``AVROLAKE_APICURIO_PORT`` and ``AVROLAKE_MOTO_PORT``.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from avrolake.errors import ConfigError


class Flavor(StrEnum):
    """Which schema registry frames the records: Confluent SR (or Apicurio) or AWS Glue SR."""

    CONFLUENT = "confluent"
    GLUE = "glue"


class KafkaAuth(StrEnum):
    PLAINTEXT = "plaintext"  # the local broker
    SASL_PLAIN = "sasl-plain"  # Confluent Cloud: SASL_SSL with an API key and secret
    MSK_IAM = "msk-iam"  # AWS MSK: SASL_SSL OAUTHBEARER signed with IAM credentials


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a port number") from None


@dataclass(frozen=True)
class LocalPorts:
    """Loopback ports of the embedded stack, overridable through the environment."""

    kafka: int = field(default_factory=lambda: _env_int("AVROLAKE_KAFKA_PORT", 19092))
    kafka_controller: int = field(
        default_factory=lambda: _env_int("AVROLAKE_KAFKA_CONTROLLER_PORT", 19093)
    )
    apicurio: int = field(default_factory=lambda: _env_int("AVROLAKE_APICURIO_PORT", 18081))
    moto: int = field(default_factory=lambda: _env_int("AVROLAKE_MOTO_PORT", 15000))

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.kafka}"

    @property
    def confluent_registry_url(self) -> str:
        return f"http://127.0.0.1:{self.apicurio}/apis/ccompat/v7"

    @property
    def glue_endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.moto}"


def cache_dir() -> Path:
    """Where downloads (jars, archives, the Databricks CLI) live: never inside the repository."""
    return Path(os.environ.get("AVROLAKE_CACHE", Path.home() / ".cache" / "avrolake"))


def local_state_dir() -> Path:
    """Pid files and logs of the embedded stack (``AVROLAKE_STATE_DIR``)."""
    raw = os.environ.get("AVROLAKE_STATE_DIR")
    return Path(raw).expanduser() if raw else cache_dir() / "state"


def local_warehouse_dir() -> Path:
    """Where local runs keep their Delta tables (``AVROLAKE_WAREHOUSE``)."""
    return Path(os.environ.get("AVROLAKE_WAREHOUSE", cache_dir() / "warehouse"))


def on_databricks() -> bool:
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


@dataclass(frozen=True)
class SecretRef:
    """A secret by reference: ``env`` locally, ``scope``/``key`` on Databricks.

    The environment variable wins when set, so CI can inject secrets the same way everywhere.
    """

    env: str
    key: str
    scope: str | None = None

    def resolve(self) -> str:
        value = os.environ.get(self.env)
        if value:
            return value
        if self.scope and on_databricks():
            return _read_secret_scope(self.scope, self.key)
        where = f" or secret {self.scope}/{self.key}" if self.scope else ""
        raise ConfigError(f"secret not found: set environment variable {self.env}{where}")

    def __repr__(self) -> str:  # never show a value, only where it comes from
        return f"SecretRef(env={self.env!r}, scope={self.scope!r}, key={self.key!r})"


def _read_secret_scope(scope: str, key: str) -> str:
    from databricks.sdk import WorkspaceClient  # only on a cluster

    try:
        return WorkspaceClient().dbutils.secrets.get(scope=scope, key=key)
    except Exception as error:  # the SDK raises several unrelated types
        raise ConfigError(
            f"cannot read secret {scope}/{key} ({type(error).__name__}); "
            "check the scope, the key and the job's ACL on the scope"
        ) from None


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str
    topic: str
    auth: KafkaAuth = KafkaAuth.PLAINTEXT
    region: str | None = None  # MSK IAM signing region
    api_key: SecretRef | None = None  # SASL PLAIN username (Confluent Cloud API key)
    api_secret: SecretRef | None = None  # SASL PLAIN password

    def __post_init__(self) -> None:
        if not self.bootstrap_servers.strip():
            raise ConfigError("--bootstrap-servers is empty")
        if not self.topic.strip():
            raise ConfigError("--topic is empty")
        if self.auth is KafkaAuth.SASL_PLAIN and (self.api_key is None or self.api_secret is None):
            raise ConfigError("Kafka auth sasl-plain needs an API key and secret reference")
        if self.auth is KafkaAuth.MSK_IAM and not self.region:
            raise ConfigError("Kafka auth msk-iam needs --region (or AWS_REGION)")


@dataclass(frozen=True)
class RegistrySettings:
    flavor: Flavor
    url: str | None = None  # Confluent Schema Registry (or Apicurio's ccompat API)
    basic_auth_user: SecretRef | None = None
    basic_auth_password: SecretRef | None = None
    glue_registry_name: str | None = None
    region: str | None = None
    endpoint_url: str | None = None  # a Glue endpoint override: the local moto server

    def __post_init__(self) -> None:
        if self.flavor is Flavor.CONFLUENT and not self.url:
            raise ConfigError("flavor confluent needs --registry-url")
        if self.flavor is Flavor.GLUE and not (self.glue_registry_name and self.region):
            raise ConfigError("flavor glue needs --glue-registry and --region")
        if (self.basic_auth_user is None) != (self.basic_auth_password is None):
            raise ConfigError("registry basic auth needs both a user and a password reference")


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything needed to reach one platform: its Kafka cluster and its schema registry."""

    kafka: KafkaSettings
    registry: RegistrySettings

    @property
    def flavor(self) -> Flavor:
        return self.registry.flavor


def _choice(enum: type[StrEnum], raw: str, option: str) -> StrEnum:
    try:
        return enum(raw)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise ConfigError(f"{option} {raw!r} is not one of: {allowed}") from None


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every command that talks to Kafka or a registry shares.

    Each default comes from an ``AVROLAKE_*`` environment variable, else the local stack.
    """
    env = os.environ.get
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--flavor",
        default=env("AVROLAKE_FLAVOR", "confluent"),
        help="confluent | glue (default: confluent)",
    )
    group.add_argument("--topic", default=env("AVROLAKE_TOPIC", "products"))
    group.add_argument(
        "--bootstrap-servers",
        default=env("AVROLAKE_BOOTSTRAP_SERVERS"),
        help="default: the local broker",
    )
    group.add_argument(
        "--kafka-auth",
        default=env("AVROLAKE_KAFKA_AUTH", "plaintext"),
        help="plaintext | sasl-plain | msk-iam",
    )
    group.add_argument(
        "--registry-url",
        default=env("AVROLAKE_REGISTRY_URL"),
        help="Confluent SR URL (default: local Apicurio ccompat API)",
    )
    group.add_argument("--glue-registry", default=env("AVROLAKE_GLUE_REGISTRY", "avrolake"))
    group.add_argument(
        "--glue-endpoint-url",
        default=env("AVROLAKE_GLUE_ENDPOINT_URL"),
        help="default: AWS's endpoint; the local moto server when no --bootstrap-servers is given",
    )
    group.add_argument(
        "--region", default=env("AWS_REGION", env("AWS_DEFAULT_REGION", "us-east-1"))
    )
    group.add_argument(
        "--secret-scope",
        default=env("AVROLAKE_SECRET_SCOPE"),
        help="Databricks secret scope holding the keys below",
    )
    group.add_argument(
        "--kafka-key-secret",
        default="kafka-api-key",
        help="scope key of the Kafka API key (env CONFLUENT_API_KEY)",
    )
    group.add_argument(
        "--kafka-secret-secret",
        default="kafka-api-secret",
        help="scope key of the Kafka API secret (env CONFLUENT_API_SECRET)",
    )
    group.add_argument(
        "--registry-user-secret",
        default=None,
        help="scope key of the registry basic-auth user (env SCHEMA_REGISTRY_USER)",
    )
    group.add_argument(
        "--registry-password-secret",
        default="registry-api-secret",
        help="scope key of the registry password (env SCHEMA_REGISTRY_PASSWORD)",
    )


def connection_from_args(args: argparse.Namespace) -> ConnectionSettings:
    """Build validated settings from ``add_connection_arguments`` options."""
    flavor = _choice(Flavor, args.flavor, "--flavor")
    auth = _choice(KafkaAuth, args.kafka_auth, "--kafka-auth")
    local = LocalPorts()
    scope = args.secret_scope
    kafka = KafkaSettings(
        bootstrap_servers=args.bootstrap_servers or local.bootstrap_servers,
        topic=args.topic,
        auth=auth,  # type: ignore[arg-type]
        region=args.region,
        api_key=SecretRef("CONFLUENT_API_KEY", args.kafka_key_secret, scope),
        api_secret=SecretRef("CONFLUENT_API_SECRET", args.kafka_secret_secret, scope),
    )
    basic_auth = args.registry_user_secret is not None or bool(
        os.environ.get("SCHEMA_REGISTRY_USER")
    )
    registry = RegistrySettings(
        flavor=flavor,  # type: ignore[arg-type]
        url=args.registry_url or local.confluent_registry_url,
        basic_auth_user=(
            SecretRef(
                "SCHEMA_REGISTRY_USER", args.registry_user_secret or "registry-api-key", scope
            )
            if basic_auth
            else None
        ),
        basic_auth_password=(
            SecretRef("SCHEMA_REGISTRY_PASSWORD", args.registry_password_secret, scope)
            if basic_auth
            else None
        ),
        glue_registry_name=args.glue_registry,
        region=args.region,
        # The local moto server stands in for Glue only next to the local broker; with a real
        # cluster, boto3's own endpoint for the region.
        endpoint_url=args.glue_endpoint_url
        or (None if args.bootstrap_servers else local.glue_endpoint_url),
    )
    return ConnectionSettings(kafka=kafka, registry=registry)
