"""The evolving Avro schemas: load ``v<N>.avsc`` files and check them against each other.

Compatibility is decided by Apache Avro's own schema-resolution checker
(``avro.compatibility.ReaderWriterCompatibilityChecker``), the same rules a reader applies when it
decodes data written with another version; nothing here re-implements them.

Modes use the Confluent names (``BACKWARD``, ``BACKWARD_TRANSITIVE``, ``FORWARD``, ...,
``FULL_TRANSITIVE``, ``NONE``); the Glue spellings (``BACKWARD_ALL``, ...) are accepted too and
``glue_mode`` maps back to them.

=====================  ======================================  ==============================
mode                   each new version is checked against     direction
=====================  ======================================  ==============================
BACKWARD               the version just before it              the new one reads old data
FORWARD                the version just before it              the old one reads new data
FULL                   the version just before it              both
``*_TRANSITIVE``       every earlier version                   as above
NONE                   nothing (the files must still parse)    -
=====================  ======================================  ==============================
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import avro.errors
import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from avrolake.errors import SchemaError

VERSION_FILE = re.compile(r"^v(\d+)\.avsc$")

MODES = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)
_GLUE_ALIASES = {
    "BACKWARD_ALL": "BACKWARD_TRANSITIVE",
    "FORWARD_ALL": "FORWARD_TRANSITIVE",
    "FULL_ALL": "FULL_TRANSITIVE",
    "DISABLED": "NONE",
}

_REASONS = {
    "reader_field_missing_default_value": "missing from the writer's data and has no default",
    "type_mismatch": "types differ",
    "name_mismatch": "record names differ",
    "fixed_size_mismatch": "fixed sizes differ",
    "missing_enum_symbols": "the reader's enum lacks symbols the writer uses",
    "missing_union_branch": "the reader's union lacks a branch the writer uses",
}


@dataclass(frozen=True)
class SchemaVersion:
    """One schema file. ``text`` is the form registered and handed to serializers:
    ``json.dumps`` of the parsed file, so every client sends byte-identical definitions (the
    Glue serializer looks versions up by exact definition)."""

    label: str  # "v3", or the candidate's file stem
    number: int
    path: Path
    text: str
    parsed: avro.schema.RecordSchema

    @property
    def field_names(self) -> list[str]:
        return [field.name for field in self.parsed.fields]


@dataclass(frozen=True)
class CheckedPair:
    """A successful check: ``new`` against ``old`` in the given directions."""

    new: SchemaVersion
    old: SchemaVersion
    directions: tuple[str, ...]  # "backward" (new reads old) and/or "forward" (old reads new)


def normalize_mode(mode: str) -> str:
    """Upper-case Confluent name for a Confluent or Glue compatibility mode; ConfigError-free:
    an unknown mode is a ``SchemaError`` naming the accepted ones."""
    upper = mode.strip().upper().replace("-", "_")
    upper = _GLUE_ALIASES.get(upper, upper)
    if upper not in MODES:
        raise SchemaError(f"unknown compatibility mode {mode!r}; use one of: {', '.join(MODES)}")
    return upper


def glue_mode(mode: str) -> str:
    """Glue's name for a compatibility mode (``FULL_TRANSITIVE`` → ``FULL_ALL``)."""
    return normalize_mode(mode).replace("_TRANSITIVE", "_ALL")


def load_schema(path: Path, *, number: int = 0, label: str | None = None) -> SchemaVersion:
    """Parse one ``.avsc`` file; ``SchemaError`` naming the file if it is unreadable, not JSON,
    not valid Avro, or not a record."""
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SchemaError(f"cannot read schema file {path}: {error.strerror}") from None
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as error:
        raise SchemaError(
            f"{path} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    text = json.dumps(document)
    try:
        parsed = avro.schema.parse(text)
    except (avro.errors.AvroException, TypeError, ValueError) as error:
        raise SchemaError(f"{path} is not a valid Avro schema: {error}") from None
    if not isinstance(parsed, avro.schema.RecordSchema):
        raise SchemaError(f"{path} must define an Avro record, not {parsed.type}")
    return SchemaVersion(label or path.stem, number, path, text, parsed)


def load_versions(directory: Path | str) -> list[SchemaVersion]:
    """Every ``v<N>.avsc`` in ``directory``, sorted by N (other files are ignored).

    ``SchemaError`` when the directory is missing, holds no version file, or a file is invalid.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise SchemaError(f"schema directory {directory} does not exist")
    found = []
    for path in directory.iterdir():
        match = VERSION_FILE.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    if not found:
        raise SchemaError(f"no v<N>.avsc files in {directory}")
    found.sort()
    return [load_schema(path, number=number, label=f"v{number}") for number, path in found]


def _field_path(schema: avro.schema.Schema, location: str) -> str:
    """Turn a checker location like ``/fields/2/type`` into field names (``type``) on ``schema``."""
    names: list[str] = []
    node: object = schema
    tokens = [token for token in location.split("/") if token]
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "fields" and i + 1 < len(tokens) and isinstance(node, avro.schema.RecordSchema):
            field = node.fields[int(tokens[i + 1])]
            names.append(field.name)
            node = field
            i += 2
            continue
        if token == "type" and isinstance(node, avro.schema.Field):
            node = node.type
        elif token.isdigit() and isinstance(node, avro.schema.UnionSchema):
            node = node.schemas[int(token)]
        elif token in ("items", "values") and hasattr(node, token):
            node = getattr(node, token)
        i += 1
    return ".".join(names) or "(record)"


def _check_pair(reader: SchemaVersion, writer: SchemaVersion) -> str | None:
    """None if ``reader`` can decode data written with ``writer``, else the reason."""
    return _resolution_problem(reader.parsed, writer.parsed)


def resolution_problem(reader_schema: str, writer_schema: str) -> str | None:
    """None if Avro resolution can read data written with ``writer_schema`` as ``reader_schema``,
    else the reason, from the same checker as ``check_compatibility``. A schema the Python
    library cannot parse yields None: the JVM decoder then has the last word."""
    try:
        reader, writer = avro.schema.parse(reader_schema), avro.schema.parse(writer_schema)
    except (avro.errors.AvroException, ValueError, TypeError):
        return None
    return _resolution_problem(reader, writer)


def _resolution_problem(reader: avro.schema.Schema, writer: avro.schema.Schema) -> str | None:
    result = ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return None
    locations = sorted(loc for loc in result.locations if loc != "/") or ["/"]
    fields = ", ".join(f"'{_field_path(reader, loc)}' ({loc})" for loc in locations)
    kinds = sorted({kind.value for kind in result.incompatibilities})
    reasons = "; ".join(_REASONS.get(kind, kind) for kind in kinds)
    details = "; ".join(sorted(result.messages))
    return f"field {fields}: {reasons} ({', '.join(kinds)}: {details})"


def check_compatibility(versions: list[SchemaVersion], mode: str) -> list[CheckedPair]:
    """Check every version against its predecessors as ``mode`` requires, oldest first.

    Returns the pairs checked. Raises ``SchemaError`` on the first incompatibility, naming the new
    and old version, which side cannot read the other, the field and location, and the reason.
    """
    mode = normalize_mode(mode)
    if mode == "NONE":
        return []
    base = mode.removesuffix("_TRANSITIVE")
    transitive = mode.endswith("_TRANSITIVE")
    directions = {
        "BACKWARD": ("backward",),
        "FORWARD": ("forward",),
        "FULL": ("backward", "forward"),
    }[base]
    checked: list[CheckedPair] = []
    for index, new in enumerate(versions):
        olders = versions[:index] if transitive else versions[max(0, index - 1) : index]
        for old in olders:
            for direction in directions:
                reader, writer = (new, old) if direction == "backward" else (old, new)
                problem = _check_pair(reader, writer)
                if problem:
                    raise SchemaError(
                        f"{new.label} is not {mode} compatible with {old.label}: "
                        f"{reader.label} cannot read data written with {writer.label}: {problem}"
                    )
            checked.append(CheckedPair(new, old, directions))
    return checked
