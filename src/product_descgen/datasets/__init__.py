"""Custom Kedro datasets."""

from product_descgen.datasets.jsonlines import JSONLinesDataset

__all__ = ["JSONLinesDataset"]
