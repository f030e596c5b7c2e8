"""Both registry implementations against the local stack: Apicurio (ccompat) and moto (Glue)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from avrolake.errors import RegistryError, SchemaError, SchemaNotFoundError
from avrolake.registry import SchemaRegistry, open_registry
from avrolake.registry.confluent import ConfluentRegistry
from avrolake.registry.glue import GlueRegistry
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
def registry(request: pytest.FixtureRequest, local_stack) -> SchemaRegistry:
    return open_registry(_settings(request.param, local_stack))


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
    registry: SchemaRegistry, local_stack, new_topic: Callable[[], str]
) -> None:
    topic = new_topic()
    v1 = registry.register(topic, VERSIONS[0].text)
    assert registry.latest(topic) == v1
    v2 = registry.register(topic, VERSIONS[1].text)
    assert registry.latest(topic) == v2  # seen at once: a running stream picks up new versions

    fresh = open_registry(
        _settings(Flavor.CONFLUENT, local_stack)
        if isinstance(registry, ConfluentRegistry)
        else RegistrySettings(
            Flavor.GLUE,
            glue_registry_name=registry.registry_name,  # type: ignore[attr-defined]
            region="us-east-1",
            endpoint_url=local_stack.glue_endpoint_url,
        )
    )
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
    registry = open_registry(_settings(Flavor.GLUE, local_stack))
    assert isinstance(registry, GlueRegistry)
    topic = new_topic()
    registry.register(topic, VERSIONS[0].text)
    registry.set_compatibility(topic, "FULL_TRANSITIVE")
    described = registry.glue.get_schema(
        SchemaId={"SchemaName": topic, "RegistryName": registry.registry_name}
    )
    assert described["Compatibility"] == "FULL_ALL"


def test_apicurio_enforces_full_transitive(local_stack, new_topic: Callable[[], str]) -> None:
    registry = open_registry(_settings(Flavor.CONFLUENT, local_stack))
    topic = new_topic()
    registry.register(topic, VERSIONS[0].text)
    registry.set_compatibility(topic, "FULL_TRANSITIVE")
    for version in VERSIONS[1:]:
        registry.register(topic, version.text)
    with pytest.raises(SchemaError) as error:
        registry.register(topic, _incompatible_v4())
    assert str(error.value) == (
        f"schema registry at {local_stack.confluent_registry_url} refused to register a schema "
        f"under {topic}-value: io.apicurio.registry.rules.RuleViolationException: Incompatible "
        f"artifact: {topic}-value [AVRO], num of incompatible diffs: {{3}}, list of diff types: "
        "[warehouse at /fields/8, warehouse at /fields/8, warehouse at /fields/8] (HTTP 409)"
    )
    assert [r.version for r in registry.versions(topic)] == [1, 2, 3]
    registry.set_compatibility(topic, "NONE")  # and with the rule off, Apicurio accepts it
    assert registry.register(topic, _incompatible_v4()).version == 4


def test_unknown_refs_are_schema_not_found(local_stack) -> None:
    """Answered "no such schema" (SchemaNotFoundError) is told apart from an outage."""
    confluent = open_registry(_settings(Flavor.CONFLUENT, local_stack))
    with pytest.raises(SchemaNotFoundError) as error:
        confluent.by_ref("987654")
    assert str(error.value) == (
        f"schema registry at {local_stack.confluent_registry_url} has nothing to get schema id "
        "987654: No content with ID '987654' was found."
    )
    with pytest.raises(RegistryError) as error:
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
    with pytest.raises(RegistryError) as error:
        registry.latest("products")
    assert time.monotonic() - started < 10
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
