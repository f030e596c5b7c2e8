"""Checks a job makes before starting Spark, so bad configuration fails in seconds with one line
instead of a stream that retries forever or dies with a JVM stack trace."""

from __future__ import annotations

from avrolake.errors import KafkaError, PipelineError, SchemaNotFoundError
from avrolake.registry import SchemaRegistry, open_registry
from avrolake.settings import KafkaSettings, RegistrySettings

METADATA_TIMEOUT_S = 10.0


def check_topic(kafka: KafkaSettings, timeout: float = METADATA_TIMEOUT_S) -> None:
    """The broker answers and the topic exists."""
    from confluent_kafka.admin import AdminClient

    from avrolake.connection import client_config, reachable_topics

    if kafka.topic not in reachable_topics(AdminClient(client_config(kafka)), kafka, timeout):
        raise KafkaError(
            f"topic {kafka.topic!r} does not exist on {kafka.bootstrap_servers}: check --topic, "
            "or run `avrolake produce` first"
        )


def check_registry(settings: RegistrySettings, topic: str) -> SchemaRegistry:
    """The registry answers and has at least one version for the topic; returns the client."""
    registry = open_registry(settings)
    try:
        registry.latest(topic)
    except SchemaNotFoundError:
        raise PipelineError(
            f"no schema is registered for topic {topic!r}: run `avrolake schemas register` first"
        ) from None
    return registry
