"""Several record types on one topic: RecordNameStrategy and TopicRecordNameStrategy subjects in
both registries (Apicurio's ccompat API, moto's Glue).

Each record type's versions live under its own subject (Confluent) or Glue schema; a serializer
frames a record with the ref of its type's version, found under that subject; ``by_ref`` finds a
ref only under the subject it is registered under, which is how silver sends each record of a
mixed topic to its own type. Expected subject names are spelled out as Confluent documents them;
expected bodies come from fastavro.
"""

from __future__ import annotations

import contextlib
import io
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import fastavro
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from avrolake import wire
from avrolake.errors import ConfigError, PipelineError, SchemaNotFoundError
from avrolake.pipeline.preflight import check_registry
from avrolake.registry import RegisteredSchema, Subject, SubjectStrategy, open_registry
from avrolake.registry.glue import glue_client
from avrolake.settings import Flavor, RegistrySettings

GLUE_REGISTRY = "avrolake-tests"  # the one registry of the integration tests (moto keeps 10)

ORDER_V1 = {
    "type": "record",
    "name": "Order",
    "fields": [{"name": "orderId", "type": "string"}, {"name": "amount", "type": "long"}],
}
ORDER_V2 = {
    **ORDER_V1,
    "fields": [*ORDER_V1["fields"], {"name": "currency", "type": "string", "default": "EUR"}],
}
REFUND = {
    "type": "record",
    "name": "Refund",
    "fields": [{"name": "refundId", "type": "string"}, {"name": "reason", "type": "string"}],
}
ORDER_EVENT = {"orderId": "o-1", "amount": 1250, "currency": "USD"}
REFUND_EVENT = {"refundId": "r-9", "reason": "damaged"}


@pytest.fixture(params=[Flavor.CONFLUENT, Flavor.GLUE], ids=["confluent", "glue"])
def settings(request: pytest.FixtureRequest, local_stack) -> RegistrySettings:
    if request.param is Flavor.CONFLUENT:
        return RegistrySettings(Flavor.CONFLUENT, url=local_stack.confluent_registry_url)
    return RegistrySettings(
        Flavor.GLUE,
        glue_registry_name=GLUE_REGISTRY,
        region="us-east-1",
        endpoint_url=local_stack.glue_endpoint_url,
    )


@dataclass
class Records:
    """Record types in a namespace of one test's own (RecordNameStrategy subjects are
    registry-wide), and the subjects made for them."""

    namespace: str = field(default_factory=lambda: f"com.example.t{uuid.uuid4().hex[:8]}")
    made: list[Subject] = field(default_factory=list)

    def subject(self, topic: str, strategy: SubjectStrategy, record: str) -> Subject:
        self.made.append(Subject(topic, strategy, f"{self.namespace}.{record}"))
        return self.made[-1]

    def schema(self, definition: dict[str, Any]) -> str:
        return json.dumps({**definition, "namespace": self.namespace})


@pytest.fixture
def records(local_stack) -> Iterator[Records]:
    """The Glue schemas of its subjects are deleted afterwards: moto keeps 1000 schemas (and has
    no ListSchemas to find them by)."""
    made = Records()
    yield made
    glue = glue_client(
        RegistrySettings(
            Flavor.GLUE,
            glue_registry_name=GLUE_REGISTRY,
            region="us-east-1",
            endpoint_url=local_stack.glue_endpoint_url,
        )
    )
    for name in {subject.glue for subject in made.made}:
        with contextlib.suppress(glue.exceptions.EntityNotFoundException):
            glue.delete_schema(SchemaId={"SchemaName": name, "RegistryName": GLUE_REGISTRY})


def _decode(payload: bytes, schema_str: str) -> object:
    return fastavro.schemaless_reader(
        io.BytesIO(payload), fastavro.parse_schema(json.loads(schema_str))
    )


def _encode(event: dict[str, Any], schema_str: str) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(json.loads(schema_str)), event)
    return buffer.getvalue()


def _documented_name(topic: str, strategy: SubjectStrategy, record: str) -> str:
    """The Confluent subject (and Glue schema name) of a record type, as Confluent documents
    RecordNameStrategy and TopicRecordNameStrategy."""
    return record if strategy is SubjectStrategy.RECORD else f"{topic}-{record}"


def _where(flavor: Flavor, name: str) -> str:
    return f"subject {name}" if flavor is Flavor.CONFLUENT else f"Glue schema {name}"


@pytest.mark.parametrize(
    "strategy",
    [SubjectStrategy.TOPIC_RECORD, SubjectStrategy.RECORD],
    ids=["topic_record", "record"],
)
def test_two_record_types_on_one_topic_each_under_its_own_subject(
    settings: RegistrySettings,
    strategy: SubjectStrategy,
    records: Records,
    new_topic: Callable[[], str],
    local_stack,
) -> None:
    registry = open_registry(settings)
    topic = new_topic()
    order = records.subject(topic, strategy, "Order")
    refund = records.subject(topic, strategy, "Refund")
    order_v1 = registry.register(order, records.schema(ORDER_V1))
    order_v2 = registry.register(order, records.schema(ORDER_V2))
    refund_v1 = registry.register(refund, records.schema(REFUND))
    assert [order_v1.version, order_v2.version, refund_v1.version] == [1, 2, 1]
    assert len({order_v1.ref, order_v2.ref, refund_v1.ref}) == 3

    # The versions sit where the strategy puts them, seen through each registry's own client.
    for subject, latest in ((order, order_v2), (refund, refund_v1)):
        name = _documented_name(topic, strategy, str(subject.record))
        if settings.flavor is Flavor.CONFLUENT:
            client = SchemaRegistryClient({"url": local_stack.confluent_registry_url})
            answer = client.get_latest_version(name)
            assert (str(answer.schema_id), answer.version) == (latest.ref, latest.version)
        else:
            described = glue_client(settings).get_schema(
                SchemaId={"SchemaName": name, "RegistryName": GLUE_REGISTRY}
            )
            assert described["LatestSchemaVersion"] == latest.version
        assert registry.where(subject) == _where(settings.flavor, name)

    fresh = open_registry(settings)  # nothing cached: every answer comes from the registry
    assert fresh.latest(order) == order_v2
    assert fresh.latest(refund) == refund_v1
    assert fresh.versions(order) == [order_v1, order_v2]
    cases: list[tuple[Subject, Subject, RegisteredSchema, str, dict[str, Any]]] = [
        (order, refund, order_v2, records.schema(ORDER_V2), ORDER_EVENT),
        (refund, order, refund_v1, records.schema(REFUND), REFUND_EVENT),
    ]
    for own, other, registered, text, event in cases:
        serialize = registry.serializer(own, registered.ref, text)
        frame = wire.parse(serialize(event))
        assert (frame.wire_format, frame.schema_ref) == (registry.wire_format, registered.ref)
        found = fresh.by_ref(frame.schema_ref, own)
        assert (found.ref, found.version) == (registered.ref, registered.version)
        assert json.loads(found.schema_str) == json.loads(text)
        assert frame.payload == _encode(event, found.schema_str)
        assert _decode(frame.payload, found.schema_str) == event
        with pytest.raises(SchemaNotFoundError):
            fresh.by_ref(frame.schema_ref, other)
        with pytest.raises(SchemaNotFoundError):  # nor under the topic's TopicNameStrategy subject
            fresh.by_ref(frame.schema_ref, topic)
    assert fresh.by_ref(order_v1.ref, order).version == 1


def test_a_schema_of_another_record_type_is_refused_before_the_registry(
    settings: RegistrySettings, records: Records, new_topic: Callable[[], str]
) -> None:
    registry = open_registry(settings)
    topic = new_topic()
    order = records.subject(topic, SubjectStrategy.TOPIC_RECORD, "Order")
    namespace = records.namespace
    where = _where(settings.flavor, f"{topic}-{namespace}.Order")
    with pytest.raises(ConfigError) as error:
        registry.register(order, records.schema(REFUND))
    assert str(error.value) == (
        f"a schema of record {namespace}.Refund cannot go under {where}: that topic_record "
        f"subject holds record {namespace}.Order; fix the record's full name in the definition "
        "or the schema"
    )
    with pytest.raises(ConfigError):
        registry.serializer(order, "1", records.schema(REFUND))
    with pytest.raises(SchemaNotFoundError):  # nothing was registered
        registry.latest(order)


def test_preflight_checks_every_subject(
    settings: RegistrySettings, records: Records, new_topic: Callable[[], str]
) -> None:
    topic = new_topic()
    order = records.subject(topic, SubjectStrategy.RECORD, "Order")
    refund = records.subject(topic, SubjectStrategy.RECORD, "Refund")
    registry = open_registry(settings)
    registry.register(order, records.schema(ORDER_V1))
    with pytest.raises(PipelineError) as error:
        check_registry(settings, [order, refund])
    where = _where(settings.flavor, f"{records.namespace}.Refund")
    assert str(error.value) == (
        f"no schema is registered for topic '{topic}' under {where}: "
        "run `avrolake schemas register` first"
    )
    registry.register(refund, records.schema(REFUND))
    checked = check_registry(settings, [order, refund])
    assert checked.latest(refund).version == 1
    with pytest.raises(PipelineError) as error:  # a bare topic: its TopicNameStrategy subject
        check_registry(settings, topic)
    topic_subject = f"{topic}-value" if settings.flavor is Flavor.CONFLUENT else topic
    assert str(error.value) == (
        f"no schema is registered for topic '{topic}' under "
        f"{_where(settings.flavor, topic_subject)}: run `avrolake schemas register` first"
    )
