"""Where a local Spark session's connector jars come from, without starting Spark:
``AVROLAKE_SPARK_JARS``, else the ``avrolake.spark_jars`` entry point (the dev package's jar
cache), else Maven coordinates Spark resolves itself, pinned as in ``jvm/pom.xml``."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from avrolake import spark
from avrolake.errors import ConfigError
from avrolake_dev.local import jars

REPO = Path(__file__).resolve().parents[2]
POM = REPO / "jvm" / "pom.xml"


@dataclass(frozen=True)
class FakeEntryPoint:
    name: str
    jars: list[Path]

    def load(self) -> object:
        return lambda: self.jars


def test_the_environment_variable_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "a.jar", tmp_path / "b.jar"
    first.touch()
    second.touch()
    monkeypatch.setattr(spark, "entry_points", lambda group: pytest.fail("asked entry points"))
    monkeypatch.setenv("AVROLAKE_SPARK_JARS", f"{first},{second}")
    assert spark.spark_jar_conf() == {"spark.jars": f"{first},{second}"}
    monkeypatch.setenv("AVROLAKE_SPARK_JARS", f"{first}{os.pathsep}{second}")
    assert spark.spark_jar_conf() == {"spark.jars": f"{first},{second}"}


def test_a_missing_jar_in_the_variable_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AVROLAKE_SPARK_JARS", str(tmp_path / "gone.jar"))
    with pytest.raises(ConfigError) as caught:
        spark.spark_jar_conf()
    assert str(caught.value) == (
        f"AVROLAKE_SPARK_JARS names jars that do not exist: {tmp_path / 'gone.jar'}"
    )


def test_an_entry_point_provides_the_jars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AVROLAKE_SPARK_JARS", raising=False)
    providers = [FakeEntryPoint("z", [Path("/z.jar")]), FakeEntryPoint("a", [Path("/a.jar")])]
    monkeypatch.setattr(spark, "entry_points", lambda group: providers)
    assert spark.spark_jar_conf() == {"spark.jars": "/a.jar"}  # the first by name, alone


def test_the_dev_package_registers_its_jar_cache() -> None:
    from importlib.metadata import entry_points

    (provider,) = entry_points(group=spark.SPARK_JARS_ENTRY_POINTS)
    assert provider.value == "avrolake_dev.local.jars:spark_jars"
    assert provider.load() is jars.spark_jars


def test_without_either_spark_resolves_the_pinned_packages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AVROLAKE_SPARK_JARS", raising=False)
    monkeypatch.setattr(spark, "entry_points", lambda group: [])
    assert spark.spark_jar_conf() == {"spark.jars.packages": ",".join(spark.SPARK_PACKAGES)}


def test_the_pinned_packages_are_the_poms_spark_profile() -> None:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    root = ET.parse(POM).getroot()
    props = {el.tag.split("}")[1]: el.text or "" for el in root.find("m:properties", ns) or []}
    (profile,) = [p for p in root.iterfind("m:profiles/m:profile", ns)
                  if p.findtext("m:id", namespaces=ns) == "spark"]  # fmt: skip
    coordinates = []
    for dep in profile.iterfind("m:dependencies/m:dependency", ns):
        group, artifact, version = (dep.findtext(f"m:{f}", "", ns)
                                    for f in ("groupId", "artifactId", "version"))  # fmt: skip
        version = props[version[2:-1]] if version.startswith("${") else version
        coordinates.append(f"{group}:{artifact}:{version}")
    assert tuple(coordinates) == spark.SPARK_PACKAGES


def test_the_pom_is_the_checkouts_unless_the_environment_names_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AVROLAKE_POM", raising=False)
    assert jars.pom_path() == POM
    other = tmp_path / "pom.xml"
    other.write_text("<project/>")
    monkeypatch.setenv("AVROLAKE_POM", str(other))
    assert jars.pom_path() == other
    monkeypatch.setenv("AVROLAKE_POM", str(tmp_path / "missing.xml"))
    with pytest.raises(ConfigError, match=r"^AVROLAKE_POM=.*missing\.xml is not a file$"):
        jars.pom_path()
