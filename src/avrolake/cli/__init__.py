"""The ``avrolake`` console script: one parser, a subcommand per module.

Each ``avrolake.cli.<name>`` module has ``register(subparsers)``, which adds its subcommand and sets
``handler`` (a function taking the parsed ``argparse.Namespace`` and returning an exit code). Entry
points stay thin: parse, build settings, call one function. Every ``AvrolakeError`` becomes one line
on stderr and its exit code; nothing else is caught, so real bugs keep their traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from avrolake.errors import AvrolakeError

SUBCOMMAND_MODULES = ("local", "schemas", "produce", "pipeline", "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avrolake",
        description="Kafka → Delta medallion pipelines for evolving Avro schemas.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f"avrolake.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for chatty in ("httpx", "httpx2", "py4j"):  # a line per HTTP request / gateway call
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        return int(args.handler(args) or 0)
    except AvrolakeError as error:
        print(f"avrolake {args.command}: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"avrolake {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
