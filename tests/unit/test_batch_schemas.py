"""``SchemaResolver`` through registry outages: the last known reader, patience for new refs, a
bound, and quarantine only for what the registry answered it does not have.

The registry here is a stand-in (``FlakyRegistry``): an outage of a real one cannot be switched
on and off per call, and the waits would take minutes of real time. It raises the errors the real
clients translate to (``RegistryUnavailableError``, ``SchemaNotFoundError``); the real registries'
translation is covered by tests/integration/test_registry.py, and a real paused registry under a
running silver by tests/integration/test_soak.py. Sleeps go to a fake that only records them.
"""

from __future__ import annotations

import json

import pytest

from avrolake import wire
from avrolake.errors import PipelineError, RegistryUnavailableError, SchemaNotFoundError
from avrolake.pipeline.batch_schemas import SchemaResolver
from avrolake.registry import RegisteredSchema

TOPIC = "products"


def product(*fields: dict) -> str:
    base = [{"name": "eventId", "type": "string"}, {"name": "timestamp", "type": "long"}]
    return json.dumps({"type": "record", "name": "Product", "fields": [*base, *fields]})


V1 = RegisteredSchema("1", 1, product())
V2 = RegisteredSchema("2", 2, product({"name": "size", "type": "string", "default": "none"}))
V3 = RegisteredSchema("3", 3, product({"name": "size", "type": "long"}))  # v2 cannot become it


class FlakyRegistry:
    """A stand-in registry that is down for the next ``down`` calls."""

    wire_format = wire.WireFormat.CONFLUENT

    def __init__(self, *versions: RegisteredSchema) -> None:
        self.versions = {v.ref: v for v in versions}
        self.down = 0
        self.calls: list[str] = []

    def _answer(self, what: str) -> None:
        self.calls.append(what)
        if self.down:
            self.down -= 1
            raise RegistryUnavailableError("cannot reach the schema registry at http://sr: timeout")

    def latest(self, topic: str) -> RegisteredSchema:
        self._answer("latest")
        return max(self.versions.values(), key=lambda v: v.version)

    def by_ref(self, ref: str, topic: str | None = None) -> RegisteredSchema:
        self._answer(f"by_ref {ref}")
        if ref not in self.versions:
            raise SchemaNotFoundError(f"no schema id {ref}")
        return self.versions[ref]


def resolver(registry: FlakyRegistry, sleeps: list[float], bound: float = 600.0):
    return SchemaResolver(registry, TOPIC, outage_timeout_s=bound, sleep=sleeps.append)  # type: ignore[arg-type]


def test_an_outage_keeps_the_last_reader_without_waiting() -> None:
    registry, sleeps = FlakyRegistry(V1, V2), []
    schemas = resolver(registry, sleeps)
    assert schemas.reader() == V2
    registry.down = 10**6  # down for as long as anyone asks
    assert [schemas.reader() for _ in range(3)] == [V2, V2, V2]
    assert sleeps == []  # a batch decodes with what it has instead of waiting


def test_a_restarted_process_keeps_the_reader_recorded_in_silver() -> None:
    registry, sleeps = FlakyRegistry(V1, V2), []
    registry.down = 10**6
    assert resolver(registry, sleeps).reader(recorded=V1) == V1
    assert sleeps == []


def test_without_any_reader_it_waits_with_backoff_until_the_registry_answers() -> None:
    registry, sleeps = FlakyRegistry(V1, V2), []
    registry.down = 4
    assert resolver(registry, sleeps).reader() == V2
    assert registry.calls == ["latest"] * 5
    assert len(sleeps) == 4 and sleeps == sorted(sleeps) and all(0 < s <= 30 for s in sleeps)


def test_a_new_ref_during_an_outage_is_waited_for_never_quarantined() -> None:
    registry, sleeps = FlakyRegistry(V1, V2), []
    schemas = resolver(registry, sleeps)
    registry.down = 3
    batch = schemas.for_batch(V2, ["1", "2"], wire.WireFormat.CONFLUENT)
    assert (dict(batch.writers), dict(batch.unusable)) == ({"1": V1, "2": V2}, {})
    assert len(sleeps) == 3
    registry.down = 10**6  # known refs need the registry no more
    again = schemas.for_batch(V2, ["1", "2"], wire.WireFormat.CONFLUENT)
    assert dict(again.writers) == {"1": V1, "2": V2}


def test_an_outage_beyond_the_bound_fails_naming_the_registry() -> None:
    registry, sleeps = FlakyRegistry(V1), []
    registry.down = 10**6
    with pytest.raises(PipelineError) as failure:
        resolver(registry, sleeps, bound=0.0).for_batch(V1, ["1"], wire.WireFormat.CONFLUENT)
    assert str(failure.value) == (
        "schema registry unavailable for more than 0s while getting schema ref 1: "
        "cannot reach the schema registry at http://sr: timeout"
    )


def test_only_answered_absence_and_unreadable_writers_are_quarantined() -> None:
    registry, sleeps = FlakyRegistry(V1, V2, V3), []
    schemas = resolver(registry, sleeps)
    batch = schemas.for_batch(V2, ["1", "3", "9"], wire.WireFormat.CONFLUENT)
    assert dict(batch.writers) == {"1": V1}
    assert batch.unusable["9"] == "unknown schema ref 9: no schema id 9"
    assert batch.unusable["3"].startswith(
        "writer v3 (schema ref 3) cannot be read with reader v2: field 'size'"
    )
    registry.versions["9"] = RegisteredSchema("9", 4, V2.schema_str)  # registered late
    assert dict(schemas.for_batch(V2, ["9"], wire.WireFormat.CONFLUENT).writers) == {
        "9": registry.versions["9"]
    }


def test_the_batch_framing_is_the_registrys_unless_given() -> None:
    registry, sleeps = FlakyRegistry(V1), []
    registry.wire_format = wire.WireFormat.GLUE  # the resolver need not know the flavor
    schemas = resolver(registry, sleeps)
    assert schemas.for_batch(V1, ["1"]).wire_format is wire.WireFormat.GLUE
    given = schemas.for_batch(V1, ["1"], wire.WireFormat.CONFLUENT)
    assert given.wire_format is wire.WireFormat.CONFLUENT


def test_knows_tells_a_subjects_refs_quietly_and_caches_what_it_finds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Routing asks each record type's resolver in turn: a no is not a quarantine (no warning,
    and asked again next time, for a schema registered late); a yes is the writer, cached."""
    registry, sleeps = FlakyRegistry(V1), []
    schemas = resolver(registry, sleeps)
    with caplog.at_level("WARNING"):
        assert schemas.knows("1") and not schemas.knows("9") and not schemas.knows("9")
    assert caplog.records == []
    assert schemas.knows("1") and schemas.writer("1") == V1
    assert registry.calls == ["by_ref 1", "by_ref 9", "by_ref 9"]
