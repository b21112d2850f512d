"""Custom Kedro datasets."""

from product_descgen.datasets.folders import RatingsFolderDataset
from product_descgen.datasets.jsonlines import JSONLinesDataset
from product_descgen.datasets.llm import CallStoreDataset, LLMConnectionDataset, ModelDirDataset
from product_descgen.datasets.models import (
    ExportedModelDataset,
    LudwigModelDataset,
    PeftAdapterDataset,
)
from product_descgen.datasets.strict_json import StrictJSONDataset

__all__ = [
    "CallStoreDataset",
    "ExportedModelDataset",
    "JSONLinesDataset",
    "LLMConnectionDataset",
    "LudwigModelDataset",
    "ModelDirDataset",
    "PeftAdapterDataset",
    "RatingsFolderDataset",
    "StrictJSONDataset",
]
