"""One exception root, a subclass per layer.

Messages say what is wrong and how to fix it, in one line: the CLI prints ``str(error)`` and exits
non-zero, so a user never sees a traceback for a mistake they can correct.
"""


class AvrolakeError(Exception):
    """Root of every error avrolake raises on purpose."""

    exit_code = 1


class ConfigError(AvrolakeError):
    """Bad settings: a missing or malformed argument, environment variable or secret."""

    exit_code = 2


class SchemaError(AvrolakeError):
    """A missing, invalid or incompatible Avro schema."""


class RegistryError(AvrolakeError):
    """The schema registry refused a request or could not be reached.

    The subclass is the kind of failure (not found, incompatible, invalid, unavailable), and
    ``code`` the registry's own error code when it gave one (Glue's ``AlreadyExistsException``,
    Confluent's ``42201``), so callers never match on message text.
    """

    code: str | None = None


class SchemaNotFoundError(RegistryError):
    """The registry answered, and has no schema under that reference or subject."""


class SchemaIncompatibleError(RegistryError, SchemaError):
    """The registry refused a new version: it breaks the subject's (or Glue schema's)
    compatibility rule (Confluent HTTP 409; a Glue version that ends in status ``FAILURE``)."""


class SchemaInvalidError(RegistryError, SchemaError):
    """The registry refused a definition as invalid (Confluent HTTP 422, e.g. error code 42201;
    Glue ``InvalidInputException`` on a registration)."""


class RegistryUnavailableError(RegistryError):
    """The registry could not be reached or answered with a transient failure (timeout, 408,
    429, 5xx): retrying later may succeed, so a stream waits instead of quarantining."""


class SerializationError(AvrolakeError):
    """Bytes that are not a framed Avro record of a known wire format."""


class KafkaError(AvrolakeError):
    """The Kafka cluster could not be reached or refused a request."""


class LocalStackError(AvrolakeError):
    """The embedded local stack could not be started, checked or stopped."""


class PipelineError(AvrolakeError):
    """A pipeline stage was misconfigured or its tables are not what it expects."""
