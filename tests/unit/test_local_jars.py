"""The jar cache: artifact names, the filtered spark.jars list, caching, and a missing Maven."""

from __future__ import annotations

from pathlib import Path

import pytest

from avrolake.errors import ConfigError, LocalStackError
from avrolake_dev.local import jars


@pytest.mark.parametrize(
    ("file_name", "artifact"),
    [
        ("jackson-core-2.21.2.jar", "jackson-core"),
        ("jackson-annotations-2.21.jar", "jackson-annotations"),
        ("spark-sql-kafka-0-10_2.13-4.2.0.jar", "spark-sql-kafka-0-10_2.13"),
        ("delta-spark_4.2_2.13-4.4.0.jar", "delta-spark_4.2_2.13"),
        ("zstd-jni-1.5.7-3.jar", "zstd-jni"),
        ("commons-pool2-2.13.1.jar", "commons-pool2"),
        ("netty-common-4.1.118.Final.jar", "netty-common"),
        ("RoaringBitmap-0.9.25.jar", "RoaringBitmap"),
        ("no-version.jar", "no-version"),
    ],
)
def test_artifact_name_strips_the_version(file_name: str, artifact: str) -> None:
    assert jars.artifact_name(file_name) == artifact


def test_spark_jars_are_only_what_pyspark_lacks() -> None:
    names = [jars.artifact_name(jar.name) for jar in jars.spark_jars()]
    assert names == [
        "commons-pool2",
        "delta-kernel-api",
        "delta-kernel-defaults",
        "delta-kernel-unitycatalog",
        "delta-spark_4.2_2.13",
        "delta-storage",
        "jackson-datatype-jdk8",
        "javax.annotation-api",
        "kafka-clients",
        "shims",
        "spark-avro_2.13",
        "spark-sql-kafka-0-10_2.13",
        "spark-token-provider-kafka-0-10_2.13",
        "unitycatalog-client",
        "unitycatalog-hadoop",
    ]
    shipped = {jars.artifact_name(p.name) for p in jars.pyspark_jars_dir().glob("*.jar")}
    assert shipped.isdisjoint(names)


def test_a_resolved_profile_is_served_from_the_cache_without_maven(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolved = jars.resolve("kafka")
    monkeypatch.setenv("PATH", "/nonexistent")  # neither mvn nor java: a Maven run would fail
    assert jars.resolve("kafka") == resolved
    assert jars.kafka_classpath() == f"{resolved}/*"


def test_kafka_classpath_logs_through_slf4j_2() -> None:
    names = sorted(p.name for p in jars.resolve("kafka").glob("slf4j-api-*.jar"))
    assert names == ["slf4j-api-2.0.17.jar"]
    assert (jars.resolve("kafka") / "log4j-slf4j2-impl-2.24.3.jar").is_file()


def test_apicurio_runner_is_the_unpacked_quarkus_jar() -> None:
    runner = jars.apicurio_runner()
    assert runner.name == "apicurio-registry-app-3.0.9-runner.jar"
    assert (runner.parent / "lib").is_dir()


def test_missing_maven_is_one_line_naming_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AVROLAKE_CACHE", str(tmp_path))  # an empty cache: must resolve
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(LocalStackError) as caught:
        jars.resolve("spark")
    assert str(caught.value) == (
        "mvn not found on PATH: install Maven 3.8+ (apt-get install maven, brew install maven)"
    )


def test_unknown_profile_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        jars.resolve("flink")
    assert str(caught.value) == "unknown jar profile 'flink': use one of spark, kafka, apicurio"
