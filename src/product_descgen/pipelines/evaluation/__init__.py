"""evaluation pipeline: is the student as good as the teacher, how much faster and cheaper."""

from product_descgen.pipelines.evaluation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
