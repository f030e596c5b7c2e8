"""``root_cause``: the one line a failed stage prints, taken from real Spark and py4j messages.

Each sample below is the ``str()`` of an exception a local Spark 4.2 session really raised (a
``StreamingQueryException`` from ``awaitTermination``), trimmed to two frames per Java stack trace
and cut after the ``=== Streaming Query ===`` header, which is all ``root_cause`` reads.
"""

from __future__ import annotations

import pytest

from avrolake.cli.failures import root_cause

# A foreachBatch function raised a plain Python exception.
PY_ERROR = """\
[STREAM_FAILED] Query [id = 615ebfb0-2702-4500-b9f4-1f82001206f4, runId = 496b35ca-9c05-4f2d-a3ea-56b8329001e2] terminated with exception: [FOREACH_BATCH_USER_FUNCTION_ERROR] An error occurred in the user provided function in foreach batch sink. Reason: An exception was raised by the Python Proxy. Return Message: Traceback (most recent call last):
  File "/work/main/.venv/lib/python3.11/site-packages/py4j/clientserver.py", line 644, in _call_proxy
    return_value = getattr(self.pool[obj_id], method)(*params)
                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/work/main/.venv/lib/python3.11/site-packages/pyspark/sql/utils.py", line 166, in call
    raise e
  File "/work/main/.venv/lib/python3.11/site-packages/pyspark/sql/utils.py", line 163, in call
    self.func(DataFrame(jdf, wrapped_session_jdf), batch_id)
  File "/tmp/me/samples.py", line 20, in py_error
    raise ValueError("bad thing in batch %d" % batch_id)
ValueError: bad thing in batch 0
 SQLSTATE: 39000 SQLSTATE: XXKST
=== Streaming Query ===
Identifier: [id = 615ebfb0-2702-4500-b9f4-1f82001206f4, runId = 496b35ca-9c05-4f2d-a3ea-56b8329001e2]"""  # noqa: E501


# `raise RuntimeError(...) from KeyError(...)`: two tracebacks, the last one is what was raised.
CHAINED = """\
[STREAM_FAILED] Query [id = 9eaa4ad7-d4c3-4cce-8c84-a420f1b3f60b, runId = 371b89c2-8650-449d-a015-087c9d723a93] terminated with exception: [FOREACH_BATCH_USER_FUNCTION_ERROR] An error occurred in the user provided function in foreach batch sink. Reason: An exception was raised by the Python Proxy. Return Message: Traceback (most recent call last):
  File "/tmp/me/samples.py", line 24, in nested
    {}["missing"]
    ~~^^^^^^^^^^^
KeyError: 'missing'

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/work/main/.venv/lib/python3.11/site-packages/py4j/clientserver.py", line 644, in _call_proxy
    return_value = getattr(self.pool[obj_id], method)(*params)
                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/work/main/.venv/lib/python3.11/site-packages/pyspark/sql/utils.py", line 166, in call
    raise e
  File "/work/main/.venv/lib/python3.11/site-packages/pyspark/sql/utils.py", line 163, in call
    self.func(DataFrame(jdf, wrapped_session_jdf), batch_id)
  File "/tmp/me/samples.py", line 26, in nested
    raise RuntimeError("wrapped failure") from k
RuntimeError: wrapped failure
 SQLSTATE: 39000 SQLSTATE: XXKST
=== Streaming Query ===
Identifier: [id = 9eaa4ad7-d4c3-4cce-8c84-a420f1b3f60b, runId = 371b89c2-8650-449d-a015-087c9d723a93]"""  # noqa: E501


# A Spark call inside the function failed; pyspark converted the Java error (multi-line message).
CAPTURED_ANALYSIS = """\
[STREAM_FAILED] Query [id = b0f09598-c4ec-483e-b2b3-f5f7f5ff3575, runId = b4dcb97e-5abf-4f80-a508-f96c65018282] terminated with exception: [FOREACH_BATCH_USER_FUNCTION_ERROR] An error occurred in the user provided function in foreach batch sink. Reason: An exception was raised by the Python Proxy. Return Message: Traceback (most recent call last):
  File "/work/main/.venv/lib/python3.11/site-packages/py4j/clientserver.py", line 644, in _call_proxy
    return_value = getattr(self.pool[obj_id], method)(*params)
                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/work/main/.venv/lib/python3.11/site-packages/pyspark/sql/utils.py", line 166, in call
    raise e
  File "/work/main/.venv/lib/python3.11/site-packages/pyspark/sql/utils.py", line 163, in call
    self.func(DataFrame(jdf, wrapped_session_jdf), batch_id)
  File "/tmp/me/samples.py", line 33, in analysis
    spark.sql("SELECT * FROM no_such_table_xyz").collect()
    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/work/main/.venv/lib/python3.11/site-packages/pyspark/sql/session.py", line 1915, in sql
    return DataFrame(self._jsparkSession.sql(sqlQuery, litArgs), self)
                     ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/work/main/.venv/lib/python3.11/site-packages/py4j/java_gateway.py", line 1362, in __call__
    return_value = get_return_value(
                   ^^^^^^^^^^^^^^^^^
  File "/work/main/.venv/lib/python3.11/site-packages/pyspark/errors/exceptions/captured.py", line 257, in deco
    raise converted from None
pyspark.errors.exceptions.captured.AnalysisException: [TABLE_OR_VIEW_NOT_FOUND] The table or view `no_such_table_xyz` cannot be found. Verify the spelling and correctness of the schema and catalog.
Search path: [`system`.`builtin`, `system`.`session`, `spark_catalog`.`default`].
If you did not qualify the name with a schema, verify the current_schema() output, or qualify the name with the correct schema and catalog.
To tolerate the error on drop use DROP VIEW IF EXISTS or DROP TABLE IF EXISTS. SQLSTATE: 42P01; line 1 pos 14;
'Project [*]
+- 'UnresolvedRelation [no_such_table_xyz], [], false

 SQLSTATE: 39000 SQLSTATE: XXKST
=== Streaming Query ===
Identifier: [id = b0f09598-c4ec-483e-b2b3-f5f7f5ff3575, runId = b4dcb97e-5abf-4f80-a508-f96c65018282]"""  # noqa: E501


# A task failed inside the function's Spark job.
CAPTURED_TASK = """\
[STREAM_FAILED] Query [id = a8dd3b97-247c-4dcc-8936-47851c6f3e7d, runId = b4b78437-9dbb-4065-b57a-bd66dae20532] terminated with exception: [FOREACH_BATCH_USER_FUNCTION_ERROR] An error occurred in the user provided function in foreach batch sink. Reason: An exception was raised by the Python Proxy. Return Message: Traceback (most recent call last):
  File "/work/main/.venv/lib/python3.11/site-packages/py4j/clientserver.py", line 644, in _call_proxy
    return_value = getattr(self.pool[obj_id], method)(*params)
                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/work/main/.venv/lib/python3.11/site-packages/pyspark/sql/utils.py", line 166, in call
    raise e
  File "/work/main/.venv/lib/python3.11/site-packages/pyspark/sql/utils.py", line 163, in call
    self.func(DataFrame(jdf, wrapped_session_jdf), batch_id)
  File "/tmp/me/samples.py", line 36, in task_fail
    df.selectExpr("assert_true(value < 0, 'value must be negative')").collect()
  File "/work/main/.venv/lib/python3.11/site-packages/pyspark/sql/classic/dataframe.py", line 503, in collect
    sock_info = self._jdf.collectToPython()
                ^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/work/main/.venv/lib/python3.11/site-packages/py4j/java_gateway.py", line 1362, in __call__
    return_value = get_return_value(
                   ^^^^^^^^^^^^^^^^^
  File "/work/main/.venv/lib/python3.11/site-packages/pyspark/errors/exceptions/captured.py", line 257, in deco
    raise converted from None
pyspark.errors.exceptions.captured.SparkRuntimeException: [USER_RAISED_EXCEPTION] value must be negative SQLSTATE: P0001
 SQLSTATE: 39000 SQLSTATE: XXKST
=== Streaming Query ===
Identifier: [id = a8dd3b97-247c-4dcc-8936-47851c6f3e7d, runId = b4b78437-9dbb-4065-b57a-bd66dae20532]"""  # noqa: E501


# A Java call inside the function failed unconverted: Py4JJavaError with a Java trace.
PY4J_JAVA_ERROR = """\
[STREAM_FAILED] Query [id = 95807551-6c6a-451b-9b59-b671a9518285, runId = 045b5208-8f99-4c54-9204-b987e1a54137] terminated with exception: [FOREACH_BATCH_USER_FUNCTION_ERROR] An error occurred in the user provided function in foreach batch sink. Reason: An exception was raised by the Python Proxy. Return Message: Traceback (most recent call last):
  File "/work/main/.venv/lib/python3.11/site-packages/py4j/clientserver.py", line 644, in _call_proxy
    return_value = getattr(self.pool[obj_id], method)(*params)
                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/work/main/.venv/lib/python3.11/site-packages/pyspark/sql/utils.py", line 166, in call
    raise e
  File "/work/main/.venv/lib/python3.11/site-packages/pyspark/sql/utils.py", line 163, in call
    self.func(DataFrame(jdf, wrapped_session_jdf), batch_id)
  File "/tmp/me/samples.py", line 30, in java_error
    df.write.format("delta").mode("append").save("/tmp/me/samples/afile/t")
  File "/work/main/.venv/lib/python3.11/site-packages/pyspark/sql/readwriter.py", line 1835, in save
    self._jwrite.save(path)
  File "/work/main/.venv/lib/python3.11/site-packages/py4j/java_gateway.py", line 1362, in __call__
    return_value = get_return_value(
                   ^^^^^^^^^^^^^^^^^
  File "/work/main/.venv/lib/python3.11/site-packages/pyspark/errors/exceptions/captured.py", line 251, in deco
    return f(*a, **kw)
           ^^^^^^^^^^^
  File "/work/main/.venv/lib/python3.11/site-packages/py4j/protocol.py", line 327, in get_return_value
    raise Py4JJavaError(
py4j.protocol.Py4JJavaError: An error occurred while calling o100.save.
: org.apache.spark.sql.delta.DeltaIOException: [DELTA_CANNOT_CREATE_LOG_PATH] Cannot create file:/tmp/me/samples/afile/t/_delta_log
\tat org.apache.spark.sql.delta.DeltaErrorsBase.cannotCreateLogPathException(DeltaErrors.scala:2022)
\tat org.apache.spark.sql.delta.DeltaErrorsBase.cannotCreateLogPathException$(DeltaErrors.scala:2018)
Caused by: org.apache.hadoop.fs.ParentNotDirectoryException: Parent path is not a directory: file:/tmp/me/samples/afile
\tat org.apache.hadoop.fs.RawLocalFileSystem.mkdirsWithOptionalPermission(RawLocalFileSystem.java:892)
\tat org.apache.hadoop.fs.RawLocalFileSystem.mkdirs(RawLocalFileSystem.java:873)

 SQLSTATE: 39000 SQLSTATE: XXKST
=== Streaming Query ===
Identifier: [id = 95807551-6c6a-451b-9b59-b671a9518285, runId = 045b5208-8f99-4c54-9204-b987e1a54137]"""  # noqa: E501


# The real silver stream: its quarantine table's _delta_log is a file (see test_pipeline_cli).
SILVER_QUARANTINE_WRITE = """\
[STREAM_FAILED] Query [id = 28e214f9-51ec-4937-a4be-45517da815eb, runId = 381c9b61-6586-4357-941b-3b4862a96851] terminated with exception: [FOREACH_BATCH_USER_FUNCTION_ERROR] An error occurred in the user provided function in foreach batch sink. Reason: An exception was raised by the Python Proxy. Return Message: Traceback (most recent call last):
  File "/work/main/.venv/lib/python3.11/site-packages/py4j/clientserver.py", line 644, in _call_proxy
    return_value = getattr(self.pool[obj_id], method)(*params)
                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/work/main/.venv/lib/python3.11/site-packages/pyspark/sql/utils.py", line 166, in call
    raise e
  File "/work/main/.venv/lib/python3.11/site-packages/pyspark/sql/utils.py", line 163, in call
    self.func(DataFrame(jdf, wrapped_session_jdf), batch_id)
  File "/work/main/src/avrolake/pipeline/silver_io.py", line 252, in __call__
    merge_quarantine(self.locations.quarantine, silver.quarantine_rows(decoded))
  File "/work/main/src/avrolake/pipeline/silver_io.py", line 154, in merge_quarantine
    _save(rows.limit(0).write.format("delta"), table)
  File "/work/main/src/avrolake/pipeline/silver_io.py", line 169, in _save
    writer.save(table.path)
  File "/work/main/.venv/lib/python3.11/site-packages/pyspark/sql/readwriter.py", line 1835, in save
    self._jwrite.save(path)
  File "/work/main/.venv/lib/python3.11/site-packages/py4j/java_gateway.py", line 1362, in __call__
    return_value = get_return_value(
                   ^^^^^^^^^^^^^^^^^
  File "/work/main/.venv/lib/python3.11/site-packages/pyspark/errors/exceptions/captured.py", line 251, in deco
    return f(*a, **kw)
           ^^^^^^^^^^^
  File "/work/main/.venv/lib/python3.11/site-packages/py4j/protocol.py", line 327, in get_return_value
    raise Py4JJavaError(
py4j.protocol.Py4JJavaError: An error occurred while calling o535.save.
: org.apache.spark.sql.delta.DeltaIOException: [DELTA_CANNOT_CREATE_LOG_PATH] Cannot create file:/tmp/me/wh1/quarantine/_delta_log
\tat org.apache.spark.sql.delta.DeltaErrorsBase.cannotCreateLogPathException(DeltaErrors.scala:2022)
\tat org.apache.spark.sql.delta.DeltaErrorsBase.cannotCreateLogPathException$(DeltaErrors.scala:2018)
Caused by: org.apache.hadoop.fs.ParentNotDirectoryException: Parent path is not a directory: file:/tmp/me/wh1/quarantine/_delta_log
\tat org.apache.hadoop.fs.RawLocalFileSystem.mkdirsWithOptionalPermission(RawLocalFileSystem.java:892)
\tat org.apache.hadoop.fs.RawLocalFileSystem.mkdirs(RawLocalFileSystem.java:873)

 SQLSTATE: 39000 SQLSTATE: XXKST
=== Streaming Query ===
Identifier: avrolake-silver [id = 28e214f9-51ec-4937-a4be-45517da815eb, runId = 381c9b61-6586-4357-941b-3b4862a96851]"""  # noqa: E501


# An avrolake error raised inside the function.
OWN_ERROR = """\
[STREAM_FAILED] Query [id = 2ba62ade-a12b-4f41-8677-5f442071e174, runId = c1b9c622-4c89-4376-9e24-2daee23fc073] terminated with exception: [FOREACH_BATCH_USER_FUNCTION_ERROR] An error occurred in the user provided function in foreach batch sink. Reason: An exception was raised by the Python Proxy. Return Message: Traceback (most recent call last):
  File "/work/main/.venv/lib/python3.11/site-packages/py4j/clientserver.py", line 644, in _call_proxy
    return_value = getattr(self.pool[obj_id], method)(*params)
                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/work/main/.venv/lib/python3.11/site-packages/pyspark/sql/utils.py", line 166, in call
    raise e
  File "/work/main/.venv/lib/python3.11/site-packages/pyspark/sql/utils.py", line 163, in call
    self.func(DataFrame(jdf, wrapped_session_jdf), batch_id)
  File "/tmp/me/samples2.py", line 11, in own
    raise RegistryUnavailableError("schema registry at http://127.0.0.1:18081 unreachable for 300 s: connection refused")
avrolake.errors.RegistryUnavailableError: schema registry at http://127.0.0.1:18081 unreachable for 300 s: connection refused
 SQLSTATE: 39000 SQLSTATE: XXKST
=== Streaming Query ===
Identifier: [id = 2ba62ade-a12b-4f41-8677-5f442071e174, runId = c1b9c622-4c89-4376-9e24-2daee23fc073]
Current Committed Offsets: {}
Current Available Offsets: {RateStreamV2[rowsPerSecond=1, rampUpTimeSeconds=0, numPartitions=default: 0}

Current State: ACTIVE
Thread State: RUNNABLE

Logical Plan:
~WriteToMicroBatchDataSourceV1 ForeachBatchSink, 2ba62ade-a12b-4f41-8677-5f442071e174, [checkpointLocation=/tmp/me/samples/cp-own], Append
+- ~StreamingDataSourceV2ScanRelation[timestamp#0, value#1L] RateStream(rowsPerSecond=1, rampUpTimeSeconds=0, numPartitions=2)
"""  # noqa: E501


# No Python involved: the Delta sink refused the batch (multi-line message).
JAVA_SINK = """\
[STREAM_FAILED] Query [id = 34a46606-f688-4214-b4c9-7af43667eec3, runId = 2a5ca909-0645-41d0-88a9-5b2a9040fa6b] terminated with exception: [DELTA_METADATA_MISMATCH] A metadata mismatch was detected when writing to the Delta table.
- A schema mismatch detected when writing to the Delta table (Table ID: 2d72f0c6-9972-4fec-8c71-fd1a5127c5ab).
To enable schema migration using DataFrameWriter or DataStreamWriter, please set: '.option("mergeSchema", "true")'.
For other operations, set the session configuration spark.databricks.delta.schema.autoMerge.enabled to "true". See the documentation specific to the operation for details.

Table schema:
root
 |-- timestamp: string (nullable = true)


Data schema:
root
 |-- timestamp: string (nullable = true)
 |-- value: long (nullable = true)

 SQLSTATE: XXKST
=== Streaming Query ===
Identifier: [id = 34a46606-f688-4214-b4c9-7af43667eec3, runId = 2a5ca909-0645-41d0-88a9-5b2a9040fa6b]"""  # noqa: E501


# No Python involved: a task of the stream failed.
JAVA_TASK = """\
[STREAM_FAILED] Query [id = f4398dd4-4992-4017-9efa-57595d63a5d7, runId = 706ad266-a2ae-4e3c-b39e-36d4ebeacc0f] terminated with exception: [USER_RAISED_EXCEPTION] value must be negative SQLSTATE: P0001 SQLSTATE: XXKST
=== Streaming Query ===
Identifier: [id = f4398dd4-4992-4017-9efa-57595d63a5d7, runId = 706ad266-a2ae-4e3c-b39e-36d4ebeacc0f]"""  # noqa: E501


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (PY_ERROR, "ValueError: bad thing in batch 0"),
        (CHAINED, "RuntimeError: wrapped failure"),
        (
            CAPTURED_ANALYSIS,
            "AnalysisException: [TABLE_OR_VIEW_NOT_FOUND] The table or view `no_such_table_xyz` "
            "cannot be found. Verify the spelling and correctness of the schema and catalog.",
        ),
        (CAPTURED_TASK, "SparkRuntimeException: [USER_RAISED_EXCEPTION] value must be negative"),
        (
            PY4J_JAVA_ERROR,
            "ParentNotDirectoryException: Parent path is not a directory: "
            "file:/tmp/me/samples/afile",
        ),
        (
            SILVER_QUARANTINE_WRITE,
            "ParentNotDirectoryException: Parent path is not a directory: "
            "file:/tmp/me/wh1/quarantine/_delta_log",
        ),
        (
            OWN_ERROR,
            "schema registry at http://127.0.0.1:18081 unreachable for 300 s: connection refused",
        ),
        (
            JAVA_SINK,
            "[DELTA_METADATA_MISMATCH] A metadata mismatch was detected when writing to the "
            "Delta table.",
        ),
        (JAVA_TASK, "[USER_RAISED_EXCEPTION] value must be negative"),
    ],
)
def test_root_cause_of_real_failures(text: str, expected: str) -> None:
    assert root_cause(text) == expected


def test_the_old_first_line_named_nothing() -> None:
    """What the CLI printed before: the cause is lost behind the wrapper's first line."""
    assert PY_ERROR.splitlines()[0].endswith("Return Message: Traceback (most recent call last):")


def test_innermost_java_cause_with_a_message_wins() -> None:
    text = (
        "An error occurred while calling o12.save.\n"
        ": org.apache.spark.SparkException: Job aborted.\n"
        "\tat org.apache.spark.sql.Foo.bar(Foo.scala:1)\n"
        "Caused by: org.apache.kafka.common.errors.TimeoutException: Timeout of 60000ms expired\n"
        "\tat org.apache.kafka.Baz.qux(Baz.java:2)\n"
        "Caused by: java.lang.InterruptedException\n"
        "\t... 12 more\n"
    )
    assert root_cause(text) == "TimeoutException: Timeout of 60000ms expired"


def test_a_cause_without_any_message_gives_its_class() -> None:
    text = "An error occurred while calling o1.stop.\n: java.lang.NullPointerException\n\tat x.y(z)"
    assert root_cause(text) == "NullPointerException"


def test_inner_java_classes_and_sqlstates() -> None:
    text = ": org.apache.spark.Outer$Inner: [X_Y] it broke SQLSTATE: 42000 SQLSTATE: XXKST\n"
    assert root_cause(text) == "Outer$Inner: [X_Y] it broke"


def test_a_python_exception_without_a_message() -> None:
    text = (
        "Return Message: Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\n'
        "    raise StopIteration\n"
        "StopIteration\n"
    )
    assert root_cause(text) == "StopIteration"


def test_plain_and_empty_messages() -> None:
    assert root_cause("Answer from Java side is empty") == "Answer from Java side is empty"
    assert root_cause("  \n ") == "unknown error"
