"""reporting pipeline: charts and the HTML report of a run."""

from product_descgen.pipelines.reporting.pipeline import create_pipeline

__all__ = ["create_pipeline"]
