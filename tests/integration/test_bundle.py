"""The Databricks Asset Bundle and its CI/CD, as the real Databricks CLI resolves and deploys it.

Real: the Databricks CLI (built from source by ``make databricks-cli``, found through
``AVROLAKE_DATABRICKS_CLI``), uv, the wheel it builds, the CLI's own JSON schema, actionlint (built
by ``make actionlint``, found through ``AVROLAKE_ACTIONLINT``). The one fake is
``workspace_standin.WorkspaceStandIn``, a local HTTP server answering the few workspace endpoints
the CLI calls, because there is no workspace here; a request it has no route for fails the test.

A target's ``workspace.host`` wins over ``DATABRICKS_HOST`` (the CLI builds its client from the
bundle's host), so each CLI run works on a copy of the bundle in a temporary directory whose
target host URLs, and nothing else, point at the stand-in.

What is checked, per target (msk-dev, staging, confluent-prod): ``bundle validate --strict``
passes; the four jobs, their tasks and their exact parameters; every task runs the built wheel's
console script and installs the locked requirements next to it, and that file is exactly what
``uv export`` makes of uv.lock; each job cluster carries exactly its flavor's jars (plus the
instance profile for MSK, the secret references for Confluent), Avro's allocation limits on driver
and executors, and its shuffle and Delta settings; the flavor option agrees; schedules and triggers
run in production only; staging's and production's identity, root path (also when another user
validates) and permissions; no credential literal anywhere; the YAML matches
``databricks bundle schema``; the parameters parse with ``avrolake.cli.build_parser``. Then
``bundle deploy`` (direct engine) of each target, checking what reaches the Jobs, workspace-files
and permissions APIs, and a deploy of a prebuilt wheel with the build disabled, as CI promotes it.
Last, the workflows: actionlint, every action pinned to a commit, and the promotion they encode.
"""

from __future__ import annotations

import configparser
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from workspace_standin import WorkspaceStandIn

REPO = Path(__file__).resolve().parents[2]
BUNDLE_FILES = (
    "databricks.yml", "resources", "pipelines.yml", "schemas", "requirements", "pyproject.toml",
    "README.md", "src",
)  # fmt: skip
DEFINITIONS = "pipelines.yml"  # the pipeline definitions every stage reads
TARGETS = ("msk-dev", "staging", "confluent-prod")
SHARED_TARGETS = ("staging", "confluent-prod")  # production mode, one copy run by a principal
HOSTS = {
    "msk-dev": "https://dbc-dev-msk.cloud.databricks.com",
    "staging": "https://dbc-staging-confluent.cloud.databricks.com",
    "confluent-prod": "https://dbc-prod-confluent.cloud.databricks.com",
}
DEVELOPER = "tester@example.com"  # deploys msk-dev
STAGING_SP = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"  # staging_service_principal: CI deploys staging
PROD_SP = "9f0e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f"  # prod_service_principal: CI deploys prod as it
IDENTITY = {"msk-dev": DEVELOPER, "staging": STAGING_SP, "confluent-prod": PROD_SP}
CLUSTER_REQUIREMENTS = "requirements/cluster.txt"
# How the Makefile's `requirements` target exports uv.lock (the file's header repeats it).
UV_EXPORT = (
    "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project",
    "--no-emit-package", "pyspark", "--no-emit-package", "delta-spark",
)  # fmt: skip

MSK_JARS = {  # coordinates -> repository (None: Maven Central)
    "org.jetbrains.kotlinx:kotlinx-coroutines-core:1.5.2": None,
    "software.amazon.glue:schema-registry-serde:1.1.4": None,
    "software.amazon.glue:schema-registry-common:1.1.4": None,
    "org.apache.kafka:kafka-clients:3.0.0": None,
}
CONFLUENT_JARS = {
    "io.confluent:kafka-schema-registry-client:5.3.1": "https://packages.confluent.io/maven/",
    "org.apache.kafka:kafka-clients:2.6.0": None,
}
# The jar that only a flavor needs, to tell a task's flavor from its libraries alone.
FLAVOR_MARKER_JAR = {
    "glue": "software.amazon.glue:schema-registry-serde:1.1.4",
    "confluent": "io.confluent:kafka-schema-registry-client:5.3.1",
}
MSK_BROKERS = (
    "b-1.avrolakedev.a1b2c3.c2.kafka.us-east-1.amazonaws.com:9098,"
    "b-2.avrolakedev.a1b2c3.c2.kafka.us-east-1.amazonaws.com:9098"
)

MSK_CONNECTION = [
    "--flavor", "glue", "--kafka-auth", "msk-iam", "--bootstrap-servers", MSK_BROKERS,
    "--glue-registry", "avrolake", "--region", "us-east-1",
]  # fmt: skip


def confluent_connection(brokers: str, registry: str) -> list[str]:
    return ["--flavor", "confluent", "--kafka-auth", "sasl-plain", "--bootstrap-servers", brokers,
            "--registry-url", registry]  # fmt: skip


CONFLUENT_SECRETS = {
    "spark_env_vars": {
        "CONFLUENT_API_KEY": "{{secrets/avrolake/kafka-api-key}}",
        "CONFLUENT_API_SECRET": "{{secrets/avrolake/kafka-api-secret}}",
        "SCHEMA_REGISTRY_USER": "{{secrets/avrolake/registry-api-key}}",
        "SCHEMA_REGISTRY_PASSWORD": "{{secrets/avrolake/registry-api-secret}}",
    }
}
# Apache Avro's SystemLimitException properties (org.apache.avro.SystemLimitException), exactly.
AVRO_LIMITS = (
    "-Dorg.apache.avro.limits.string.maxLength=67108864"
    " -Dorg.apache.avro.limits.bytes.maxLength=67108864"
    " -Dorg.apache.avro.limits.collectionItems.maxLength=16777216"
)
DELTA_WRITES = {  # the job clusters that run silver and gold
    "spark.databricks.delta.optimizeWrite.enabled": "true",
    "spark.databricks.delta.autoCompact.enabled": "true",
}


@dataclass(frozen=True)
class Expected:
    """What one target must resolve to."""

    mode: str
    flavor: str
    jars: dict[str, str | None]
    connection: list[str]
    catalog: str
    schema: str
    flavor_cluster: dict[str, Any]  # what the flavor adds to each job cluster
    num_workers: int
    shuffle_partitions: str  # 2 x num_workers x 4 vCPUs of an m6i.xlarge
    pause_status: str
    name_prefix: str


EXPECTED = {
    "msk-dev": Expected(
        mode="development",
        flavor="glue",
        jars=MSK_JARS,
        connection=MSK_CONNECTION,
        catalog="avrolake_dev",
        schema="tester",  # the developer's short name
        flavor_cluster={
            "aws_attributes": {
                "instance_profile_arn": (
                    "arn:aws:iam::111122223333:instance-profile/avrolake-msk-glue-dev"
                )
            }
        },
        num_workers=1,
        shuffle_partitions="8",
        pause_status="PAUSED",
        name_prefix="[dev tester] ",
    ),
    "staging": Expected(
        mode="production",
        flavor="confluent",
        jars=CONFLUENT_JARS,
        connection=confluent_connection(
            "pkc-s7t8u.us-east-1.aws.confluent.cloud:9092",
            "https://psrc-v9w0x.us-east-1.aws.confluent.cloud",
        ),
        catalog="avrolake_staging",
        schema="products",
        flavor_cluster=CONFLUENT_SECRETS,
        num_workers=2,
        shuffle_partitions="16",
        pause_status="PAUSED",  # CI runs the smoke job; nothing streams on its own
        name_prefix="",
    ),
    "confluent-prod": Expected(
        mode="production",
        flavor="confluent",
        jars=CONFLUENT_JARS,
        connection=confluent_connection(
            "pkc-a1b2c.us-east-1.aws.confluent.cloud:9092",
            "https://psrc-d3e4f.us-east-1.aws.confluent.cloud",
        ),
        catalog="avrolake",
        schema="products",
        flavor_cluster=CONFLUENT_SECRETS,
        num_workers=2,
        shuffle_partitions="16",
        pause_status="UNPAUSED",
        name_prefix="",
    ),
}


def expected_parameters(target: str) -> dict[tuple[str, str], list[str]]:
    """(job, task) -> the exact argv after ``avrolake``."""
    e = EXPECTED[target]
    files = f"/Workspace/Users/{IDENTITY[target]}/.bundle/avrolake/{target}/files"
    schemas_dir = f"{files}/schemas/product"

    def tables(schema: str) -> list[str]:
        return ["--catalog", e.catalog, "--schema", schema,
                "--checkpoint-root", f"/Volumes/{e.catalog}/{schema}/checkpoints"]  # fmt: skip

    real, smoke = tables(e.schema), tables(f"{e.schema}_smoke")
    topic, smoke_topic = ["--topic", "products"], ["--topic", "products-smoke"]
    register = ["schemas", "register", "--dir", schemas_dir, "--mode", "FULL_TRANSITIVE"]
    # The stages take their topics and tables from the synced definitions; the smoke job runs the
    # Product example's pipeline of them, on its own topic.
    definitions = ["--definitions", f"{files}/{DEFINITIONS}"]
    smoke_pipeline = [*definitions, "--pipeline", "products"]
    return {
        ("producer", "register_schemas"): [*register, *topic, *e.connection],
        ("producer", "produce"): [
            "produce", "--mix", "v1=0.2,v2=0.5,v3=0.3", "--duration", "600", "--rate", "50",
            "--schemas-dir", schemas_dir, *topic, *e.connection,
        ],
        ("ingest", "ingest"): [
            "ingest", *definitions, *real, "--trigger", "continuous", "--starting-offsets",
            "earliest", "--max-offsets-per-trigger", "10000", *e.connection,
        ],
        ("medallion", "silver"): [
            "silver", *definitions, *real, "--trigger", "available-now", *e.connection,
        ],
        ("medallion", "gold"): ["gold", *definitions, *real, "--trigger", "available-now"],
        # The smoke job: the same stages once, bounded, on their own topic and tables.
        ("smoke", "register_schemas"): [*register, *smoke_topic, *e.connection],
        ("smoke", "produce"): [
            "produce", "--mix", "v1=0.2,v2=0.5,v3=0.3", "--count", "2000",
            "--schemas-dir", schemas_dir, *smoke_topic, *e.connection,
        ],
        ("smoke", "ingest"): [
            "ingest", *smoke_pipeline, *smoke, "--trigger", "available-now", "--starting-offsets",
            "earliest", "--max-offsets-per-trigger", "10000", *smoke_topic, *e.connection,
        ],
        ("smoke", "silver"): [
            "silver", *smoke_pipeline, *smoke, "--trigger", "available-now", *smoke_topic,
            *e.connection,
        ],
        ("smoke", "gold"): ["gold", *smoke_pipeline, *smoke, "--trigger", "available-now"],
    }  # fmt: skip


DEPENDS_ON = {
    ("producer", "register_schemas"): [],
    ("producer", "produce"): ["register_schemas"],
    ("ingest", "ingest"): [],
    ("medallion", "silver"): [],
    ("medallion", "gold"): ["silver"],
    ("smoke", "register_schemas"): [],
    ("smoke", "produce"): ["register_schemas"],
    ("smoke", "ingest"): ["produce"],
    ("smoke", "silver"): ["ingest"],
    ("smoke", "gold"): ["silver"],
}


# -- running the CLI ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CliRun:
    target: str
    returncode: int
    stdout: str
    stderr: str
    workspace: WorkspaceStandIn

    def describe(self) -> str:
        unknown = "\n".join(str(r) for r in self.workspace.unknown) or "none"
        return (
            f"target {self.target}: exit {self.returncode}\nstderr:\n{self.stderr}\n"
            f"requests the stand-in has no route for:\n{unknown}"
        )

    @property
    def config(self) -> dict[str, Any]:
        assert self.returncode == 0, self.describe()
        return json.loads(self.stdout)


def built_tool(variable: str, make_target: str) -> Path:
    """A tool the Makefile builds into the cache and names in an environment variable."""
    raw = os.environ.get(variable)
    if not raw:
        pytest.fail(
            f"{variable} is not set. Run the tests with `make test`, or run `make {make_target}` "
            f"and export {variable} to the path it builds ($HOME/.cache/avrolake/bin/...).",
            pytrace=False,
        )
    path = Path(raw)
    if not path.is_file():
        pytest.fail(f"{variable}={raw} does not exist: run `make {make_target}`.", pytrace=False)
    return path


@pytest.fixture(scope="session")
def databricks_cli() -> Path:
    return built_tool("AVROLAKE_DATABRICKS_CLI", "databricks-cli")


@pytest.fixture(scope="session")
def actionlint() -> Path:
    return built_tool("AVROLAKE_ACTIONLINT", "actionlint")


@pytest.fixture(scope="session")
def uv() -> Path:
    """The uv the Makefile installs: $AVROLAKE_CACHE/tools/uv-<UV_VERSION>/bin/uv."""
    version = re.search(r"^UV_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert version, "Makefile has no `UV_VERSION := ...` line"
    cache = Path(os.environ.get("AVROLAKE_CACHE", Path.home() / ".cache" / "avrolake"))
    path = cache / "tools" / f"uv-{version[1]}" / "bin" / "uv"
    if not path.is_file():
        pytest.fail(f"{path} does not exist: run `make test` (or `make wheel`), which installs it.")
    return path


def without_databricks_settings() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "BUNDLE_VAR_"))}


@pytest.fixture(scope="session")
def cli_base_env(uv: Path) -> dict[str, str]:
    """This process's environment without Databricks settings or bundle variable overrides, with
    uv on PATH (the artifact build runs `uv build --wheel`) and uv's warm cache kept."""
    env = without_databricks_settings()
    cache = subprocess.run([uv, "cache", "dir"], capture_output=True, text=True, check=True)
    env["UV_CACHE_DIR"] = cache.stdout.strip()
    env["PATH"] = f"{uv.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="session")
def wheel(uv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([uv, "build", "--wheel", "--out-dir", out], cwd=REPO, check=True,
                   capture_output=True)  # fmt: skip
    (built,) = out.glob("*.whl")
    return built


def console_scripts(wheel_bytes: bytes) -> dict[str, str]:
    """The ``[console_scripts]`` of a wheel's ``entry_points.txt``."""
    with zipfile.ZipFile(io.BytesIO(wheel_bytes)) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
        entry_points = configparser.ConfigParser()
        entry_points.read_string(archive.read(name).decode())
    return dict(entry_points["console_scripts"])


def copy_bundle(dest: Path, workspace_url: str) -> Path:
    """The bundle's files in ``dest``, the target hosts replaced by ``workspace_url``."""
    dest.mkdir()
    for name in BUNDLE_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, dest / name)
    text = (REPO / "databricks.yml").read_text()
    for host in HOSTS.values():
        assert text.count(host) == 1, f"{host} should appear once in databricks.yml"
        text = text.replace(host, workspace_url)
    (dest / "databricks.yml").write_text(text)
    return dest


def run_cli(
    cli: Path,
    base_env: dict[str, str],
    root: Path,
    target: str,
    *args: str,
    user_name: str | None = None,
    prepare: Callable[[Path], None] | None = None,
) -> CliRun:
    """Run ``databricks <args> -t <target>`` on a fresh bundle copy against a fresh stand-in,
    which stops when the CLI exits but keeps what it recorded. The stand-in's current user is
    the target's deployer, or ``user_name`` (then the deployer's home exists too, as its own);
    ``prepare`` may change the copy."""
    others = (IDENTITY[target],) if user_name else ()
    with WorkspaceStandIn(user_name or IDENTITY[target], other_users=others) as workspace:
        bundle = copy_bundle(root / "bundle", workspace.url)
        if prepare:
            prepare(bundle)
        home = root / "home"
        home.mkdir()
        env = base_env | {
            "HOME": str(home),
            "DATABRICKS_HOST": workspace.url,  # same as the copy's host, which is what counts
            "DATABRICKS_TOKEN": "dapi-test",
            "DATABRICKS_CONFIG_FILE": str(home / "no-databrickscfg"),
            "DATABRICKS_BUNDLE_ENGINE": "direct",  # no Terraform download
        }
        result = subprocess.run(
            [cli, *args, "-t", target],
            cwd=bundle,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    return CliRun(target, result.returncode, result.stdout, result.stderr, workspace)


@pytest.fixture(scope="module")
def validated(
    databricks_cli: Path, cli_base_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, CliRun]:
    runs = {}
    for target in TARGETS:
        root = tmp_path_factory.mktemp(f"validate-{target}")
        args = ("bundle", "validate", "--strict", "-o", "json")
        runs[target] = run_cli(databricks_cli, cli_base_env, root, target, *args)
    return runs


@pytest.fixture(scope="module")
def deployed(
    databricks_cli: Path, cli_base_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, CliRun]:
    runs = {}
    for target in TARGETS:
        root = tmp_path_factory.mktemp(f"deploy-{target}")
        runs[target] = run_cli(databricks_cli, cli_base_env, root, target, "bundle", "deploy")
    return runs


def tasks_of(config: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (job_key, task["task_key"]): task
        for job_key, job in config["resources"]["jobs"].items()
        for task in job["tasks"]
    }


def maven_of(task: dict[str, Any]) -> dict[str, str | None]:
    return {lib["maven"]["coordinates"]: lib["maven"].get("repo") for lib in task["libraries"]
            if "maven" in lib}  # fmt: skip


def files_path(target: str) -> str:
    """Where a target's deployment syncs the bundle's files (its root path names its deployer)."""
    return f"/Workspace/Users/{IDENTITY[target]}/.bundle/avrolake/{target}/files"


# -- validate -------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_validate_is_clean(validated: dict[str, CliRun], target: str) -> None:
    run = validated[target]
    assert run.returncode == 0, run.describe()
    assert run.stderr == "", run.describe()  # --strict: no warning, no recommendation either
    assert run.workspace.unknown == [], run.describe()
    assert run.workspace.requests_to("GET", "/api/2.0/preview/scim/v2/Me"), "CLI never asked /Me"
    config = run.config
    assert config["bundle"]["name"] == "avrolake"
    assert config["bundle"]["target"] == target
    assert config["bundle"]["mode"] == EXPECTED[target].mode
    artifact = config["artifacts"]["default"]
    assert artifact["type"] == "whl"
    assert artifact["build"] == "uv build --wheel"  # unless CI passes --var wheel_build=
    assert [Path(f["source"]).relative_to(artifact["path"]) for f in artifact["files"]] == [
        Path("dist/*.whl")
    ]
    assert config["sync"]["paths"] == [DEFINITIONS, "schemas", "requirements"]


@pytest.mark.parametrize("target", TARGETS)
def test_the_four_jobs_and_their_tasks(validated: dict[str, CliRun], target: str) -> None:
    jobs = validated[target].config["resources"]["jobs"]
    assert sorted(jobs) == ["ingest", "medallion", "producer", "smoke"]
    prefix = EXPECTED[target].name_prefix
    assert {key: job["name"] for key, job in jobs.items()} == {
        key: f"{prefix}avrolake-{key}" for key in jobs
    }
    tasks = tasks_of(validated[target].config)
    assert sorted(tasks) == sorted(DEPENDS_ON)
    for (job_key, task_key), task in tasks.items():
        depends = [d["task_key"] for d in task.get("depends_on", [])]
        assert depends == DEPENDS_ON[job_key, task_key], (job_key, task_key)
        (cluster,) = jobs[job_key]["job_clusters"]  # one job cluster per job, every task on it
        assert task["job_cluster_key"] == cluster["job_cluster_key"] == job_key
        assert not {"existing_cluster_id", "new_cluster", "environment_key"} & set(task)
    assert jobs["smoke"]["timeout_seconds"] == 3600  # a hung smoke run ends; CI waits for it
    assert "timeout_seconds" not in jobs["ingest"]  # the stream runs until stopped


@pytest.mark.parametrize("target", TARGETS)
def test_every_task_runs_the_built_wheels_console_script(
    validated: dict[str, CliRun], wheel: Path, target: str
) -> None:
    scripts = console_scripts(wheel.read_bytes())
    assert wheel.name.startswith("avrolake-")
    for key, task in tasks_of(validated[target].config).items():
        wheel_task = task["python_wheel_task"]
        assert wheel_task["package_name"] == "avrolake", key
        assert wheel_task["entry_point"] in scripts, (key, scripts)
        assert scripts[wheel_task["entry_point"]] == "avrolake.cli:main"
        wheels = [lib for lib in task["libraries"] if "whl" in lib]
        assert wheels == [{"whl": "dist/*.whl"}], key  # the artifact the bundle builds


def test_the_cluster_requirements_are_exactly_uv_lock(uv: Path) -> None:
    """requirements/cluster.txt is what `uv export` makes of the current uv.lock, byte for byte:
    every runtime dependency of the wheel at its locked version, nothing of the dev group or the
    extras (the Databricks Runtime brings pyspark and delta-spark)."""
    exported = subprocess.run(
        [uv, *UV_EXPORT], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    committed = (REPO / CLUSTER_REQUIREMENTS).read_text()
    assert committed == exported, "uv.lock changed: run `make requirements` and commit the file"
    pins = dict(re.findall(r"^([a-z0-9._-]+)==([^\s;]+)", committed, re.MULTILINE))
    assert len(pins) == sum(1 for line in committed.splitlines() if line[:1].isalnum())
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    locked = {package["name"]: package.get("version") for package in lock["package"]}
    assert all(locked[name] == version for name, version in pins.items()), pins
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    direct = {
        re.split(r"[\[<>=!~ ;]", dep, maxsplit=1)[0].lower() for dep in project["dependencies"]
    }
    assert direct <= set(pins), direct - set(pins)
    assert not {"pyspark", "delta-spark", "py4j", "pytest", "ruff", "moto", "avrolake"} & set(pins)


@pytest.mark.parametrize("target", TARGETS)
def test_every_task_installs_the_locked_requirements(
    validated: dict[str, CliRun], target: str
) -> None:
    """Next to the wheel, every task of every job installs requirements/cluster.txt, synced with
    the bundle's files: the clusters run exactly the versions CI tested."""
    synced = f"{files_path(target)}/{CLUSTER_REQUIREMENTS}"
    for key, task in tasks_of(validated[target].config).items():
        assert task["libraries"][:2] == [{"requirements": synced}, {"whl": "dist/*.whl"}], key


@pytest.mark.parametrize("target", TARGETS)
def test_task_parameters_are_exact(validated: dict[str, CliRun], target: str) -> None:
    actual = {
        key: task["python_wheel_task"]["parameters"]
        for key, task in tasks_of(validated[target].config).items()
    }
    assert actual == expected_parameters(target)


@pytest.mark.parametrize("target", TARGETS)
def test_each_job_cluster_carries_exactly_its_flavors_jars(
    validated: dict[str, CliRun], target: str
) -> None:
    expected = EXPECTED[target]
    jobs = validated[target].config["resources"]["jobs"]
    for job_key, job in jobs.items():
        (cluster,) = job["job_clusters"]
        on_cluster = [t for t in job["tasks"] if t["job_cluster_key"] == cluster["job_cluster_key"]]
        installed: dict[str, str | None] = {}
        for task in on_cluster:
            assert maven_of(task) == expected.jars, (job_key, task["task_key"])
            installed |= maven_of(task)
            # the requirements, the wheel, the jars
            assert len(task["libraries"]) == 2 + len(expected.jars)
        assert installed == expected.jars, job_key
        assert {k: v for k, v in cluster["new_cluster"].items() if k != "spark_conf"} == {
            "spark_version": "17.3.x-scala2.13",
            "node_type_id": "m6i.xlarge",
            "num_workers": expected.num_workers,
            "data_security_mode": "SINGLE_USER",
            **expected.flavor_cluster,
        }, job_key


@pytest.mark.parametrize("target", TARGETS)
def test_every_job_cluster_limits_avro_allocations(
    validated: dict[str, CliRun], target: str
) -> None:
    """A hostile record whose length prefix claims gigabytes must fail to decode, not make the
    driver or an executor allocate them: Avro's limits are JVM system properties, read once when
    Avro loads, so they are the JVMs' options, on every job cluster of every target."""
    from avrolake.spark import AVRO_LIMITS as LOCAL_LIMITS

    # The local session (avrolake.spark) applies the very same limits.
    assert " ".join(f"-D{k}={v}" for k, v in LOCAL_LIMITS.items()) == AVRO_LIMITS
    expected = EXPECTED[target]
    for job_key, job in validated[target].config["resources"]["jobs"].items():
        (cluster,) = job["job_clusters"]
        assert cluster["new_cluster"]["spark_conf"] == {
            "spark.driver.extraJavaOptions": AVRO_LIMITS,
            "spark.executor.extraJavaOptions": AVRO_LIMITS,
            "spark.sql.shuffle.partitions": expected.shuffle_partitions,
            **(DELTA_WRITES if job_key in ("medallion", "smoke") else {}),
        }, job_key
    # twice the workers' cores (an m6i.xlarge has 4)
    assert int(expected.shuffle_partitions) == 2 * expected.num_workers * 4


@pytest.mark.parametrize("target", TARGETS)
def test_the_flavor_option_agrees_with_the_jars(validated: dict[str, CliRun], target: str) -> None:
    for key, task in tasks_of(validated[target].config).items():
        params = task["python_wheel_task"]["parameters"]
        installed = set(maven_of(task))
        flavors_by_jar = {f for f, jar in FLAVOR_MARKER_JAR.items() if jar in installed}
        assert flavors_by_jar == {EXPECTED[target].flavor}, key
        if key[1] != "gold":  # gold reads silver tables, no connection options
            assert params.count("--flavor") == 1, key
            assert params[params.index("--flavor") + 1] == EXPECTED[target].flavor, key
            # the stages' topics are the definitions' (the smoke job re-points its one pipeline)
            from_definitions = "--definitions" in params and "--pipeline" not in params
            assert params.count("--topic") == (0 if from_definitions else 1), key


@pytest.mark.parametrize("target", TARGETS)
def test_schedules_and_triggers_run_in_production_only(
    validated: dict[str, CliRun], target: str
) -> None:
    jobs = validated[target].config["resources"]["jobs"]
    pause = EXPECTED[target].pause_status
    assert jobs["medallion"]["schedule"] == {
        "quartz_cron_expression": "0 15 * * * ?",
        "timezone_id": "UTC",
        "pause_status": pause,
    }
    assert jobs["ingest"]["continuous"] == {"pause_status": pause, "task_retry_mode": "ON_FAILURE"}
    for key, job in jobs.items():
        assert job["max_concurrent_runs"] == 1, key
        triggers = {"schedule", "continuous", "trigger"} & set(job)
        assert triggers == {"medallion": {"schedule"}, "ingest": {"continuous"}}.get(key, set())


@pytest.mark.parametrize(
    ("target", "principal"), [("staging", STAGING_SP), ("confluent-prod", PROD_SP)]
)
def test_shared_targets_run_as_their_service_principal_with_permissions(
    validated: dict[str, CliRun], target: str, principal: str
) -> None:
    config = validated[target].config
    root = f"/Workspace/Users/{principal}/.bundle/avrolake/{target}"
    assert config["workspace"]["root_path"] == root
    assert config["workspace"]["file_path"] == f"{root}/files"
    assert config["workspace"]["artifact_path"] == f"{root}/artifacts"
    assert config["workspace"]["state_path"] == f"{root}/state"
    assert config["run_as"] == {"service_principal_name": principal}
    assert config["presets"].get("artifacts_dynamic_version") is None  # the tested file, as is
    for key, job in config["resources"]["jobs"].items():
        assert job["run_as"] == {"service_principal_name": principal}, key
        assert job["permissions"] == [
            {"group_name": "users", "level": "CAN_VIEW"},
            {"group_name": "avrolake-admins", "level": "CAN_MANAGE"},
            {"service_principal_name": principal, "level": "IS_OWNER"},
        ], key
        assert "tags" not in job, key


def test_development_is_each_developers_own_copy(validated: dict[str, CliRun]) -> None:
    dev = validated["msk-dev"].config
    assert dev["workspace"]["root_path"] == f"/Workspace/Users/{DEVELOPER}/.bundle/avrolake/msk-dev"
    assert dev["presets"]["artifacts_dynamic_version"] is True
    assert "run_as" not in dev
    for key, job in dev["resources"]["jobs"].items():
        assert "run_as" not in job and "permissions" not in job, key
        assert job["tags"] == {"dev": "tester"}, key


@pytest.mark.parametrize(
    ("target", "principal"), [("staging", STAGING_SP), ("confluent-prod", PROD_SP)]
)
def test_the_root_path_names_the_service_principal_whoever_validates(
    databricks_cli: Path,
    cli_base_env: dict[str, str],
    tmp_path: Path,
    target: str,
    principal: str,
) -> None:
    """Validated (or deployed) by someone else than its service principal, a shared target still
    resolves to the one copy under the principal's home, running as the principal: a second,
    personal copy of production cannot come about. The CLI only recommends listing the other
    identity in the permissions (which it deliberately is not)."""
    someone = "someone.else@example.com"
    run = run_cli(databricks_cli, cli_base_env, tmp_path, target,
                  "bundle", "validate", "-o", "json", user_name=someone)  # fmt: skip
    assert run.returncode == 0, run.describe()
    assert run.workspace.unknown == [], run.describe()
    config = run.config
    assert config["workspace"]["current_user"]["userName"] == someone
    root = f"/Workspace/Users/{principal}/.bundle/avrolake/{target}"
    assert config["workspace"]["root_path"] == root
    assert config["workspace"]["file_path"] == f"{root}/files"
    assert config["workspace"]["state_path"] == f"{root}/state"
    assert config["run_as"] == {"service_principal_name": principal}
    for key, job in config["resources"]["jobs"].items():
        assert job["run_as"] == {"service_principal_name": principal}, key
        assert job["name"] == f"avrolake-{key}", key
        # The CLI makes whoever deploys the jobs' owner; the principal keeps CAN_MANAGE (in a
        # real workspace a user cannot write the principal's home, so only CI deploys).
        assert job["permissions"] == [
            {"group_name": "users", "level": "CAN_VIEW"},
            {"group_name": "avrolake-admins", "level": "CAN_MANAGE"},
            {"service_principal_name": principal, "level": "CAN_MANAGE"},
            {"user_name": someone, "level": "IS_OWNER"},
        ], key
    # The one diagnostic: the validating user is not in the permissions (by design).
    diagnostics = [line for line in run.stderr.splitlines() if re.match(r"[A-Z]\w+: ", line)]
    assert diagnostics == [
        "Recommendation: permissions section should explicitly include the current deployment "
        f"identity '{someone}' or one of its groups"
    ], run.describe()


# -- no credential literal ------------------------------------------------------------------------

CREDENTIAL_SHAPES = {
    "Databricks token": r"\bdapi[0-9a-f]{32}(-\d+)?\b",
    "AWS access key id": r"\b(AKIA|ASIA)[0-9A-Z]{16}\b",
    "AWS secret access key": r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])",
    "Confluent API key": r"\b(?=[A-Z0-9]*[A-Z])(?=[A-Z0-9]*[0-9])[A-Z0-9]{16}\b",
    "Confluent API secret": r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{64}(?![A-Za-z0-9/+=])",
    "private key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    "password in a URL": r"://[^/\s:@]+:[^/\s@]+@",
}
PINNED_ACTION = re.compile(r"(uses: [\w.-]+/[\w./-]+@)[0-9a-f]{40}(?= # v\d)")
CREDENTIAL_NAME = re.compile(r"(?i)password|passwd|secret|token|api_?key|credential")
_NAME = r"(?:[\w.-]+|\$\{var\.\w+\})"  # a name, or a bundle variable holding one
REFERENCE = re.compile(
    rf"\{{\{{secrets/{_NAME}/{_NAME}\}}\}}"  # a Databricks secret reference
    r"|\$\{[\w.\[\]-]+\}"  # a bundle variable
    r"|\$\{\{\s*((secrets|vars)\.\w+|github\.token)\s*\}\}"  # a GitHub secret, variable, token
)


def secret_names(config: dict[str, Any]) -> set[str]:
    """The secret scope and key *names* the bundle declares: names, not credentials."""
    variables = config["variables"]
    names = [name for name in variables if name == "secret_scope" or name.endswith("_secret")]
    return {variables[name]["value"] for name in names}


def credential_literals(document: Any, allowed: set[str], path: str = "") -> Iterator[str]:
    """Strings under a credential-like key that are neither a reference nor a declared name."""
    if isinstance(document, dict):
        for key, value in document.items():
            where = f"{path}.{key}"
            if isinstance(value, str) and CREDENTIAL_NAME.search(str(key)):
                if (key, value) == ("id-token", "write"):  # a workflow asking for its OIDC token
                    continue
                if value and value not in allowed and not REFERENCE.fullmatch(value.strip()):
                    yield f"{where} = {value!r}"
            yield from credential_literals(value, allowed, where)
    elif isinstance(document, list):
        for i, item in enumerate(document):
            yield from credential_literals(item, allowed, f"{path}[{i}]")


def test_no_credential_literal_anywhere(validated: dict[str, CliRun]) -> None:
    allowed = set.union(*(secret_names(run.config) for run in validated.values()))
    assert allowed == {
        "avrolake", "kafka-api-key", "kafka-api-secret", "registry-api-key", "registry-api-secret",
    }  # fmt: skip
    files = [REPO / "databricks.yml", *sorted((REPO / "resources").glob("*.yml"))]
    files += sorted((REPO / ".github" / "workflows").glob("*.yml"))
    # A pinned action's commit (40 hex digits) has an AWS secret key's shape: the pins are checked
    # in test_every_action_is_pinned_to_a_commit, so they are left out here.
    texts = {
        str(f.relative_to(REPO)): PINNED_ACTION.sub(r"\1<commit>", f.read_text()) for f in files
    }
    texts |= {f"validate -t {t}": run.stdout for t, run in validated.items()}
    found = []
    for name, text in texts.items():
        for shape, pattern in CREDENTIAL_SHAPES.items():
            found += [f"{name}: {shape}: {m[0]!r}" for m in re.finditer(pattern, text)]
        document = json.loads(text) if name.startswith("validate") else yaml.safe_load(text)
        found += [f"{name}: {literal}" for literal in credential_literals(document, allowed)]
    assert found == []
    # Every environment variable a job cluster gets is a secret reference.
    for target, run in validated.items():
        for job in run.config["resources"]["jobs"].values():
            for cluster in job["job_clusters"]:
                for value in cluster["new_cluster"].get("spark_env_vars", {}).values():
                    assert re.fullmatch(r"\{\{secrets/avrolake/[\w-]+\}\}", value), (target, value)


# -- the CLI's JSON schema ------------------------------------------------------------------------


def test_the_yaml_matches_the_clis_own_schema(
    databricks_cli: Path, cli_base_env: dict[str, str], tmp_path: Path
) -> None:
    schema_run = subprocess.run(
        [databricks_cli, "bundle", "schema"], env=cli_base_env | {"HOME": str(tmp_path)},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    schema = json.loads(schema_run.stdout)
    validator = jsonschema.validators.validator_for(schema)(schema)
    files = [REPO / "databricks.yml", *sorted((REPO / "resources").glob("*.yml"))]
    assert len(files) == 5  # databricks.yml and the four jobs
    for path in files:
        errors = [
            f"{e.json_path}: {jsonschema.exceptions.best_match([e]).message[:300]}"
            for e in validator.iter_errors(yaml.safe_load(path.read_text()))
        ]
        assert errors == [], path.name


# -- the wheel's own parser -----------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_job_parameters_parse_with_the_wheels_cli(
    validated: dict[str, CliRun], target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Parsed by the wheel's own CLI, with the synced definitions file read from the checkout,
    every stage runs the pipelines it should: all of the file's on their own topics, the smoke
    job the Product example's on the smoke topic; the producer writes the Product topic."""
    from avrolake.cli import build_parser
    from avrolake.cli.options import pipelines_from_args
    from avrolake.definitions import load_definitions
    from avrolake.settings import Flavor

    flavor = Flavor(EXPECTED[target].flavor)
    every_pipeline = [(p.name, p.topic) for p in load_definitions(REPO / DEFINITIONS).pipelines]
    assert ("products", "products") in every_pipeline  # the example, which the producer feeds
    for key, task in tasks_of(validated[target].config).items():
        params = task["python_wheel_task"]["parameters"]
        try:
            args = build_parser().parse_args(params)
        except SystemExit:
            pytest.fail(f"{target} {key}: avrolake rejects {params}:\n{capsys.readouterr().err}")
        assert args.command == params[0], key
        if key[1] != "gold":
            assert args.flavor == EXPECTED[target].flavor, key
        if key[0] == "producer" or key[1] in ("register_schemas", "produce"):
            assert args.topic == ("products-smoke" if key[0] == "smoke" else "products"), key
            continue
        assert args.definitions == f"{files_path(target)}/{DEFINITIONS}", key
        args.definitions = str(REPO / DEFINITIONS)  # the file the deployment syncs there
        pipelines = [(p.name, p.topic) for p in pipelines_from_args(args, flavor)]
        if key[0] == "smoke":  # gold has no --topic: it reads tables, named by the definitions
            expected = [("products", "products" if key[1] == "gold" else "products-smoke")]
        else:
            expected = every_pipeline
        assert pipelines == expected, key


# -- deploy ---------------------------------------------------------------------------------------


def as_sent(job: dict[str, Any], wheel_path: str) -> dict[str, Any]:
    """A validated job as the Jobs API should receive it: the wheel uploaded, ACLs sent apart."""
    sent = json.loads(json.dumps(job).replace('"dist/*.whl"', json.dumps(wheel_path)))
    sent.pop("permissions", None)
    return sent


@pytest.mark.parametrize("target", TARGETS)
def test_deploy_sends_the_validated_jobs_and_uploads_wheel_schemas_and_requirements(
    deployed: dict[str, CliRun], validated: dict[str, CliRun], target: str
) -> None:
    run = deployed[target]
    assert run.returncode == 0, run.describe()
    assert run.workspace.unknown == [], run.describe()
    files = run.workspace.files
    root = f"/Workspace/Users/{IDENTITY[target]}/.bundle/avrolake/{target}"

    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    suffix = r"\+\d+" if target == "msk-dev" else ""  # artifacts_dynamic_version in development
    wheel_name = re.compile(rf"{re.escape(root)}/artifacts/\.internal/avrolake-"
                            rf"{re.escape(version)}{suffix}-py3-none-any\.whl")  # fmt: skip
    (wheel_path,) = [path for path in files if wheel_name.fullmatch(path)]
    assert console_scripts(files[wheel_path]) == {"avrolake": "avrolake.cli:main"}

    synced = {p: c for p, c in files.items() if p.startswith(f"{root}/files/")}
    assert synced == {
        f"{root}/files/{DEFINITIONS}": (REPO / DEFINITIONS).read_bytes(),
        **{
            f"{root}/files/{p.relative_to(REPO)}": p.read_bytes()
            for directory in ("schemas", "requirements")
            for p in sorted((REPO / directory).rglob("*"))
            if p.is_file()
        },
    }
    assert f"{root}/files/schemas/product/v1.avsc" in synced
    assert (
        synced[f"{root}/files/{CLUSTER_REQUIREMENTS}"] == (REPO / CLUSTER_REQUIREMENTS).read_bytes()
    )

    created = {job["name"]: job for job in run.workspace.jobs.values()}
    expected = {
        job["name"]: as_sent(job, wheel_path)
        for job in validated[target].config["resources"]["jobs"].values()
    }
    assert created == expected


def level(permission: str) -> dict[str, Any]:
    """An ACL entry's permission as the stand-in stores it."""
    return {"all_permissions": [{"permission_level": permission}]}


@pytest.mark.parametrize(
    ("target", "principal"), [("staging", STAGING_SP), ("confluent-prod", PROD_SP)]
)
def test_deploy_of_a_shared_target_sets_the_acls(
    deployed: dict[str, CliRun], target: str, principal: str
) -> None:
    workspace = deployed[target].workspace
    job_acls = {
        object_id: acl for (kind, object_id), acl in workspace.permissions.items() if kind == "jobs"
    }
    assert sorted(job_acls) == sorted(workspace.jobs)
    for object_id, acl in job_acls.items():
        assert acl == [
            {"group_name": "users", **level("CAN_VIEW")},
            {"group_name": "avrolake-admins", **level("CAN_MANAGE")},
            {"service_principal_name": principal, **level("IS_OWNER")},
        ], object_id
    folders = [acl for (kind, _), acl in workspace.permissions.items() if kind == "directories"]
    assert folders == [  # the deployment's root folder
        [
            {"group_name": "users", **level("CAN_READ")},
            {"group_name": "avrolake-admins", **level("CAN_MANAGE")},
            {"service_principal_name": principal, **level("CAN_MANAGE")},
        ]
    ]


def test_development_deploys_set_no_acl(deployed: dict[str, CliRun]) -> None:
    assert deployed["msk-dev"].workspace.permissions == {}


@pytest.mark.parametrize("target", SHARED_TARGETS)
def test_ci_deploys_the_tested_wheel_as_it_is(
    databricks_cli: Path, wheel: Path, tmp_path: Path, target: str
) -> None:
    """How CI promotes: dist/ holds the wheel built and tested for the commit, uv is not even
    installed, and `--var wheel_build=` turns the bundle's build off. The deployment uploads that
    very file, byte for byte, under its own name, and every task installs it."""
    env = without_databricks_settings()
    env["PATH"] = os.pathsep.join(
        d for d in env.get("PATH", "").split(os.pathsep) if d and not (Path(d) / "uv").exists()
    )
    assert shutil.which("uv", path=env["PATH"]) is None

    def with_the_tested_wheel(bundle: Path) -> None:
        (bundle / "dist").mkdir()
        shutil.copy2(wheel, bundle / "dist" / wheel.name)

    deploy = ("bundle", "deploy", "--var", "wheel_build=")
    run = run_cli(databricks_cli, env, tmp_path, target, *deploy, prepare=with_the_tested_wheel)
    assert run.returncode == 0, run.describe()
    assert run.workspace.unknown == [], run.describe()
    assert "Building" not in run.stderr, run.describe()
    root = f"/Workspace/Users/{IDENTITY[target]}/.bundle/avrolake/{target}"
    uploaded = {p: c for p, c in run.workspace.files.items() if p.endswith(".whl")}
    wheel_path = f"{root}/artifacts/.internal/{wheel.name}"
    assert uploaded == {wheel_path: wheel.read_bytes()}
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert hashlib.sha256(uploaded[wheel_path]).hexdigest() == digest
    for job in run.workspace.jobs.values():
        for task in job["tasks"]:
            assert [lib["whl"] for lib in task["libraries"] if "whl" in lib] == [wheel_path]


# -- the workflows --------------------------------------------------------------------------------

WORKFLOWS = REPO / ".github" / "workflows"


def workflow(name: str) -> dict[str, Any]:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    document["on"] = document.pop(True)  # YAML 1.1 reads the key `on` as a boolean
    return document


def runs_of(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def uses_of(job: dict[str, Any]) -> list[str]:
    return [step["uses"].split("@")[0] for step in job["steps"] if "uses" in step]


def test_the_workflows_pass_actionlint(actionlint: Path) -> None:
    """actionlint (expressions, job graph, action inputs, permissions), with its shellcheck and
    pyflakes integrations off so that the result does not depend on what else is installed."""
    names = sorted(WORKFLOWS.glob("*.yml"))
    assert [p.name for p in names] == ["ci.yml", "release.yml"]
    result = subprocess.run(
        [actionlint, "-no-color", "-shellcheck=", "-pyflakes=", *names],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_action_is_pinned_to_a_commit() -> None:
    """`uses: owner/repo@<40 hex digits> # v<release>`: a tag or branch could move under us."""
    for path in sorted(WORKFLOWS.glob("*.yml")):
        lines = [line.strip() for line in path.read_text().splitlines()]
        uses = [line for line in lines if re.match(r"(- )?uses: ", line)]
        assert uses, path.name
        for line in uses:
            assert re.fullmatch(
                r"(- )?uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+", line
            ), f"{path.name}: {line}"


def test_ci_builds_once_tests_it_and_deploys_it_to_staging() -> None:
    ci = workflow("ci.yml")
    assert ci["on"] == {"pull_request": None, "push": {"branches": ["main"]}}
    jobs = ci["jobs"]
    assert sorted(jobs) == ["bundle-validate", "lint", "staging", "test", "wheel"]

    wheel = jobs["wheel"]
    upload = next(s for s in wheel["steps"] if s.get("uses", "").startswith("actions/upload-"))
    assert upload["with"]["name"] == "wheel"
    assert upload["with"]["path"].split() == ["dist/*.whl", "dist/SHA256SUMS"]
    assert sum("uv build --wheel" in r for job in jobs.values() for r in runs_of(job)) == 2
    assert any("uv build --wheel --out-dir dist" in r for r in runs_of(wheel))  # the one build

    test = jobs["test"]
    assert test["needs"] == "wheel"
    test_runs = runs_of(test)
    assert any("cmp dist/*.whl" in r for r in test_runs)  # the artifact is the tested tree's build
    assert any("--requirement requirements/cluster.txt dist/*.whl" in r for r in test_runs)
    assert test_runs[-1] == "make test"

    validate = jobs["bundle-validate"]
    assert [m["target"] for m in validate["strategy"]["matrix"]["include"]] == list(TARGETS)

    staging = jobs["staging"]
    assert staging["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert staging["needs"] == ["wheel", "lint", "test"]
    assert staging["environment"] == "staging"
    assert staging["concurrency"] == {"group": "deploy-staging", "cancel-in-progress": False}
    assert staging["permissions"] == {"contents": "read", "id-token": "write"}
    assert "astral-sh/setup-uv" not in uses_of(staging)  # no build: the artifact is deployed
    download = next(s for s in staging["steps"] if s.get("uses", "").startswith("actions/down"))
    assert download["with"] == {"name": "wheel", "path": "dist"}
    assert runs_of(staging) == [
        "sha256sum --check SHA256SUMS",
        "databricks bundle validate -t staging --var wheel_build=",
        "databricks bundle deploy -t staging --var wheel_build=",
        "databricks bundle run -t staging smoke",
    ]
    # Nothing deploys msk-dev: it is each developer's own.
    everything = (WORKFLOWS / "ci.yml").read_text() + (WORKFLOWS / "release.yml").read_text()
    assert "deploy -t msk-dev" not in everything


def test_a_release_promotes_the_wheel_staging_ran_after_approval() -> None:
    ci, release = workflow("ci.yml"), workflow("release.yml")
    assert release["on"] == {"push": {"tags": ["v*"]}}
    jobs = release["jobs"]
    assert sorted(jobs) == ["confluent-prod", "tested-wheel"]

    find = jobs["tested-wheel"]
    assert find["permissions"] == {"contents": "read", "actions": "read"}
    assert "environment" not in find
    lookup = next(s for s in find["steps"] if s.get("id") == "ci")
    assert "--workflow ci.yml --event push" in lookup["run"]
    assert '--branch main --commit "$GITHUB_SHA" --status success' in lookup["run"]
    assert lookup["env"]["STAGING_JOB"] == ci["jobs"]["staging"]["name"]
    download = next(s for s in find["steps"] if s.get("uses", "").startswith("actions/down"))
    assert download["with"] == {
        "name": "wheel",
        "path": "dist",
        "run-id": "${{ steps.ci.outputs.run-id }}",
        "github-token": "${{ github.token }}",
    }
    assert not any("uv build" in r for r in runs_of(find))

    prod = jobs["confluent-prod"]
    assert prod["needs"] == "tested-wheel"
    assert prod["environment"] == "prod"  # required reviewers, tags v* (repository settings)
    assert prod["permissions"] == {"contents": "read", "id-token": "write"}
    assert "astral-sh/setup-uv" not in uses_of(prod)
    assert runs_of(prod) == [
        "sha256sum --check SHA256SUMS",
        "databricks bundle validate -t confluent-prod --var wheel_build=",
        "databricks bundle deploy -t confluent-prod --var wheel_build=",
    ]
