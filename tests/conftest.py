"""Shared fixtures: the embedded local stack and one local Spark session per test session.

- ``local_stack``: a ``LocalStack`` (``.ports``, ``.bootstrap_servers``,
  ``.confluent_registry_url``, ``.glue_endpoint_url``). Reuses a stack that is already up; one it
  had to start is stopped when the last concurrent pytest session using it ends. A stack started
  with ``avrolake local up`` is left running.
- ``spark``: ``build_session`` with a warehouse in a temporary directory.

Every test under ``tests/integration/`` is marked ``integration`` (``pytest -m "not integration"``
runs the rest).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from avrolake.spark import build_session
from avrolake_dev.local import LocalStack
from avrolake_dev.local.lease import shared

_INTEGRATION_DIR = Path(__file__).parent / "integration"

# moto accepts any credentials, but botocore refuses to sign without some.
_AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _INTEGRATION_DIR in item.path.parents:
            item.add_marker(pytest.mark.integration)
        if "spark" in getattr(item, "fixturenames", ()):  # a JVM: not a unit test's budget
            item.add_marker(pytest.mark.spark)


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    """The stack, its addresses exported as the connection options' defaults for the session
    (``KAFKA_BOOTSTRAP_SERVERS`` …, see ``avrolake.cli.options``): ``avrolake`` subprocesses
    inherit them, as a shell does after ``avrolake local up``."""
    for key, value in _AWS_TEST_ENV.items():
        os.environ.setdefault(key, value)
    with shared(LocalStack()) as stack, pytest.MonkeyPatch.context() as env:
        env.setenv("KAFKA_BOOTSTRAP_SERVERS", stack.bootstrap_servers)
        env.setenv("SCHEMA_REGISTRY_URL", stack.confluent_registry_url)
        env.setenv("AWS_ENDPOINT_URL_GLUE", stack.glue_endpoint_url)
        yield stack


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    warehouse = tmp_path_factory.mktemp("warehouse")
    session = build_session("avrolake-tests", warehouse_dir=str(warehouse))
    yield session
    session.stop()
