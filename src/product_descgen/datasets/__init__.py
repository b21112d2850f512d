"""Custom Kedro datasets."""

from product_descgen.datasets.jsonlines import JSONLinesDataset
from product_descgen.datasets.llm import CallStoreDataset, LLMConnectionDataset

__all__ = ["CallStoreDataset", "JSONLinesDataset", "LLMConnectionDataset"]
