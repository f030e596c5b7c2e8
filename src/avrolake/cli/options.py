"""The options the commands share, and the settings built from them: argparse stops here.

Below the CLI every layer takes frozen settings (``ConnectionSettings``, ``TableSpace``,
``PipelineDefinition``, ``TriggerSettings``) and never sees an ``argparse.Namespace``. Each
``add_*_arguments`` adds a group of options to a command's parser; the matching ``*_from_args``
turns the parsed values into validated settings, or raises ``ConfigError`` with one line naming
the option.

Connection defaults come from environment variables only, never from a built-in address, so a job
that forgets an option fails in one line naming the option and the variable instead of talking to
a loopback port:

- ``--bootstrap-servers``: ``KAFKA_BOOTSTRAP_SERVERS``; always needed;
- ``--registry-url``: ``SCHEMA_REGISTRY_URL``; needed with flavor confluent;
- ``--region``: ``AWS_REGION``, else ``AWS_DEFAULT_REGION``; needed with flavor glue and with
  Kafka auth msk-iam;
- ``--glue-endpoint-url``: ``AWS_ENDPOINT_URL_GLUE`` (which boto3 reads too), else AWS's endpoint;
- ``--flavor``, ``--topic``, ``--kafka-auth``, ``--glue-registry``, ``--secret-scope``:
  ``AVROLAKE_FLAVOR``, ``AVROLAKE_TOPIC``, ``AVROLAKE_KAFKA_AUTH``, ``AVROLAKE_GLUE_REGISTRY``,
  ``AVROLAKE_SECRET_SCOPE``, else confluent, products, plaintext, avrolake and none;
- ``--warehouse-dir``: ``AVROLAKE_WAREHOUSE``, else ``$AVROLAKE_CACHE/warehouse``;
- ``--definitions``: ``AVROLAKE_DEFINITIONS``; needed by silver, gold and replay (ingest without
  it reads ``--topic``).

What the pipelines are comes from the definitions file (``avrolake.definitions``): its topics,
tables, keys and gold specs. ``--pipeline`` selects some of them (default: all); ``--topic``, given
on the command line, re-points the one selected pipeline at another topic (the bundle's smoke job
runs the example on a topic of its own); ``AVROLAKE_TOPIC`` never does, so a shell that exports it
for ``produce`` does not bend a multi-pipeline file.

The embedded local stack prints the exports of its own addresses (``avrolake local up``;
``eval "$(avrolake local env)"`` sets them).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from avrolake.definitions import PipelineDefinition, load_definitions
from avrolake.errors import ConfigError
from avrolake.pipeline.tables import TableSpace
from avrolake.pipeline.triggers import AVAILABLE_NOW, DEFAULT_INTERVAL, MODES, TriggerSettings
from avrolake.settings import (
    ConnectionSettings,
    Flavor,
    KafkaAuth,
    KafkaSettings,
    RegistrySettings,
    SecretRef,
    cache_dir,
)

__all__ = [
    "BOOTSTRAP_SERVERS",
    "GLUE_ENDPOINT_URL",
    "REGION",
    "REGISTRY_URL",
    "SCHEMAS_DIR",
    "EnvDefault",
    "add_connection_arguments",
    "add_definitions_arguments",
    "add_flavor_argument",
    "add_table_arguments",
    "add_trigger_arguments",
    "connection_from_args",
    "definitions_path",
    "flavor_from_args",
    "kafka_from_args",
    "parse_choice",
    "pipelines_from_args",
    "registry_from_args",
    "space_from_args",
    "topic_from_args",
    "topics_from_args",
    "trigger_from_args",
]

E = TypeVar("E", bound=StrEnum)

SCHEMAS_DIR = Path("schemas/product")  # the checkout's; --dir / --schemas-dir elsewhere


@dataclass(frozen=True)
class EnvDefault:
    """An option whose default is the first set one of ``env``, else ``fallback`` (``None``: no
    default, so a command that needs the value fails naming the option and the variables)."""

    flag: str
    env: tuple[str, ...]
    fallback: str | None = None

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    def help(self, text: str, fallback: str | None = None) -> str:
        """``text`` and where the default comes from (``fallback`` describes a computed one)."""
        variables = ", else ".join(f"${name}" for name in self.env)
        otherwise = fallback or self.fallback
        return f"{text} (default: {variables}{f', else {otherwise}' if otherwise else ''})"

    def lookup(self, args: argparse.Namespace) -> tuple[str, str] | None:
        """The value and where it came from (the flag or a variable's name), or ``None``."""
        given = getattr(args, self.dest)
        if given is not None:
            return given, self.flag
        for name in self.env:
            value = os.environ.get(name)
            if value:  # an empty variable is an unset one
                return value, name
        return (self.fallback, self.flag) if self.fallback is not None else None

    def value(self, args: argparse.Namespace) -> str | None:
        found = self.lookup(args)
        return found[0] if found else None

    def require(self, args: argparse.Namespace, what: str) -> str:
        """The value, or ``ConfigError``: ``<what>: pass <flag> or set <VARIABLE>``."""
        found = self.lookup(args)
        if found is None:
            raise self.missing(what)
        return found[0]

    def missing(self, what: str) -> ConfigError:
        return ConfigError(f"{what}: pass {self.flag} or set {' or '.join(self.env)}")


FLAVOR = EnvDefault("--flavor", ("AVROLAKE_FLAVOR",), Flavor.CONFLUENT.value)
TOPIC = EnvDefault("--topic", ("AVROLAKE_TOPIC",), "products")
BOOTSTRAP_SERVERS = EnvDefault("--bootstrap-servers", ("KAFKA_BOOTSTRAP_SERVERS",))
KAFKA_AUTH = EnvDefault("--kafka-auth", ("AVROLAKE_KAFKA_AUTH",), KafkaAuth.PLAINTEXT.value)
REGISTRY_URL = EnvDefault("--registry-url", ("SCHEMA_REGISTRY_URL",))
GLUE_REGISTRY = EnvDefault("--glue-registry", ("AVROLAKE_GLUE_REGISTRY",), "avrolake")
# boto3 reads the same variable itself; read here too, so messages name the endpoint in use
GLUE_ENDPOINT_URL = EnvDefault("--glue-endpoint-url", ("AWS_ENDPOINT_URL_GLUE",))
REGION = EnvDefault("--region", ("AWS_REGION", "AWS_DEFAULT_REGION"))
SECRET_SCOPE = EnvDefault("--secret-scope", ("AVROLAKE_SECRET_SCOPE",))
WAREHOUSE_DIR = EnvDefault("--warehouse-dir", ("AVROLAKE_WAREHOUSE",))
DEFINITIONS = EnvDefault("--definitions", ("AVROLAKE_DEFINITIONS",))


def _metavar(choices: tuple[str, ...] | type[StrEnum]) -> str:
    """``{a,b}``, as argparse shows ``choices``. The values are checked by ``parse_choice`` (or by
    the settings) instead of argparse, so a bad value from an environment variable is caught,
    and worded, the same way as one on the command line."""
    return "{" + ",".join(str(choice) for choice in choices) + "}"


def parse_choice(enum: type[E], raw: str, option: str, source: str | None = None) -> E:
    """``raw`` as a member of ``enum``, or ``ConfigError`` naming the option, the environment
    variable the value came from if it did, and the allowed values."""
    try:
        return enum(raw)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        origin = f" (from {source})" if source else ""
        raise ConfigError(f"{option} {raw!r}{origin} is not one of: {allowed}") from None


def _choice_of(option: EnvDefault, enum: type[E], args: argparse.Namespace) -> E:
    found = option.lookup(args)
    assert found is not None  # every option with choices has a fallback
    raw, source = found
    return parse_choice(enum, raw, option.flag, None if source == option.flag else source)


# -- connection ----------------------------------------------------------------------------------


def add_flavor_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument(
        FLAVOR.flag,
        metavar=_metavar(Flavor),
        help=FLAVOR.help("which schema registry frames the records"),
    )


def flavor_from_args(args: argparse.Namespace) -> Flavor:
    """``--flavor`` (from ``add_flavor_argument``), checked: the one place a flavor is parsed."""
    return _choice_of(FLAVOR, Flavor, args)


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of every command that talks to Kafka or a schema registry."""
    group = parser.add_argument_group(
        "connection",
        "Each default is an environment variable; there is no built-in address. The local stack "
        'sets its own: eval "$(avrolake local env)".',
    )
    add_flavor_argument(group)
    group.add_argument(
        TOPIC.flag,
        help=TOPIC.help(
            "Kafka topic; with --definitions, re-points the one selected pipeline at it",
            fallback="products; with --definitions, each pipeline's own",
        ),
    )
    group.add_argument(
        BOOTSTRAP_SERVERS.flag,
        metavar="HOST:PORT[,…]",
        help=BOOTSTRAP_SERVERS.help("Kafka bootstrap servers, required"),
    )
    group.add_argument(
        KAFKA_AUTH.flag,
        metavar=_metavar(KafkaAuth),
        help=KAFKA_AUTH.help(
            "plaintext; sasl-plain: Confluent Cloud API key and secret; msk-iam: AWS MSK IAM"
        ),
    )
    group.add_argument(
        REGISTRY_URL.flag,
        metavar="URL",
        help=REGISTRY_URL.help("Confluent Schema Registry URL, required with --flavor confluent"),
    )
    group.add_argument(GLUE_REGISTRY.flag, help=GLUE_REGISTRY.help("Glue registry name"))
    group.add_argument(
        GLUE_ENDPOINT_URL.flag,
        metavar="URL",
        help=GLUE_ENDPOINT_URL.help("Glue endpoint override", fallback="AWS's for the region"),
    )
    group.add_argument(
        REGION.flag, help=REGION.help("AWS region, required with --flavor glue or msk-iam")
    )
    group.add_argument(
        SECRET_SCOPE.flag,
        help=SECRET_SCOPE.help("Databricks secret scope holding the keys below", fallback="none"),
    )
    group.add_argument(
        "--kafka-key-secret",
        default="kafka-api-key",
        help="scope key of the Kafka API key; env CONFLUENT_API_KEY wins (default: %(default)s)",
    )
    group.add_argument(
        "--kafka-secret-secret",
        default="kafka-api-secret",
        help="scope key of the Kafka API secret; env CONFLUENT_API_SECRET wins "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--registry-user-secret",
        default=None,
        help="scope key of the registry basic-auth user, which turns basic auth on; env "
        "SCHEMA_REGISTRY_USER wins and turns it on too (default: none, so no basic auth)",
    )
    group.add_argument(
        "--registry-password-secret",
        default="registry-api-secret",
        help="scope key of the registry basic-auth password; env SCHEMA_REGISTRY_PASSWORD wins "
        "(default: %(default)s)",
    )


def connection_from_args(args: argparse.Namespace) -> ConnectionSettings:
    """Validated settings from ``add_connection_arguments`` options and their variables: every
    malformed value first, then the first value that is needed but that nobody gave."""
    flavor_from_args(args)
    _choice_of(KAFKA_AUTH, KafkaAuth, args)
    return ConnectionSettings(kafka=kafka_from_args(args), registry=registry_from_args(args))


def kafka_from_args(args: argparse.Namespace) -> KafkaSettings:
    auth = _choice_of(KAFKA_AUTH, KafkaAuth, args)
    bootstrap_servers = BOOTSTRAP_SERVERS.require(args, "no Kafka bootstrap servers")
    region = REGION.value(args)
    if auth is KafkaAuth.MSK_IAM and region is None:
        raise REGION.missing("Kafka auth msk-iam needs an AWS region")
    scope = SECRET_SCOPE.value(args)
    return KafkaSettings(
        bootstrap_servers=bootstrap_servers,
        topic=topic_from_args(args),
        auth=auth,
        region=region,
        api_key=SecretRef("CONFLUENT_API_KEY", args.kafka_key_secret, scope),
        api_secret=SecretRef("CONFLUENT_API_SECRET", args.kafka_secret_secret, scope),
    )


def registry_from_args(args: argparse.Namespace) -> RegistrySettings:
    """The registry part alone, for a command that never talks to Kafka (``schemas register``)."""
    flavor = flavor_from_args(args)
    region = REGION.value(args)
    if flavor is Flavor.GLUE and region is None:
        raise REGION.missing("flavor glue needs an AWS region")
    if flavor is Flavor.CONFLUENT:
        url: str | None = REGISTRY_URL.require(args, "flavor confluent needs a schema registry URL")
    else:
        url = REGISTRY_URL.value(args)
    scope = SECRET_SCOPE.value(args)
    basic_auth = args.registry_user_secret is not None or bool(
        os.environ.get("SCHEMA_REGISTRY_USER")
    )
    user_key = args.registry_user_secret or "registry-api-key"
    return RegistrySettings(
        flavor=flavor,
        url=url,
        basic_auth_user=SecretRef("SCHEMA_REGISTRY_USER", user_key, scope) if basic_auth else None,
        basic_auth_password=(
            SecretRef("SCHEMA_REGISTRY_PASSWORD", args.registry_password_secret, scope)
            if basic_auth
            else None
        ),
        glue_registry_name=GLUE_REGISTRY.value(args),
        region=region,
        endpoint_url=GLUE_ENDPOINT_URL.value(args),
    )


def topic_from_args(args: argparse.Namespace) -> str:
    topic = TOPIC.value(args) or ""
    if not topic.strip():
        raise ConfigError("--topic is empty")
    return topic


# -- tables --------------------------------------------------------------------------------------


def _default_warehouse() -> Path:
    return cache_dir() / "warehouse"


def add_table_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "tables",
        "Unity Catalog names (--catalog with --schema), else Delta paths (--warehouse-dir)",
    )
    group.add_argument("--catalog", help="Unity Catalog catalog; with --schema (default: none)")
    group.add_argument(
        "--schema",
        help="Unity Catalog schema holding the tables; with --catalog (default: none)",
    )
    group.add_argument(
        WAREHOUSE_DIR.flag,
        metavar="DIR",
        help=WAREHOUSE_DIR.help(
            "without --catalog: the Delta tables as paths here",
            fallback="$AVROLAKE_CACHE/warehouse or ~/.cache/avrolake/warehouse",
        ),
    )
    group.add_argument(
        "--checkpoint-root",
        metavar="DIR_OR_URI",
        help="stream checkpoints; required with --catalog, e.g. a UC volume "
        "(default: <warehouse dir>/_checkpoints)",
    )


def space_from_args(args: argparse.Namespace) -> TableSpace:
    """Where the tables and checkpoints live; which tables there are, the definitions say."""
    if args.catalog or args.schema:
        if not (args.catalog and args.schema):
            raise ConfigError("--catalog and --schema go together")
        if not args.checkpoint_root:
            raise ConfigError("--checkpoint-root is required with --catalog (e.g. a UC volume)")
        return TableSpace.in_catalog(args.catalog, args.schema, args.checkpoint_root)
    warehouse = WAREHOUSE_DIR.value(args) or _default_warehouse()
    return TableSpace.in_directory(warehouse, args.checkpoint_root)


# -- pipeline definitions ------------------------------------------------------------------------


def add_definitions_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "pipelines", "Which topics and tables: the pipeline definitions file (YAML)"
    )
    group.add_argument(
        DEFINITIONS.flag,
        metavar="FILE",
        help=DEFINITIONS.help("the pipeline definitions, e.g. pipelines.yml", fallback="none"),
    )
    group.add_argument(
        "--pipeline",
        action="append",
        dest="pipelines",
        metavar="NAME",
        help="only this pipeline of the definitions; repeatable (default: every pipeline)",
    )


def definitions_path(args: argparse.Namespace) -> str | None:
    """``--definitions`` or ``AVROLAKE_DEFINITIONS``, if the command has the option at all."""
    return DEFINITIONS.value(args) if hasattr(args, DEFINITIONS.dest) else None


def pipelines_from_args(
    args: argparse.Namespace, flavor: Flavor | None = None
) -> list[PipelineDefinition]:
    """The selected pipelines of the definitions file, checked against the deployment's ``flavor``
    (None: the command has no flavor, e.g. gold), the one of them re-pointed by ``--topic``."""
    path = definitions_path(args)
    if path is None:
        raise ConfigError(
            "no pipeline definitions (the topics and tables to run): pass --definitions FILE "
            "(e.g. pipelines.yml) or set AVROLAKE_DEFINITIONS"
        )
    pipelines = load_definitions(path).select(args.pipelines)
    if flavor is not None:
        others = [f"{p.name} ({p.flavor})" for p in pipelines if p.flavor not in (None, flavor)]
        if others:
            raise ConfigError(
                f"{path}: pipeline(s) {', '.join(others)} defined for another flavor than this "
                f"deployment's --flavor {flavor}: leave them out with --pipeline, or fix `flavor:`"
            )
    topic = getattr(args, TOPIC.dest, None)  # the flag only: AVROLAKE_TOPIC re-points nothing
    if topic is None:
        return pipelines
    if not topic.strip():
        raise ConfigError("--topic is empty")
    if len(pipelines) != 1:
        raise ConfigError(
            f"--topic {topic} re-points one pipeline, but {len(pipelines)} are selected "
            f"({', '.join(p.name for p in pipelines)}): choose one with --pipeline NAME"
        )
    try:
        return [pipelines[0].with_topic(topic)]
    except ValueError:  # pydantic's ValidationError: Kafka's rule for topic names
        raise ConfigError(
            f"--topic {topic!r} is not a valid Kafka topic name (letters, digits, . _ -)"
        ) from None


# -- trigger -------------------------------------------------------------------------------------


def add_trigger_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("trigger")
    group.add_argument(
        "--trigger",
        default=AVAILABLE_NOW,
        metavar=_metavar(MODES),
        help="available-now: drain what is there and stop (scheduled jobs); continuous: keep "
        "going (default: %(default)s)",
    )
    group.add_argument(
        "--interval",
        default=DEFAULT_INTERVAL,
        help="micro-batch interval with --trigger continuous (default: %(default)s)",
    )


def trigger_from_args(args: argparse.Namespace) -> TriggerSettings:
    return TriggerSettings(mode=args.trigger, interval=args.interval)


def topics_from_args(args: argparse.Namespace, flavor: Flavor) -> list[str]:
    """What ingest subscribes to: the selected pipelines' topics; without definitions, ``--topic``
    (or ``AVROLAKE_TOPIC``) alone, as before there were definitions."""
    if definitions_path(args) is None:
        return [topic_from_args(args)]
    return [pipeline.topic for pipeline in pipelines_from_args(args, flavor)]
