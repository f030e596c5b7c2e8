"""The one place that builds a SparkSession: the cluster's own on Databricks, a local one elsewhere.

On a laptop or in CI the session runs ``local[*]`` with the Kafka source, the Avro functions and
Delta from the jar cache (``avrolake local jars``), quiet logs and small shuffles.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avrolake.settings import cache_dir, on_databricks

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Spark's default log4j2 setup prints INFO at start-up and WARN for every Kafka consumer quirk.
_LOG4J2 = """\
status = warn
appender.err.type = Console
appender.err.name = err
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = err
logger.native.name = org.apache.hadoop.util.NativeCodeLoader
logger.native.level = ERROR
logger.utils.name = org.apache.spark.util.Utils
logger.utils.level = ERROR
logger.kafka.name = org.apache.kafka
logger.kafka.level = ERROR
logger.kafka010.name = org.apache.spark.sql.kafka010
logger.kafka010.level = ERROR
logger.behind.name = org.apache.spark.sql.execution.streaming.runtime.ProcessingTimeExecutor
logger.behind.level = ERROR
logger.aqe.name = org.apache.spark.sql.execution.streaming.runtime.ResolveWriteToStream
logger.aqe.level = ERROR
logger.cancel.name = org.apache.spark.scheduler.DAGScheduler
logger.cancel.level = ERROR
logger.plan.name = org.apache.spark.sql.catalyst.util.SparkStringUtils
logger.plan.level = ERROR
"""


# Apache Avro's SystemLimitException properties. Without them a record claiming a 2 GB string or
# a billion-element array of nulls makes the JVM allocate it before finding the bytes missing.
AVRO_LIMITS = {
    "org.apache.avro.limits.string.maxLength": 64 * 1024 * 1024,
    "org.apache.avro.limits.bytes.maxLength": 64 * 1024 * 1024,
    "org.apache.avro.limits.collectionItems.maxLength": 16 * 1024 * 1024,
}


def local_conf(warehouse_dir: str | None = None) -> dict[str, str]:
    """The settings ``build_session`` applies off Databricks (resolves the spark jars if needed)."""
    # The session seam may use the local jar cache; no pipeline module does.
    from avrolake.local.jars import spark_jars

    log4j = cache_dir() / "spark" / "log4j2.properties"
    log4j.parent.mkdir(parents=True, exist_ok=True)
    if not log4j.exists() or log4j.read_text() != _LOG4J2:
        log4j.write_text(_LOG4J2)
    warehouse = Path(warehouse_dir) if warehouse_dir else cache_dir() / "spark-warehouse"
    return {
        "spark.master": "local[*]",
        "spark.jars": ",".join(str(jar) for jar in spark_jars()),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.warehouse.dir": str(warehouse.absolute()),
        "spark.sql.shuffle.partitions": "4",
        # Delta rebuilds table snapshots with 50 tasks by default: seconds per read on two cores
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.memory": "2g",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        # -Xss: deep Catalyst/Delta recursion on streaming threads (whose py4j callbacks nest);
        # Avro limits: a hostile length prefix must not make the decoder allocate gigabytes
        # (the job clusters carry the same limits).
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={log4j} -Xss8m "
        + " ".join(f"-D{key}={value}" for key, value in AVRO_LIMITS.items()),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }


def build_session(
    app_name: str = "avrolake",
    *,
    warehouse_dir: str | None = None,
    extra_conf: dict[str, str] | None = None,
) -> SparkSession:
    """The SparkSession for this process.

    On Databricks: the cluster's session, untouched (the arguments are ignored; the runtime owns
    jars and settings). Elsewhere: a local session with ``local_conf(warehouse_dir)`` and then
    ``extra_conf`` on top. Spark keeps one session per process: if one is active already, it is
    returned as it is, with only ``extra_conf`` set on it (runtime settings only).

    Raises ``LocalStackError`` when ``java`` is missing or the jars cannot be resolved.
    """
    from pyspark.sql import SparkSession

    if on_databricks():
        return SparkSession.builder.getOrCreate()

    from avrolake.local.jvm import JAVA_FIX
    from avrolake.local.proc import require_tool

    active = SparkSession.getActiveSession()
    if active is not None:
        for key, value in (extra_conf or {}).items():
            active.conf.set(key, value)
        return active
    if not os.environ.get("JAVA_HOME"):  # pyspark runs $JAVA_HOME/bin/java, else PATH's java
        require_tool("java", JAVA_FIX)  # pyspark's own error is a page of gateway noise
    # Python workers must run this interpreter (the venv that has avrolake), not PATH's python3;
    # pyspark reads only the environment variable for that (spark.pyspark.python is ignored here).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    settings = {**local_conf(warehouse_dir), **(extra_conf or {})}
    _launch_jvm_deaf_to_sigterm(settings)
    builder = SparkSession.builder.appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session


def _launch_jvm_deaf_to_sigterm(settings: dict[str, str]) -> None:
    """Start the local Spark JVM ignoring SIGTERM as pyspark has it ignore SIGINT, unless it runs.

    A supervisor that signals the whole process group (``kill -TERM -<pgid>``, a container stop)
    otherwise killed the JVM under a running query, which then died with
    ``RpcEnvStoppedException`` instead of stopping cleanly. Ignoring it, the JVM stops when the
    CLI's handler has stopped the query and Spark, or when this process dies (its stdin closes);
    a SIGKILL still takes the whole group, as a lost node would. pyspark sets its own
    ``preexec_fn`` over any given, so its ``Popen`` is wrapped for the launch.
    """
    from pyspark import SparkConf, SparkContext, java_gateway

    if SparkContext._gateway is not None:
        return
    conf = SparkConf(loadDefaults=False)
    for key, value in settings.items():
        conf.set(key, value)
    original = java_gateway.Popen
    java_gateway.Popen = _PopenIgnoringSigterm  # type: ignore[misc,assignment]
    try:
        SparkContext._ensure_initialized(gateway=java_gateway.launch_gateway(conf))
    finally:
        java_gateway.Popen = original  # type: ignore[misc]


class _PopenIgnoringSigterm(subprocess.Popen):
    def __init__(self, args: Any, **kwargs: Any) -> None:
        given = kwargs.get("preexec_fn")

        def preexec() -> None:
            if given is not None:
                given()
            signal.signal(signal.SIGTERM, signal.SIG_IGN)

        super().__init__(args, **{**kwargs, "preexec_fn": preexec})
