"""A stage that keeps too few rows fails there, with the reasons counted."""

from __future__ import annotations

import pandas as pd
import pytest

from product_descgen.pipelines.data_prep.nodes import ingest_catalogue
from product_descgen.prep.config import DataPrepParams


def test_a_catalogue_whose_every_row_is_unusable_fails_at_ingest_with_reason_counts():
    # the columns are there, their content is not (a wrong mapping, an export gone wrong)
    raw = pd.DataFrame({"product_id": [str(i) for i in range(6)], "title": "",
                        "category": "Kitchen", "attributes": None, "description": ""})  # fmt: skip
    with pytest.raises(ValueError, match=r"ingest: kept 0 of 6 rows .*quarantined by reason: \{'"):
        ingest_catalogue(raw, DataPrepParams())
    # the quarantine table is not saved when the stage fails: the message shows its first rows
    with pytest.raises(ValueError, match=r"first rows: row 1 \(0\): missing_title: .*; row 2 "):
        ingest_catalogue(raw, DataPrepParams())
    # describe's floor (0): no batch fails, every row is quarantined with its reason
    kept, quarantined = ingest_catalogue(raw, DataPrepParams(), min_kept_share=0.0)
    assert kept.empty and len(quarantined) == 6


def test_a_few_bad_rows_are_quarantined_not_fatal():
    good = {"title": "Mug", "category": "Kitchen", "attributes": {"Color": "Red"},
            "description": "A red mug."}  # fmt: skip
    raw = pd.DataFrame(
        [{**good, "product_id": str(i)} for i in range(4)] + [{"product_id": "x", "title": ""}]
    )
    kept, quarantined = ingest_catalogue(raw, DataPrepParams())
    assert len(kept) == 4 and len(quarantined) == 1
    with pytest.raises(ValueError, match="below data_prep.limits.min_kept_share"):
        ingest_catalogue(raw, DataPrepParams(limits={"min_kept_share": 0.9}))


def test_an_empty_file_fails_a_catalogue_and_is_an_empty_batch_of_new_products(caplog):
    with pytest.raises(ValueError, match="no rows: is the file empty"):
        ingest_catalogue(pd.DataFrame(), DataPrepParams())
    with caplog.at_level("WARNING"):
        kept, quarantined = ingest_catalogue(pd.DataFrame(), DataPrepParams(), allow_empty=True)
    assert kept.empty and quarantined.empty
    assert "the file holds no products" in caplog.text
