"""Evaluation and describe serve the student through one path with one set of settings: the
same product gets the same text in both, whatever else is in the batch."""

from __future__ import annotations

import pandas as pd

from product_descgen.callstore import CallStore
from product_descgen.evaluation.config import DescribeParams, EvaluationParams
from product_descgen.llm.backends import Connection
from product_descgen.pipelines.describe.nodes import generate_new_descriptions
from product_descgen.pipelines.evaluation.nodes import describe_with_student, serve_student
from product_descgen.project_config import load_project_params
from product_descgen.training.config import FinetuneParams
from tests.pipelines.evaluation.fixtures import write_adapter, write_test_sets


def test_the_same_product_gets_the_same_text_in_evaluation_and_describe(
    project_copy, tiny_model_dir, tiny_openvino_dir
):
    # transformers: the tiny random model's OpenVINO text decodes to special tokens only; both
    # nodes hand the same connection and settings to run_student, whatever the backend
    items = write_test_sets(project_copy, n=4)
    adapter = write_adapter(project_copy, tiny_model_dir)
    params = load_project_params(root=project_copy)
    evaluation = EvaluationParams.model_validate(
        {
            **params["evaluation"],
            "student_generation": {"max_new_tokens": 12, "no_repeat_ngram_size": 1},
            "progress": False,
        }
    )
    finetune = FinetuneParams.model_validate(params["finetune"])
    describe = DescribeParams.model_validate({**params["describe"], "progress": False})
    student_llm = Connection(
        backend="transformers", device="cpu", batch_size=4, model_dir=str(tiny_model_dir)
    )
    served = serve_student(
        str(adapter), str(tiny_openvino_dir), student_llm, finetune, evaluation
    )  # what the serve_student node hands both pipelines
    # each node with a store of its own, so describe generates rather than reads evaluation's
    evaluated = describe_with_student(
        items, served, CallStore(project_copy / "evaluation.sqlite"), evaluation
    )
    # describe sees one of those products among others, in another order
    new = pd.concat([items.iloc[[2]], items.iloc[[0]].assign(product_id="N0")])
    described = generate_new_descriptions(
        new, served, CallStore(project_copy / "describe.sqlite"), describe
    )
    text = dict(zip(evaluated["product_id"], evaluated["text"], strict=True))
    again = dict(zip(described["product_id"], described["text"], strict=True))
    assert text["P2"] and again["P2"] == text["P2"]
    assert again["N0"] == text["P0"]  # same product data under another id: same text
