"""The manifest: one JSON line per record the broker acknowledged.

Format (one object per line, written in delivery order)::

    {"eventId": "…", "version": 3, "schemaRef": "17", "key": "P0004",
     "partition": 1, "offset": 42, "value": {"productId": "P0004", …}}

``value`` holds exactly the fields the writer version has, in JSON form (``jsonable``):
decimals as strings with their scale (``"12.30"``), timestamp-millis as epoch milliseconds (int),
everything else as is. Decoded records compare equal to it after the same ``jsonable``.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from avrolake.errors import ConfigError

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def jsonable(record: dict[str, Any]) -> dict[str, Any]:
    """A record's fields in manifest form: Decimal → str, aware datetime → epoch millis."""
    out: dict[str, Any] = {}
    for name, value in record.items():
        if isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, dt.datetime):
            value = (value - _EPOCH) // dt.timedelta(milliseconds=1)
        out[name] = value
    return out


class ManifestWriter:
    """Appends acknowledged records to a JSON-lines file; a no-op when ``path`` is None."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file: IO[str] | None = None
        if path is not None:
            try:
                self._file = path.open("w", encoding="utf-8")
            except OSError as error:
                raise ConfigError(f"cannot write manifest {path}: {error.strerror}") from None

    @property
    def enabled(self) -> bool:
        return self._file is not None

    def write(
        self, event: dict[str, Any], version: int, schema_ref: str, partition: int, offset: int
    ) -> None:
        assert self._file is not None
        line = {
            "eventId": event["eventId"],
            "version": version,
            "schemaRef": schema_ref,
            "key": event["productId"],
            "partition": partition,
            "offset": offset,
            "value": jsonable(event),
        }
        self._file.write(json.dumps(line) + "\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_manifest(path: Path) -> list[dict[str, Any]]:
    """The manifest's lines, parsed (for tests and end-to-end checks)."""
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]
