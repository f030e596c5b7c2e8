"""Spark failures as one line that names the real cause.

A failed stage reaches the CLI as a ``StreamingQueryException`` or a py4j error whose text nests
every layer: ``[STREAM_FAILED] Query … terminated with exception:
[FOREACH_BATCH_USER_FUNCTION_ERROR] … Return Message: Traceback (most recent call last):``, then
the Python traceback of the ``foreachBatch`` function, which may itself end in a ``Py4JJavaError``
carrying a Java stack trace with ``Caused by:`` lines. The first line of that text says only that
*something* failed; ``root_cause`` digs out what did. The whole text stays available under ``-v``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from avrolake.errors import PipelineError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from avrolake.cli.stopping import StopRequest

__all__ = ["quiet_spark_logs", "root_cause", "spark_errors"]

log = logging.getLogger(__name__)

_PY_TRACEBACK = "Traceback (most recent call last):"
# A Python exception line: a dotted class name, then its message (or nothing).
_PY_EXCEPTION = re.compile(r"^(?P<cls>[A-Za-z_][\w.]*)(?:: (?P<msg>.*))?$")
# A Java exception line of a stack trace: "<fqcn>: message", after ": " (what py4j prints first)
# or "Caused by: ". Inner classes carry "$".
_JAVA_EXCEPTION = re.compile(r"^(?::|Caused by:) (?P<cls>[\w$.]+)(?:: (?P<msg>.*))?$")
_STREAM_FAILED = re.compile(r"^\[STREAM_FAILED\] Query .*? terminated with exception: ")
_SQLSTATE = re.compile(r"(?:\s+SQLSTATE: \w+)+\s*$")
_PY4J_JAVA_ERROR = "py4j.protocol.Py4JJavaError"


def _short(cls: str) -> str:
    """``org.apache.hadoop.fs.ParentNotDirectoryException`` → ``ParentNotDirectoryException``."""
    return cls.rsplit(".", 1)[-1]


def _clean(message: str) -> str:
    return _SQLSTATE.sub("", message).strip()


def _line(cls: str, message: str | None) -> str:
    if cls.startswith("avrolake."):  # our own errors are written for the user: the message says it
        return _clean(message or _short(cls))
    return f"{_short(cls)}: {_clean(message)}" if message and _clean(message) else _short(cls)


def _java_cause(lines: list[str]) -> str | None:
    """The innermost cause of a Java stack trace that has a message (else the innermost one)."""
    found = [m for m in map(_JAVA_EXCEPTION.match, lines) if m is not None]
    if not found:
        return None
    with_message = [m for m in found if m["msg"] and _clean(m["msg"])]
    innermost = (with_message or found)[-1]
    return _line(innermost["cls"], innermost["msg"])


def _python_exception(lines: list[str]) -> tuple[int, str, str | None] | None:
    """Index, class and message of the exception that ends the *last* Python traceback in
    ``lines`` (with chained exceptions that is the one finally raised, printed last)."""
    starts = [i for i, line in enumerate(lines) if line.rstrip().endswith(_PY_TRACEBACK)]
    if not starts:
        return None
    for index in range(starts[-1] + 1, len(lines)):
        line = lines[index]
        if not line.strip() or line[0].isspace():  # frames, source lines, carets
            continue
        match = _PY_EXCEPTION.match(line)
        return (index, match["cls"], match["msg"]) if match else (index, line.strip(), None)
    return None


def root_cause(text: str) -> str:
    """One line naming what really failed in the text of a Spark or py4j error.

    - a Python traceback inside (a ``foreachBatch`` function raised): its final exception line,
      ``ValueError: bad value``; when that is a ``Py4JJavaError`` (a Java call made by the
      function failed), the innermost Java cause below it instead;
    - otherwise the innermost ``Caused by:`` of a Java stack trace;
    - otherwise the first line, without the ``[STREAM_FAILED] Query … terminated with
      exception:`` prefix and the ``SQLSTATE`` suffixes.

    Class names are shortened (``AnalysisException: …``); avrolake's own errors keep only their
    message, which is written for the user already.
    """
    text = text.strip()
    if not text:
        return "unknown error"
    lines = text.splitlines()
    python = _python_exception(lines)
    if python is not None:
        index, cls, message = python
        if cls != _PY4J_JAVA_ERROR:
            return _line(cls, message)
        java = _java_cause(lines[index + 1 :])
        if java is not None:
            return java
        return _line(cls, message)
    java = _java_cause(lines)
    if java is not None:
        return java
    first = _STREAM_FAILED.sub("", lines[0])
    return _clean(first) or lines[0].strip()


@contextmanager
def spark_errors(stage: str, stop: StopRequest | None = None) -> Iterator[None]:
    """Spark's and py4j's own failures (a missing catalog, a denied permission, a dead JVM): one
    line naming the cause, no JVM trace. The original stays chained for ``-v``.

    With a ``stop`` that was requested, a failure is the stop itself and is swallowed (the
    ``with`` body ends early): a signal sent to the whole process group shuts Spark's JVM down
    too, under whatever the command was doing.
    """
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    try:
        yield
    except (PySparkException, Py4JError) as error:
        if stop is not None and stop.requested:
            log.info("Spark stopped with the %s: %s", stop.signal_name, root_cause(str(error)))
            return
        raise PipelineError(f"{stage} failed: {root_cause(str(error))}") from error


def quiet_spark_logs(spark: SparkSession, *, verbose: bool) -> None:
    """Locally, without ``-v``, Spark logs nothing to the terminal: a failed batch would otherwise
    print the same trace three times (executor, task set, query) around our one line. On
    Databricks the driver log is where traces belong, so it is left as the cluster set it."""
    from avrolake.settings import on_databricks

    if not verbose and not on_databricks():
        spark.sparkContext.setLogLevel("OFF")
        # setLogLevel sets the root logger only: the loggers our log4j2 file names at ERROR (a
        # task aborted by a stop logs one with its trace) would still print. log4j2's own way to
        # set a logger and all below it:
        jvm = spark.sparkContext._jvm
        assert jvm is not None
        log4j = jvm.org.apache.logging.log4j
        log4j.core.config.Configurator.setAllLevels("", log4j.Level.OFF)
