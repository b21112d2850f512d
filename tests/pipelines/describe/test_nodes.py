"""describe's checks compare each new product with the training catalogue, not only its batch."""

from __future__ import annotations

import pandas as pd

from product_descgen.evaluation.config import DescribeParams
from product_descgen.pipelines.describe.nodes import check_new_descriptions
from product_descgen.prep.config import DataPrepParams
from product_descgen.prep.quarantine import quarantine_frame
from product_descgen.project_config import load_project_params
from tests.pipelines.evaluation.fixtures import write_model_inputs


def test_a_batch_of_one_is_checked_against_the_training_catalogue(project_copy):
    catalogue = write_model_inputs(project_copy)
    params = load_project_params(root=project_copy)
    describe = DescribeParams.model_validate(params["describe"])
    mug, other = catalogue.iloc[[0]], catalogue.iloc[-1]
    # the batch's one product described with another catalogue product's own text
    outputs = pd.DataFrame(
        {"product_id": mug["product_id"], "text": [other["description"]], "finish_reason": "stop"}
    )
    checked = check_new_descriptions(
        mug, outputs, quarantine_frame([]), catalogue, describe,
        DataPrepParams.model_validate(params["data_prep"]),
    )  # fmt: skip
    [reasons] = checked["reasons"].tolist()
    assert "off_product" in reasons  # a batch under min_pool went unchecked
    alone = check_new_descriptions(
        mug, outputs, quarantine_frame([]), catalogue.head(0), describe,
        DataPrepParams.model_validate(params["data_prep"]),
    )  # fmt: skip
    assert "off_product" not in alone["reasons"].iloc[0]  # the batch alone: not checked
