"""Referenced types inlined at their first use: the result parses alone (Apache Avro and fastavro)
and reads records exactly as the same schema written out by hand."""

from __future__ import annotations

import io
import json

import avro.schema
import fastavro

from avrolake.schema_references import inline_named_types

ADDRESS = {
    "type": "record",
    "name": "Address",
    "namespace": "com.example.common",
    "fields": [{"name": "city", "type": "string"}, {"name": "country", "type": "Country"}],
}
COUNTRY = {"type": "enum", "name": "Country", "namespace": "com.example.common",
           "symbols": ["DE", "FR"]}  # fmt: skip
MONEY = {"type": "fixed", "name": "Money", "size": 2}  # the null namespace

PERSON = {
    "type": "record",
    "name": "Person",
    "namespace": "com.example.people",
    "fields": [
        {"name": "home", "type": "com.example.common.Address"},
        {"name": "others", "type": {"type": "array", "items": "com.example.common.Address"}},
        {"name": "born", "type": ["null", "com.example.common.Country"], "default": None},
        {"name": "cash", "type": "Money"},
    ],
}
NAMED = {
    "com.example.common.Address": ADDRESS,
    "com.example.common.Country": COUNTRY,
    "Money": MONEY,
}
BY_HAND = {
    **PERSON,
    "fields": [
        {"name": "home", "type": {**ADDRESS, "fields": [
            {"name": "city", "type": "string"}, {"name": "country", "type": COUNTRY}]}},
        {"name": "others", "type": {"type": "array", "items": "com.example.common.Address"}},
        {"name": "born", "type": ["null", "com.example.common.Country"], "default": None},
        {"name": "cash", "type": {**MONEY, "namespace": ""}},
    ],
}  # fmt: skip
RECORD = {
    "home": {"city": "Köln", "country": "DE"},
    "others": [{"city": "Lyon", "country": "FR"}],
    "born": "FR",
    "cash": b"\x01\x02",
}


def test_each_referenced_type_is_defined_once_at_its_first_use() -> None:
    complete = json.loads(inline_named_types(json.dumps(PERSON), NAMED))
    assert complete == BY_HAND


def test_the_result_parses_alone_and_reads_what_the_hand_written_schema_wrote() -> None:
    complete = inline_named_types(json.dumps(PERSON), NAMED)
    assert avro.schema.parse(complete).fullname == "com.example.people.Person"
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(BY_HAND), RECORD)
    read = fastavro.schemaless_reader(
        io.BytesIO(out.getvalue()), fastavro.parse_schema(BY_HAND), json.loads(complete)
    )
    assert read == RECORD


def test_a_type_two_references_share_is_defined_once() -> None:
    work = {"type": "record", "name": "Work", "namespace": "com.example.common",
            "fields": [{"name": "office", "type": "Address"}]}  # fmt: skip
    both = {"type": "record", "name": "Both", "fields": [
        {"name": "home", "type": "com.example.common.Address"},
        {"name": "work", "type": "com.example.common.Work"},
    ]}  # fmt: skip
    named = {**NAMED, "com.example.common.Work": work}
    complete = inline_named_types(json.dumps(both), named)
    assert complete.count('"name": "Address"') == 1
    assert complete.count('"name": "Country"') == 1
    assert avro.schema.parse(complete).fields[1].type.fields[0].type.fullname == (
        "com.example.common.Address"
    )


def test_a_schema_without_references_is_unchanged() -> None:
    assert json.loads(inline_named_types(json.dumps(ADDRESS), {})) == ADDRESS
