"""Settings validate themselves at construction; secrets by reference, never by value.

How command lines and the environment become settings: ``test_cli_options.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from avrolake.errors import ConfigError
from avrolake.settings import Flavor, KafkaAuth, KafkaSettings, RegistrySettings, SecretRef


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: KafkaSettings(" ", "products"), "--bootstrap-servers is empty"),
        (lambda: KafkaSettings("b:9092", ""), "--topic is empty"),
        (
            lambda: KafkaSettings("b:9092", "products", auth=KafkaAuth.SASL_PLAIN),
            "Kafka auth sasl-plain needs an API key and secret reference",
        ),
        (
            lambda: KafkaSettings("b:9092", "products", auth=KafkaAuth.MSK_IAM),
            "Kafka auth msk-iam needs --region (or AWS_REGION or AWS_DEFAULT_REGION)",
        ),
        (lambda: RegistrySettings(Flavor.CONFLUENT), "flavor confluent needs --registry-url"),
        (
            lambda: RegistrySettings(Flavor.GLUE, glue_registry_name="avrolake"),
            "flavor glue needs --glue-registry and --region",
        ),
        (
            lambda: RegistrySettings(
                Flavor.CONFLUENT, url="https://sr", basic_auth_user=SecretRef("U", "u")
            ),
            "registry basic auth needs both a user and a password reference",
        ),
    ],
)
def test_invalid_settings_cannot_be_built(build: Callable[[], object], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        build()
    assert str(raised.value) == message


def test_a_secret_resolves_from_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    ref = SecretRef("CONFLUENT_API_SECRET", "kafka-api-secret", "avrolake")
    monkeypatch.setenv("CONFLUENT_API_SECRET", "s3cr3t")
    assert ref.resolve() == "s3cr3t"
    assert "s3cr3t" not in repr(ref)


def test_a_missing_secret_says_where_it_was_looked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONFLUENT_API_SECRET", raising=False)
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    with pytest.raises(ConfigError) as raised:
        SecretRef("CONFLUENT_API_SECRET", "kafka-api-secret", "avrolake").resolve()
    assert str(raised.value) == (
        "secret not found: set environment variable CONFLUENT_API_SECRET "
        "or secret avrolake/kafka-api-secret"
    )
