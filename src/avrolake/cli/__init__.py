"""The ``avrolake`` console script: one parser, a subcommand per module.

Each ``avrolake.cli.<name>`` module has ``register(subparsers)``, which adds its subcommand and sets
``handler`` (a function taking the parsed ``argparse.Namespace`` and returning an exit code). Entry
points stay thin: parse, build settings, call one function. Other installed distributions add
commands the same way through entry points of group ``avrolake.cli`` (each names a ``register``
function): the dev package ``avrolake-dev`` adds ``avrolake local …`` and ``avrolake demo``; with
the runtime wheel alone, on a cluster, they are not there.

``main`` is what the bundle's ``python_wheel_task``s call, and that runner ignores the return
value: success is returning normally, failure is an exception. So ``main`` returns ``None`` only
when the command succeeded and otherwise raises ``SystemExit`` with a non-zero code, after printing
one line: every ``AvrolakeError`` (and every usage mistake argparse finds) becomes that line and
its exit code. Anything else propagates with its traceback, since it is a bug, and fails the task
too. ``-v`` adds the full chain of causes above the line.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import NoReturn

from avrolake.errors import AvrolakeError

__all__ = ["build_parser", "main", "run"]

SUBCOMMAND_MODULES = ("schemas", "produce", "pipeline", "replay")
COMMAND_ENTRY_POINTS = "avrolake.cli"  # register functions of other distributions' commands
USAGE_EXIT = 2  # argparse's code for a usage mistake


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr like every other bad configuration
    (argparse prints the whole usage block first); ``--help`` still shows it."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_EXIT, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="avrolake",
        description="Kafka → Delta medallion pipelines for evolving Avro schemas.",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging; full traces of failures"
    )
    # subparsers are built with the parent's class, so they report mistakes in one line too
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in _registrars():
        register(subparsers)
    return parser


def _registrars() -> list[Callable[[argparse._SubParsersAction], None]]:
    """This package's own ``register`` functions, then those of the ``avrolake.cli`` entry
    points, by entry point name."""
    own = [importlib.import_module(f"avrolake.cli.{name}").register for name in SUBCOMMAND_MODULES]
    found = sorted(entry_points(group=COMMAND_ENTRY_POINTS), key=lambda point: point.name)
    return [*own, *(point.load() for point in found)]


class _NotFromPy4j(logging.Filter):
    """py4j logs a lost gateway connection through the *root* logger (``logging.info`` in
    ``java_gateway``), with a traceback: what a signal to the whole process group causes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return f"{os.sep}py4j{os.sep}" not in record.pathname


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # py4j logs a line per gateway call at DEBUG, and at ERROR the whole traceback of a failed
    # foreachBatch function, which the error line names already: shown with -v only.
    logging.getLogger("py4j").setLevel(logging.WARNING if verbose else logging.CRITICAL)
    root = logging.getLogger()
    if not verbose and not any(isinstance(f, _NotFromPy4j) for f in root.filters):
        root.addFilter(_NotFromPy4j())
    for chatty in ("httpx", "httpx2"):  # a line per HTTP request
        logging.getLogger(chatty).setLevel(logging.WARNING)


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the command and return its exit code.

    Raises ``SystemExit`` only for usage mistakes and ``--help`` (argparse's own exits).
    """
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        from avrolake.cli.paths import check_table_paths

        check_table_paths(args)  # before any handler starts Spark
        return int(args.handler(args) or 0)
    except AvrolakeError as error:
        if args.verbose:
            traceback.print_exception(error, file=sys.stderr)
        print(f"avrolake {args.command}: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:  # Ctrl-C outside a stage (a stage stops itself, cleanly, on it)
        print(f"avrolake {args.command}: interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> None:
    """The entry point: returns ``None`` on success, raises ``SystemExit(code)`` on failure."""
    code = run(argv)
    if code != 0:
        raise SystemExit(code)


if __name__ == "__main__":
    main()
