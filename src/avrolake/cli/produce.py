"""``avrolake produce``: random Product events of mixed schema versions into a topic."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from avrolake.cli.options import SCHEMAS_DIR, add_connection_arguments, connection_from_args
from avrolake.connection import LIBRDKAFKA_LOGGER
from avrolake.errors import ConfigError, KafkaError
from avrolake.producer.mix import parse_mix
from avrolake.producer.run import DEFAULT_COUNT, ProduceOptions, run_produce
from avrolake.schemas import load_versions
from avrolake.settings import Flavor


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("produce", help="produce random Product events")
    add_connection_arguments(parser)
    parser.add_argument(
        "--schemas-dir",
        type=Path,
        default=SCHEMAS_DIR,
        help="directory of v<N>.avsc files (default: %(default)s)",
    )
    parser.add_argument(
        "--mix",
        default=None,
        help="version weights, e.g. v1=0.2,v2=0.5,v3=0.3 (default: every version equally)",
    )
    amount = parser.add_mutually_exclusive_group()
    amount.add_argument(
        "--count", type=int, default=None, help=f"events to produce (default: {DEFAULT_COUNT})"
    )
    amount.add_argument(
        "--duration", type=float, default=None, help="seconds to produce for (default: none)"
    )
    parser.add_argument(
        "--rate", type=float, default=None, help="events per second (default: as fast as possible)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="reproduce a run's events (default: a random seed, printed in the summary)",
    )
    parser.add_argument(
        "--manifest",
        type=Path,
        default=None,
        help="write acknowledged records as JSON lines here (default: none)",
    )
    parser.add_argument(
        "--no-register",
        dest="register",
        action="store_false",
        help="require the versions to be registered already (default: register them)",
    )
    parser.add_argument(
        "--glue-compression",
        action="store_true",
        help="flavor glue: zlib-compress record bodies (default: off)",
    )
    parser.add_argument(
        "--fast-serializer",
        action="store_true",
        help="fastavro behind the library's header, checked byte-equal at start (default: off)",
    )
    parser.set_defaults(handler=run)


CHATTY_LOGGERS = ("httpx", "httpx2", "aws_schema_registry", "botocore", "urllib3")


def quiet_client_logs(verbose: bool) -> None:
    """Client libraries log every request at INFO; show them only with ``-v``. librdkafka's own
    lines also stay hidden: its failures reach the user as our one error line."""
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger(LIBRDKAFKA_LOGGER).setLevel(logging.DEBUG if verbose else logging.CRITICAL)


def run(args: argparse.Namespace) -> int:
    quiet_client_logs(args.verbose)
    mix = parse_mix(args.mix) if args.mix else None
    settings = connection_from_args(args)
    versions = load_versions(args.schemas_dir)
    if mix is not None:
        mix.check_known(v.number for v in versions)
    options = ProduceOptions(
        count=args.count,
        duration=args.duration,
        rate=args.rate,
        seed=args.seed,
        mix=mix,
        manifest=args.manifest,
        register=args.register,
        glue_compression=args.glue_compression,
        fast_serializer=args.fast_serializer,
    )
    if args.glue_compression and settings.flavor is not Flavor.GLUE:
        raise ConfigError("--glue-compression needs --flavor glue")
    summary = run_produce(settings, versions, options)
    for line in summary.lines():
        print(line)
    if summary.failed:  # the summary above has the counts; the error line says it failed
        cause = f": {summary.first_error}" if summary.first_error else ""
        raise KafkaError(
            f"{summary.failed} of {summary.sent + summary.failed} events were not acknowledged "
            f"by {settings.kafka.bootstrap_servers}{cause}"
        )
    return 0
