"""``avrolake schemas check|register``: check the versions locally, register them in order."""

from __future__ import annotations

import argparse
from pathlib import Path

from avrolake.cli.options import (
    SCHEMAS_DIR,
    add_connection_arguments,
    registry_from_args,
    topic_from_args,
)
from avrolake.registry import RegisteredSchema, open_registry
from avrolake.schemas import (
    SchemaVersion,
    check_compatibility,
    load_schema,
    load_versions,
    normalize_mode,
)

DEFAULT_MODE = "FULL_TRANSITIVE"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("schemas", help="check and register the Avro schema versions")
    commands = parser.add_subparsers(dest="schemas_command", required=True, metavar="ACTION")

    check = commands.add_parser("check", help="check every version against the earlier ones")
    _common(check)
    check.add_argument(
        "--candidate",
        type=Path,
        default=None,
        help="an extra .avsc checked as the newest version (default: none)",
    )
    check.set_defaults(handler=run_check)

    reg = commands.add_parser("register", help="check, then register the versions in order")
    _common(reg)
    add_connection_arguments(reg)
    reg.set_defaults(handler=run_register)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        type=Path,
        default=SCHEMAS_DIR,
        help="directory of v<N>.avsc files (default: %(default)s)",
    )
    parser.add_argument(
        "--mode",
        default=DEFAULT_MODE,
        help="NONE, BACKWARD, FORWARD, FULL, each optionally _TRANSITIVE "
        f"(Glue's _ALL accepted) (default: {DEFAULT_MODE})",
    )


def _versions(args: argparse.Namespace) -> list[SchemaVersion]:
    versions = load_versions(args.dir)
    candidate = getattr(args, "candidate", None)
    if candidate is not None:
        versions.append(load_schema(candidate, number=versions[-1].number + 1))
    return versions


def run_check(args: argparse.Namespace) -> int:
    mode = normalize_mode(args.mode)
    versions = _versions(args)
    checked = check_compatibility(versions, mode)
    against: dict[str, list[str]] = {v.label: [] for v in versions}
    for pair in checked:
        against[pair.new.label].append(pair.old.label)
    print(f"{args.dir}: {len(versions)} versions are {mode} compatible")
    print(f"{'version':<10}{'fields':>7}  checked against")
    for version in versions:
        print(
            f"{version.label:<10}{len(version.field_names):>7}  "
            f"{', '.join(against[version.label]) or '-'}"
        )
    return 0


def run_register(args: argparse.Namespace) -> int:
    from avrolake.cli.produce import quiet_client_logs

    quiet_client_logs(args.verbose)
    topic = topic_from_args(args)
    settings = registry_from_args(args)
    mode = normalize_mode(args.mode)
    versions = load_versions(args.dir)
    check_compatibility(versions, mode)  # moto enforces nothing: refuse locally first
    registry = open_registry(settings)
    registered: list[tuple[SchemaVersion, RegisteredSchema]] = []
    for index, version in enumerate(versions):
        registered.append((version, registry.register(topic, version.text)))
        if index == 0:  # the subject / Glue schema exists from the first registration on
            registry.set_compatibility(topic, mode)
    mode_now = registry.mode_name(registry.compatibility(topic))
    print(f"{registry.where(topic)}: compatibility {mode_now}")
    print(f"{'version':<10}{'registry version':>17}  reference")
    for version, found in registered:
        print(f"{version.label:<10}{found.version:>17}  {found.ref}")
    return 0
