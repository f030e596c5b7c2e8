"""Fixtures of the integration tests that talk to the schema registries."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator

import pytest

from avrolake.registry.glue import glue_client
from avrolake.settings import Flavor, RegistrySettings

GLUE_REGISTRY = "avrolake-tests"  # one for all tests: moto allows only 10 registries


@pytest.fixture
def new_topic(local_stack) -> Iterator[Callable[[], str]]:
    """Unique topic names; their Glue schemas are deleted afterwards, since moto caps a server's
    life at 1000 schemas and 1000 schema versions."""
    names: list[str] = []

    def make() -> str:
        names.append(f"products-{uuid.uuid4().hex[:8]}")
        return names[-1]

    yield make
    glue = glue_client(
        RegistrySettings(
            Flavor.GLUE,
            glue_registry_name=GLUE_REGISTRY,
            region="us-east-1",
            endpoint_url=local_stack.glue_endpoint_url,
        )
    )
    for name in names:
        with contextlib.suppress(glue.exceptions.EntityNotFoundException):
            glue.delete_schema(SchemaId={"SchemaName": name, "RegistryName": GLUE_REGISTRY})
