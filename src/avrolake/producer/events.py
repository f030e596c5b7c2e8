"""Random Product events, reproducible from a seed.

Every event draws the same random values in the same order whatever its version, then keeps the
fields its writer schema has; so a seed fixes the whole sequence of ids and attributes (the
``timestamp`` and ``updatedAt`` follow the injected clock, which tests fix).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

PRODUCT_IDS = tuple(f"P{n:04d}" for n in range(1, 11))
TYPES = ("shirt", "pants", "shoes")
COLORS = ("black", "blue", "red")
SIZES = ("XS", "S", "M", "L", "XL")
PRICE_CENTS = (499, 19_999)  # inclusive range of v3 prices, in cents
PRICE_NULL_PERCENT = 10  # share of v3 events with an unknown (null) price
UPDATED_AT_MAX_AGE_MS = 7 * 24 * 3600 * 1000  # updatedAt lies up to a week before the event

# uuid4 layout (RFC 4122): version nibble 4, variant bits 10.
_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)
_LOW_128 = (1 << 128) - 1


def uuid4_from_bits(bits: int) -> str:
    """``str(uuid.UUID(int=bits, version=4))`` for the low 128 bits of ``bits``, at a third of the
    cost (this runs per event)."""
    h = "%032x" % ((bits & _UUID_CLEAR & _LOW_128) | _UUID_SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class EventGenerator:
    """Makes Product events as dicts holding exactly the fields of the writer version.

    ``event(fields)`` returns values for the given field names (a version's ``field_names``);
    names it does not know are left out, so the serializer writes their schema defaults.
    Values follow Avro's Python mapping as fastavro writes it: ``price`` is a ``Decimal`` with two
    places or None, ``updatedAt`` is epoch milliseconds (an int), ``timestamp`` unix seconds.
    """

    def __init__(self, seed: int, clock: Callable[[], float] = time.time) -> None:
        self._rng = random.Random(seed)
        self._clock = clock

    def event(self, fields: Sequence[str]) -> dict[str, Any]:
        # One 256-bit draw split by divmod: a third of the cost of six rng.choice/randint calls,
        # and the modulo bias of 128 spare bits is nil.
        bits = self._rng.getrandbits(256)
        now_ms = int(self._clock() * 1000)
        rest, product = divmod(bits >> 128, len(PRODUCT_IDS))
        rest, kind = divmod(rest, len(TYPES))
        rest, size = divmod(rest, len(SIZES))
        rest, color = divmod(rest, len(COLORS))
        rest, cents = divmod(rest, PRICE_CENTS[1] - PRICE_CENTS[0] + 1)
        rest, percent = divmod(rest, 100)
        age_ms = rest % UPDATED_AT_MAX_AGE_MS
        values = {
            "productId": PRODUCT_IDS[product],
            "eventId": uuid4_from_bits(bits),
            "type": TYPES[kind],
            "size": SIZES[size],
            "color": COLORS[color],
            "timestamp": now_ms // 1000,
            "price": (
                Decimal(PRICE_CENTS[0] + cents).scaleb(-2)
                if percent >= PRICE_NULL_PERCENT
                else None
            ),
            "updatedAt": now_ms - age_ms,
        }
        return {name: values[name] for name in fields if name in values}
