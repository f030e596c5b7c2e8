"""The Databricks Asset Bundle, as the real Databricks CLI resolves and deploys it.

Real: the Databricks CLI (built from source by ``make databricks-cli``, found through
``AVROLAKE_DATABRICKS_CLI``), uv, the wheel it builds, the CLI's own JSON schema. The one fake is
``workspace_standin.WorkspaceStandIn``, a local HTTP server answering the few workspace endpoints
the CLI calls, because there is no workspace here; a request it has no route for fails the test.

A target's ``workspace.host`` wins over ``DATABRICKS_HOST`` (the CLI builds its client from the
bundle's host), so each CLI run works on a copy of the bundle in a temporary directory whose two
target host URLs, and nothing else, point at the stand-in.

What is checked, per target: ``bundle validate --strict`` passes; the three jobs, their tasks and
their exact parameters; every task runs the built wheel's console script; each job cluster carries
exactly its flavor's jars (plus the instance profile for MSK, the secret references for
Confluent) and the flavor option agrees; schedules and triggers paused in development only;
production's identity and permissions; no credential literal anywhere; the YAML matches
``databricks bundle schema``; the parameters parse with ``avrolake.cli.build_parser``. Then
``bundle deploy`` (direct engine) of each target, checking what reaches the Jobs, workspace-files
and permissions APIs.
"""

from __future__ import annotations

import configparser
import io
import json
import os
import re
import shutil
import subprocess
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from workspace_standin import WorkspaceStandIn

REPO = Path(__file__).resolve().parents[2]
BUNDLE_FILES = ("databricks.yml", "resources", "schemas", "pyproject.toml", "README.md", "src")
TARGETS = ("msk-dev", "confluent-prod")
HOSTS = {
    "msk-dev": "https://dbc-dev-msk.cloud.databricks.com",
    "confluent-prod": "https://dbc-prod-confluent.cloud.databricks.com",
}
DEVELOPER = "tester@example.com"  # deploys msk-dev
PROD_SP = "9f0e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f"  # prod_service_principal: CI deploys prod as it
IDENTITY = {"msk-dev": DEVELOPER, "confluent-prod": PROD_SP}

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
    "--topic", "products", "--glue-registry", "avrolake", "--region", "us-east-1",
]  # fmt: skip
CONFLUENT_CONNECTION = [
    "--flavor", "confluent", "--kafka-auth", "sasl-plain",
    "--bootstrap-servers", "pkc-a1b2c.us-east-1.aws.confluent.cloud:9092",
    "--topic", "products",
    "--registry-url", "https://psrc-d3e4f.us-east-1.aws.confluent.cloud",
]  # fmt: skip


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
        pause_status="PAUSED",
        name_prefix="[dev tester] ",
    ),
    "confluent-prod": Expected(
        mode="production",
        flavor="confluent",
        jars=CONFLUENT_JARS,
        connection=CONFLUENT_CONNECTION,
        catalog="avrolake",
        schema="products",
        flavor_cluster={
            "spark_env_vars": {
                "CONFLUENT_API_KEY": "{{secrets/avrolake/kafka-api-key}}",
                "CONFLUENT_API_SECRET": "{{secrets/avrolake/kafka-api-secret}}",
                "SCHEMA_REGISTRY_USER": "{{secrets/avrolake/registry-api-key}}",
                "SCHEMA_REGISTRY_PASSWORD": "{{secrets/avrolake/registry-api-secret}}",
            }
        },
        num_workers=2,
        pause_status="UNPAUSED",
        name_prefix="",
    ),
}


def expected_parameters(target: str) -> dict[tuple[str, str], list[str]]:
    """(job, task) -> the exact argv after ``avrolake``."""
    e = EXPECTED[target]
    files = f"/Workspace/Users/{IDENTITY[target]}/.bundle/avrolake/{target}/files"
    schemas_dir = f"{files}/schemas/product"
    tables = ["--catalog", e.catalog, "--schema", e.schema,
              "--checkpoint-root", f"/Volumes/{e.catalog}/{e.schema}/checkpoints"]  # fmt: skip
    return {
        ("producer", "register_schemas"): [
            "schemas", "register", "--dir", schemas_dir, "--mode", "FULL_TRANSITIVE",
            *e.connection,
        ],
        ("producer", "produce"): [
            "produce", "--mix", "v1=0.2,v2=0.5,v3=0.3", "--duration", "600", "--rate", "50",
            "--schemas-dir", schemas_dir, *e.connection,
        ],
        ("ingest", "ingest"): [
            "ingest", *tables, "--trigger", "continuous", "--starting-offsets", "earliest",
            "--max-offsets-per-trigger", "10000", *e.connection,
        ],
        ("medallion", "silver"): ["silver", *tables, "--trigger", "available-now", *e.connection],
        ("medallion", "gold"): ["gold", *tables, "--trigger", "available-now"],
    }  # fmt: skip


DEPENDS_ON = {
    ("producer", "register_schemas"): [],
    ("producer", "produce"): ["register_schemas"],
    ("ingest", "ingest"): [],
    ("medallion", "silver"): [],
    ("medallion", "gold"): ["silver"],
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


@pytest.fixture(scope="session")
def databricks_cli() -> Path:
    raw = os.environ.get("AVROLAKE_DATABRICKS_CLI")
    if not raw:
        pytest.fail(
            "AVROLAKE_DATABRICKS_CLI is not set. Run the tests with `make test`, or run "
            "`make databricks-cli` and export AVROLAKE_DATABRICKS_CLI to the path it builds "
            "($HOME/.cache/avrolake/bin/databricks-<version>).",
            pytrace=False,
        )
    path = Path(raw)
    if not path.is_file():
        pytest.fail(f"AVROLAKE_DATABRICKS_CLI={raw} does not exist: run `make databricks-cli`.")
    return path


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


@pytest.fixture(scope="session")
def cli_base_env(uv: Path) -> dict[str, str]:
    """This process's environment without Databricks settings or bundle variable overrides, with
    uv on PATH (the artifact build runs `uv build --wheel`) and uv's warm cache kept."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "BUNDLE_VAR_"))}
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


def run_cli(cli: Path, base_env: dict[str, str], root: Path, target: str, *args: str) -> CliRun:
    """Run ``databricks <args> -t <target>`` on a fresh bundle copy against a fresh stand-in,
    which stops when the CLI exits but keeps what it recorded."""
    with WorkspaceStandIn(user_name=IDENTITY[target]) as workspace:
        bundle = copy_bundle(root / "bundle", workspace.url)
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
    assert config["artifacts"]["default"]["type"] == "whl"
    assert config["artifacts"]["default"]["build"] == "uv build --wheel"
    assert config["sync"]["paths"] == ["schemas"]


@pytest.mark.parametrize("target", TARGETS)
def test_the_three_jobs_and_their_tasks(validated: dict[str, CliRun], target: str) -> None:
    jobs = validated[target].config["resources"]["jobs"]
    assert sorted(jobs) == ["ingest", "medallion", "producer"]
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
            assert len(task["libraries"]) == 1 + len(expected.jars)  # the wheel + the jars
        assert installed == expected.jars, job_key
        assert cluster["new_cluster"] == {
            "spark_version": "17.3.x-scala2.13",
            "node_type_id": "m6i.xlarge",
            "num_workers": expected.num_workers,
            "data_security_mode": "SINGLE_USER",
            **expected.flavor_cluster,
        }, job_key


@pytest.mark.parametrize("target", TARGETS)
def test_the_flavor_option_agrees_with_the_jars(validated: dict[str, CliRun], target: str) -> None:
    for key, task in tasks_of(validated[target].config).items():
        params = task["python_wheel_task"]["parameters"]
        installed = set(maven_of(task))
        flavors_by_jar = {f for f, jar in FLAVOR_MARKER_JAR.items() if jar in installed}
        assert flavors_by_jar == {EXPECTED[target].flavor}, key
        if key != ("medallion", "gold"):  # gold reads silver tables, no connection options
            assert params.count("--flavor") == 1, key
            assert params[params.index("--flavor") + 1] == EXPECTED[target].flavor, key


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


def test_production_runs_as_the_service_principal_with_permissions(
    validated: dict[str, CliRun],
) -> None:
    prod = validated["confluent-prod"].config
    assert prod["workspace"]["root_path"] == (
        f"/Workspace/Users/{PROD_SP}/.bundle/avrolake/confluent-prod"
    )
    assert prod["run_as"] == {"service_principal_name": PROD_SP}
    for key, job in prod["resources"]["jobs"].items():
        assert job["run_as"] == {"service_principal_name": PROD_SP}, key
        assert job["permissions"] == [
            {"group_name": "users", "level": "CAN_VIEW"},
            {"group_name": "avrolake-admins", "level": "CAN_MANAGE"},
            {"service_principal_name": PROD_SP, "level": "IS_OWNER"},
        ], key

    dev = validated["msk-dev"].config
    assert dev["workspace"]["root_path"] == f"/Workspace/Users/{DEVELOPER}/.bundle/avrolake/msk-dev"
    assert "run_as" not in dev
    for key, job in dev["resources"]["jobs"].items():
        assert "run_as" not in job and "permissions" not in job, key
        assert job["tags"] == {"dev": "tester"}, key


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
CREDENTIAL_NAME = re.compile(r"(?i)password|passwd|secret|token|api_?key|credential")
_NAME = r"(?:[\w.-]+|\$\{var\.\w+\})"  # a name, or a bundle variable holding one
REFERENCE = re.compile(
    rf"\{{\{{secrets/{_NAME}/{_NAME}\}}\}}"  # a Databricks secret reference
    r"|\$\{[\w.\[\]-]+\}"  # a bundle variable
    r"|\$\{\{\s*(secrets|vars)\.\w+\s*\}\}"  # a GitHub Actions secret or variable
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
    texts = {str(f.relative_to(REPO)): f.read_text() for f in files}
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
    assert len(files) == 4
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
    from avrolake.cli import build_parser

    for key, task in tasks_of(validated[target].config).items():
        params = task["python_wheel_task"]["parameters"]
        try:
            args = build_parser().parse_args(params)
        except SystemExit:
            pytest.fail(f"{target} {key}: avrolake rejects {params}:\n{capsys.readouterr().err}")
        assert args.command == params[0], key
        if key != ("medallion", "gold"):
            assert args.flavor == EXPECTED[target].flavor, key


# -- deploy ---------------------------------------------------------------------------------------


def as_sent(job: dict[str, Any], wheel_path: str) -> dict[str, Any]:
    """A validated job as the Jobs API should receive it: the wheel uploaded, ACLs sent apart."""
    sent = json.loads(json.dumps(job).replace('"dist/*.whl"', json.dumps(wheel_path)))
    sent.pop("permissions", None)
    return sent


@pytest.mark.parametrize("target", TARGETS)
def test_deploy_sends_the_validated_jobs_and_uploads_wheel_and_schemas(
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
        f"{root}/files/{p.relative_to(REPO)}": p.read_bytes()
        for p in sorted((REPO / "schemas").rglob("*"))
        if p.is_file()
    }
    assert f"{root}/files/schemas/product/v1.avsc" in synced

    created = {job["name"]: job for job in run.workspace.jobs.values()}
    expected = {
        job["name"]: as_sent(job, wheel_path)
        for job in validated[target].config["resources"]["jobs"].values()
    }
    assert created == expected


def level(permission: str) -> dict[str, Any]:
    """An ACL entry's permission as the stand-in stores it."""
    return {"all_permissions": [{"permission_level": permission}]}


def test_deploy_to_production_sets_the_acls(deployed: dict[str, CliRun]) -> None:
    workspace = deployed["confluent-prod"].workspace
    job_acls = {
        object_id: acl for (kind, object_id), acl in workspace.permissions.items() if kind == "jobs"
    }
    assert sorted(job_acls) == sorted(workspace.jobs)
    for object_id, acl in job_acls.items():
        assert acl == [
            {"group_name": "users", **level("CAN_VIEW")},
            {"group_name": "avrolake-admins", **level("CAN_MANAGE")},
            {"service_principal_name": PROD_SP, **level("IS_OWNER")},
        ], object_id
    folders = [acl for (kind, _), acl in workspace.permissions.items() if kind == "directories"]
    assert folders == [  # the deployment's root folder
        [
            {"group_name": "users", **level("CAN_READ")},
            {"group_name": "avrolake-admins", **level("CAN_MANAGE")},
            {"service_principal_name": PROD_SP, **level("CAN_MANAGE")},
        ]
    ]
    # Development deploys set no ACL at all.
    assert deployed["msk-dev"].workspace.permissions == {}
