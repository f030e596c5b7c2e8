"""``avrolake demo``: the whole pipeline, live, on the embedded stack (what ``make demo`` runs)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from avrolake.errors import ConfigError, PipelineError
from avrolake.settings import Flavor


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="produce an evolving stream and run ingest, silver and gold on the local stack",
    )
    demo.add_argument(
        "--flavor",
        choices=[flavor.value for flavor in Flavor],
        default=Flavor.CONFLUENT.value,
        help="the registry and framing (default: %(default)s)",
    )
    demo.add_argument(
        "--events", type=int, default=40_000, help="events to produce (default 40000)"
    )
    demo.add_argument(
        "--rate", type=float, default=2_000.0, help="events/s produced (default 2000; 0: flat out)"
    )
    demo.add_argument("--seed", type=int, default=2026)
    demo.add_argument("--out", type=Path, default=Path("out/demo"), help="tables, manifests, chart")
    demo.add_argument("--schemas-dir", type=Path, default=Path("schemas/product"))
    demo.add_argument(
        "--definitions",
        type=Path,
        default=Path("pipelines.yml"),
        help="the pipeline definitions whose Product pipeline the demo runs, on a topic and "
        "tables of its own (default: %(default)s, the example)",
    )
    demo.add_argument(
        "--pipeline",
        default="products",
        help="that pipeline's name (default: %(default)s)",
    )
    demo.set_defaults(handler=demo_command)


def demo_command(args: argparse.Namespace) -> int:
    flavor = Flavor(args.flavor)  # one of the parser's choices
    if args.events < 2:
        raise ConfigError("--events must be at least 2 (one per phase)")

    from avrolake.spark import build_session
    from avrolake_dev.demo import DemoOptions, run_demo
    from avrolake_dev.local import LocalStack

    for key, value in {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}.items():
        os.environ.setdefault(key, value)  # moto signs nothing, but botocore wants credentials
    stack = LocalStack()
    started = stack.up()
    print(f"local stack: started {', '.join(started)}" if started else "local stack: already up")
    options = DemoOptions(
        flavor=flavor,
        events=args.events,
        rate=args.rate or None,
        seed=args.seed,
        out_dir=args.out,
        schemas_dir=args.schemas_dir,
        definitions=args.definitions,
        pipeline=args.pipeline,
    )
    spark = build_session("avrolake-demo", warehouse_dir=str(args.out / "spark-warehouse"))
    result = run_demo(spark, options, stack.ports)
    print()
    print(f"produced      {result.produced:,} events (+ {result.bad_records} bad records)")
    print(f"bronze        {result.bronze:,} rows")
    print(f"silver        {result.silver:,} rows; per schema version: " + ", ".join(
        f"v{v}={n:,}" for v, n in sorted(result.per_version.items())
    ))  # fmt: skip
    print("quarantine    " + ", ".join(f"{n} x {r}" for r, n in result.quarantine_reasons.items()))
    print(f"gold          {result.gold_events:,} events in aggregates")
    print(
        f"end to end    {result.events_per_s:,.0f} events/s "
        f"({result.produced:,} events produced → in silver in {result.seconds:.1f} s)"
    )
    print(f"chart         {result.chart}")
    if result.silver != result.produced or result.gold_events != result.produced:
        raise PipelineError(
            f"of {result.produced:,} events produced, silver holds {result.silver:,} and gold "
            f"counts {result.gold_events:,}"
        )
    return 0
