"""Which schemas a silver micro-batch decodes with: the reader, and a writer per schema ref.

One ``SchemaResolver`` serves one record type: its subject (a plain topic: TopicNameStrategy).
The registry is asked for the latest version (the reader) on every batch, so a version registered
while the stream runs is used from the next batch on; writer schemas are cached (refs are
immutable). A ref that cannot be used — unknown to the registry, another subject's, not readable
by the reader — gets a reason and its rows go to quarantine.

A registry *outage* never quarantines anything. While the registry is unreachable the last known
reader is kept (from this process, or the one silver recorded in its table), and a ref not seen
before is retried with backoff; only an outage longer than ``outage_timeout_s`` fails the batch,
naming the registry. The stream's checkpoint then replays the batch on the next run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from avrolake.errors import PipelineError, RegistryUnavailableError, SchemaNotFoundError
from avrolake.pipeline.silver import BatchSchemas, Roles
from avrolake.registry import RegisteredSchema, SchemaRegistry, Subject
from avrolake.schemas import resolution_problem
from avrolake.settings import DEFAULT_OUTAGE_TIMEOUT_S
from avrolake.wire import WireFormat

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class SchemaResolver:
    """Turns a batch's schema refs into ``BatchSchemas`` for one subject."""

    registry: SchemaRegistry
    subject: str | Subject
    outage_timeout_s: float = DEFAULT_OUTAGE_TIMEOUT_S
    sleep: Callable[[float], None] = time.sleep  # tests pass a fake clock's sleep
    _writers: dict[str, RegisteredSchema] = field(default_factory=dict)
    _problems: dict[tuple[str, str], str | None] = field(default_factory=dict)
    _last_reader: RegisteredSchema | None = None
    _reported: set[str] = field(default_factory=set)

    def reader(self, recorded: RegisteredSchema | None = None) -> RegisteredSchema:
        """The latest version now; during an outage the last one known (``recorded``: the reader
        silver's table was last written with)."""
        fallback = self._last_reader or recorded
        if fallback is None:
            latest = self._patiently(f"the latest schema of {self.where}", self._latest)
        else:
            try:
                latest = self._latest()
            except RegistryUnavailableError as error:
                self._once(
                    "outage", f"{error}; decoding with the last known reader v{fallback.version}"
                )
                return fallback
        self._reported.discard("outage")
        self._last_reader = latest
        return latest

    def for_batch(
        self,
        reader: RegisteredSchema,
        refs: Iterable[str],
        wire_format: WireFormat | None = None,
        roles: Roles | None = None,
    ) -> BatchSchemas:
        """Writers for ``refs`` (each looked up with ``writer``) and why the others are unusable;
        ``wire_format`` is the topic's framing, by default the registry's; ``roles`` the record
        type's in ``reader``."""
        writers: dict[str, RegisteredSchema] = {}
        unusable: dict[str, str] = {}
        for ref in sorted(set(refs)):
            writer = self.writer(ref)
            if isinstance(writer, str):
                unusable[ref] = writer
                continue
            problem = self._problem(reader, writer)
            if problem is not None:
                unusable[ref] = (
                    f"writer v{writer.version} (schema ref {ref}) cannot be read with reader "
                    f"v{reader.version}: {problem}"
                )
                continue
            if writer.version > reader.version:
                self._once(
                    f"newer:{ref}",
                    f"schema ref {ref} is v{writer.version} of {self.where}, newer than the "
                    f"reader v{reader.version} (its latest version was deleted?): decoding by "
                    "Avro's resolution rules",
                )
            writers[ref] = writer
        framing = wire_format or self.registry.wire_format
        return BatchSchemas(reader, writers, framing, unusable, roles or Roles())

    def writer(self, ref: str) -> RegisteredSchema | str:
        """The writer schema of ``ref``, or why there is none. Not-found answers are not cached:
        a schema registered late is found by a later batch (and by quarantine replay)."""
        try:
            return self._writer(ref)
        except SchemaNotFoundError as error:
            self._once(f"missing:{ref}", f"{error}; quarantining its records")
            return f"unknown schema ref {ref}: {error}"

    def knows(self, ref: str) -> bool:
        """Whether ``ref`` is a version of this subject (routing: which record type a record
        is). Quiet: an answer of no is not a quarantine."""
        try:
            self._writer(ref)
        except SchemaNotFoundError:
            return False
        return True

    @property
    def where(self) -> str:
        """The subject, for messages."""
        if isinstance(self.subject, str):
            return f"topic {self.subject}"
        if self.registry.wire_format.flavor is WireFormat.GLUE:
            return f"Glue schema {self.subject.glue}"
        return f"subject {self.subject.confluent}"

    # --- helpers ---------------------------------------------------------------------------------

    def _writer(self, ref: str) -> RegisteredSchema:
        cached = self._writers.get(ref)
        if cached is None:
            cached = self._patiently(
                f"schema ref {ref}", lambda: self.registry.by_ref(ref, self.subject)
            )
            self._writers[ref] = cached
        return cached

    def _latest(self) -> RegisteredSchema:
        return self.registry.latest(self.subject)

    def _problem(self, reader: RegisteredSchema, writer: RegisteredSchema) -> str | None:
        key = (reader.ref, writer.ref)
        if key not in self._problems:
            self._problems[key] = resolution_problem(reader.schema_str, writer.schema_str)
        return self._problems[key]

    def _patiently(self, what: str, request: Callable[[], T]) -> T:
        """``request()``, retried with backoff while the registry is unavailable, up to the
        outage bound; then one ``PipelineError`` naming the registry's failure."""

        def note(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            self._once("outage", f"{error}; retrying (up to {self.outage_timeout_s:.0f}s)")

        retrying = Retrying(
            retry=retry_if_exception_type(RegistryUnavailableError),
            stop=stop_after_delay(self.outage_timeout_s),
            wait=wait_exponential(multiplier=1, min=1, max=30),
            sleep=self.sleep,
            before_sleep=note,
            reraise=True,
        )
        try:
            return retrying(request)
        except RegistryUnavailableError as error:
            raise PipelineError(
                f"schema registry unavailable for more than {self.outage_timeout_s:.0f}s while "
                f"getting {what}: {error}"
            ) from error

    def _once(self, key: str, message: str) -> None:
        if key not in self._reported:
            self._reported.add(key)
            log.warning(message)
