"""The version mix: ``--mix v1=0.2,v2=0.5,v3=0.3`` → which writer version each event uses."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from avrolake.errors import ConfigError

_BATCH = 4096  # versions drawn per random.choices call: one call per event would cost ~1 µs


@dataclass(frozen=True)
class Mix:
    """Relative weights per schema version number (positive; they need not sum to 1)."""

    weights: dict[int, float]

    def __post_init__(self) -> None:
        if not self.weights:
            raise ConfigError("--mix names no version")
        for version, weight in self.weights.items():
            if not (weight > 0 and math.isfinite(weight)):
                raise ConfigError(
                    f"--mix weight of v{version} must be a positive number, got {weight}"
                )

    @classmethod
    def uniform(cls, versions: Iterable[int]) -> Mix:
        return cls({version: 1.0 for version in versions})

    def shares(self) -> dict[int, float]:
        total = sum(self.weights.values())
        return {version: weight / total for version, weight in sorted(self.weights.items())}

    def check_known(self, known: Iterable[int]) -> None:
        """``ConfigError`` if the mix names a version that is not among the loaded schemas."""
        known = sorted(set(known))
        unknown = sorted(set(self.weights) - set(known))
        if unknown:
            names = ", ".join(f"v{v}" for v in unknown)
            have = ", ".join(f"v{v}" for v in known)
            raise ConfigError(f"--mix names unknown version {names}; the schemas are {have}")

    def draw(self, rng: random.Random) -> Iterator[int]:
        """An endless, seed-reproducible stream of version numbers in these proportions."""
        versions = sorted(self.weights)
        cumulative = list(itertools.accumulate(self.weights[v] for v in versions))
        while True:
            yield from rng.choices(versions, cum_weights=cumulative, k=_BATCH)


def parse_mix(text: str) -> Mix:
    """Parse ``v1=0.2,v2=0.5,v3=0.3`` (the ``v`` is optional); ``ConfigError`` in one line."""
    weights: dict[int, float] = {}
    for part in text.split(","):
        item = part.strip()
        name, sep, raw_weight = item.partition("=")
        name = name.strip().lower().removeprefix("v")
        if not sep or not name.isdigit() or int(name) < 1:
            raise ConfigError(f"--mix item {item!r} is not v<N>=<weight> (e.g. v1=0.2,v2=0.8)")
        version = int(name)
        if version in weights:
            raise ConfigError(f"--mix names v{version} twice")
        try:
            weights[version] = float(raw_weight)
        except ValueError:
            raise ConfigError(
                f"--mix weight {raw_weight.strip()!r} of v{version} is not a number"
            ) from None
    return Mix(weights)
