"""Both registry implementations against the local stack: Apicurio (ccompat) and moto (Glue).

Failures are asserted by kind (``SchemaNotFoundError``, ``SchemaIncompatibleError``,
``SchemaInvalidError``, ``RegistryUnavailableError``); the answers the stack cannot give on
demand (throttling, 5xx, Glue's FAILURE status) are in tests/unit/test_registry_errors.py.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from pathlib import Path

import fastavro
import pytest

from avrolake import wire
from avrolake.errors import (
    ConfigError,
    RegistryError,
    RegistryUnavailableError,
    SchemaIncompatibleError,
    SchemaInvalidError,
    SchemaNotFoundError,
)
from avrolake.producer.events import EventGenerator
from avrolake.producer.serializers import build_serializers
from avrolake.registry import SchemaRegistry, open_registry
from avrolake.registry.glue import glue_client
from avrolake.schemas import load_versions
from avrolake.settings import Flavor, RegistrySettings
from loopback import closed_port

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "product"
VERSIONS = load_versions(SCHEMAS)
GLUE_REGISTRY = "avrolake-tests"  # the registry the new_topic fixture cleans up


def _settings(flavor: Flavor, stack, url: str | None = None) -> RegistrySettings:
    if flavor is Flavor.CONFLUENT:
        return RegistrySettings(flavor, url=url or stack.confluent_registry_url)
    return RegistrySettings(
        flavor,
        glue_registry_name=GLUE_REGISTRY,
        region="us-east-1",
        endpoint_url=url or stack.glue_endpoint_url,
    )


def _incompatible_v4() -> str:
    v4 = json.loads(VERSIONS[-1].text)
    v4["fields"].append({"name": "warehouse", "type": "string", "doc": "no default: breaks v1-v3"})
    return json.dumps(v4)


@pytest.fixture(params=[Flavor.CONFLUENT, Flavor.GLUE], ids=["confluent", "glue"])
def flavor(request: pytest.FixtureRequest) -> Flavor:
    return request.param


@pytest.fixture
def registry(flavor: Flavor, local_stack) -> SchemaRegistry:
    return open_registry(_settings(flavor, local_stack))


def _encode(event: dict, schema_text: str) -> bytes:
    """fastavro's Avro body of ``event``: what a framed record must carry after its header."""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(json.loads(schema_text)), event)
    return buffer.getvalue()


def test_register_in_order_is_idempotent_and_versions_read_back(
    registry: SchemaRegistry, new_topic: Callable[[], str]
) -> None:
    topic = new_topic()
    first = [registry.register(topic, v.text) for v in VERSIONS]
    assert [r.version for r in first] == [1, 2, 3]
    assert [r.schema_str for r in first] == [v.text for v in VERSIONS]
    assert len({r.ref for r in first}) == 3
    assert [registry.register(topic, v.text) for v in VERSIONS] == first  # idempotent
    assert registry.versions(topic) == first
    assert registry.latest(topic) == first[-1]


def test_latest_is_not_cached_and_by_ref_is(
    flavor: Flavor, registry: SchemaRegistry, local_stack, new_topic: Callable[[], str]
) -> None:
    topic = new_topic()
    v1 = registry.register(topic, VERSIONS[0].text)
    assert registry.latest(topic) == v1
    v2 = registry.register(topic, VERSIONS[1].text)
    assert registry.latest(topic) == v2  # seen at once: a running stream picks up new versions

    fresh = open_registry(_settings(flavor, local_stack))
    found = fresh.by_ref(v1.ref)
    assert (found.ref, found.version, json.loads(found.schema_str)) == (
        v1.ref,
        1,
        json.loads(VERSIONS[0].text),
    )
    assert fresh.by_ref(v1.ref) is found  # served from the cache


def test_a_schema_id_shared_by_two_subjects_has_each_subjects_version(
    local_stack, new_topic: Callable[[], str]
) -> None:
    """Confluent-style registries give the same text the same id under every subject, at the
    version it has there; silver asks for the version under its own topic."""
    registry = open_registry(_settings(Flavor.CONFLUENT, local_stack))
    first, second = new_topic(), new_topic()
    registry.register(first, VERSIONS[0].text)
    shared = registry.register(first, VERSIONS[1].text)
    assert registry.register(second, VERSIONS[1].text).ref == shared.ref

    fresh = open_registry(_settings(Flavor.CONFLUENT, local_stack))
    assert fresh.by_ref(shared.ref, second).version == 1
    assert fresh.by_ref(shared.ref, first).version == 2


def test_compatibility_round_trip(registry: SchemaRegistry, new_topic: Callable[[], str]) -> None:
    topic = new_topic()
    registry.register(topic, VERSIONS[0].text)
    for mode in ("FULL_TRANSITIVE", "BACKWARD", "FORWARD_TRANSITIVE", "NONE"):
        registry.set_compatibility(topic, mode)
        assert registry.compatibility(topic) == mode


def test_glue_stores_glue_mode_names(local_stack, new_topic: Callable[[], str]) -> None:
    settings = _settings(Flavor.GLUE, local_stack)
    registry = open_registry(settings)
    topic = new_topic()
    registry.register(topic, VERSIONS[0].text)
    registry.set_compatibility(topic, "FULL_TRANSITIVE")
    described = glue_client(settings).get_schema(
        SchemaId={"SchemaName": topic, "RegistryName": GLUE_REGISTRY}
    )
    assert described["Compatibility"] == "FULL_ALL" == registry.mode_name("FULL_TRANSITIVE")
    assert registry.where(topic) == f"Glue schema {topic}"


def test_apicurio_enforces_full_transitive(local_stack, new_topic: Callable[[], str]) -> None:
    registry = open_registry(_settings(Flavor.CONFLUENT, local_stack))
    topic = new_topic()
    registry.register(topic, VERSIONS[0].text)
    registry.set_compatibility(topic, "FULL_TRANSITIVE")
    for version in VERSIONS[1:]:
        registry.register(topic, version.text)
    with pytest.raises(SchemaIncompatibleError) as error:
        registry.register(topic, _incompatible_v4())
    assert error.value.code == "409"
    assert str(error.value) == (
        f"schema registry at {local_stack.confluent_registry_url} refused to register a schema "
        f"under {topic}-value: io.apicurio.registry.rules.RuleViolationException: Incompatible "
        f"artifact: {topic}-value [AVRO], num of incompatible diffs: {{3}}, list of diff types: "
        "[warehouse at /fields/8, warehouse at /fields/8, warehouse at /fields/8] (HTTP 409)"
    )
    assert [r.version for r in registry.versions(topic)] == [1, 2, 3]
    registry.set_compatibility(topic, "NONE")  # and with the rule off, Apicurio accepts it
    assert registry.register(topic, _incompatible_v4()).version == 4


def test_moto_checks_no_compatibility(local_stack, new_topic: Callable[[], str]) -> None:
    """moto's Glue accepts the version Apicurio refuses above (real Glue would leave it in status
    FAILURE: SchemaIncompatibleError, see tests/unit/test_registry_errors.py); this is why
    ``avrolake schemas register`` checks compatibility locally first."""
    registry = open_registry(_settings(Flavor.GLUE, local_stack))
    topic = new_topic()
    for version in VERSIONS:
        registry.register(topic, version.text)
    registry.set_compatibility(topic, "FULL_TRANSITIVE")
    assert registry.register(topic, _incompatible_v4()).version == 4


def test_an_invalid_definition_is_schema_invalid(
    registry: SchemaRegistry, new_topic: Callable[[], str]
) -> None:
    topic = new_topic()
    registry.register(topic, VERSIONS[0].text)
    with pytest.raises(SchemaInvalidError):
        registry.register(topic, '{"type": "record", "name": "Product"')  # not even JSON
    assert [r.version for r in registry.versions(topic)] == [1]


def test_unknown_refs_are_schema_not_found(local_stack) -> None:
    """Answered "no such schema" (SchemaNotFoundError) is told apart from an outage."""
    confluent = open_registry(_settings(Flavor.CONFLUENT, local_stack))
    with pytest.raises(SchemaNotFoundError) as error:
        confluent.by_ref("987654")
    assert str(error.value) == (
        f"schema registry at {local_stack.confluent_registry_url} has nothing to get schema id "
        "987654: No content with ID '987654' was found."
    )
    with pytest.raises(SchemaNotFoundError) as error:
        confluent.by_ref("abc")
    assert str(error.value) == "'abc' is not a Confluent schema id"
    glue = open_registry(_settings(Flavor.GLUE, local_stack))
    ref = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(SchemaNotFoundError) as error:
        glue.by_ref(ref)
    assert str(error.value) == (
        f"Glue registry {GLUE_REGISTRY} has nothing to get schema version {ref}: "
        f"Schema version is not found. SchemaVersionId: {ref}"
    )


@pytest.mark.parametrize("flavor", [Flavor.CONFLUENT, Flavor.GLUE], ids=["confluent", "glue"])
def test_unreachable_registry_fails_within_seconds(flavor: Flavor, local_stack) -> None:
    port = closed_port()
    url = f"http://127.0.0.1:{port}" + ("/apis/ccompat/v7" if flavor is Flavor.CONFLUENT else "")
    registry = open_registry(_settings(flavor, local_stack, url=url))
    started = time.monotonic()
    with pytest.raises(RegistryUnavailableError) as error:
        registry.latest("products")
    assert time.monotonic() - started < 30  # bounded retries, not a hang
    if flavor is Flavor.CONFLUENT:
        assert str(error.value) == (
            f"cannot reach the schema registry at {url} to get the latest version of "
            "products-value: ConnectError: [Errno 111] Connection refused"
        )
    else:
        assert str(error.value) == (
            f"cannot reach the Glue schema registry at {url} to get the latest version of schema "
            f'products: Could not connect to the endpoint URL: "{url}/"'
        )


def test_serializers_frame_each_version_with_its_ref(
    registry: SchemaRegistry, new_topic: Callable[[], str]
) -> None:
    """The registry's serializer writes its own framing naming the version it was built for; the
    body is that version's Avro encoding of the event."""
    topic = new_topic()
    generator = EventGenerator(seed=3, clock=lambda: 1_700_000_000.0)
    for version in VERSIONS:
        ref = registry.register(topic, version.text).ref
        serialize = registry.serializer(topic, ref, version.text)
        event = generator.event(version.field_names)
        frame = wire.parse(serialize(event))
        assert (frame.wire_format, frame.schema_ref) == (registry.wire_format, ref)
        assert frame.payload == _encode(event, version.text)


def test_build_serializers_fast_path_writes_the_librarys_bytes(
    registry: SchemaRegistry, new_topic: Callable[[], str]
) -> None:
    topic = new_topic()
    library = build_serializers(registry, topic, VERSIONS)
    fast = build_serializers(registry, topic, VERSIONS, register=False, fast=True)
    generator = EventGenerator(seed=5, clock=lambda: 1_700_000_000.0)
    for version in VERSIONS:
        assert fast[version.number].schema_ref == library[version.number].schema_ref
        for _ in range(20):
            event = generator.event(version.field_names)
            assert fast[version.number].serialize(event) == library[version.number].serialize(event)


def test_no_register_names_where_the_version_is_missing(
    registry: SchemaRegistry, new_topic: Callable[[], str]
) -> None:
    topic = new_topic()
    registry.register(topic, VERSIONS[0].text)
    with pytest.raises(RegistryError) as error:
        build_serializers(registry, topic, VERSIONS[:2], register=False)
    assert str(error.value) == (
        f"{VERSIONS[1].label} is not registered under {registry.where(topic)}; drop --no-register"
    )


def test_a_confluent_serializer_of_an_unregistered_schema_is_not_found(
    local_stack, new_topic: Callable[[], str]
) -> None:
    """confluent-kafka's serializer looks the schema up under the subject on its first record."""
    registry = open_registry(_settings(Flavor.CONFLUENT, local_stack))
    topic = new_topic()
    registry.register(topic, VERSIONS[0].text)
    serialize = registry.serializer(topic, "1", VERSIONS[1].text)
    with pytest.raises(SchemaNotFoundError):
        serialize(EventGenerator(seed=1).event(VERSIONS[1].field_names))
    with pytest.raises(ConfigError):
        registry.serializer(topic, "1", VERSIONS[0].text, compress=True)


def test_glue_compressed_serializer(local_stack, new_topic: Callable[[], str]) -> None:
    registry = open_registry(_settings(Flavor.GLUE, local_stack))
    topic = new_topic()
    version = VERSIONS[-1]
    ref = registry.register(topic, version.text).ref
    serializers = build_serializers(registry, topic, [version], register=False, compress=True)
    event = EventGenerator(seed=2, clock=lambda: 1_700_000_000.0).event(version.field_names)
    framed = serializers[version.number].serialize(event)
    assert framed[1] == wire.GLUE_COMPRESSION_ZLIB
    frame = wire.parse(framed)
    assert frame.schema_ref == ref
    assert frame.payload == _encode(event, version.text)
