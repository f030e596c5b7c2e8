"""The runtime wheel is the pipeline: no local stack, demo, chart or dev package inside it, and a
venv holding only that wheel and the cluster's requirements imports none of them.

Both build the wheel as the bundle does (``uv build --wheel`` at the root) and install from uv's
cache only (``--offline``): ``make`` has filled it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEV_ONLY = ("avrolake_dev", "avrolake.local", "avrolake.demo", "avrolake.report")
DEV_ONLY_LIBRARIES = ("matplotlib", "moto", "psutil", "filelock", "pyspark", "delta")

# What a job cluster does with the wheel, in the fresh venv: build the CLI, list what got imported,
# and where the local session would take its jars from.
PROBE = """\
import json, sys
import avrolake.cli
avrolake.cli.build_parser()
from avrolake.spark import spark_jar_conf
print(json.dumps({"modules": sorted(sys.modules), "jars": spark_jar_conf()}))
"""


def _uv() -> Path:
    """The uv the Makefile installs: $AVROLAKE_CACHE/tools/uv-<UV_VERSION>/bin/uv."""
    version = re.search(r"^UV_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert version, "Makefile has no `UV_VERSION := ...` line"
    cache = Path(os.environ.get("AVROLAKE_CACHE", Path.home() / ".cache" / "avrolake"))
    path = cache / "tools" / f"uv-{version[1]}" / "bin" / "uv"
    if not path.is_file():
        pytest.fail(f"{path} does not exist: run `make`, which installs it")
    return path


def _uv_run(*args: str | Path, **env: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_"))} | env
    result = subprocess.run([_uv(), *args], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=300, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _uv_run("build", "--wheel", "--offline", "--out-dir", out)
    (built,) = out.glob("*.whl")
    return built


def test_the_wheel_holds_only_the_runtime_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert wheel.name.startswith("avrolake-")
    packages = {name.split("/")[0] for name in names if not name.startswith("avrolake-")}
    assert packages == {"avrolake"}, packages
    dev = [n for n in names if n.startswith(("avrolake/local/", "avrolake_dev"))
           or n in ("avrolake/demo.py", "avrolake/report.py", "avrolake/cli/local.py",
                    "avrolake/cli/demo.py")]  # fmt: skip
    assert dev == []
    assert "avrolake/cli/__init__.py" in names
    assert "avrolake/py.typed" in names
    (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    requires = [line for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
                if line.startswith("Requires-Dist:")]  # fmt: skip
    assert not any(lib in line for line in requires for lib in ("moto", "matplotlib", "psutil"))


def test_the_installed_wheel_imports_nothing_of_the_dev_tooling(
    wheel: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    # the wheel's dependencies at uv.lock's versions (what requirements/cluster.txt pins), no dev
    # group, no extras; then the wheel itself
    _uv_run("sync", "--frozen", "--offline", "--no-dev", "--no-install-project",
            "--python", sys.executable, UV_PROJECT_ENVIRONMENT=str(venv))  # fmt: skip
    _uv_run("pip", "install", "--offline", "--no-deps", "--python", python, wheel)

    # a developer's exported jars would win over the fallback the probe checks for
    env = {k: v for k, v in os.environ.items() if k != "AVROLAKE_SPARK_JARS"}
    probe = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, timeout=120,
                           check=False, cwd=tmp_path, env=env)  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    seen = json.loads(probe.stdout)
    imported = [
        module
        for module in seen["modules"]
        if module.startswith(DEV_ONLY) or module.split(".")[0] in DEV_ONLY_LIBRARIES
    ]
    assert imported == []
    # no jar provider installed: Spark would resolve the pinned packages itself
    assert list(seen["jars"]) == ["spark.jars.packages"]

    help_text = subprocess.run([venv / "bin" / "avrolake", "--help"], capture_output=True,
                               text=True, timeout=120, check=True).stdout  # fmt: skip
    assert "schemas" in help_text
    assert "local" not in help_text.split("options:")[0]
    assert "demo" not in help_text
    missing = subprocess.run([venv / "bin" / "avrolake", "local", "up"], capture_output=True,
                             text=True, timeout=120, check=False)  # fmt: skip
    assert missing.returncode == 2
    assert "invalid choice: 'local'" in missing.stderr
