"""Settings and secrets: frozen dataclasses validated at construction, and secrets by reference.

The settings know nothing of command lines: ``avrolake.cli.options`` builds them from arguments and
the environment variables that default them (and only there does a missing address become an
error naming its flag and variable; nothing here defaults to a local address). Secrets are held
as ``SecretRef`` (an environment variable for laptops and CI, a Databricks secret scope and key on
a cluster) and resolved only when a client is built, so they never sit in a settings object, a log
line or a repr.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
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


def cache_dir() -> Path:
    """Where downloads (jars, archives, the Databricks CLI) live: never inside the repository."""
    return Path(os.environ.get("AVROLAKE_CACHE", Path.home() / ".cache" / "avrolake"))


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
            raise ConfigError(
                "Kafka auth msk-iam needs --region (or AWS_REGION or AWS_DEFAULT_REGION)"
            )


# How long silver waits out an unreachable schema registry before failing the batch (see
# pipeline.batch_schemas); here, where the CLI can read it without importing Spark.
DEFAULT_OUTAGE_TIMEOUT_S = 600.0


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
