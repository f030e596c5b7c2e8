"""Broker checks before producing: reachable within seconds, and the topic exists."""

from __future__ import annotations

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from avrolake.connection import client_config, reachable_topics
from avrolake.errors import KafkaError
from avrolake.settings import KafkaSettings

NEW_TOPIC_PARTITIONS = 3


def check_broker(producer: Producer, kafka: KafkaSettings, timeout: float) -> set[str]:
    """The cluster's topic names; ``KafkaError`` within ``timeout`` if it cannot be reached."""
    return reachable_topics(producer, kafka, timeout)


def ensure_topic(kafka: KafkaSettings, existing: set[str], timeout: float) -> None:
    """Create the topic (``NEW_TOPIC_PARTITIONS``, broker-default replication) if missing, so a
    cluster without topic auto-creation works too."""
    if kafka.topic in existing:
        return
    admin = AdminClient(client_config(kafka))
    future = admin.create_topics([NewTopic(kafka.topic, NEW_TOPIC_PARTITIONS)])[kafka.topic]
    try:
        future.result(timeout=timeout)
    except KafkaException as error:
        kafka_error = error.args[0] if error.args else None
        if getattr(kafka_error, "name", lambda: "")() != "TOPIC_ALREADY_EXISTS":
            raise KafkaError(f"cannot create topic {kafka.topic}: {error}") from None
    except TimeoutError:  # concurrent.futures' timeout, not a KafkaException
        raise KafkaError(f"creating topic {kafka.topic} took over {timeout:g}s") from None
