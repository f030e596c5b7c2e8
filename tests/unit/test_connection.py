"""Kafka connection options: librdkafka configs, Spark source options, secrets kept out of reprs."""

from __future__ import annotations

import base64
import logging
import time

import pytest
from confluent_kafka import Producer

from avrolake.connection import (
    LIBRDKAFKA_LOGGER,
    consumer_config,
    producer_config,
    spark_kafka_options,
)
from avrolake.errors import ConfigError
from avrolake.settings import KafkaAuth, KafkaSettings, SecretRef

KEY = SecretRef("TEST_KAFKA_KEY", "kafka-api-key", "scope")
SECRET = SecretRef("TEST_KAFKA_SECRET", "kafka-api-secret", "scope")
SASL = KafkaSettings(
    "pkc-1.confluent.cloud:9092", "products", KafkaAuth.SASL_PLAIN, api_key=KEY, api_secret=SECRET
)
MSK = KafkaSettings("b-1.msk:9098", "products", KafkaAuth.MSK_IAM, region="eu-west-1")
LOCAL = KafkaSettings("127.0.0.1:19092", "products")


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_KAFKA_KEY", "ABCKEY")
    monkeypatch.setenv("TEST_KAFKA_SECRET", 's3cr"t\\x')


@pytest.fixture
def aws_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Example keys: signing an MSK token is local computation, no AWS call."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _without_logger(config: dict) -> dict:
    assert config.pop("logger") is logging.getLogger(LIBRDKAFKA_LOGGER)
    return config


def test_plaintext_producer_config() -> None:
    assert _without_logger(producer_config(LOCAL, **{"linger.ms": 5})) == {
        "bootstrap.servers": "127.0.0.1:19092",
        "socket.connection.setup.timeout.ms": 5000,
        "socket.timeout.ms": 10000,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "batch.size": 1_000_000,
        "batch.num.messages": 100_000,
        "compression.type": "lz4",
        "queue.buffering.max.messages": 500_000,
        "queue.buffering.max.kbytes": 1_048_576,
        "message.timeout.ms": 60_000,
    }


def test_sasl_plain_consumer_config(secrets: None) -> None:
    assert _without_logger(consumer_config(SASL, "g1")) == {
        "bootstrap.servers": "pkc-1.confluent.cloud:9092",
        "socket.connection.setup.timeout.ms": 5000,
        "socket.timeout.ms": 10000,
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "ABCKEY",
        "sasl.password": 's3cr"t\\x',
        "group.id": "g1",
        "auto.offset.reset": "earliest",
    }


def test_secrets_never_show_in_repr_or_str(secrets: None) -> None:
    for options in (producer_config(SASL), spark_kafka_options(SASL, databricks=True)):
        for text in (repr(options), str(options), f"{options}", repr([options])):
            assert "s3cr" not in text
            assert "***" in text
    assert "s3cr" not in repr(KEY) + repr(SECRET)


def test_missing_secret_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_KAFKA_KEY", raising=False)
    with pytest.raises(ConfigError) as error:
        producer_config(SASL)
    assert str(error.value) == (
        "secret not found: set environment variable TEST_KAFKA_KEY or secret scope/kafka-api-key"
    )


def test_msk_iam_signs_a_token_with_the_aws_chain(aws_keys: None) -> None:
    config = _without_logger(producer_config(MSK))
    oauth_cb = config.pop("oauth_cb")
    assert {k: config[k] for k in ("security.protocol", "sasl.mechanism")} == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "OAUTHBEARER",
    }
    token, expiry = oauth_cb("")
    url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    assert url.startswith("https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect&")
    assert "X-Amz-Credential=AKIDEXAMPLE%2F" in url
    assert 0 < expiry - time.time() <= 900  # seconds since the epoch, as librdkafka wants


def test_librdkafka_accepts_every_config(secrets: None, aws_keys: None) -> None:
    for settings in (LOCAL, SASL, MSK):
        Producer(producer_config(settings))  # raises KafkaException on an unknown or bad key


def test_spark_options_plaintext() -> None:
    expected = {"kafka.bootstrap.servers": "127.0.0.1:19092", "subscribe": "products"}
    assert spark_kafka_options(LOCAL, databricks=False) == expected
    assert spark_kafka_options(LOCAL, databricks=True) == expected


def test_spark_options_sasl_plain(secrets: None) -> None:
    jaas = 'required username="ABCKEY" password="s3cr\\"t\\\\x";'
    base = {
        "kafka.bootstrap.servers": "pkc-1.confluent.cloud:9092",
        "subscribe": "products",
        "kafka.security.protocol": "SASL_SSL",
        "kafka.sasl.mechanism": "PLAIN",
    }
    assert spark_kafka_options(SASL, databricks=False) == {
        **base,
        "kafka.sasl.jaas.config": f"org.apache.kafka.common.security.plain.PlainLoginModule {jaas}",
    }
    assert spark_kafka_options(SASL, databricks=True) == {
        **base,
        "kafka.sasl.jaas.config": "kafkashaded.org.apache.kafka.common.security.plain."
        f"PlainLoginModule {jaas}",
    }


def test_spark_options_msk_iam() -> None:
    base = {
        "kafka.bootstrap.servers": "b-1.msk:9098",
        "subscribe": "products",
        "kafka.security.protocol": "SASL_SSL",
        "kafka.sasl.mechanism": "AWS_MSK_IAM",
    }
    assert spark_kafka_options(MSK, databricks=False) == {
        **base,
        "kafka.sasl.jaas.config": "software.amazon.msk.auth.iam.IAMLoginModule required;",
        "kafka.sasl.client.callback.handler.class": (
            "software.amazon.msk.auth.iam.IAMClientCallbackHandler"
        ),
    }
    assert spark_kafka_options(MSK, databricks=True) == {
        **base,
        "kafka.sasl.jaas.config": (
            "shadedmskiam.software.amazon.msk.auth.iam.IAMLoginModule required;"
        ),
        "kafka.sasl.client.callback.handler.class": (
            "shadedmskiam.software.amazon.msk.auth.iam.IAMClientCallbackHandler"
        ),
    }
