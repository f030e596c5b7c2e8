"""The entry point as a Databricks ``python_wheel_task`` runs it.

The runner finds the wheel's ``console_scripts`` entry point by name, loads the function, sets
``sys.argv`` to the task's parameters and calls it with no arguments, *ignoring what it returns*:
a task fails only when the call raises. So a failing run must raise ``SystemExit`` with a non-zero
code (or the error itself), and a succeeding one must return normally. No console-script wrapper
(which would turn a returned 1 into an exit status) is involved.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from confluent_kafka import Producer

from avrolake.producer.run import ProduceOptions, run_produce
from avrolake.schemas import load_versions
from avrolake.settings import ConnectionSettings, Flavor, KafkaSettings, RegistrySettings
from avrolake_dev.local import LocalStack

REPO = Path(__file__).parents[2]
SCHEMAS = REPO / "schemas" / "product"
DEFINITIONS = REPO / "pipelines.yml"  # the Product example, as the bundle syncs it

# What the runner does, in a fresh interpreter (a Spark stage starts a JVM: not in pytest's).
RUNNER = """\
import sys
from importlib.metadata import entry_points

(entry_point,) = entry_points(group="console_scripts", name="avrolake")
function = entry_point.load()
sys.argv = ["avrolake", *sys.argv[1:]]
try:
    returned = function()
except SystemExit as exit:
    print(f"raised SystemExit({exit.code!r})")
    raise
print(f"returned {returned!r}")
"""


def call_like_the_runner(monkeypatch: pytest.MonkeyPatch, *parameters: str) -> object:
    (entry_point,) = entry_points(group="console_scripts", name="avrolake")
    assert entry_point.value == "avrolake.cli:main"  # what pyproject.toml and the bundle name
    function = entry_point.load()
    monkeypatch.setattr(sys, "argv", ["avrolake", *parameters])
    return function()


def run_like_the_runner(*parameters: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", RUNNER, *parameters],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def outcome(result: subprocess.CompletedProcess) -> tuple[int, str]:
    return result.returncode, result.stdout.splitlines()[-1]


def test_a_succeeding_run_returns_normally(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert call_like_the_runner(monkeypatch, "schemas", "check", "--dir", str(SCHEMAS)) is None
    assert "3 versions are FULL_TRANSITIVE compatible" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("parameters", "code", "line"),
    [
        (
            ["ingest", "--flavor", "avro"],
            2,
            "avrolake ingest: --flavor 'avro' is not one of: confluent, glue",
        ),
        (
            ["schemas", "check", "--dir", "/nonexistent/schemas"],
            1,
            "avrolake schemas: schema directory /nonexistent/schemas does not exist",
        ),
        (
            ["silver", "--trigger", "sometimes"],
            2,
            "avrolake silver: --trigger 'sometimes' is not one of: available-now, continuous",
        ),
        (
            ["ingest", "--bogus-option"],
            2,
            "avrolake: unrecognized arguments: --bogus-option (see avrolake --help)",
        ),
    ],
)
def test_a_failing_run_raises_a_nonzero_system_exit(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    parameters: list[str],
    code: int,
    line: str,
) -> None:
    with pytest.raises(SystemExit) as caught:
        call_like_the_runner(monkeypatch, *parameters)
    assert caught.value.code == code
    assert capsys.readouterr().err == line + "\n"


def test_a_stage_without_its_input_table_fails_the_task(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    """``schemas register`` succeeds (returns); ``silver`` before any ingest raises."""
    topic = f"entry-{uuid.uuid4().hex[:8]}"
    registered = run_like_the_runner(
        "schemas", "register", "--dir", str(SCHEMAS), "--topic", topic,
        "--registry-url", local_stack.confluent_registry_url,
    )  # fmt: skip
    assert outcome(registered) == (0, "returned None"), registered.stderr

    silver = run_like_the_runner("silver", "--definitions", str(DEFINITIONS), "--topic", topic,
                                 "--warehouse-dir", str(tmp_path),
                                 "--bootstrap-servers", local_stack.bootstrap_servers,
                                 "--registry-url", local_stack.confluent_registry_url)  # fmt: skip
    assert outcome(silver) == (1, "raised SystemExit(1)"), silver.stderr
    assert silver.stderr.splitlines()[-1] == (
        f"avrolake silver: table delta.`{tmp_path}/bronze` does not exist yet: "
        "run `avrolake ingest` first"
    )


def test_a_stream_whose_query_dies_fails_the_task_naming_the_cause(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    """Silver's batch fails inside its foreachBatch function (writing the quarantine table,
    whose `_delta_log` is a file): the call raises, and the one line says what failed, not
    `[FOREACH_BATCH_USER_FUNCTION_ERROR] … Return Message: Traceback (most recent call last):`."""
    topic = f"entry-{uuid.uuid4().hex[:8]}"
    connection = ConnectionSettings(
        kafka=KafkaSettings(local_stack.bootstrap_servers, topic),
        registry=RegistrySettings(Flavor.CONFLUENT, url=local_stack.confluent_registry_url),
    )
    options = ProduceOptions(count=20, seed=5, progress=False)
    assert run_produce(connection, load_versions(SCHEMAS), options).sent == 20
    tombstone = Producer({"bootstrap.servers": local_stack.bootstrap_servers})
    tombstone.produce(topic, key=b"P0001", value=None)  # bound for quarantine: a null value
    assert tombstone.flush(30) == 0
    common = ["--definitions", str(DEFINITIONS), "--topic", topic, "--warehouse-dir", str(tmp_path),
              "--bootstrap-servers", local_stack.bootstrap_servers,
              "--registry-url", local_stack.confluent_registry_url]  # fmt: skip
    ingest = run_like_the_runner("ingest", *common)
    assert outcome(ingest) == (0, "returned None"), ingest.stderr
    (tmp_path / "quarantine").mkdir()
    (tmp_path / "quarantine" / "_delta_log").write_text("not a directory")

    silver = run_like_the_runner("silver", *common)
    assert outcome(silver) == (1, "raised SystemExit(1)"), silver.stderr
    errors = [line for line in silver.stderr.splitlines() if line.startswith("avrolake ")]
    assert errors == [
        "avrolake silver: query avrolake-silver-products failed: ParentNotDirectoryException: "
        "Parent path "
        f"is not a directory: file:{tmp_path}/quarantine/_delta_log"
    ]
    for noise in ("Traceback", "FOREACH_BATCH_USER_FUNCTION_ERROR", "\tat ", "py4j"):
        assert noise not in silver.stderr, silver.stderr


def test_python_dash_m_avrolake_keeps_working(tmp_path: Path) -> None:
    def python_m(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "avrolake", *args],
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip

    ok = python_m("schemas", "check", "--dir", str(SCHEMAS))
    assert (ok.returncode, ok.stderr) == (0, "")
    assert ok.stdout.splitlines()[0] == f"{SCHEMAS}: 3 versions are FULL_TRANSITIVE compatible"

    bad = python_m("ingest", "--warehouse-dir", str(tmp_path), "--max-offsets-per-trigger", "0")
    assert (bad.returncode, bad.stdout, bad.stderr) == (
        2,
        "",
        "avrolake ingest: --max-offsets-per-trigger 0 must be at least 1 (or left out: no limit)\n",
    )
