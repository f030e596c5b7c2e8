"""``avrolake local up | down | status | logs [service] | env | jars``: the embedded local stack."""

from __future__ import annotations

import argparse

from avrolake_dev.local import jars
from avrolake_dev.local.stack import LocalStack, tail


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "local",
        help="run the embedded Kafka broker, Apicurio Registry and moto on loopback",
        description="The embedded local stack. Ports: AVROLAKE_KAFKA_PORT, "
        "AVROLAKE_KAFKA_CONTROLLER_PORT, AVROLAKE_APICURIO_PORT, AVROLAKE_MOTO_PORT; pid files "
        "and logs: AVROLAKE_STATE_DIR (default ~/.cache/avrolake/state).",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    up = actions.add_parser("up", help="start what is not running and wait until it is ready")
    up.add_argument("--timeout", type=float, default=None, help="seconds to wait for each service")
    up.set_defaults(handler=_up)

    down = actions.add_parser("down", help="stop every service that `up` started")
    down.set_defaults(handler=_down)

    status = actions.add_parser("status", help="each service, address, pid and health "
                                "(exit 1 unless all are healthy)")  # fmt: skip
    status.set_defaults(handler=_status)

    logs = actions.add_parser("logs", help="the last lines of a service's log (default: all)")
    logs.add_argument("service", nargs="?", choices=("kafka", "apicurio", "moto"))
    logs.add_argument("-n", "--lines", type=int, default=40)
    logs.set_defaults(handler=_logs)

    env = actions.add_parser(
        "env", help='the exports that point the pipeline at the stack: eval "$(avrolake local env)"'
    )
    env.set_defaults(handler=_env)

    resolve = actions.add_parser("jars", help="resolve the Spark, Kafka and Apicurio jars (cached)")
    resolve.set_defaults(handler=_jars)


def _up(args: argparse.Namespace) -> int:
    stack = LocalStack()
    started = stack.up(timeout=args.timeout)  # now the user's: test sessions will leave it up
    if started:
        print(f"local stack up (started {', '.join(started)}); state: {stack.state_dir}")
    else:
        print("local stack already up: nothing to do")
    _print_addresses(stack)
    return 0


def _down(args: argparse.Namespace) -> int:
    stopped = LocalStack().down()
    print(f"stopped {', '.join(stopped)}" if stopped else "local stack not running: nothing to do")
    return 0


def _status(args: argparse.Namespace) -> int:
    stack = LocalStack()
    rows = stack.status()
    width = max(len(row.address) for row in rows)
    print(f"{'SERVICE':<9} {'ADDRESS':<{width}} {'PID':>7}  HEALTH")
    for row in rows:
        pid = str(row.pid) if row.pid is not None else "-"
        print(f"{row.name:<9} {row.address:<{width}} {pid:>7}  {row.health}")
    print(f"state: {stack.state_dir}")
    return 0 if all(row.health == "healthy" for row in rows) else 1


def _logs(args: argparse.Namespace) -> int:
    stack = LocalStack()
    names = [args.service] if args.service else [s.name for s in stack.services]
    for name in names:
        path = stack.log_path(name)
        print(f"==> {path} <==")
        for line in tail(path, args.lines):
            print(line)
    return 0


def _jars(args: argparse.Namespace) -> int:
    for profile, path in jars.resolve_all().items():
        print(f"{profile:<9} {path} ({sum(1 for _ in path.glob('**/*.jar'))} jars)")
    print(f"spark.jars: {len(jars.spark_jars())} jars beyond pyspark's own")
    return 0


def _env(args: argparse.Namespace) -> int:
    print("\n".join(stack_exports(LocalStack())))
    return 0


def stack_exports(stack: LocalStack) -> list[str]:
    """The variables the pipeline's commands read their addresses from (they have no loopback
    defaults of their own), set to this stack's. moto takes any region."""
    return [
        f"export KAFKA_BOOTSTRAP_SERVERS={stack.bootstrap_servers}",
        f"export SCHEMA_REGISTRY_URL={stack.confluent_registry_url}",
        f"export AWS_ENDPOINT_URL_GLUE={stack.glue_endpoint_url}",
        "export AWS_DEFAULT_REGION=us-east-1",
    ]


def _print_addresses(stack: LocalStack) -> None:
    print(f"  kafka     {stack.bootstrap_servers}")
    print(f"  apicurio  {stack.confluent_registry_url}")
    print(f"  moto      {stack.glue_endpoint_url}")
    print('the pipeline\'s commands read these; set them with: eval "$(avrolake local env)"')
    for line in stack_exports(stack):
        print(f"  {line}")
