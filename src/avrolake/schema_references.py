"""Make a schema that names types defined elsewhere (Confluent schema references) self-contained.

A Confluent schema may use a named type (record, enum, fixed) registered under another subject,
by its full name, with a reference to that subject and version. Spark's ``from_avro`` and fastavro
take one schema text, so before decoding, each referenced type is defined inline where it is
first used, and left as a name afterwards, as Avro requires ("a name is defined once, then
referred to"). confluent-kafka resolves references only into fastavro's private parse state, so
this is written here.

``inline_named_types(schema_str, named)`` takes the referenced definitions by full name. An
inlined definition keeps its own namespace: one without any gets ``"namespace": ""`` so it does not
fall into the namespace of the record it is inlined into.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
NAMED = frozenset({"record", "error", "enum", "fixed"})


def full_name(definition: Mapping[str, Any], enclosing_namespace: str | None = None) -> str:
    """The full name of a named type's definition, inside ``enclosing_namespace``."""
    name = str(definition["name"])
    if "." in name:
        return name
    namespace = definition.get("namespace", enclosing_namespace)
    return f"{namespace}.{name}" if namespace else name


def _namespace_of(name: str) -> str:
    return name.rpartition(".")[0]


def inline_named_types(schema_str: str, named: Mapping[str, Any]) -> str:
    """``schema_str`` with every type of ``named`` (full name → definition) defined at its first
    use; names neither defined in the schema nor in ``named`` are left for the parser to report."""
    defined: set[str] = set()

    def standalone(name: str) -> dict[str, Any]:
        definition = dict(named[name])
        if "." not in str(definition["name"]) and "namespace" not in definition:
            definition["namespace"] = _namespace_of(name)  # "" for the null namespace
        return definition

    def walk(node: Any, namespace: str | None) -> Any:
        if isinstance(node, list):  # a union
            return [walk(branch, namespace) for branch in node]
        if isinstance(node, str):
            if node in PRIMITIVES:
                return node
            name = node if "." in node else (f"{namespace}.{node}" if namespace else node)
            for candidate in (name, node):
                if candidate in named and candidate not in defined:
                    return walk(standalone(candidate), namespace)
            return node
        if not isinstance(node, dict):
            return node
        kind = node.get("type")
        if kind in NAMED:
            name = full_name(node, namespace)
            defined.add(name)
            inner = _namespace_of(name) or None
            if kind in ("record", "error"):
                fields = [{**f, "type": walk(f["type"], inner)} for f in node.get("fields", [])]
                return {**node, "fields": fields}
            return node
        if kind == "array":
            return {**node, "items": walk(node["items"], namespace)}
        if kind == "map":
            return {**node, "values": walk(node["values"], namespace)}
        # a primitive with a logical type, or a type nested in "type"
        return {**node, "type": walk(kind, namespace)}

    return json.dumps(walk(json.loads(schema_str), None))
