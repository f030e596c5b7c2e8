"""The one place that builds a SparkSession: the cluster's own on Databricks, a local one elsewhere.

On a laptop or in CI the session runs ``local[*]`` with the Kafka source, the Avro functions and
Delta, quiet logs and small shuffles. Those connector jars come from the first of:

1. ``AVROLAKE_SPARK_JARS``: jar paths, separated by commas or ``os.pathsep``;
2. an entry point of group ``avrolake.spark_jars`` (a function returning jar paths): the dev
   package ``avrolake-dev`` provides one, its Maven-resolved jar cache (``avrolake local jars``);
3. else ``spark.jars.packages`` with ``SPARK_PACKAGES``: Spark resolves them from Maven Central.

This module imports nothing of the dev package.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avrolake.errors import ConfigError
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


SPARK_JARS_ENV = "AVROLAKE_SPARK_JARS"
SPARK_JARS_ENTRY_POINTS = "avrolake.spark_jars"
# The connectors the pyspark wheel lacks, as jvm/pom.xml's `spark` profile pins them (a unit test
# keeps the two equal; the pom explains the versions).
SPARK_PACKAGES = (
    "org.apache.spark:spark-sql-kafka-0-10_2.13:4.2.0",
    "org.apache.spark:spark-avro_2.13:4.1.1",
    "io.delta:delta-spark_4.2_2.13:4.4.0",
)
JAVA_FIX = "install a JDK 17+ (apt-get install openjdk-17-jdk-headless, brew install openjdk@17)"


def spark_jar_conf() -> dict[str, str]:
    """``spark.jars`` from ``AVROLAKE_SPARK_JARS`` or the ``avrolake.spark_jars`` entry point,
    else ``spark.jars.packages`` with ``SPARK_PACKAGES`` (see the module's docstring)."""
    raw = os.environ.get(SPARK_JARS_ENV, "").strip()
    if raw:
        jars = [jar for jar in re.split(rf"[,{re.escape(os.pathsep)}]", raw) if jar.strip()]
        missing = [jar for jar in jars if not Path(jar.strip()).is_file()]
        if missing:
            raise ConfigError(
                f"{SPARK_JARS_ENV} names jars that do not exist: {', '.join(missing)}"
            )
        return {"spark.jars": ",".join(str(Path(jar.strip()).absolute()) for jar in jars)}
    providers = sorted(entry_points(group=SPARK_JARS_ENTRY_POINTS), key=lambda point: point.name)
    if providers:  # the first by name: one source of jars, never two versions of one connector
        return {"spark.jars": ",".join(str(jar) for jar in providers[0].load()())}
    return {"spark.jars.packages": ",".join(SPARK_PACKAGES)}


def local_conf(warehouse_dir: str | None = None) -> dict[str, str]:
    """The settings ``build_session`` applies off Databricks (resolves the spark jars if needed)."""
    log4j = cache_dir() / "spark" / "log4j2.properties"
    log4j.parent.mkdir(parents=True, exist_ok=True)
    if not log4j.exists() or log4j.read_text() != _LOG4J2:
        log4j.write_text(_LOG4J2)
    warehouse = Path(warehouse_dir) if warehouse_dir else cache_dir() / "spark-warehouse"
    return {
        "spark.master": "local[*]",
        **spark_jar_conf(),
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

    Raises ``ConfigError`` when ``java`` is missing, and what the jar source raises when it cannot
    resolve them.
    """
    from pyspark.sql import SparkSession

    if on_databricks():
        return SparkSession.builder.getOrCreate()

    active = SparkSession.getActiveSession()
    if active is not None:
        for key, value in (extra_conf or {}).items():
            active.conf.set(key, value)
        return active
    # pyspark runs $JAVA_HOME/bin/java, else PATH's java; its own error is a page of gateway noise
    if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        raise ConfigError(f"java not found on PATH: {JAVA_FIX}")
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
