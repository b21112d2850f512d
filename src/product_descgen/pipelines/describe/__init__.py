"""describe pipeline: new products -> student descriptions, each checked and flagged."""

from product_descgen.pipelines.describe.pipeline import create_pipeline

__all__ = ["create_pipeline"]
