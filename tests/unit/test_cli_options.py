"""Command lines as users type them, through the real parser, into the settings the pipeline
takes: defaults from the environment (never a built-in address), and one-line errors naming the
option and the variable."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from avrolake.cli import build_parser, run
from avrolake.cli.options import (
    connection_from_args,
    pipelines_from_args,
    registry_from_args,
    space_from_args,
    topic_from_args,
    topics_from_args,
    trigger_from_args,
)
from avrolake.definitions import load_definitions
from avrolake.pipeline.tables import TableRef, TableSpace
from avrolake.pipeline.triggers import TriggerSettings
from avrolake.settings import (
    DEFAULT_OUTAGE_TIMEOUT_S,
    ConnectionSettings,
    Flavor,
    KafkaAuth,
    KafkaSettings,
    RegistrySettings,
    SecretRef,
)

OPTION_VARIABLES = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "SCHEMA_REGISTRY_URL",
    "AWS_ENDPOINT_URL_GLUE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AVROLAKE_FLAVOR",
    "AVROLAKE_TOPIC",
    "AVROLAKE_KAFKA_AUTH",
    "AVROLAKE_GLUE_REGISTRY",
    "AVROLAKE_SECRET_SCOPE",
    "AVROLAKE_WAREHOUSE",
    "AVROLAKE_DEFINITIONS",
    "AVROLAKE_CACHE",
    "SCHEMA_REGISTRY_USER",
    "DATABRICKS_RUNTIME_VERSION",
    # the local stack's ports: they must no longer move any default
    "AVROLAKE_KAFKA_PORT",
    "AVROLAKE_APICURIO_PORT",
    "AVROLAKE_MOTO_PORT",
)
# the commands that take the connection options, each with what it needs besides
CONNECTION_COMMANDS = [
    ["produce"],
    ["schemas", "register"],
    ["ingest"],
    ["silver"],
]
BROKERS = "b-1.example:9092,b-2.example:9092"
REGISTRY = "https://sr.example"
EXAMPLE = Path(__file__).resolve().parents[2] / "pipelines.yml"  # the Product example


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in OPTION_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AVROLAKE_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.setenv("AVROLAKE_DEFINITIONS", str(EXAMPLE))


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def error_line(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Exit code and stderr of a command that must fail before it does anything."""
    code = run(list(argv))
    out, err = capsys.readouterr()
    assert out == ""
    return code, err


# -- connection ----------------------------------------------------------------------------------


def test_the_environment_supplies_every_connection_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", BROKERS)
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", REGISTRY)
    monkeypatch.setenv("AVROLAKE_TOPIC", "orders")
    for argv in CONNECTION_COMMANDS:
        assert connection_from_args(parse(*argv)) == ConnectionSettings(
            kafka=KafkaSettings(
                bootstrap_servers=BROKERS,
                topic="orders",
                api_key=SecretRef("CONFLUENT_API_KEY", "kafka-api-key"),
                api_secret=SecretRef("CONFLUENT_API_SECRET", "kafka-api-secret"),
            ),
            registry=RegistrySettings(
                Flavor.CONFLUENT, url=REGISTRY, glue_registry_name="avrolake"
            ),
        ), argv


def test_options_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "ignored:9092")
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", "https://ignored.example")
    monkeypatch.setenv("AVROLAKE_FLAVOR", "glue")
    settings = connection_from_args(
        parse(
            "produce",
            "--flavor",
            "confluent",
            "--bootstrap-servers",
            BROKERS,
            "--registry-url",
            REGISTRY,
            "--topic",
            "t",
        )
    )
    assert (settings.flavor, settings.kafka.bootstrap_servers, settings.registry.url) == (
        Flavor.CONFLUENT,
        BROKERS,
        REGISTRY,
    )
    assert settings.kafka.topic == "t"


def test_glue_takes_region_and_endpoint_where_boto3_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", BROKERS)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    settings = connection_from_args(parse("produce", "--flavor", "glue"))
    assert settings.registry == RegistrySettings(
        Flavor.GLUE, glue_registry_name="avrolake", region="eu-west-1", endpoint_url=None
    )  # no endpoint: boto3's own for the region, not a local one

    monkeypatch.setenv("AWS_REGION", "eu-central-1")  # wins over AWS_DEFAULT_REGION
    monkeypatch.setenv("AWS_ENDPOINT_URL_GLUE", "http://127.0.0.1:15000")
    monkeypatch.setenv("AVROLAKE_GLUE_REGISTRY", "lake")
    settings = connection_from_args(parse("silver", "--flavor", "glue"))
    assert settings.registry == RegistrySettings(
        Flavor.GLUE,
        glue_registry_name="lake",
        region="eu-central-1",
        endpoint_url="http://127.0.0.1:15000",
    )


def test_msk_iam_signs_in_the_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    settings = connection_from_args(
        parse(
            "ingest",
            "--flavor",
            "glue",
            "--bootstrap-servers",
            "b-1.msk:9098",
            "--kafka-auth",
            "msk-iam",
        )
    )
    assert (settings.kafka.auth, settings.kafka.region) == (KafkaAuth.MSK_IAM, "us-west-2")


def test_an_empty_variable_is_an_unset_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "")
    monkeypatch.setenv("AVROLAKE_TOPIC", "")
    assert error_line(capsys, "produce") == (
        2,
        "avrolake produce: no Kafka bootstrap servers: pass --bootstrap-servers or set "
        "KAFKA_BOOTSTRAP_SERVERS\n",
    )
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", BROKERS)
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", REGISTRY)
    assert connection_from_args(parse("produce")).kafka.topic == "products"


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["produce"], "no Kafka bootstrap servers: pass --bootstrap-servers or set "
                      "KAFKA_BOOTSTRAP_SERVERS"),
        (["ingest"], "no Kafka bootstrap servers: pass --bootstrap-servers or set "
                     "KAFKA_BOOTSTRAP_SERVERS"),
        (["silver"], "flavor confluent needs a schema registry URL: pass "
                     "--registry-url or set SCHEMA_REGISTRY_URL"),
        (["replay"], "flavor confluent needs a schema registry URL: pass "
                     "--registry-url or set SCHEMA_REGISTRY_URL"),
        (["schemas", "register"], "flavor confluent needs a schema registry URL: pass "
                                  "--registry-url or set SCHEMA_REGISTRY_URL"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else "",
)  # fmt: skip
def test_no_address_is_made_up(
    capsys: pytest.CaptureFixture[str],
    command: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The local stack's ports once were every default: now a missing address is an error, and
    the error comes before anything is contacted."""
    monkeypatch.setenv("AVROLAKE_KAFKA_PORT", "19092")
    assert error_line(capsys, *command) == (2, f"avrolake {command[0]}: {message}\n")


@pytest.mark.parametrize("command", ["silver", "replay"])
def test_silver_and_replay_need_no_kafka(
    capsys: pytest.CaptureFixture[str], command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """They read bronze, never the broker: without a broker address they go on to the registry
    (here a closed port) and fail there, before Spark starts."""
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", "http://127.0.0.1:9")
    code, line = error_line(capsys, command)
    assert code == 1
    assert line.startswith(f"avrolake {command}: cannot reach the schema registry at http://127.0")


def test_ingest_needs_no_registry(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCHEMA_REGISTRY_URL", raising=False)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    code, line = error_line(capsys, "ingest")
    assert code == 1
    assert line.startswith("avrolake ingest: cannot reach Kafka at 127.0.0.1:9")


def test_registering_schemas_needs_no_kafka(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", REGISTRY)
    args = parse("schemas", "register", "--topic", "orders")
    assert (topic_from_args(args), registry_from_args(args)) == (
        "orders",
        RegistrySettings(Flavor.CONFLUENT, url=REGISTRY, glue_registry_name="avrolake"),
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--bootstrap-servers", BROKERS],
            "flavor confluent needs a schema registry URL: pass --registry-url or set "
            "SCHEMA_REGISTRY_URL",
        ),
        (
            ["--bootstrap-servers", BROKERS, "--flavor", "glue"],
            "flavor glue needs an AWS region: pass --region or set AWS_REGION or "
            "AWS_DEFAULT_REGION",
        ),
        (
            ["--bootstrap-servers", BROKERS, "--registry-url", REGISTRY, "--kafka-auth", "msk-iam"],
            "Kafka auth msk-iam needs an AWS region: pass --region or set AWS_REGION or "
            "AWS_DEFAULT_REGION",
        ),
        (  # a malformed value is named before a missing one
            ["--flavor", "avro"],
            "--flavor 'avro' is not one of: confluent, glue",
        ),
        (
            ["--kafka-auth", "kerberos"],
            "--kafka-auth 'kerberos' is not one of: plaintext, sasl-plain, msk-iam",
        ),
        (
            ["--bootstrap-servers", BROKERS, "--registry-url", REGISTRY, "--topic", " "],
            "--topic is empty",
        ),
    ],
)
def test_one_line_names_the_option_and_the_variable(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert error_line(capsys, "produce", *argv) == (2, f"avrolake produce: {message}\n")


def test_a_bad_value_from_the_environment_names_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AVROLAKE_FLAVOR", "avro")
    assert error_line(capsys, "schemas", "register") == (
        2,
        "avrolake schemas: --flavor 'avro' (from AVROLAKE_FLAVOR) is not one of: confluent, glue\n",
    )


def test_registry_basic_auth_is_on_with_a_user_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", BROKERS)
    monkeypatch.setenv("AVROLAKE_SECRET_SCOPE", "avrolake")
    registry = connection_from_args(
        parse("produce", "--registry-url", REGISTRY, "--registry-user-secret", "sr-key")
    ).registry
    assert (registry.basic_auth_user, registry.basic_auth_password) == (
        SecretRef("SCHEMA_REGISTRY_USER", "sr-key", "avrolake"),
        SecretRef("SCHEMA_REGISTRY_PASSWORD", "registry-api-secret", "avrolake"),
    )
    monkeypatch.setenv("SCHEMA_REGISTRY_USER", "from-ci")  # the variable alone turns it on
    registry = connection_from_args(parse("produce", "--registry-url", REGISTRY)).registry
    assert registry.basic_auth_user == SecretRef(
        "SCHEMA_REGISTRY_USER", "registry-api-key", "avrolake"
    )


# -- tables and triggers -------------------------------------------------------------------------


def test_tables_by_name_in_unity_catalog() -> None:
    space = space_from_args(
        parse(
            "silver",
            "--catalog",
            "main",
            "--schema",
            "lake",
            "--checkpoint-root",
            "/Volumes/main/lake/checkpoints",
        )
    )
    assert space.table("silver") == TableRef(name="main.lake.silver")
    assert (
        space.checkpoint("silver", "products") == "/Volumes/main/lake/checkpoints/silver/products"
    )


def test_tables_by_path_default_to_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert space_from_args(parse("gold")) == TableSpace(
        str(tmp_path / "warehouse" / "_checkpoints"), directory=str(tmp_path / "warehouse")
    )
    monkeypatch.delenv("AVROLAKE_WAREHOUSE")
    monkeypatch.setenv("AVROLAKE_CACHE", str(tmp_path / "cache"))
    assert space_from_args(parse("gold")).directory == str(tmp_path / "cache" / "warehouse")
    given = space_from_args(
        parse(
            "gold", "--warehouse-dir", str(tmp_path / "wh"), "--checkpoint-root", "s3://bucket/cp"
        )
    )
    assert (given.table("gold"), given.checkpoint_root) == (
        TableRef(path=str(tmp_path / "wh" / "gold")),
        "s3://bucket/cp",
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--catalog", "main"], "--catalog and --schema go together"),
        (
            ["--catalog", "main", "--schema", "lake"],
            "--checkpoint-root is required with --catalog (e.g. a UC volume)",
        ),
        (
            ["--trigger", "sometimes"],
            "--trigger 'sometimes' is not one of: available-now, continuous",
        ),
    ],
)
def test_table_and_trigger_mistakes_are_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert error_line(capsys, "gold", *argv) == (2, f"avrolake gold: {message}\n")


def test_triggers() -> None:
    assert trigger_from_args(parse("gold")) == TriggerSettings("available-now", "5 seconds")
    assert trigger_from_args(
        parse("ingest", "--trigger", "continuous", "--interval", "1 second")
    ) == TriggerSettings("continuous", "1 second")


def test_silver_waits_out_a_registry_outage_for_the_pipelines_default() -> None:
    assert parse("silver").registry_outage_timeout == DEFAULT_OUTAGE_TIMEOUT_S
    assert parse("silver", "--registry-outage-timeout", "2.5").registry_outage_timeout == 2.5


# -- help ----------------------------------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_help_shows_every_choice_and_every_default() -> None:
    commands = _subcommands(build_parser())
    schemas = _subcommands(commands["schemas"])
    parsers = {
        "ingest": commands["ingest"],
        "silver": commands["silver"],
        "gold": commands["gold"],
        "produce": commands["produce"],
        "schemas check": schemas["check"],
        "schemas register": schemas["register"],
        "replay": commands["replay"],
    }
    for name, parser in parsers.items():
        for action in parser._actions:
            if action.option_strings and action.dest != "help":
                assert "(default: " in (action.help or ""), (name, action.option_strings)
    usage = commands["ingest"].format_help()
    for shown in (
        "--flavor {confluent,glue}",
        "--kafka-auth {plaintext,sasl-plain,msk-iam}",
        "--trigger {available-now,continuous}",
        "$KAFKA_BOOTSTRAP_SERVERS",
        "$SCHEMA_REGISTRY_URL",
        "$AWS_ENDPOINT_URL_GLUE",
        "$AWS_REGION",
        "$AWS_DEFAULT_REGION",
        "$AVROLAKE_WAREHOUSE",
        "$AVROLAKE_DEFINITIONS",
        "--pipeline NAME",
    ):
        assert shown in usage, shown


# -- pipeline definitions ------------------------------------------------------------------------

TWO_PIPELINES = """
pipelines:
  - name: orders
    topic: orders.v1
    flavor: glue
    records:
      - key: [orderId]
  - name: products
    topic: products
    records:
      - key: [eventId]
"""


@pytest.fixture
def two_pipelines(tmp_path: Path) -> Path:
    path = tmp_path / "two.yml"
    path.write_text(TWO_PIPELINES)
    return path


@pytest.mark.parametrize("command", ["silver", "gold", "replay"])
def test_the_stages_after_bronze_need_definitions(
    capsys: pytest.CaptureFixture[str], command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AVROLAKE_DEFINITIONS")
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", REGISTRY)
    assert error_line(capsys, command) == (
        2,
        f"avrolake {command}: no pipeline definitions (the topics and tables to run): pass "
        "--definitions FILE (e.g. pipelines.yml) or set AVROLAKE_DEFINITIONS\n",
    )


def test_definitions_from_the_option_or_the_variable(
    monkeypatch: pytest.MonkeyPatch, two_pipelines: Path
) -> None:
    assert pipelines_from_args(parse("gold")) == list(load_definitions(EXAMPLE).pipelines)
    given = pipelines_from_args(parse("gold", "--definitions", str(two_pipelines)))
    assert [(p.name, p.topic) for p in given] == [("orders", "orders.v1"), ("products", "products")]
    selected = pipelines_from_args(
        parse("gold", "--definitions", str(two_pipelines), "--pipeline", "products")
    )
    assert [p.name for p in selected] == ["products"]


def test_topic_re_points_the_one_selected_pipeline(two_pipelines: Path) -> None:
    """The smoke job's way to run the example on a topic of its own: everything else as the
    file says."""
    (pipeline,) = pipelines_from_args(parse("silver", "--topic", "products-smoke"))
    (in_file,) = load_definitions(EXAMPLE).pipelines
    assert pipeline.model_dump() == {**in_file.model_dump(), "topic": "products-smoke"}
    (pipeline,) = pipelines_from_args(
        parse("silver", "--definitions", str(two_pipelines), "--pipeline", "orders",
              "--topic", "orders-smoke"),
        Flavor.GLUE,
    )  # fmt: skip
    assert (pipeline.name, pipeline.topic) == ("orders", "orders-smoke")


def test_the_topic_variable_re_points_nothing(
    monkeypatch: pytest.MonkeyPatch, two_pipelines: Path
) -> None:
    """A shell that exports AVROLAKE_TOPIC for `produce` must not bend the definitions."""
    monkeypatch.setenv("AVROLAKE_TOPIC", "elsewhere")
    monkeypatch.setenv("AVROLAKE_FLAVOR", "glue")
    args = parse("ingest", "--definitions", str(two_pipelines), "--pipeline", "orders")
    assert [p.topic for p in pipelines_from_args(args, Flavor.GLUE)] == ["orders.v1"]


def test_ingest_reads_every_topic_of_the_definitions_or_its_topic(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    both = tmp_path / "both.yml"
    both.write_text(TWO_PIPELINES.replace("    flavor: glue\n", ""))
    assert topics_from_args(parse("ingest", "--definitions", str(both)), Flavor.CONFLUENT) == [
        "orders.v1",
        "products",
    ]
    monkeypatch.delenv("AVROLAKE_DEFINITIONS")
    monkeypatch.setenv("AVROLAKE_TOPIC", "orders")
    assert topics_from_args(parse("ingest"), Flavor.CONFLUENT) == ["orders"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["silver", "--flavor", "glue", "--topic", "t"],
            "--topic t re-points one pipeline, but 2 are selected (orders, products): choose "
            "one with --pipeline NAME",
        ),
        (
            ["replay", "--pipeline", "products", "--topic", "no/slash"],
            "--topic 'no/slash' is not a valid Kafka topic name (letters, digits, . _ -)",
        ),
        (
            ["silver", "--pipeline", "products", "--topic", " "],
            "--topic is empty",
        ),
        (
            ["silver", "--pipeline", "products", "--pipeline", "payments"],
            "--pipeline payments: no such pipeline in the definitions (defined: orders, products)",
        ),
        (
            ["silver"],
            "{file}: pipeline(s) orders (glue) defined for another flavor than this "
            "deployment's --flavor confluent: leave them out with --pipeline, or fix `flavor:`",
        ),
        (
            ["ingest"],
            "{file}: pipeline(s) orders (glue) defined for another flavor than this "
            "deployment's --flavor confluent: leave them out with --pipeline, or fix `flavor:`",
        ),
    ],
)
def test_definition_mistakes_are_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    two_pipelines: Path,
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", BROKERS)
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", REGISTRY)
    monkeypatch.setenv("AVROLAKE_DEFINITIONS", str(two_pipelines))
    expected = message.format(file=two_pipelines)
    assert error_line(capsys, *argv) == (2, f"avrolake {argv[0]}: {expected}\n")


def test_a_missing_definitions_file_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere.yml"
    assert error_line(capsys, "gold", "--definitions", str(missing)) == (
        2,
        f"avrolake gold: cannot read the pipeline definitions {missing}: No such file or "
        "directory\n",
    )


def test_every_table_of_the_definitions_is_checked_before_spark(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Not only bronze: a file where the definitions put a table fails in one line."""
    quarantine = tmp_path / "warehouse" / "quarantine"
    quarantine.parent.mkdir()
    quarantine.write_text("not a table")
    assert "quarantine" in load_definitions(EXAMPLE).pipelines[0].tables()
    assert error_line(capsys, "gold") == (
        2,
        f"avrolake gold: table path {quarantine} is a file, not a Delta table directory: move it "
        "away or choose another --warehouse-dir\n",
    )
