"""--mix parsing and the version draw."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from avrolake.errors import ConfigError
from avrolake.producer.mix import Mix, parse_mix


def test_parse_weights_with_or_without_v() -> None:
    assert parse_mix("v1=0.2,v2=0.5,v3=0.3").weights == {1: 0.2, 2: 0.5, 3: 0.3}
    assert parse_mix(" 1=2 , V3=1 ").weights == {1: 2.0, 3: 1.0}
    assert parse_mix("v2=3,v3=1").shares() == {2: 0.75, 3: 0.25}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("v1", "--mix item 'v1' is not v<N>=<weight> (e.g. v1=0.2,v2=0.8)"),
        ("v1=0.5,,v2=0.5", "--mix item '' is not v<N>=<weight> (e.g. v1=0.2,v2=0.8)"),
        ("x1=0.5", "--mix item 'x1=0.5' is not v<N>=<weight> (e.g. v1=0.2,v2=0.8)"),
        ("v0=1", "--mix item 'v0=1' is not v<N>=<weight> (e.g. v1=0.2,v2=0.8)"),
        ("v1=abc", "--mix weight 'abc' of v1 is not a number"),
        ("v1=0.5,v1=0.5", "--mix names v1 twice"),
        ("v1=0", "--mix weight of v1 must be a positive number, got 0.0"),
        ("v1=-0.2,v2=1", "--mix weight of v1 must be a positive number, got -0.2"),
        ("v1=nan", "--mix weight of v1 must be a positive number, got nan"),
        ("v1=inf", "--mix weight of v1 must be a positive number, got inf"),
    ],
)
def test_malformed_mix_is_one_config_error(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_mix(text)
    assert str(error.value) == message


def test_unknown_version_is_named() -> None:
    with pytest.raises(ConfigError) as error:
        parse_mix("v1=1,v4=1,v7=2").check_known([1, 2, 3])
    assert str(error.value) == "--mix names unknown version v4, v7; the schemas are v1, v2, v3"
    parse_mix("v1=1,v3=1").check_known([1, 2, 3])  # a subset is fine


def test_draw_is_seeded_and_proportional() -> None:
    draw = parse_mix("v1=0.2,v2=0.5,v3=0.3").draw(random.Random(7))
    counts = Counter(next(draw) for _ in range(10_000))
    assert counts == {1: 2016, 2: 4976, 3: 3008}


def test_uniform_mix() -> None:
    assert Mix.uniform([3, 1, 2]).shares() == {1: 1 / 3, 2: 1 / 3, 3: 1 / 3}
    with pytest.raises(ConfigError, match=r"^--mix names no version$"):
        Mix({})
