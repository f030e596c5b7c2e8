"""Kafka connection and auth options: the only module that builds SASL / IAM settings.

Two audiences:

* confluent-kafka (librdkafka) clients — ``producer_config`` / ``consumer_config``;
* the Spark ``kafka`` source — ``spark_kafka_options``, with the class names Databricks relocates
  (``kafkashaded.`` for Kafka's own login modules, ``shadedmskiam.`` for the MSK IAM library).

=============  ===================================  ============================================
auth           librdkafka                           Spark source (``kafka.`` prefix)
=============  ===================================  ============================================
plaintext      nothing                              nothing
sasl-plain     SASL_SSL, PLAIN, key / secret        SASL_SSL, PLAIN, PlainLoginModule JAAS
msk-iam        SASL_SSL, OAUTHBEARER + ``oauth_cb``  SASL_SSL, AWS_MSK_IAM, IAMLoginModule JAAS
               signing with aws-msk-iam-sasl-signer  and IAMClientCallbackHandler
=============  ===================================  ============================================

Secrets are resolved from their ``SecretRef`` here, at the last moment, and the returned mapping
is a ``SecretOptions``: a dict whose ``repr``/``str`` mask secret values, so logging it by accident
leaks nothing. Never log individual values of it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from avrolake.errors import ConfigError, KafkaError
from avrolake.settings import KafkaAuth, KafkaSettings

# Producer defaults: durable (acks=all, idempotent) and batched for throughput.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": 25,
    "batch.size": 1_000_000,
    "batch.num.messages": 100_000,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 500_000,
    "queue.buffering.max.kbytes": 1_048_576,
    "message.timeout.ms": 60_000,
}

# Fail fast on a broker that never answers: socket and metadata timeouts of seconds.
CLIENT_DEFAULTS: dict[str, Any] = {
    "socket.connection.setup.timeout.ms": 5_000,
    "socket.timeout.ms": 10_000,
}

SECRET_KEYS = frozenset({"sasl.password", "kafka.sasl.jaas.config", "basic.auth.user.info"})

PLAIN_LOGIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"
MSK_IAM_LOGIN_MODULE = "software.amazon.msk.auth.iam.IAMLoginModule"
MSK_IAM_CALLBACK_HANDLER = "software.amazon.msk.auth.iam.IAMClientCallbackHandler"
DATABRICKS_KAFKA_SHADE = "kafkashaded."  # Databricks relocates org.apache.kafka
DATABRICKS_MSK_IAM_SHADE = "shadedmskiam."  # and bundles aws-msk-iam-auth relocated

LIBRDKAFKA_LOGGER = "avrolake.librdkafka"


class SecretOptions(dict[str, Any]):
    """A plain dict for the client libraries, whose repr and str hide secret values."""

    def __repr__(self) -> str:
        shown = {k: ("***" if k in SECRET_KEYS else v) for k, v in self.items()}
        return f"SecretOptions({shown!r})"

    __str__ = __repr__


def msk_iam_oauth_cb(region: str) -> Callable[[str], tuple[str, float]]:
    """An ``oauth_cb`` for librdkafka that signs an MSK IAM token with the default AWS
    credentials chain. librdkafka wants ``(token, expiry in epoch seconds)``; the signer gives ms.
    """

    def oauth_cb(_config: str) -> tuple[str, float]:
        from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

        token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
        return token, expiry_ms / 1000

    return oauth_cb


def client_config(kafka: KafkaSettings) -> SecretOptions:
    """Connection and auth settings shared by every confluent-kafka client (also AdminClient).

    librdkafka's own log lines go to the ``avrolake.librdkafka`` Python logger, so a CLI decides
    whether they reach stderr.
    """
    config = SecretOptions(CLIENT_DEFAULTS)
    config["bootstrap.servers"] = kafka.bootstrap_servers
    config["logger"] = logging.getLogger(LIBRDKAFKA_LOGGER)
    if kafka.auth is KafkaAuth.SASL_PLAIN:
        if kafka.api_key is None or kafka.api_secret is None:
            raise ConfigError("Kafka auth sasl-plain needs an API key and secret reference")
        config["security.protocol"] = "SASL_SSL"
        config["sasl.mechanism"] = "PLAIN"
        config["sasl.username"] = kafka.api_key.resolve()
        config["sasl.password"] = kafka.api_secret.resolve()
    elif kafka.auth is KafkaAuth.MSK_IAM:
        if not kafka.region:
            raise ConfigError("Kafka auth msk-iam needs --region")
        config["security.protocol"] = "SASL_SSL"
        config["sasl.mechanism"] = "OAUTHBEARER"
        config["oauth_cb"] = msk_iam_oauth_cb(kafka.region)
    return config


def producer_config(kafka: KafkaSettings, **overrides: Any) -> SecretOptions:
    """confluent-kafka ``Producer`` config: ``client_config`` + ``PRODUCER_DEFAULTS`` + overrides
    (keys with dots passed as a dict: ``producer_config(k, **{"linger.ms": 5})``)."""
    config = client_config(kafka)
    config.update(PRODUCER_DEFAULTS)
    config.update(overrides)
    return config


def consumer_config(kafka: KafkaSettings, group_id: str, **overrides: Any) -> SecretOptions:
    """confluent-kafka ``Consumer`` config reading from the earliest offset, no auto-commit
    surprises: ``enable.auto.commit`` stays librdkafka's default unless overridden."""
    config = client_config(kafka)
    config["group.id"] = group_id
    config["auto.offset.reset"] = "earliest"
    config.update(overrides)
    return config


def _jaas_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def spark_kafka_options(kafka: KafkaSettings, *, databricks: bool) -> SecretOptions:
    """Options for ``spark.readStream.format("kafka").options(**...)``: bootstrap servers, the
    topic subscription and auth. ``databricks`` selects Databricks' shaded class names (its
    runtime relocates the Kafka client and bundles the MSK IAM library); open-source Spark needs
    the plain names and the aws-msk-iam-auth jar on the classpath for msk-iam.
    """
    options = SecretOptions()
    options["kafka.bootstrap.servers"] = kafka.bootstrap_servers
    options["subscribe"] = kafka.topic
    if kafka.auth is KafkaAuth.SASL_PLAIN:
        if kafka.api_key is None or kafka.api_secret is None:
            raise ConfigError("Kafka auth sasl-plain needs an API key and secret reference")
        module = (DATABRICKS_KAFKA_SHADE if databricks else "") + PLAIN_LOGIN_MODULE
        user = _jaas_quote(kafka.api_key.resolve())
        password = _jaas_quote(kafka.api_secret.resolve())
        options["kafka.security.protocol"] = "SASL_SSL"
        options["kafka.sasl.mechanism"] = "PLAIN"
        options["kafka.sasl.jaas.config"] = (
            f"{module} required username={user} password={password};"
        )
    elif kafka.auth is KafkaAuth.MSK_IAM:
        shade = DATABRICKS_MSK_IAM_SHADE if databricks else ""
        options["kafka.security.protocol"] = "SASL_SSL"
        options["kafka.sasl.mechanism"] = "AWS_MSK_IAM"
        options["kafka.sasl.jaas.config"] = f"{shade}{MSK_IAM_LOGIN_MODULE} required;"
        options["kafka.sasl.client.callback.handler.class"] = shade + MSK_IAM_CALLBACK_HANDLER
    return options


def reachable_topics(client: Any, kafka: KafkaSettings, timeout: float) -> set[str]:
    """The cluster's topic names, asked through ``client`` (a Producer or AdminClient):
    ``KafkaError`` within ``timeout`` when the cluster cannot be reached. All topics, never one
    by name: a metadata request for a named topic may auto-create it on the broker."""
    from confluent_kafka import KafkaException

    try:
        metadata = client.list_topics(timeout=timeout)
    except KafkaException as error:
        reason = error.args[0].str() if error.args else str(error)
        raise KafkaError(
            f"cannot reach Kafka at {kafka.bootstrap_servers} within {timeout:g} s: {reason}"
        ) from None
    return set(metadata.topics)
