"""JVM artifacts of ``jvm/pom.xml``, resolved by Maven into ``cache_dir()/jars/<profile>``.

Each profile lands in its own directory together with a marker naming the pom's SHA-256, so a
re-run with an unchanged pom reads one small file per profile and never starts Maven. A changed
pom re-resolves into a staging directory that replaces the old one only when complete.

- ``spark``: connectors the pyspark wheel lacks (Kafka source, Avro functions, Delta).
  ``spark_jars()`` drops every jar whose artifact pyspark already ships, whatever its version:
  two versions of jackson or parquet on one classpath break Spark at run time.
- ``kafka``: the broker's classpath (``kafka_classpath()``).
- ``apicurio``: the registry's runner jar (``apicurio_runner()``), unpacked from its tar.gz.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

from avrolake.errors import ConfigError, LocalStackError
from avrolake.settings import cache_dir
from avrolake_dev.local.jvm import JAVA_FIX
from avrolake_dev.local.lock import file_lock
from avrolake_dev.local.proc import require_tool

PROFILES = ("spark", "kafka", "apicurio")
POM_ENV = "AVROLAKE_POM"

MVN_FIX = "install Maven 3.8+ (apt-get install maven, brew install maven)"
MAVEN_CENTRAL = "https://repo.maven.apache.org/maven2"
WAGON_PLUGIN = "org.codehaus.mojo:wagon-maven-plugin:2.0.2"
MVN_TIMEOUT_S = 1200  # a cold resolution of every profile takes a few minutes
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
_MARKER = ".avrolake-resolved"
_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
# name-version.jar, where the version is the first "-<digits>" tail made of dot/dash-separated
# alphanumerics: "spark-sql-kafka-0-10_2.13-4.2.0.jar" → "spark-sql-kafka-0-10_2.13".
_JAR_NAME = re.compile(r"^(?P<name>.+?)-(?P<version>\d+(?:\.\d+)*(?:[-.][A-Za-z0-9]+)*)\.jar$")

log = logging.getLogger(__name__)


def pom_path() -> Path:
    """``$AVROLAKE_POM``, else ``jvm/pom.xml`` of the checkout this package is installed from.

    avrolake-dev is a workspace member of that checkout, installed editable (``uv sync``), so its
    sources sit in ``<checkout>/dev/src``; the nearest directory above them with a ``jvm/pom.xml``
    is the checkout.
    """
    raw = os.environ.get(POM_ENV)
    if raw:
        pom = Path(raw).expanduser()
        if not pom.is_file():
            raise ConfigError(f"{POM_ENV}={raw} is not a file")
        return pom
    here = Path(__file__).resolve()
    for directory in here.parents:
        if (directory / "jvm" / "pom.xml").is_file():
            return directory / "jvm" / "pom.xml"
    raise LocalStackError(
        f"no jvm/pom.xml above {here.parent}: install avrolake-dev from a checkout of the avrolake "
        f"repository (`uv sync`), or set {POM_ENV}"
    )


def jars_root() -> Path:
    return cache_dir() / "jars"


def artifact_name(jar_file: str) -> str:
    """The artifact of a Maven jar file name: ``jackson-core-2.21.2.jar`` → ``jackson-core``."""
    match = _JAR_NAME.match(jar_file)
    return match.group("name") if match else jar_file.removesuffix(".jar")


def resolve(profile: str) -> Path:
    """The directory holding ``profile``'s artifacts, running Maven first unless already current.

    Raises ``LocalStackError`` when ``mvn`` or ``java`` is missing or Maven fails.
    """
    if profile not in PROFILES:
        raise ConfigError(f"unknown jar profile {profile!r}: use one of {', '.join(PROFILES)}")
    pom = pom_path()
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    target = jars_root() / profile
    if _is_current(target, digest):
        return target
    with file_lock(jars_root() / ".lock", timeout=1800, what="jar resolution"):
        if _is_current(target, digest):  # resolved by another process while we waited
            return target
        mvn = require_tool("mvn", MVN_FIX)
        require_tool("java", JAVA_FIX)
        log.info("resolving %s jars with Maven into %s (first run downloads)", profile, target)
        staging = target.with_name(f".{profile}.staging")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        if profile == "apicurio":
            _fetch_apicurio(mvn, pom, staging)
        else:
            _mvn(mvn, pom, profile, ["-P", profile, "dependency:copy-dependencies",
                 "-DincludeScope=runtime", f"-DoutputDirectory={staging}"])  # fmt: skip
        files = sorted(p.name for p in staging.iterdir())
        (staging / _MARKER).write_text(json.dumps({"pom_sha256": digest, "files": files}))
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        log.info("resolved %s: %d files", profile, len(files))
    return target


def resolve_all() -> dict[str, Path]:
    return {profile: resolve(profile) for profile in PROFILES}


def pyspark_jars_dir() -> Path:
    """The jars Spark itself runs with: ``$SPARK_HOME/jars`` if set, else the pyspark wheel's."""
    spark_home = os.environ.get("SPARK_HOME")
    if spark_home and (Path(spark_home) / "jars").is_dir():
        return Path(spark_home) / "jars"
    try:
        import pyspark
    except ImportError:
        raise ConfigError(
            "pyspark is not installed: run `make` (or `uv sync --all-extras`)"
        ) from None
    return Path(pyspark.__file__).parent / "jars"


def spark_jars() -> list[Path]:
    """The cached ``spark`` profile jars whose artifact Spark does not already ship, sorted."""
    shipped = {artifact_name(p.name) for p in pyspark_jars_dir().glob("*.jar")}
    return sorted(
        jar for jar in resolve("spark").glob("*.jar") if artifact_name(jar.name) not in shipped
    )


def kafka_classpath() -> str:
    """A ``java -cp`` value holding the broker and its logging binding."""
    return str(resolve("kafka") / "*")


def apicurio_runner() -> Path:
    """The executable jar of Apicurio Registry (``java -jar`` it)."""
    home = resolve("apicurio")
    found = sorted(home.rglob("*-runner.jar")) or sorted(home.rglob("quarkus-run.jar"))
    if not found:
        raise LocalStackError(f"no runner jar in {home}; delete that directory and rerun")
    return found[0]


def _is_current(target: Path, digest: str) -> bool:
    try:
        marker = json.loads((target / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("pom_sha256") == digest and all(
        (target / name).exists() for name in marker.get("files", [])
    )


def _mvn(mvn: str, pom: Path, profile: str, args: list[str]) -> None:
    command = [mvn, "-q", "-B", "-f", str(pom), *args]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=MVN_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        raise LocalStackError(
            f"Maven took over {MVN_TIMEOUT_S}s resolving the {profile} jars (a stalled download?); "
            "rerun `avrolake local jars`"
        ) from None
    if result.returncode != 0:
        lines = (result.stdout + result.stderr).splitlines()
        errors = [line for line in lines if "[ERROR]" in line] or lines or ["no output"]
        reason = errors[0].replace("[ERROR]", "").strip()
        raise LocalStackError(
            f"Maven could not resolve the {profile} jars ({reason}); rerun without -q to see "
            f"why: {' '.join(command)}"
        )


def _pom_properties(pom: Path) -> dict[str, str]:
    root = ET.parse(pom).getroot()
    props = root.find("m:properties", _POM_NS)
    return {} if props is None else {el.tag.split("}")[1]: (el.text or "") for el in props}


def _interpolate(value: str, props: dict[str, str]) -> str:
    return re.sub(r"\$\{([^}]+)\}", lambda m: props.get(m.group(1), m.group(0)), value)


def _apicurio_coordinates(pom: Path) -> tuple[str, str, str, str, str]:
    root = ET.parse(pom).getroot()
    props = _pom_properties(pom)
    for profile in root.iterfind("m:profiles/m:profile", _POM_NS):
        if profile.findtext("m:id", namespaces=_POM_NS) != "apicurio":
            continue
        dep = profile.find("m:dependencies/m:dependency", _POM_NS)
        if dep is not None:
            fields = ("groupId", "artifactId", "version", "classifier", "type")
            group, artifact, version, classifier, kind = (
                _interpolate(dep.findtext(f"m:{f}", "", _POM_NS), props) for f in fields
            )
            return group, artifact, version, classifier, kind
    raise LocalStackError(f"{pom} has no apicurio profile with a dependency")


def _fetch_apicurio(mvn: str, pom: Path, staging: Path) -> None:
    # The app's parent pom (io.apicurio:apicurio-registry:3.0.9) is not on Maven Central, so Maven
    # cannot read the artifact's descriptor and dependency:copy(-dependencies) fails. The archive
    # itself is there: fetch it by path with the wagon plugin and check it against Central's SHA-1.
    group, artifact, version, classifier, kind = _apicurio_coordinates(pom)
    name = f"{artifact}-{version}-{classifier}.{kind}"
    remote = f"{group.replace('.', '/')}/{artifact}/{version}/{name}"
    download = staging / ".download"
    for suffix in ("", ".sha1"):
        _mvn(mvn, pom, "apicurio", [f"{WAGON_PLUGIN}:download-single",
             f"-Dwagon.url={MAVEN_CENTRAL}", f"-Dwagon.fromFile={remote}{suffix}",
             f"-Dwagon.toDir={download}"])  # fmt: skip
    archive = download / name
    expected = (download / f"{name}.sha1").read_text().split()[0].strip().lower()
    actual = hashlib.sha1(archive.read_bytes()).hexdigest()
    if actual != expected:
        raise LocalStackError(f"{name} failed its SHA-1 check ({actual} != {expected}); rerun")
    with tarfile.open(archive) as tar:
        tar.extractall(staging, filter="data")
    shutil.rmtree(download)
