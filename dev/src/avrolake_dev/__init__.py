"""avrolake's dev tooling, a distribution of its own (``avrolake-dev``) that no cluster installs.

- ``local``: the embedded stack (Kafka, Apicurio, moto) and the JVM artifacts of ``jvm/pom.xml``.
- ``demo``, ``report``: the end-to-end demo and its chart.
- ``cli``: ``avrolake local …`` and ``avrolake demo``, added to the runtime's ``avrolake`` command
  through entry points of group ``avrolake.cli``; the local Spark session gets its connector jars
  through group ``avrolake.spark_jars`` (see ``dev/pyproject.toml``).

The runtime package ``avrolake`` never imports this one.
"""
