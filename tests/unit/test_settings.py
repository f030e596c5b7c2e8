"""Settings from CLI arguments and the environment; secrets by reference, never by value."""

from __future__ import annotations

import argparse

import pytest

from avrolake.errors import ConfigError
from avrolake.settings import (
    Flavor,
    KafkaAuth,
    SecretRef,
    add_connection_arguments,
    connection_from_args,
)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_connection_arguments(parser)
    return parser.parse_args(argv)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AVROLAKE_KAFKA_PORT", "AVROLAKE_APICURIO_PORT", "AVROLAKE_MOTO_PORT",
                 "AVROLAKE_BOOTSTRAP_SERVERS", "AVROLAKE_REGISTRY_URL", "AVROLAKE_FLAVOR",
                 "AVROLAKE_GLUE_ENDPOINT_URL", "SCHEMA_REGISTRY_USER", "AWS_REGION",
                 "AWS_DEFAULT_REGION", "DATABRICKS_RUNTIME_VERSION"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


def test_defaults_point_at_the_local_stack() -> None:
    settings = connection_from_args(parse())
    assert settings.flavor is Flavor.CONFLUENT
    assert (settings.kafka.bootstrap_servers, settings.kafka.topic) == (
        "127.0.0.1:19092",
        "products",
    )
    assert settings.registry.url == "http://127.0.0.1:18081/apis/ccompat/v7"
    assert settings.registry.endpoint_url == "http://127.0.0.1:15000"
    assert settings.registry.basic_auth_user is None


def test_local_ports_move_with_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVROLAKE_KAFKA_PORT", "29092")
    monkeypatch.setenv("AVROLAKE_MOTO_PORT", "25000")
    settings = connection_from_args(parse("--flavor", "glue"))
    assert settings.kafka.bootstrap_servers == "127.0.0.1:29092"
    assert settings.registry.endpoint_url == "http://127.0.0.1:25000"


def test_a_real_cluster_uses_the_real_glue_endpoint() -> None:
    settings = connection_from_args(
        parse(
            "--flavor",
            "glue",
            "--bootstrap-servers",
            "b-1.msk:9098",
            "--kafka-auth",
            "msk-iam",
            "--region",
            "eu-west-1",
        )
    )
    assert settings.kafka.auth is KafkaAuth.MSK_IAM
    assert (settings.registry.endpoint_url, settings.registry.region) == (None, "eu-west-1")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--flavor", "kafka"], "--flavor 'kafka' is not one of: confluent, glue"),
        (
            ["--kafka-auth", "kerberos"],
            "--kafka-auth 'kerberos' is not one of: plaintext, sasl-plain, msk-iam",
        ),
        (["--topic", " "], "--topic is empty"),
    ],
)
def test_bad_values_name_the_option(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        connection_from_args(parse(*argv))
    assert str(raised.value) == message


def test_a_secret_resolves_from_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    ref = SecretRef("CONFLUENT_API_SECRET", "kafka-api-secret", "avrolake")
    monkeypatch.setenv("CONFLUENT_API_SECRET", "s3cr3t")
    assert ref.resolve() == "s3cr3t"
    assert "s3cr3t" not in repr(ref)


def test_a_missing_secret_says_where_it_was_looked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONFLUENT_API_SECRET", raising=False)
    with pytest.raises(ConfigError) as raised:
        SecretRef("CONFLUENT_API_SECRET", "kafka-api-secret", "avrolake").resolve()
    assert str(raised.value) == (
        "secret not found: set environment variable CONFLUENT_API_SECRET "
        "or secret avrolake/kafka-api-secret"
    )


def test_registry_basic_auth_is_on_with_a_user_secret() -> None:
    settings = connection_from_args(
        parse(
            "--registry-url",
            "https://sr.example",
            "--registry-user-secret",
            "sr-key",
            "--secret-scope",
            "avrolake",
        )
    )
    assert settings.registry.basic_auth_user == SecretRef(
        "SCHEMA_REGISTRY_USER", "sr-key", "avrolake"
    )
    assert settings.registry.basic_auth_password == SecretRef(
        "SCHEMA_REGISTRY_PASSWORD", "registry-api-secret", "avrolake"
    )
