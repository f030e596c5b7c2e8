"""Random Product events: exact values for a seed and a fixed clock, version field subsets."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path

from avrolake.producer.events import COLORS, SIZES, TYPES, EventGenerator, uuid4_from_bits
from avrolake.schemas import load_versions

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "product"
CLOCK = 1_700_000_000.123  # unix seconds


def _fields() -> dict[int, list[str]]:
    return {v.number: v.field_names for v in load_versions(SCHEMAS)}


def test_seed_and_clock_fix_every_value() -> None:
    fields = _fields()
    generator = EventGenerator(42, clock=lambda: CLOCK)
    events = [generator.event(fields[n]) for n in (1, 2, 3)]
    assert events == [
        {
            "productId": "P0002",
            "eventId": "bdd640fb-0667-4ad1-9c80-317fa3b1799d",
            "type": "shirt",
            "timestamp": 1_700_000_000,
        },
        {
            "productId": "P0005",
            "eventId": "bd9c66b3-ad3c-4d6d-9a3d-1fa7bc8960a9",
            "type": "shoes",
            "size": "S",
            "color": "blue",
            "timestamp": 1_700_000_000,
        },
        {
            "productId": "P0006",
            "eventId": "17fc695a-07a0-4a6e-8822-e8f36c031199",
            "type": "shirt",
            "size": "XS",
            "color": "black",
            "timestamp": 1_700_000_000,
            "price": Decimal("100.36"),
            "updatedAt": 1_699_548_396_613,
        },
    ]


def test_same_seed_same_events_other_seed_other_events() -> None:
    v3 = _fields()[3]
    a = EventGenerator(7, clock=lambda: CLOCK)
    b = EventGenerator(7, clock=lambda: CLOCK)
    c = EventGenerator(8, clock=lambda: CLOCK)
    run_a = [a.event(v3) for _ in range(500)]
    assert run_a == [b.event(v3) for _ in range(500)]
    assert {e["eventId"] for e in run_a}.isdisjoint(c.event(v3)["eventId"] for _ in range(500))


def test_fields_follow_the_writer_version_and_values_stay_in_range() -> None:
    fields = _fields()
    generator = EventGenerator(1, clock=lambda: CLOCK)
    for number, names in fields.items():
        for _ in range(300):
            event = generator.event(names)
            assert list(event) == names, number
            assert uuid.UUID(event["eventId"]).version == 4
            assert event["type"] in TYPES
            if number >= 2:
                assert event["size"] in SIZES and event["color"] in COLORS
            if number >= 3:
                price = event["price"]
                assert price is None or (
                    Decimal("4.99") <= price <= Decimal("199.99")
                    and price.as_tuple().exponent == -2
                )
                assert (
                    1_700_000_000_123 - 7 * 24 * 3600 * 1000
                    < event["updatedAt"]
                    <= 1_700_000_000_123
                )


def test_unknown_fields_are_left_to_schema_defaults() -> None:
    event = EventGenerator(3, clock=lambda: CLOCK).event(["productId", "warehouse"])
    assert list(event) == ["productId"]


def test_price_is_null_for_about_a_tenth_of_v3_events() -> None:
    generator = EventGenerator(5, clock=lambda: CLOCK)
    nulls = sum(generator.event(["price"])["price"] is None for _ in range(10_000))
    assert nulls == 994


def test_uuid4_from_bits_matches_the_uuid_module() -> None:
    for bits in (0, (1 << 256) - 1, 0x0123456789ABCDEF0123456789ABCDEF, 12345678901234567890):
        assert uuid4_from_bits(bits) == str(uuid.UUID(int=bits & ((1 << 128) - 1), version=4))
