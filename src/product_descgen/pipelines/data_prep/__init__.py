"""data_prep: raw catalogue -> validated, cleaned, length-filtered train/validation/test."""

from product_descgen.pipelines.data_prep.pipeline import create_pipeline

__all__ = ["create_pipeline"]
