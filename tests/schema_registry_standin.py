"""A stand-in for the Confluent Schema Registry endpoints that serve schema GUIDs.

This is a stand-in, not a registry: Apicurio 3.0.9 (the embedded registry of the local stack)
has no schema GUIDs and no ``GET /schemas/guids/{guid}`` endpoint, so the framings that carry a
GUID (magic byte 1 + GUID as the value prefix, or in the ``__value_schema_id`` header) cannot be
decoded against it. The stand-in serves, from memory, what confluent-kafka's
``SchemaRegistryClient`` asks for on the paths avrolake (``avrolake.registry.confluent``) and
confluent-kafka's Avro serializer use, in the JSON shapes the client parses
(``RegisteredSchema.from_dict``, ``SchemaVersion.from_dict``):

=======================================================  =====================================
``POST /subjects/{s}/versions``                          register; idempotent per subject
``POST /subjects/{s}``                                   look a schema up under a subject
``GET /subjects``                                        subjects
``GET /subjects/{s}/versions``                           version numbers
``GET /subjects/{s}/versions/{v|latest}``                one version
``GET /schemas/ids/{id}``                                a schema by id (``?subject=`` ignored,
                                                         as in the default context)
``GET /schemas/ids/{id}/versions``                       its (subject, version) pairs
``GET /schemas/ids/{id}/subjects``                       its subjects
``GET /schemas/guids/{guid}``                            a schema by GUID
``GET|PUT /config``, ``GET|PUT /config/{s}``             compatibility level (stored, not
                                                         enforced)
=======================================================  =====================================

Ids are global and start at ``FIRST_ID`` (so an id is never mistaken for a version number); each
schema gets a random UUID GUID. One schema text (compared as JSON with sorted keys, with its type
and references) has one id and one GUID under every subject, as in Confluent's registry. There
are no deletes: ``deleted=`` is accepted and changes nothing. Errors carry Confluent's body,
``{"error_code": 40401, "message": ...}`` (40401 subject, 40402 version, 40403 schema, 42201
invalid schema, 42202 invalid version). A request without a route is answered 404 with error
code 40403 and kept in ``unknown``, so a test can assert the stand-in was never asked for
something it does not model.

Usage::

    with SchemaRegistryStandIn() as standin:
        registry = open_registry(RegistrySettings(Flavor.CONFLUENT, url=standin.url))
        ...
        assert standin.unknown == []
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

FIRST_ID = 1001
DEFAULT_COMPATIBILITY = "BACKWARD"
_SEGMENT = r"[^/]+"


@dataclass(frozen=True)
class Recorded:
    """One request as the stand-in received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def __str__(self) -> str:
        query = "&".join(f"{k}={v}" for k, values in self.query.items() for v in values)
        return f"{self.method} {self.path}{'?' + query if query else ''} {self.body[:200]!r}"


@dataclass(frozen=True)
class StoredSchema:
    """One distinct schema: its global id, its GUID and its definition as first registered."""

    id: int
    guid: str
    schema: str
    schema_type: str = "AVRO"
    references: tuple[tuple[str, str, int], ...] = ()  # (name, subject, version)

    def as_json(self) -> dict[str, Any]:
        """The schema fields of a Confluent answer (``schemaType`` left out for AVRO, as
        Confluent's registry does)."""
        body: dict[str, Any] = {"schema": self.schema}
        if self.schema_type != "AVRO":
            body["schemaType"] = self.schema_type
        if self.references:
            body["references"] = [
                {"name": name, "subject": subject, "version": version}
                for name, subject, version in self.references
            ]
        return body


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=dict)


def _error(status: int, code: int, message: str) -> Reply:
    return Reply(status, {"error_code": code, "message": message})


def _subject_not_found(subject: str) -> Reply:
    return _error(404, 40401, f"Subject '{subject}' not found.")


def _schema_not_found(what: str) -> Reply:
    return _error(404, 40403, f"Schema {what} not found")


class SchemaRegistryStandIn:
    """An in-memory Confluent Schema Registry on ``http://127.0.0.1:<free port>``, served by a
    thread while the context is open. ``requests`` is every request, in order; ``unknown`` those
    without a route."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.unknown: list[Recorded] = []
        self.schemas: dict[int, StoredSchema] = {}
        self.subjects: dict[str, list[int]] = {}  # subject → schema id of version n at [n - 1]
        self.compatibility: dict[str | None, str] = {None: DEFAULT_COMPATIBILITY}
        self._by_identity: dict[tuple[str, str, tuple[tuple[str, str, int], ...]], int] = {}
        self._next_id = FIRST_ID
        self._lock = threading.Lock()
        s = _SEGMENT
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Reply]]] = [
            ("GET", re.compile(r"/subjects"), self._list_subjects),
            ("POST", re.compile(rf"/subjects/(?P<subject>{s})/versions"), self._register),
            ("POST", re.compile(rf"/subjects/(?P<subject>{s})"), self._lookup),
            ("GET", re.compile(rf"/subjects/(?P<subject>{s})/versions"), self._versions),
            (
                "GET",
                re.compile(rf"/subjects/(?P<subject>{s})/versions/(?P<version>{s})"),
                self._version,
            ),
            ("GET", re.compile(r"/schemas/ids/(?P<schema_id>\d+)"), self._by_id),
            ("GET", re.compile(r"/schemas/ids/(?P<schema_id>\d+)/versions"), self._id_versions),
            ("GET", re.compile(r"/schemas/ids/(?P<schema_id>\d+)/subjects"), self._id_subjects),
            ("GET", re.compile(rf"/schemas/guids/(?P<guid>{s})"), self._by_guid),
            ("GET", re.compile(r"/config"), self._get_config),
            ("PUT", re.compile(r"/config"), self._put_config),
            ("GET", re.compile(rf"/config/(?P<subject>{s})"), self._get_config),
            ("PUT", re.compile(rf"/config/(?P<subject>{s})"), self._put_config),
        ]
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def __enter__(self) -> SchemaRegistryStandIn:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- for tests -------------------------------------------------------------------------------

    def schema(self, schema_id: int | str) -> StoredSchema:
        """The stored schema of an id (as an int or the decimal ref avrolake uses)."""
        with self._lock:
            return self.schemas[int(schema_id)]

    def requests_to(self, method: str, path_prefix: str) -> list[Recorded]:
        with self._lock:
            return [
                r for r in self.requests if r.method == method and r.path.startswith(path_prefix)
            ]

    # --- dispatch --------------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: every answer has a Content-Length

            def _serve(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                recorded = Recorded(
                    method=self.command,
                    path=split.path.rstrip("/") or "/",
                    query=parse_qs(split.query),
                    body=self.rfile.read(length) if length else b"",
                )
                reply = standin._dispatch(recorded)
                payload = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        return Handler

    def _dispatch(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            for method, pattern, handler in self._routes:
                match = pattern.fullmatch(request.path)
                if match and method == request.method:
                    groups = {k: unquote(v) for k, v in match.groupdict().items()}
                    try:
                        return handler(request, **groups)
                    except (ValueError, KeyError, TypeError) as error:  # a malformed request
                        return _error(422, 42201, f"stand-in cannot handle {request}: {error}")
            self.unknown.append(request)
            return _schema_not_found(f"(no stand-in route for {request.method} {request.path})")

    # --- schemas ---------------------------------------------------------------------------------

    @staticmethod
    def _identity(body: dict[str, Any]) -> tuple[str, str, tuple[tuple[str, str, int], ...]]:
        """What makes two registrations the same schema: its JSON (keys sorted), type and
        references."""
        text = json.dumps(json.loads(body["schema"]), sort_keys=True, separators=(",", ":"))
        references = tuple(
            (r["name"], r["subject"], int(r["version"])) for r in body.get("references") or ()
        )
        return text, str(body.get("schemaType") or "AVRO"), references

    def _registered(self, subject: str, version: int) -> dict[str, Any]:
        stored = self.schemas[self.subjects[subject][version - 1]]
        return {
            "subject": subject,
            "version": version,
            "id": stored.id,
            "guid": stored.guid,
            **stored.as_json(),
        }

    def _register(self, request: Recorded, subject: str) -> Reply:
        body = request.json()
        try:
            identity = self._identity(body)
        except (json.JSONDecodeError, TypeError) as error:
            return _error(422, 42201, f"Invalid schema: {error}")
        for name, ref_subject, ref_version in identity[2]:
            if not 1 <= ref_version <= len(self.subjects.get(ref_subject, ())):
                return _error(422, 42201, f"Invalid schema: reference {name} not found")
        schema_id = self._by_identity.get(identity)
        if schema_id is None:
            schema_id = self._next_id
            self._next_id += 1
            self._by_identity[identity] = schema_id
            self.schemas[schema_id] = StoredSchema(
                schema_id, str(uuid.uuid4()), body["schema"], identity[1], identity[2]
            )
        versions = self.subjects.setdefault(subject, [])
        if schema_id not in versions:
            versions.append(schema_id)
        return Reply(body=self._registered(subject, versions.index(schema_id) + 1))

    def _lookup(self, request: Recorded, subject: str) -> Reply:
        if subject not in self.subjects:
            return _subject_not_found(subject)
        schema_id = self._by_identity.get(self._identity(request.json()))
        versions = self.subjects[subject]
        if schema_id is None or schema_id not in versions:
            return _schema_not_found(f"under subject '{subject}'")
        return Reply(body=self._registered(subject, versions.index(schema_id) + 1))

    def _list_subjects(self, _request: Recorded) -> Reply:
        return Reply(body=sorted(self.subjects))

    def _versions(self, _request: Recorded, subject: str) -> Reply:
        if subject not in self.subjects:
            return _subject_not_found(subject)
        return Reply(body=list(range(1, len(self.subjects[subject]) + 1)))

    def _version(self, _request: Recorded, subject: str, version: str) -> Reply:
        if subject not in self.subjects:
            return _subject_not_found(subject)
        count = len(self.subjects[subject])
        if version in ("latest", "-1"):
            number = count
        elif version.isdigit() and int(version) >= 1:
            number = int(version)
        else:
            return _error(422, 42202, f"The specified version '{version}' is not a valid version")
        if number > count:
            return _error(404, 40402, f"Version {version} not found.")
        return Reply(body=self._registered(subject, number))

    def _by_id(self, _request: Recorded, schema_id: str) -> Reply:
        stored = self.schemas.get(int(schema_id))
        if stored is None:
            return _schema_not_found(schema_id)
        return Reply(body={**stored.as_json(), "guid": stored.guid})

    def _id_pairs(self, schema_id: int) -> list[tuple[str, int]]:
        return [
            (subject, number)
            for subject, ids in sorted(self.subjects.items())
            for number, found in enumerate(ids, start=1)
            if found == schema_id
        ]

    def _id_versions(self, request: Recorded, schema_id: str) -> Reply:
        if int(schema_id) not in self.schemas:
            return _schema_not_found(schema_id)
        wanted = request.query.get("subject", [None])[0]
        pairs = self._id_pairs(int(schema_id))
        return Reply(
            body=[
                {"subject": subject, "version": version}
                for subject, version in pairs
                if wanted is None or subject == wanted
            ]
        )

    def _id_subjects(self, request: Recorded, schema_id: str) -> Reply:
        if int(schema_id) not in self.schemas:
            return _schema_not_found(schema_id)
        wanted = request.query.get("subject", [None])[0]
        subjects = dict.fromkeys(subject for subject, _ in self._id_pairs(int(schema_id)))
        return Reply(body=[s for s in subjects if wanted is None or s == wanted])

    def _by_guid(self, _request: Recorded, guid: str) -> Reply:
        for stored in self.schemas.values():
            if stored.guid == guid.lower():
                return Reply(body={**stored.as_json(), "guid": stored.guid})
        return _schema_not_found(f"guid {guid}")

    # --- config ----------------------------------------------------------------------------------

    def _get_config(self, request: Recorded, subject: str | None = None) -> Reply:
        level = self.compatibility.get(subject)
        if level is None:
            if request.query.get("defaultToGlobal", ["false"])[0].lower() != "true":
                message = f"Subject '{subject}' does not have subject-level compatibility"
                return _error(404, 40408, message)
            level = self.compatibility[None]
        return Reply(body={"compatibilityLevel": level})

    def _put_config(self, request: Recorded, subject: str | None = None) -> Reply:
        level = str(request.json()["compatibility"]).upper()
        self.compatibility[subject] = level
        return Reply(body={"compatibility": level})
