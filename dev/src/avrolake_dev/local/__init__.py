"""The embedded local stack: a Kafka broker, Apicurio Registry and moto, on loopback.

Only the CLI (``avrolake local …``), the tests and the ``avrolake.spark_jars`` entry point (the
jar list ``avrolake.spark`` asks for) use this package; the runtime package never imports it.

- ``jars``: resolves the JVM artifacts of ``jvm/pom.xml`` into ``cache_dir()/jars/<profile>``.
- ``kafka``, ``apicurio``, ``moto``: how to start and probe each service.
- ``stack``: ``LocalStack`` starts, checks and stops them as one unit, with pid files and logs in
  one state directory (``AVROLAKE_STATE_DIR``, default ``cache_dir()/state``).
- ``lease``: lets concurrent test sessions share one stack.
"""

from avrolake_dev.local.stack import LocalStack, ServiceStatus, state_dir

__all__ = ["LocalStack", "ServiceStatus", "state_dir"]
