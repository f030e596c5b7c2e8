"""The medallion stages: Kafka → bronze → silver (+ quarantine) → gold.

Each stage module holds pure ``DataFrame -> DataFrame`` transformations; ``runners`` does the I/O
(readStream, MERGE, writeStream) and returns the ``StreamingQuery`` so the caller decides whether
to wait.
"""
