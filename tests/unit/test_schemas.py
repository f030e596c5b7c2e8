"""Loading the schema versions and checking them with Apache Avro's resolution rules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from avrolake.errors import SchemaError
from avrolake.schemas import (
    check_compatibility,
    glue_mode,
    load_schema,
    load_versions,
    normalize_mode,
)

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "schemas" / "product"
AVROLAKE = Path(sys.executable).parent / "avrolake"


def _v3() -> dict:
    return json.loads((SCHEMAS / "v3.avsc").read_text())


def _write(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return path


def test_versions_load_in_numeric_order() -> None:
    versions = load_versions(SCHEMAS)
    assert [(v.label, v.number) for v in versions] == [("v1", 1), ("v2", 2), ("v3", 3)]
    assert [v.field_names for v in versions] == [
        ["productId", "eventId", "type", "timestamp"],
        ["productId", "eventId", "type", "size", "color", "timestamp"],
        ["productId", "eventId", "type", "size", "color", "timestamp", "price", "updatedAt"],
    ]
    assert all(v.parsed.fullname == "com.company.product.Product" for v in versions)
    assert all(v.parsed.doc == "Schema for Products" for v in versions)
    assert all(field.doc for v in versions for field in v.parsed.fields)
    assert versions[0].text == json.dumps(json.loads((SCHEMAS / "v1.avsc").read_text()))


def test_v10_sorts_after_v9(tmp_path: Path) -> None:
    v1 = json.loads((SCHEMAS / "v1.avsc").read_text())
    for n in (10, 9, 2):
        _write(tmp_path / f"v{n}.avsc", v1)
    _write(tmp_path / "notes.txt", "not a schema")
    assert [v.label for v in load_versions(tmp_path)] == ["v2", "v9", "v10"]


def test_shipped_versions_are_full_transitive() -> None:
    checked = check_compatibility(load_versions(SCHEMAS), "FULL_TRANSITIVE")
    assert [(p.new.label, p.old.label, p.directions) for p in checked] == [
        ("v2", "v1", ("backward", "forward")),
        ("v3", "v1", ("backward", "forward")),
        ("v3", "v2", ("backward", "forward")),
    ]
    assert [
        (p.new.label, p.old.label) for p in check_compatibility(load_versions(SCHEMAS), "BACKWARD")
    ] == [("v2", "v1"), ("v3", "v2")]
    assert check_compatibility(load_versions(SCHEMAS), "NONE") == []


def test_required_field_without_default_fails_backward(tmp_path: Path) -> None:
    v4 = _v3()
    v4["fields"].append({"name": "warehouse", "type": "string", "doc": "where it is stocked"})
    candidate = load_schema(_write(tmp_path / "v4.avsc", v4), number=4)
    with pytest.raises(SchemaError) as error:
        check_compatibility([*load_versions(SCHEMAS), candidate], "FULL_TRANSITIVE")
    assert str(error.value) == (
        "v4 is not FULL_TRANSITIVE compatible with v1: v4 cannot read data written with v1: "
        "field 'warehouse' (/fields/8): missing from the writer's data and has no default "
        "(reader_field_missing_default_value: warehouse)"
    )
    # FORWARD only asks old readers to read v4 data, which they can: the extra field is skipped.
    assert len(check_compatibility([*load_versions(SCHEMAS), candidate], "FORWARD")) == 3


def test_type_change_fails_forward_and_backward(tmp_path: Path) -> None:
    v4 = _v3()
    v4["fields"][5]["type"] = "string"  # timestamp: long -> string
    candidate = load_schema(_write(tmp_path / "v4.avsc", v4), number=4)
    with pytest.raises(SchemaError) as error:
        check_compatibility([*load_versions(SCHEMAS), candidate], "FORWARD")
    assert str(error.value) == (
        "v4 is not FORWARD compatible with v3: v3 cannot read data written with v4: "
        "field 'timestamp' (/fields/5/type): types differ "
        "(type_mismatch: reader type: long not compatible with writer type: string)"
    )
    with pytest.raises(
        SchemaError, match=r"^v4 is not BACKWARD_TRANSITIVE compatible with v1: v4 "
    ):
        check_compatibility([*load_versions(SCHEMAS), candidate], "BACKWARD_ALL")


def test_modes_in_either_spelling() -> None:
    assert normalize_mode("full_all") == "FULL_TRANSITIVE"
    assert normalize_mode("backward-transitive") == "BACKWARD_TRANSITIVE"
    assert normalize_mode("DISABLED") == "NONE"
    assert [
        glue_mode(m) for m in ("FULL_TRANSITIVE", "BACKWARD", "forward_transitive", "NONE")
    ] == ["FULL_ALL", "BACKWARD", "FORWARD_ALL", "NONE"]
    with pytest.raises(SchemaError) as error:
        normalize_mode("SIDEWAYS")
    assert str(error.value) == (
        "unknown compatibility mode 'SIDEWAYS'; use one of: NONE, BACKWARD, BACKWARD_TRANSITIVE, "
        "FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE"
    )


def test_missing_directory_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(SchemaError) as error:
        load_versions(tmp_path / "nope")
    assert str(error.value) == f"schema directory {tmp_path / 'nope'} does not exist"
    with pytest.raises(SchemaError) as error:
        load_versions(tmp_path)
    assert str(error.value) == f"no v<N>.avsc files in {tmp_path}"


def test_invalid_json_names_the_file_and_position(tmp_path: Path) -> None:
    path = _write(tmp_path / "v1.avsc", '{"type": "record",\n "name": }')
    with pytest.raises(SchemaError) as error:
        load_versions(tmp_path)
    assert str(error.value) == f"{path} is not valid JSON: Expecting value at line 2 column 10"


def test_invalid_avro_names_the_file(tmp_path: Path) -> None:
    bad = json.loads((SCHEMAS / "v1.avsc").read_text())
    bad["fields"][0]["type"] = "strnig"
    path = _write(tmp_path / "v1.avsc", bad)
    with pytest.raises(SchemaError) as error:
        load_versions(tmp_path)
    assert str(error.value) == (
        f'{path} is not a valid Avro schema: Type property "strnig" not a valid Avro schema: '
        "Could not make an Avro Schema object from strnig"
    )
    path = _write(tmp_path / "v1.avsc", {"type": "string"})
    with pytest.raises(SchemaError) as error:
        load_versions(tmp_path)
    assert str(error.value) == f"{path} must define an Avro record, not string"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AVROLAKE), "schemas", *args], cwd=REPO, capture_output=True, text=True, timeout=60
    )


def test_cli_check_prints_a_table() -> None:
    result = _cli("check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "schemas/product: 3 versions are FULL_TRANSITIVE compatible",
        "version    fields  checked against",
        "v1              4  -",
        "v2              6  v1",
        "v3              8  v1, v2",
    ]


def test_cli_check_rejects_an_incompatible_candidate(tmp_path: Path) -> None:
    v4 = _v3()
    v4["fields"].append({"name": "warehouse", "type": "string"})
    candidate = _write(tmp_path / "v4.avsc", v4)
    result = _cli("check", "--candidate", str(candidate))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "avrolake schemas: v4 is not FULL_TRANSITIVE compatible with v1: v4 cannot read data "
        "written with v1: field 'warehouse' (/fields/8): missing from the writer's data and has "
        "no default (reader_field_missing_default_value: warehouse)\n"
    )


def test_cli_check_bad_inputs_are_one_line(tmp_path: Path) -> None:
    missing = _cli("check", "--dir", str(tmp_path / "nope"))
    assert (missing.returncode, missing.stderr) == (
        1,
        f"avrolake schemas: schema directory {tmp_path / 'nope'} does not exist\n",
    )
    _write(tmp_path / "v1.avsc", "{")
    invalid = _cli("check", "--dir", str(tmp_path))
    assert (invalid.returncode, invalid.stderr) == (
        1,
        f"avrolake schemas: {tmp_path / 'v1.avsc'} is not valid JSON: "
        "Expecting property name enclosed in double quotes at line 1 column 2\n",
    )
    mode = _cli("check", "--mode", "SIDEWAYS")
    assert mode.returncode == 1
    assert mode.stderr.startswith("avrolake schemas: unknown compatibility mode 'SIDEWAYS'")
    assert mode.stderr.count("\n") == 1
