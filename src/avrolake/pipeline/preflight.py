"""Checks a job makes before starting Spark, so bad configuration fails in seconds with one line
instead of a stream that retries forever or dies with a JVM stack trace."""

from __future__ import annotations

from collections.abc import Sequence

from avrolake.errors import KafkaError, PipelineError, SchemaNotFoundError
from avrolake.registry import SchemaRegistry, Subject, as_subject, open_registry
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


def check_registry(
    settings: RegistrySettings, subjects: Sequence[str | Subject] | str | Subject
) -> SchemaRegistry:
    """The registry answers and every subject (a bare topic: its TopicNameStrategy subject) has a
    version; returns the client. One bare topic or subject counts as a list of one."""
    if isinstance(subjects, (str, Subject)):  # a str is a Sequence too: of its characters
        subjects = [subjects]
    registry = open_registry(settings)
    for subject in map(as_subject, subjects):
        try:
            registry.latest(subject)
        except SchemaNotFoundError:
            raise PipelineError(
                f"no schema is registered for topic {subject.topic!r} under "
                f"{registry.where(subject)}: run `avrolake schemas register` first"
            ) from None
    return registry
