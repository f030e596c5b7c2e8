"""The session seam: local settings, the jar list, and the Databricks branch leaving it alone."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from avrolake.spark import build_session
from avrolake_dev.local.jars import spark_jars


def test_local_session_settings(spark: SparkSession) -> None:
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.master") == "local[*]"
    assert conf.get("spark.sql.extensions") == "io.delta.sql.DeltaSparkSessionExtension"
    assert (
        conf.get("spark.sql.catalog.spark_catalog")
        == "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    )
    assert spark.conf.get("spark.sql.shuffle.partitions") == "4"
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert conf.get("spark.ui.enabled") == "false"
    assert conf.get("spark.driver.memory") == "2g"
    assert conf.get("spark.jars").split(",") == [str(jar) for jar in spark_jars()]


def test_the_local_jvm_ignores_sigterm_and_sigint(spark: SparkSession) -> None:
    """A signal to the whole process group reaches the CLI, which stops the query and Spark; the
    JVM itself must not die under the query. pyspark's own ``Popen`` is back in place."""
    from pyspark import SparkContext, java_gateway

    assert SparkContext._gateway is not None
    status = Path(f"/proc/{SparkContext._gateway.proc.pid}/status").read_text()
    match = re.search(r"^SigIgn:\s*([0-9a-f]+)$", status, re.MULTILINE)
    assert match is not None
    ignored = int(match.group(1), 16)
    assert ignored & (1 << (signal.SIGTERM - 1))
    assert ignored & (1 << (signal.SIGINT - 1))
    assert java_gateway.Popen is subprocess.Popen


def test_python_workers_import_avrolake(spark: SparkSession) -> None:
    def where(_: object) -> str:
        import avrolake

        return avrolake.__name__

    assert spark.sparkContext.parallelize([1], 1).map(where).collect() == ["avrolake"]


def test_build_session_returns_the_running_session(spark: SparkSession) -> None:
    assert build_session() is spark


def test_on_databricks_the_session_is_left_untouched(
    spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "17.3")
    session = build_session("ignored", extra_conf={"spark.sql.shuffle.partitions": "7"})
    assert session is spark
    assert session.conf.get("spark.sql.shuffle.partitions") == "4"
