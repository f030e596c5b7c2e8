"""``avrolake.cli:main`` as a caller that ignores return values sees it (the bundle's wheel tasks):
``None`` on success, ``SystemExit`` with a non-zero code on failure, one line on stderr."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from avrolake.cli import build_parser, main, run
from avrolake.cli.paths import check_writable_dir, local_path
from avrolake.errors import ConfigError

REPO = Path(__file__).parents[2]
SCHEMAS = REPO / "schemas" / "product"


def failure(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Exit code and stderr of a run that must fail; stdout must stay empty."""
    with pytest.raises(SystemExit) as caught:
        main(list(argv))
    out, err = capsys.readouterr()
    assert out == ""
    assert isinstance(caught.value.code, int)
    return caught.value.code, err


def test_success_returns_none(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schemas", "check", "--dir", str(SCHEMAS)]) is None
    assert capsys.readouterr().out.splitlines()[0] == (
        f"{SCHEMAS}: 3 versions are FULL_TRANSITIVE compatible"
    )


def test_an_avrolake_error_raises_system_exit_with_its_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert failure(capsys, "schemas", "check", "--dir", str(SCHEMAS), "--mode", "SOMETIMES") == (
        1,
        "avrolake schemas: unknown compatibility mode 'SOMETIMES'; use one of: NONE, BACKWARD, "
        "BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE\n",
    )


def test_run_returns_the_code_instead(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["schemas", "check", "--dir", str(SCHEMAS), "--mode", "SOMETIMES"]) == 1
    assert run(["schemas", "check", "--dir", str(SCHEMAS)]) == 0
    capsys.readouterr()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["ingest", "--max-offsets-per-trigger", "x"],
            "avrolake ingest: argument --max-offsets-per-trigger: invalid int value: 'x' "
            "(see avrolake ingest --help)\n",
        ),
        (
            ["bogus"],
            "avrolake: argument COMMAND: invalid choice: 'bogus' (choose from {commands}) "
            "(see avrolake --help)\n",
        ),
        ([], "avrolake: the following arguments are required: COMMAND (see avrolake --help)\n"),
    ],
)
def test_usage_mistakes_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    (commands,) = (a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    listed = ", ".join(repr(name) for name in commands.choices)  # every command, as registered
    assert failure(capsys, *argv) == (2, expected.format(commands=listed))


@pytest.mark.parametrize("value", ["0", "-5"])
def test_max_offsets_per_trigger_must_be_positive(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, value: str
) -> None:
    code, err = failure(
        capsys, "ingest", "--warehouse-dir", str(tmp_path), "--max-offsets-per-trigger", value
    )
    assert (code, err) == (
        2,
        f"avrolake ingest: --max-offsets-per-trigger {value} must be at least 1 "
        "(or left out: no limit)\n",
    )


def test_verbose_prints_the_chain_of_causes_then_the_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, err = failure(
        capsys, "-v", "ingest", "--warehouse-dir", str(tmp_path), "--max-offsets-per-trigger", "0"
    )
    lines = err.splitlines()
    assert code == 2
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-2] == (
        "avrolake.errors.ConfigError: --max-offsets-per-trigger 0 must be at least 1 "
        "(or left out: no limit)"
    )
    assert lines[-1] == (
        "avrolake ingest: --max-offsets-per-trigger 0 must be at least 1 (or left out: no limit)"
    )


# -- paths, checked before Spark starts ----------------------------------------------------------


def test_warehouse_under_a_regular_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    code, err = failure(capsys, "silver", "--warehouse-dir", str(tmp_path / "file" / "wh"))
    assert (code, err) == (
        2,
        f"avrolake silver: warehouse dir {tmp_path}/file/wh cannot be created: {tmp_path}/file "
        "is a file, not a directory; choose a directory you can write with --warehouse-dir\n",
    )


def test_checkpoint_root_under_a_regular_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("x")
    code, err = failure(
        capsys,
        "silver",
        "--warehouse-dir",
        str(tmp_path / "wh"),
        "--checkpoint-root",
        str(tmp_path / "file" / "a" / "b"),
    )
    assert (code, err) == (
        2,
        f"avrolake silver: checkpoint root {tmp_path}/file/a/b cannot be created: {tmp_path}/file "
        "is a file, not a directory; choose a directory you can write with --checkpoint-root\n",
    )


def test_a_directory_nobody_can_write(capsys: pytest.CaptureFixture[str]) -> None:
    """sysfs refuses new files even to root (tests may run as root: a chmod would not do)."""
    code, err = failure(capsys, "ingest", "--warehouse-dir", "/sys")
    assert (code, err) == (
        2,
        "avrolake ingest: warehouse dir /sys is not writable: Permission denied; choose a "
        "directory you can write with --warehouse-dir\n",
    )


def test_a_directory_that_cannot_be_created(tmp_path: Path) -> None:
    with pytest.raises(OSError) as refused:  # what the OS says, as root or not
        os.mkdir("/sys/avrolake-test")
    with pytest.raises(ConfigError) as caught:
        check_writable_dir("checkpoint root", Path("/sys/avrolake-test/cp"), "--checkpoint-root")
    assert str(caught.value) == (
        f"checkpoint root /sys/avrolake-test/cp cannot be created: {refused.value.strerror}; "
        "choose a directory you can write with --checkpoint-root"
    )


def test_a_table_path_that_is_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "bronze").write_text("x")
    code, err = failure(capsys, "silver", "--warehouse-dir", str(tmp_path))
    assert (code, err) == (
        2,
        f"avrolake silver: table path {tmp_path}/bronze is a file, not a Delta table directory: "
        "move it away or choose another --warehouse-dir\n",
    )


def test_writable_directories_are_created(tmp_path: Path) -> None:
    check_writable_dir("warehouse dir", tmp_path / "a" / "b", "--warehouse-dir")
    assert (tmp_path / "a" / "b").is_dir()
    assert list((tmp_path / "a" / "b").iterdir()) == []  # the probe file is gone


def test_only_local_paths_are_checked() -> None:
    assert local_path("/tmp/x") == Path("/tmp/x")
    assert local_path("relative/x") == Path("relative/x")
    assert local_path("file:/tmp/x") == Path("/tmp/x")
    assert local_path("file:///tmp/x") == Path("/tmp/x")
    assert local_path("s3://bucket/checkpoints") is None
    assert local_path("dbfs:/Volumes/main/avrolake/checkpoints") is None
    assert local_path("abfss://c@account.dfs.core.windows.net/x") is None
