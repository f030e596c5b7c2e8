"""Local table and checkpoint directories, checked before Spark starts.

Spark finds out that a warehouse under a regular file, or a checkpoint root on a read-only
filesystem, cannot be written only when the first batch commits: a page of JVM trace, a minute
in. Creating the directory and a probe file in it answers the same question in milliseconds, with
the operating system's own reason.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

from avrolake.errors import ConfigError

__all__ = ["check_table_paths", "check_writable_dir", "local_path"]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def local_path(location: str) -> Path | None:
    """The local filesystem path of ``location``, or ``None`` for a URI another filesystem
    serves (``s3://…``, ``abfss://…``, ``dbfs:/…``): only Spark can check those."""
    if location.startswith("file:"):
        return Path(re.sub(r"^file:(//)?", "", location))
    return None if _SCHEME.match(location) else Path(location)


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or ".")


def check_writable_dir(what: str, path: Path, option: str) -> None:
    """Create ``path`` (with parents) and a probe file in it, or raise ``ConfigError`` with the
    reason and the option that sets it."""
    path = path.absolute()
    fix = f"choose a directory you can write with {option}"
    blocker = _nearest_existing(path)
    if not blocker.is_dir():
        raise ConfigError(f"{what} {path} cannot be created: {blocker} is a file, not a directory; "
                          f"{fix}")  # fmt: skip
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"{what} {path} cannot be created: {error.strerror}; {fix}") from None
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".avrolake-probe-"):
            pass
    except OSError as error:
        raise ConfigError(f"{what} {path} is not writable: {error.strerror}; {fix}") from None


def check_table_paths(args: argparse.Namespace) -> None:
    """For a command with table arguments (see ``options.add_table_arguments``), off Databricks: the
    warehouse directory and the checkpoint root can be written, and no table path is a file:
    bronze's and, given definitions, every table they name.

    On Databricks tables are catalog names and checkpoints live on volumes or object storage,
    which only Spark can check.
    """
    from avrolake.cli.options import definitions_path, space_from_args
    from avrolake.definitions import BRONZE_TABLE, load_definitions
    from avrolake.settings import on_databricks

    if not hasattr(args, "warehouse_dir") or on_databricks():
        return
    space = space_from_args(args)  # its own mistakes (--catalog without --schema) first
    names = [BRONZE_TABLE]
    definitions = definitions_path(args)
    if definitions is not None:  # without, the command itself says what is missing
        names += [
            t for pipeline in load_definitions(definitions).pipelines for t in pipeline.tables()
        ]
    table_paths = [
        Path(ref.path).absolute() for ref in map(space.table, names) if ref.path is not None
    ]
    if table_paths:
        check_writable_dir("warehouse dir", table_paths[0].parent, "--warehouse-dir")
        for table in table_paths:
            if table.exists() and not table.is_dir():
                raise ConfigError(
                    f"table path {table} is a file, not a Delta table directory: move it away "
                    "or choose another --warehouse-dir"
                )
    checkpoint_root = local_path(space.checkpoint_root)
    if checkpoint_root is not None:
        check_writable_dir("checkpoint root", checkpoint_root, "--checkpoint-root")
