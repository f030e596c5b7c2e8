"""What the stack needs to know about one service: how to start it and how to tell it is ready."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Service:
    """One background service of the local stack.

    ``command`` and ``prepare`` run only when the service is about to start: they may resolve jars
    (Maven) or write files under ``home``. ``probe`` is a single health check that returns within a
    couple of seconds; the stack calls it repeatedly until ``start_timeout``.

    State: a service with ``state_in_memory`` starts empty every time (the registries). One that
    keeps data on disk (Kafka) restarts on it, unless ``discard_data`` ran first; the stack does
    that when the in-memory services start empty alongside it, since the kept records would name
    schema ids nobody knows any more.
    """

    name: str
    address: str  # what clients connect to, shown by `avrolake local status`
    ports: Mapping[str, int]  # environment variable that moves the port → port
    home: Path  # working directory: config and data files
    command: Callable[[], list[str]]
    probe: Callable[[], bool]
    prepare: Callable[[], None] = field(default=_nothing)
    discard_data: Callable[[], None] = field(default=_nothing)
    state_in_memory: bool = False
    needs_java: bool = True
    start_timeout: float = 90.0
