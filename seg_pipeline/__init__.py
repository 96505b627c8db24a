"""seg-pipeline: a Dagster-orchestrated pipeline for AI-driven customer segmentation."""

__version__ = "0.1.0"
