"""A folder of files that may be empty: ``PartitionedDataset`` without the empty-folder error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kedro_datasets.partitions import PartitionedDataset


class RatingsFolderDataset(PartitionedDataset):
    """Raters' judgments files, one per rater; an empty or missing folder loads as ``{}``
    (no ratings yet is a normal state, reported as such, not an error)."""

    def _exists(self) -> bool:
        return True  # an empty or missing folder loads as {}

    def load(self) -> dict[str, Callable[[], Any]]:
        if not self._list_partitions():
            return {}
        return super().load()
