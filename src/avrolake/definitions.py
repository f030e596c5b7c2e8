"""Pipeline definitions: which topics a deployment runs, and for each record type on a topic its
dedupe key, event time, silver table and optional gold aggregates.

One YAML file holds them (``pipelines.yml`` at the bundle's root: the Product example). Every
stage reads it: ingest subscribes to its topics, silver decodes each pipeline's topic, gold
aggregates each record type that has a ``gold`` section. The file is validated as a whole before
anything starts, and every bad field is named with its place in the file::

    pipelines:
      - name: products                 # names the pipeline's checkpoint; an identifier
        topic: products
        flavor: confluent              # optional: a deployment of the other flavor refuses it
        subject_strategy: topic        # topic | record | topic_record (Confluent's strategies)
        quarantine_table: quarantine   # default <name>_quarantine
        records:                       # one per record type (several only with record strategies)
          - record: com.example.Product  # the type's full name (record strategies only)
            glue_schema: products        # Glue schema name (default: the strategy's subject name)
            silver_table: silver         # default <name>_silver, or <name>_<type>_silver
            partition_by: [event_date]   # default [event_date]
            key: [eventId]               # dedupe key; [] (default) = the Kafka coordinates
            event_time: {field: timestamp, unit: seconds}  # default: the Kafka timestamp
            gold:
              table: gold
              group_by: [type, color, size]  # reader fields (a renamed field by its alias)
              aggregates:
                - {name: events, function: count}
                - {name: distinct_products, function: count_distinct, field: productId}

Field names are looked up in the reader schema by name or by alias, so a field renamed through an
Avro alias keeps its role. What depends on the reader (does the field exist, is it a number) is
checked by silver against each reader, not here.
"""

from __future__ import annotations

from collections import Counter
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic import StringConstraints as Pattern

from avrolake.errors import ConfigError
from avrolake.registry import Subject, SubjectStrategy
from avrolake.settings import Flavor

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
Identifier = Annotated[str, Pattern(pattern=f"^{_NAME}$")]  # a table, column or pipeline name
FullName = Annotated[str, Pattern(pattern=rf"^{_NAME}(\.{_NAME})*$")]  # an Avro full name
TopicName = Annotated[str, Pattern(pattern=r"^[A-Za-z0-9._-]{1,249}$")]  # Kafka's rule
GlueSchemaName = Annotated[str, Pattern(pattern=r"^[A-Za-z0-9_$#.-]{1,255}$")]  # Glue's rule

EVENT_DATE = "event_date"  # silver's date of the event time: the default partition column
BRONZE_TABLE = "bronze"  # every topic's raw records, one table per deployment


class TimeUnit(StrEnum):
    """The unit of a numeric event-time field (a timestamp logical type carries its own)."""

    SECONDS = "seconds"
    MILLISECONDS = "milliseconds"
    MICROSECONDS = "microseconds"


class Function(StrEnum):
    COUNT = "count"  # rows (no field)
    COUNT_DISTINCT = "count_distinct"  # exact, across every run (see pipeline.gold)
    MIN = "min"
    MAX = "max"
    SUM = "sum"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventTime(_Strict):
    field: Identifier
    unit: TimeUnit = TimeUnit.SECONDS


class Aggregate(_Strict):
    name: Identifier  # the gold column
    function: Function
    field: Identifier | None = None  # a silver column: a reader field or event_time, …

    @model_validator(mode="after")
    def _field_matches_function(self) -> Self:
        if self.function is Function.COUNT and self.field is not None:
            raise ValueError("count counts rows: it takes no field")
        if self.function is not Function.COUNT and self.field is None:
            raise ValueError(f"{self.function} needs a field")
        return self


class GoldSpec(_Strict):
    table: Identifier
    keys_table: Identifier | None = None  # count_distinct's state; default <table>_keys
    group_by: tuple[Identifier, ...] = ()  # event_date always comes first
    aggregates: tuple[Aggregate, ...] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _default_keys_table(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("table") and not data.get("keys_table"):
            data = {**data, "keys_table": f"{data['table']}_keys"}
        return data

    @model_validator(mode="after")
    def _distinct_names(self) -> Self:
        names = [EVENT_DATE, *self.group_by, *(a.name for a in self.aggregates)]
        repeated = sorted(name for name, n in Counter(names).items() if n > 1)
        if repeated:
            raise ValueError(f"gold column(s) named twice: {', '.join(repeated)}")
        distinct = [a.name for a in self.aggregates if a.function is Function.COUNT_DISTINCT]
        if len(distinct) > 1:  # one key table holds one field's distinct values per group
            raise ValueError(f"at most one count_distinct per gold table, got {distinct}")
        return self

    @property
    def distinct(self) -> Aggregate | None:
        return next((a for a in self.aggregates if a.function is Function.COUNT_DISTINCT), None)


class RecordDefinition(_Strict):
    record: FullName | None = None
    glue_schema: GlueSchemaName | None = None
    silver_table: Identifier
    partition_by: tuple[Identifier, ...] = (EVENT_DATE,)
    key: tuple[Identifier, ...] = ()
    event_time: EventTime | None = None
    gold: GoldSpec | None = None

    @property
    def keyed_by_coordinates(self) -> bool:
        return not self.key


class PipelineDefinition(_Strict):
    name: Identifier
    topic: TopicName
    flavor: Flavor | None = None
    subject_strategy: SubjectStrategy = SubjectStrategy.TOPIC
    quarantine_table: Identifier
    records: tuple[RecordDefinition, ...] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _default_tables(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            return data  # the fields' own validation says what is wrong
        name = data["name"]
        data = {**data}
        data.setdefault("quarantine_table", f"{name}_quarantine")
        records = data.get("records")
        if isinstance(records, list):
            filled = []
            for record in records:
                if isinstance(record, dict) and "silver_table" not in record:
                    full_name = record.get("record")
                    if len(records) == 1 or not isinstance(full_name, str):
                        table = f"{name}_silver"
                    else:
                        table = f"{name}_{full_name.rsplit('.', 1)[-1].lower()}_silver"
                    record = {**record, "silver_table": table}
                filled.append(record)
            data["records"] = filled
        return data

    @model_validator(mode="after")
    def _records_match_strategy(self) -> Self:
        if self.subject_strategy is SubjectStrategy.TOPIC:
            if len(self.records) != 1:
                raise ValueError(
                    "subject_strategy topic allows one record type per topic; use record or "
                    "topic_record for several"
                )
            return self
        missing = [i for i, r in enumerate(self.records) if not r.record]
        if missing:
            raise ValueError(
                f"subject_strategy {self.subject_strategy} needs each record's full name "
                f"(`record:`), missing in records {missing}"
            )
        repeated = [n for n, c in Counter(r.record for r in self.records).items() if c > 1]
        if repeated:
            raise ValueError(f"record type(s) defined twice: {', '.join(map(str, repeated))}")
        return self

    def subject(self, record: RecordDefinition) -> Subject:
        """Where ``record``'s versions live in the registry."""
        return Subject(self.topic, self.subject_strategy, record.record, record.glue_schema)

    def with_topic(self, topic: str) -> PipelineDefinition:
        """This pipeline on another topic (``--topic``: the smoke test's own topic)."""
        return PipelineDefinition.model_validate({**self.model_dump(), "topic": topic})

    def tables(self) -> list[str]:
        names = [self.quarantine_table]
        for record in self.records:
            names.append(record.silver_table)
            if record.gold is not None:
                names += [record.gold.table, str(record.gold.keys_table)]
        return names


class Definitions(_Strict):
    pipelines: tuple[PipelineDefinition, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        for what, values in (
            ("pipeline name", [p.name for p in self.pipelines]),
            ("topic", [p.topic for p in self.pipelines]),
            ("table", [BRONZE_TABLE, *(t for p in self.pipelines for t in p.tables())]),
        ):
            # Unity Catalog names (and some checkpoint stores) ignore case: `Bronze` is bronze
            folded = values if what == "topic" else [v.lower() for v in values]  # Kafka: exact
            repeated = sorted(v for v, n in Counter(folded).items() if n > 1)
            if repeated:  # two writers of one table (or checkpoint) would corrupt each other
                raise ValueError(f"{what}(s) used more than once: {', '.join(repeated)}")
        return self

    @property
    def topics(self) -> list[str]:
        return [p.topic for p in self.pipelines]

    def select(self, names: list[str] | None = None) -> list[PipelineDefinition]:
        """The named pipelines (all of them for None); ``ConfigError`` for an unknown name."""
        if not names:
            return list(self.pipelines)
        by_name = {p.name: p for p in self.pipelines}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise ConfigError(
                f"--pipeline {', '.join(unknown)}: no such pipeline in the definitions "
                f"(defined: {', '.join(by_name)})"
            )
        return [by_name[n] for n in names]


def _where(location: tuple[int | str, ...]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def parse_definitions(text: str, source: str = "definitions") -> Definitions:
    """Validate the YAML text of a definitions file; ``ConfigError`` naming every bad field."""
    import yaml

    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise ConfigError(f"{source}: not valid YAML{line}: {problem}") from None
    try:
        return Definitions.model_validate(raw)
    except ValidationError as error:
        problems = []
        for problem in error.errors(include_url=False):
            if problem["type"] == "too_short" and problem.get("input"):
                continue  # pydantic's echo of a failed item in a non-empty list: noise
            message = str(problem["msg"]).removeprefix("Value error, ")
            if problem["type"] == "tuple_type":
                message = f"{problem['input']!r} should be a list, e.g. [a, b]"
            elif problem["type"] in ("model_type", "model_attributes_type"):
                message = "should be a mapping of fields (see avrolake.definitions)"
            elif problem["type"] == "string_pattern_mismatch":
                message = f"{problem['input']!r} is not a valid name here ({message})"
            problems.append(f"{_where(tuple(problem['loc']))}: {message}")
        raise ConfigError(f"{source}: {'; '.join(problems)}") from None


def load_definitions(path: str | Path) -> Definitions:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(
            f"cannot read the pipeline definitions {path}: {error.strerror}"
        ) from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"cannot read the pipeline definitions {path}: not UTF-8 (byte {error.start})"
        ) from None
    return parse_definitions(text, str(path))
