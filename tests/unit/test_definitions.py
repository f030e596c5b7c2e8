"""Pipeline definitions: the example file is the README's Product pipeline, every bad field is one
line naming its place in the file, and subjects follow Confluent's naming strategies."""

from __future__ import annotations

from pathlib import Path

import pytest

from avrolake.definitions import (
    Aggregate,
    EventTime,
    Function,
    PipelineDefinition,
    TimeUnit,
    load_definitions,
    parse_definitions,
)
from avrolake.errors import ConfigError
from avrolake.registry import Subject, SubjectStrategy
from example_pipeline import DEFINITIONS_FILE

IDENTIFIER = "String should match pattern '^[A-Za-z_][A-Za-z0-9_]*$'"


def problem(text: str) -> str:
    """The one-line message ``text`` (a definitions file named defs.yml) is refused with."""
    with pytest.raises(ConfigError) as raised:
        parse_definitions(text, "defs.yml")
    message = str(raised.value)
    assert "\n" not in message
    return message


# -- the example ---------------------------------------------------------------------------------


def test_the_example_file_is_the_readme_product_pipeline() -> None:
    """README: silver MERGEs by eventId with the `timestamp` field (unix seconds) as event time;
    bad records go to quarantine; gold per (event_date, type, color, size): events, distinct
    products, first and last event_time; the tables are bronze, silver, quarantine, gold and
    gold's key table."""
    definitions = load_definitions(DEFINITIONS_FILE)
    (pipeline,) = definitions.pipelines
    assert (pipeline.name, pipeline.topic, pipeline.flavor) == ("products", "products", None)
    assert pipeline.subject_strategy is SubjectStrategy.TOPIC
    assert pipeline.quarantine_table == "quarantine"
    (record,) = pipeline.records
    assert (record.record, record.glue_schema) == (None, None)
    assert record.silver_table == "silver"
    assert record.partition_by == ("event_date",)
    assert record.key == ("eventId",)
    assert not record.keyed_by_coordinates
    assert record.event_time == EventTime(field="timestamp", unit=TimeUnit.SECONDS)
    gold = record.gold
    assert gold is not None
    assert (gold.table, gold.keys_table) == ("gold", "gold_keys")
    assert gold.group_by == ("type", "color", "size")
    assert gold.aggregates == (
        Aggregate(name="events", function=Function.COUNT),
        Aggregate(name="distinct_products", function=Function.COUNT_DISTINCT, field="productId"),
        Aggregate(name="first_event_time", function=Function.MIN, field="event_time"),
        Aggregate(name="last_event_time", function=Function.MAX, field="event_time"),
    )
    assert gold.distinct == gold.aggregates[1]
    assert pipeline.tables() == ["quarantine", "silver", "gold", "gold_keys"]
    assert definitions.topics == ["products"]
    # TopicNameStrategy: the subject the Product schemas have always been registered under
    assert pipeline.subject(record) == Subject("products")
    assert (pipeline.subject(record).confluent, pipeline.subject(record).glue) == (
        "products-value",
        "products",
    )


def test_defaults_fill_the_tables_from_the_names() -> None:
    definitions = parse_definitions(
        """
pipelines:
  - name: shop
    topic: shop.events
    subject_strategy: topic_record
    records:
      - {record: com.acme.Order, key: [orderId, line]}
      - record: com.acme.PageView
        event_time: {field: at, unit: milliseconds}
        gold: {table: views, aggregates: [{name: n, function: count}]}
  - name: solo
    topic: solo
    records: [{}]
"""
    )
    shop, solo = definitions.pipelines
    assert shop.quarantine_table == "shop_quarantine"
    order, view = shop.records
    assert (order.silver_table, view.silver_table) == ("shop_order_silver", "shop_pageview_silver")
    assert order.key == ("orderId", "line")
    assert (order.event_time, order.gold) == (None, None)  # the Kafka timestamp; no gold
    assert view.keyed_by_coordinates
    assert view.event_time == EventTime(field="at", unit=TimeUnit.MILLISECONDS)
    assert view.gold is not None
    assert (view.gold.keys_table, view.gold.group_by) == ("views_keys", ())
    assert view.gold.distinct is None
    assert solo.quarantine_table == "solo_quarantine"
    assert solo.records[0].silver_table == "solo_silver"
    assert solo.records[0].partition_by == ("event_date",)
    assert definitions.topics == ["shop.events", "solo"]


# -- every rule, one line each -------------------------------------------------------------------

BAD = [
    pytest.param(
        "pipelines: [{name: 9lives, topic: t, quarantine_table: q, records: [{silver_table: s}]}]",
        f"defs.yml: pipelines[0].name: '9lives' is not a valid name here ({IDENTIFIER})",
        id="pipeline name",
    ),
    pytest.param(
        "pipelines: [{name: p, topic: 'a b', records: [{}]}]",
        "defs.yml: pipelines[0].topic: 'a b' is not a valid name here "
        "(String should match pattern '^[A-Za-z0-9._-]{1,249}$')",
        id="topic",
    ),
    pytest.param(
        "pipelines: [{name: p, topic: t, records: [{key: [order-id]}]}]",
        f"defs.yml: pipelines[0].records[0].key[0]: 'order-id' is not a valid name here "
        f"({IDENTIFIER})",
        id="key field",
    ),
    pytest.param(
        "pipelines: [{name: p, topic: t, records: [{silver_table: 'my table'}]}]",
        "defs.yml: pipelines[0].records[0].silver_table: 'my table' is not a valid name here "
        f"({IDENTIFIER})",
        id="silver table",
    ),
    pytest.param(
        "pipelines: [{name: p, topic: t, subject_strategy: record, records: [{record: 'com..X'}]}]",
        "defs.yml: pipelines[0].records[0].record: 'com..X' is not a valid name here "
        "(String should match pattern '^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)*$')",
        id="record full name",
    ),
    pytest.param(
        "pipelines: [{name: p, topic: t, records: [{event_time: {field: at, unit: hours}}]}]",
        "defs.yml: pipelines[0].records[0].event_time.unit: "
        "Input should be 'seconds', 'milliseconds' or 'microseconds'",
        id="event time unit",
    ),
    pytest.param(
        "pipelines: [{name: p, topic: t, records: [{gold: {table: g, group_by: [a.b], "
        "aggregates: [{name: n, function: count}]}}]}]",
        f"defs.yml: pipelines[0].records[0].gold.group_by[0]: 'a.b' is not a valid name here "
        f"({IDENTIFIER})",
        id="group-by field",
    ),
    pytest.param(
        "pipelines: [{name: p, topic: t, records: [{gold: {table: g, "
        "aggregates: [{name: n, function: count, field: x}]}}]}]",
        "defs.yml: pipelines[0].records[0].gold.aggregates[0]: "
        "count counts rows: it takes no field",
        id="count with a field",
    ),
    pytest.param(
        "pipelines: [{name: p, topic: t, records: [{gold: {table: g, "
        "aggregates: [{name: n, function: count}, {name: total, function: sum}]}}]}]",
        "defs.yml: pipelines[0].records[0].gold.aggregates[1]: sum needs a field",
        id="sum without a field",
    ),
    pytest.param(
        "pipelines: [{name: p, topic: t, records: [{gold: {table: g, "
        "aggregates: [{name: n, function: median, field: x}]}}]}]",
        "defs.yml: pipelines[0].records[0].gold.aggregates[0].function: "
        "Input should be 'count', 'count_distinct', 'min', 'max' or 'sum'",
        id="unknown function",
    ),
    pytest.param(
        "pipelines: [{name: p, topic: t, records: [{gold: {table: g, aggregates: ["
        "{name: a, function: count_distinct, field: x}, "
        "{name: b, function: count_distinct, field: y}]}}]}]",
        "defs.yml: pipelines[0].records[0].gold: at most one count_distinct per gold table, "
        "got ['a', 'b']",
        id="two count_distinct",
    ),
    pytest.param(
        "pipelines: [{name: p, topic: t, records: [{gold: {table: g, group_by: [event_date], "
        "aggregates: [{name: n, function: count}]}}]}]",
        "defs.yml: pipelines[0].records[0].gold: gold column(s) named twice: event_date",
        id="gold column twice",
    ),
    pytest.param(
        "pipelines: [{name: p, topic: t, records: [{gold: {table: g, aggregates: []}}]}]",
        "defs.yml: pipelines[0].records[0].gold.aggregates: "
        "Tuple should have at least 1 item after validation, not 0",
        id="gold without aggregates",
    ),
    pytest.param(
        "pipelines: [{name: p, topic: t, records: [{silver_table: s}]}, "
        "{name: q, topic: u, records: [{silver_table: s}]}]",
        "defs.yml: (top level): table(s) used more than once: s",
        id="one table in two pipelines",
    ),
    pytest.param(
        "pipelines: [{name: p, topic: t, records: [{gold: {table: p_quarantine, "
        "aggregates: [{name: n, function: count}]}}]}]",
        "defs.yml: (top level): table(s) used more than once: p_quarantine",
        id="gold table is the default quarantine",
    ),
    pytest.param(
        "pipelines: [{name: p, topic: t, records: [{silver_table: bronze}]}]",
        "defs.yml: (top level): table(s) used more than once: bronze",
        id="bronze as a table",
    ),
    pytest.param(
        "pipelines: [{name: p, topic: t, records: [{}]}, {name: p, topic: u, "
        "quarantine_table: q, records: [{silver_table: s}]}]",
        "defs.yml: (top level): pipeline name(s) used more than once: p",
        id="one pipeline name twice",
    ),
    pytest.param(
        "pipelines: [{name: p, topic: t, records: [{}]}, {name: q, topic: t, records: [{}]}]",
        "defs.yml: (top level): topic(s) used more than once: t",
        id="one topic twice",
    ),
    pytest.param(
        "pipelines: [{name: p, topic: t, records: [{record: a.B}, {record: a.C}]}]",
        "defs.yml: pipelines[0]: subject_strategy topic allows one record type per topic; "
        "use record or topic_record for several",
        id="topic strategy with two records",
    ),
    pytest.param(
        "pipelines: [{name: p, topic: t, subject_strategy: record, "
        "records: [{record: a.B}, {silver_table: s}]}]",
        "defs.yml: pipelines[0]: subject_strategy record needs each record's full name "
        "(`record:`), missing in records [1]",
        id="record strategy without record",
    ),
    pytest.param(
        "pipelines: [{name: p, topic: t, subject_strategy: topic_record, "
        "records: [{record: a.B}, {record: a.B, silver_table: s}]}]",
        "defs.yml: pipelines[0]: record type(s) defined twice: a.B",
        id="one record type twice",
    ),
    pytest.param(
        "pipelines: [{name: p, topic: t, subject_strategy: wild, records: [{}]}]",
        "defs.yml: pipelines[0].subject_strategy: Input should be 'topic', 'record' or "
        "'topic_record'",
        id="unknown strategy",
    ),
    pytest.param(
        "pipelines: [{name: p, topic: t, flavor: kafka, records: [{}]}]",
        "defs.yml: pipelines[0].flavor: Input should be 'confluent' or 'glue'",
        id="unknown flavor",
    ),
    pytest.param(
        "pipelines: [{name: p, topic: t, colour: red, records: [{}]}]",
        "defs.yml: pipelines[0].colour: Extra inputs are not permitted",
        id="unknown pipeline key",
    ),
    pytest.param(
        "pipelines: [{name: p, topic: t, records: [{evnt_time: {field: at}}]}]",
        "defs.yml: pipelines[0].records[0].evnt_time: Extra inputs are not permitted",
        id="misspelt record key",
    ),
    pytest.param(
        "pipelines: [{name: p, topic: t, records: [{gold: {table: g, "
        "aggregates: [{name: n, function: count, as: x}]}}]}]",
        "defs.yml: pipelines[0].records[0].gold.aggregates[0].as: Extra inputs are not permitted",
        id="unknown aggregate key",
    ),
    pytest.param(
        "pipelines: [{name: p, records: [{}]}]",
        "defs.yml: pipelines[0].topic: Field required",
        id="missing topic",
    ),
    pytest.param(
        "pipelines: []",
        "defs.yml: pipelines: Tuple should have at least 1 item after validation, not 0",
        id="no pipelines",
    ),
    pytest.param(
        "pipelines:\n  - name: p\n   topic: t\n",
        "defs.yml: not valid YAML at line 3: expected <block end>, but found "
        "'<block mapping start>'",
        id="invalid YAML",
    ),
    pytest.param(
        "pipelines: [{name: p, topic: t, records: [{}]}\n",
        "defs.yml: not valid YAML at line 2: expected ',' or ']', but got '<stream end>'",
        id="unclosed bracket",
    ),
    pytest.param(
        "pipelines:\n  - name: p\n    topic: t\n    records: [{key: eventId}]\n",
        "defs.yml: pipelines[0].records[0].key: 'eventId' should be a list, e.g. [a, b]",
        id="a key that is not a list",
    ),
    pytest.param(
        "pipelines:\n  - name: p\n    topic: t\n    records: [{silver_table: Bronze}]\n",
        "defs.yml: (top level): table(s) used more than once: bronze",
        id="bronze in another case (Unity Catalog names ignore case)",
    ),
    pytest.param(
        "",
        "defs.yml: (top level): should be a mapping of fields (see avrolake.definitions)",
        id="an empty file",
    ),
    pytest.param(
        "pipelines: [products]\n",
        "defs.yml: pipelines[0]: should be a mapping of fields (see avrolake.definitions)",
        id="a pipeline that is a name",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_every_bad_field_is_one_line_naming_its_place(text: str, message: str) -> None:
    assert problem(text) == message


def test_several_problems_are_all_named_in_the_one_line() -> None:
    text = (
        "pipelines: [{name: p, topic: t, records: [{key: [a-b], gold: {table: g, "
        "aggregates: [{name: n, function: sum}]}}]}]"
    )
    assert problem(text) == (
        f"defs.yml: pipelines[0].records[0].key[0]: 'a-b' is not a valid name here "
        f"({IDENTIFIER}); pipelines[0].records[0].gold.aggregates[0]: sum needs a field"
    )


def test_a_missing_or_unreadable_file_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yml"
    with pytest.raises(ConfigError) as raised:
        load_definitions(missing)
    assert str(raised.value) == (
        f"cannot read the pipeline definitions {missing}: No such file or directory"
    )
    with pytest.raises(ConfigError) as raised:
        load_definitions(tmp_path)  # a directory: unreadable as a file, even to root
    assert str(raised.value) == f"cannot read the pipeline definitions {tmp_path}: Is a directory"


def test_a_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "pipelines.yml"
    before = b"pipelines:\n  - name: "
    path.write_bytes(before + b"\xff\n")
    with pytest.raises(ConfigError) as raised:
        load_definitions(path)
    where = f"not UTF-8 (byte {len(before)})"
    assert str(raised.value) == f"cannot read the pipeline definitions {path}: {where}"


def test_a_file_names_itself_in_its_problems(tmp_path: Path) -> None:
    path = tmp_path / "pipelines.yml"
    path.write_text("pipelines: [{name: p, topic: t, records: [{unknown: 1}]}]\n")
    with pytest.raises(ConfigError) as raised:
        load_definitions(path)
    assert str(raised.value) == (
        f"{path}: pipelines[0].records[0].unknown: Extra inputs are not permitted"
    )


# -- subjects ------------------------------------------------------------------------------------


def _subject(strategy: str, record: dict[str, str]) -> Subject:
    pipeline = PipelineDefinition.model_validate(
        {"name": "p", "topic": "shop", "subject_strategy": strategy, "records": [record]}
    )
    return pipeline.subject(pipeline.records[0])


@pytest.mark.parametrize(
    ("strategy", "record", "confluent", "glue"),
    [
        # Confluent's TopicNameStrategy; Glue's schema named as its Java SerDe names it
        ("topic", {}, "shop-value", "shop"),
        ("record", {"record": "com.acme.Order"}, "com.acme.Order", "com.acme.Order"),
        (
            "topic_record",
            {"record": "com.acme.Order"},
            "shop-com.acme.Order",
            "shop-com.acme.Order",
        ),
        (
            "topic_record",
            {"record": "com.acme.Order", "glue_schema": "orders"},
            "shop-com.acme.Order",
            "orders",
        ),
        ("topic", {"glue_schema": "shop-orders"}, "shop-value", "shop-orders"),
    ],
)
def test_subject_names_follow_the_strategy(
    strategy: str, record: dict[str, str], confluent: str, glue: str
) -> None:
    subject = _subject(strategy, record)
    assert (subject.confluent, subject.glue) == (confluent, glue)


def test_a_record_strategy_subject_needs_the_record() -> None:
    with pytest.raises(ValueError) as raised:
        Subject("shop", SubjectStrategy.RECORD)
    assert str(raised.value) == "subject strategy record needs the record's full name"


# -- with_topic and select -----------------------------------------------------------------------


def test_with_topic_changes_the_topic_only() -> None:
    (pipeline,) = load_definitions(DEFINITIONS_FILE).pipelines
    moved = pipeline.with_topic("smoke-1234")
    assert moved.topic == "smoke-1234"
    assert moved.model_dump() == {**pipeline.model_dump(), "topic": "smoke-1234"}
    assert moved.subject(moved.records[0]).confluent == "smoke-1234-value"
    assert pipeline.topic == "products"  # definitions are frozen: a copy, not a change


def test_select_picks_pipelines_by_name_in_the_order_asked() -> None:
    definitions = parse_definitions(
        "pipelines: [{name: a, topic: ta, records: [{}]}, {name: b, topic: tb, records: [{}]}]"
    )
    assert [p.name for p in definitions.select(None)] == ["a", "b"]
    assert [p.name for p in definitions.select([])] == ["a", "b"]
    assert [p.name for p in definitions.select(["b", "a"])] == ["b", "a"]
    with pytest.raises(ConfigError) as raised:
        definitions.select(["b", "c", "d"])
    assert str(raised.value) == (
        "--pipeline c, d: no such pipeline in the definitions (defined: a, b)"
    )
