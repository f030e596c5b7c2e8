"""The Product example's pipeline definition (``pipelines.yml`` at the repository root), on a
test's own topic: what every Product test runs silver, gold and replay with."""

from __future__ import annotations

from pathlib import Path

from avrolake.definitions import PipelineDefinition, load_definitions

DEFINITIONS_FILE = Path(__file__).resolve().parents[1] / "pipelines.yml"


def product_pipeline(topic: str = "products") -> PipelineDefinition:
    """The example's only pipeline, reading ``topic``."""
    (pipeline,) = load_definitions(DEFINITIONS_FILE).select(["products"])
    return pipeline.with_topic(topic)
