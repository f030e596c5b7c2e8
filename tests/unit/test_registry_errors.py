"""The kind of a registry failure comes from the library's status and error codes, not its text.

These are the answers the embedded stack cannot give on demand (throttling, 5xx, 401, a Glue
compatibility check that ends in ``FAILURE``: moto checks no compatibility and is never busy), so
they come from stand-ins speaking each API: for Glue botocore's ``Stubber`` on a real boto3
client (the response goes through botocore's own error parsing into ``ClientError``), for
Confluent a loopback HTTP server answering as the Schema Registry REST API documents its errors
(read by confluent-kafka's real ``SchemaRegistryClient``). What the real registries answer —
Apicurio's 409 on an incompatible version, 404s, moto's not-found and invalid input, a registry
nobody answers at — is in tests/integration/test_registry.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from botocore.stub import ANY, Stubber

import avro_oracle
from avrolake import wire
from avrolake.errors import (
    ConfigError,
    RegistryError,
    RegistryUnavailableError,
    SchemaError,
    SchemaIncompatibleError,
    SchemaInvalidError,
    SchemaNotFoundError,
)
from avrolake.registry import Subject, SubjectStrategy
from avrolake.registry import glue as glue_module
from avrolake.registry.confluent import ConfluentRegistry
from avrolake.registry.glue import GlueRegistry, glue_client
from avrolake.settings import Flavor, RegistrySettings
from avrolake.wire import WireFormat

VERSION_ID = "6f9bd1f4-4c55-4bd2-9f55-0d3f5e7c9a11"
ARN = "arn:aws:glue:us-east-1:123456789012:schema/reg/products"
DEFINITION = json.dumps(
    {"type": "record", "name": "Product", "fields": [{"name": "eventId", "type": "string"}]}
)


# --- Glue: botocore's Stubber -------------------------------------------------------------------


@pytest.fixture
def glue(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[GlueRegistry, Stubber]]:
    monkeypatch.setattr(glue_module, "CHECK_POLL_S", 0)
    settings = RegistrySettings(
        Flavor.GLUE, glue_registry_name="reg", region="us-east-1", endpoint_url="http://glue.test"
    )
    client = glue_client(settings)
    with Stubber(client) as stubber:
        yield GlueRegistry(client, "reg", "http://glue.test"), stubber
        stubber.assert_no_pending_responses()


def _version(status: str = "AVAILABLE", number: int = 1) -> dict[str, Any]:
    return {
        "SchemaVersionId": VERSION_ID,
        "SchemaDefinition": DEFINITION,
        "SchemaArn": ARN,
        "VersionNumber": number,
        "Status": status,
    }


@pytest.mark.parametrize(
    ("code", "http_status", "kind"),
    [
        ("EntityNotFoundException", 400, SchemaNotFoundError),
        ("ThrottlingException", 400, RegistryUnavailableError),
        ("InternalServiceException", 500, RegistryUnavailableError),
        ("OperationTimeoutException", 400, RegistryUnavailableError),
        ("ServiceUnavailable", 503, RegistryUnavailableError),  # any 5xx
        ("AccessDeniedException", 400, RegistryError),
        ("InvalidInputException", 400, RegistryError),  # not a definition: nothing was sent
    ],
)
def test_glue_lookup_failures_map_by_error_code(
    glue: tuple[GlueRegistry, Stubber], code: str, http_status: int, kind: type[RegistryError]
) -> None:
    registry, stubber = glue
    stubber.add_client_error(
        "get_schema_version",
        service_error_code=code,
        service_message="message text is not looked at",
        http_status_code=http_status,
    )
    with pytest.raises(RegistryError) as caught:
        registry.by_ref(VERSION_ID)
    assert type(caught.value) is kind
    assert caught.value.code == code


def test_glue_invalid_definition_is_schema_invalid(glue: tuple[GlueRegistry, Stubber]) -> None:
    registry, stubber = glue
    stubber.add_client_error("create_registry", service_error_code="AlreadyExistsException")
    stubber.add_client_error("get_schema", service_error_code="EntityNotFoundException")
    stubber.add_client_error(
        "create_schema", service_error_code="InvalidInputException", service_message="whatever"
    )
    with pytest.raises(SchemaInvalidError) as caught:
        registry.register("products", "{not avro")
    assert caught.value.code == "InvalidInputException"
    assert isinstance(caught.value, SchemaError)  # still a refused schema for older callers


def test_glue_version_failing_the_compatibility_check_is_incompatible(
    glue: tuple[GlueRegistry, Stubber],
) -> None:
    """Glue checks compatibility after accepting the request: the version is PENDING, then
    FAILURE. (moto has no compatibility checks, so this cannot be seen on the local stack.)"""
    registry, stubber = glue
    stubber.add_response("create_registry", {"RegistryName": "reg"})
    stubber.add_response("get_schema", {"SchemaName": "products"})
    stubber.add_response(
        "register_schema_version",
        {"SchemaVersionId": VERSION_ID, "VersionNumber": 2, "Status": "PENDING"},
    )
    stubber.add_response("get_schema_version", _version("PENDING", 2))
    stubber.add_response("get_schema_version", _version("FAILURE", 2))
    stubber.add_response("get_schema", {"SchemaName": "products", "Compatibility": "FULL_ALL"})
    with pytest.raises(SchemaIncompatibleError) as caught:
        registry.register("products", DEFINITION)
    assert str(caught.value) == (
        "Glue registry reg at http://glue.test refused to register a version of schema "
        f"products: version {VERSION_ID} failed the schema's compatibility check (FULL_ALL)"
    )


def test_glue_schema_created_by_another_producer_meanwhile_gets_a_version(
    glue: tuple[GlueRegistry, Stubber],
) -> None:
    registry, stubber = glue
    stubber.add_client_error("create_registry", service_error_code="AlreadyExistsException")
    stubber.add_client_error("get_schema", service_error_code="EntityNotFoundException")
    stubber.add_client_error("create_schema", service_error_code="AlreadyExistsException")
    stubber.add_response(
        "register_schema_version",
        {"SchemaVersionId": VERSION_ID, "VersionNumber": 1, "Status": "AVAILABLE"},
    )
    stubber.add_response("get_schema_version", _version())
    registered = registry.register("products", DEFINITION)
    assert (registered.ref, registered.version) == (VERSION_ID, 1)


def test_glue_serializer_lookup_failure_keeps_the_wrapped_code(
    glue: tuple[GlueRegistry, Stubber],
) -> None:
    """aws-glue-schema-registry wraps boto's error in its own exception; the kind still comes
    from the code underneath."""
    registry, stubber = glue
    stubber.add_client_error("get_schema_by_definition", service_error_code="ThrottlingException")
    serialize = registry.serializer("products", VERSION_ID, DEFINITION)
    with pytest.raises(RegistryUnavailableError) as caught:
        serialize({"eventId": "e1"})
    assert caught.value.code == "ThrottlingException"


@pytest.mark.parametrize(
    ("subject", "schema_name"),
    [
        (Subject("orders"), "orders"),  # TopicNameStrategy: <topic>, the Java SerDe's default
        (Subject("orders", SubjectStrategy.RECORD, "Product"), "Product"),
        (Subject("orders", SubjectStrategy.TOPIC_RECORD, "Product"), "orders-Product"),
        (Subject("orders", SubjectStrategy.RECORD, "Product", glue_schema="catalog"), "catalog"),
    ],
)
def test_glue_serializer_looks_its_version_up_under_the_subjects_schema(
    glue: tuple[GlueRegistry, Stubber], subject: Subject, schema_name: str
) -> None:
    """The library's serializer asks for the version under the schema name Glue documents for
    the strategy (or the definition's own) and frames the record with the answer's id."""
    registry, stubber = glue
    stubber.add_response(
        "get_schema_by_definition",
        {
            "SchemaVersionId": VERSION_ID,
            "SchemaArn": f"arn:aws:glue:us-east-1:123456789012:schema/reg/{schema_name}",
            "DataFormat": "AVRO",
            "Status": "AVAILABLE",
        },
        expected_params={
            "SchemaId": {"SchemaName": schema_name, "RegistryName": "reg"},
            "SchemaDefinition": ANY,
        },
    )
    framed = registry.serializer(subject, VERSION_ID, DEFINITION)({"eventId": "e1"})
    frame = wire.parse(framed)
    assert frame.schema_ref == VERSION_ID
    assert frame.payload == avro_oracle.write(DEFINITION, {"eventId": "e1"})
    assert registry.where(subject) == f"Glue schema {schema_name}"


def test_glue_by_ref_finds_a_version_only_under_its_own_schema(
    glue: tuple[GlueRegistry, Stubber],
) -> None:
    """The version's ARN names schema reg/products: found under a subject whose Glue schema is
    products, not found under the record strategy's own name for it."""
    registry, stubber = glue
    stubber.add_response("get_schema_version", _version())
    mine = Subject("orders", SubjectStrategy.RECORD, "Product", glue_schema="products")
    assert registry.by_ref(VERSION_ID, mine).version == 1
    with pytest.raises(SchemaNotFoundError) as caught:  # from the cache: no second request
        registry.by_ref(VERSION_ID, Subject("orders", SubjectStrategy.RECORD, "Product"))
    assert str(caught.value) == (
        f"schema version {VERSION_ID} belongs to Glue schema reg/products, not reg/Product"
    )


@pytest.mark.parametrize(
    ("schema_str", "named"),
    [
        (DEFINITION, "Product"),
        (json.dumps({**json.loads(DEFINITION), "namespace": "com.example"}), "com.example.Product"),
        ('"string"', "(none: not a named type)"),
    ],
)
def test_glue_record_strategy_refuses_another_records_schema_without_asking(
    glue: tuple[GlueRegistry, Stubber], schema_str: str, named: str
) -> None:
    registry, _ = glue  # the stubber has no answers: any request would fail the test
    subject = Subject("orders", SubjectStrategy.TOPIC_RECORD, "com.example.Order")
    expected = (
        f"a schema of record {named} cannot go under Glue schema orders-com.example.Order: that "
        "topic_record subject holds record com.example.Order; fix the record's full name in the "
        "definition or the schema"
    )
    with pytest.raises(ConfigError) as caught:
        registry.register(subject, schema_str)
    assert str(caught.value) == expected
    with pytest.raises(ConfigError) as caught:
        registry.serializer(subject, VERSION_ID, schema_str)
    assert str(caught.value) == expected


# --- Confluent: a loopback stand-in of the REST API ---------------------------------------------


class _Answers(BaseHTTPRequestHandler):
    status = 200
    body: ClassVar[dict[str, Any]] = {}
    requests = 0
    paths: ClassVar[list[str]] = []

    def _answer(self) -> None:
        type(self).requests += 1
        type(self).paths = [*type(self).paths, f"{self.command} {self.path}"]
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        payload = json.dumps(self.body).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def confluent() -> Iterator[tuple[ConfluentRegistry, type[_Answers]]]:
    answers = type("Answers", (_Answers,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    registry = ConfluentRegistry.from_settings(RegistrySettings(Flavor.CONFLUENT, url=url))
    try:
        yield registry, answers
    finally:
        registry.close()
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("status", "error_code", "kind"),
    [
        (409, 409, SchemaIncompatibleError),
        (422, 42201, SchemaInvalidError),
        (404, 40401, SchemaNotFoundError),
        (401, 401, RegistryError),
        (429, 429, RegistryUnavailableError),
        (503, 50003, RegistryUnavailableError),
    ],
)
def test_confluent_failures_map_by_http_status(
    confluent: tuple[ConfluentRegistry, type[_Answers]],
    status: int,
    error_code: int,
    kind: type[RegistryError],
) -> None:
    registry, answers = confluent
    answers.status = status
    answers.body = {"error_code": error_code, "message": "message text is not looked at"}
    with pytest.raises(RegistryError) as caught:
        registry.register("products", DEFINITION)
    assert type(caught.value) is kind
    assert caught.value.code == str(error_code)
    assert answers.requests >= 1


def test_confluent_framing_has_no_compressed_form(
    confluent: tuple[ConfluentRegistry, type[_Answers]],
) -> None:
    registry, _ = confluent
    with pytest.raises(ConfigError, match="no compressed form"):
        registry.serializer("products", "1", DEFINITION, compress=True)


@pytest.mark.parametrize(
    ("subject", "path"),
    [
        (Subject("orders"), "/subjects/orders-value"),
        (Subject("orders", SubjectStrategy.RECORD, "Product"), "/subjects/Product"),
        (Subject("orders", SubjectStrategy.TOPIC_RECORD, "Product"), "/subjects/orders-Product"),
    ],
)
def test_confluent_serializer_looks_its_schema_up_under_the_strategys_subject(
    confluent: tuple[ConfluentRegistry, type[_Answers]], subject: Subject, path: str
) -> None:
    """confluent-kafka's serializer, with the library's strategy, asks under the subject
    Confluent documents for the strategy and frames the record with the answer's id."""
    registry, answers = confluent
    answers.body = {"subject": path.rsplit("/", 1)[-1], "id": 7, "version": 1, "schema": DEFINITION}
    framed = registry.serializer(subject, "7", DEFINITION)({"eventId": "e1"})
    frame = wire.parse(framed)
    assert (frame.wire_format, frame.schema_ref) == (WireFormat.CONFLUENT, "7")
    assert frame.payload == avro_oracle.write(DEFINITION, {"eventId": "e1"})
    assert [p.split("?")[0] for p in answers.paths] == [f"POST {path}"]
    assert registry.where(subject) == f"subject {path.rsplit('/', 1)[-1]}"


def test_confluent_record_strategy_refuses_another_records_schema_without_asking(
    confluent: tuple[ConfluentRegistry, type[_Answers]],
) -> None:
    registry, answers = confluent
    subject = Subject("orders", SubjectStrategy.RECORD, "com.example.Order")
    with pytest.raises(ConfigError) as caught:
        registry.register(subject, DEFINITION)
    assert str(caught.value) == (
        "a schema of record Product cannot go under subject com.example.Order: that record "
        "subject holds record com.example.Order; fix the record's full name in the definition or "
        "the schema"
    )
    with pytest.raises(ConfigError):
        registry.serializer(subject, "7", DEFINITION)
    assert answers.requests == 0
