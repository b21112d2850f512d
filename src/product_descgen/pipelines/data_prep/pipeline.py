"""data_prep wiring (see README.md beside this file)."""

from collections.abc import Callable
from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from product_descgen.pipelines.data_prep import nodes


def with_floor(func: Callable, min_kept_share: float | None) -> Callable:
    """``func`` (a cleaning stage) failing under ``min_kept_share`` of its rows kept; ``None``:
    under the configured ``data_prep.limits.min_kept_share``."""
    if min_kept_share is None:
        return func
    return update_wrapper(partial(func, min_kept_share=min_kept_share), func)


def create_cleaning_pipeline(min_kept_share: float | None = None) -> Pipeline:
    """``raw_products`` to usable model inputs (``length_filtered_examples``) and one
    ``quarantine`` table: the part describe reuses on new products (under a namespace, with
    ``min_kept_share`` 0: a batch of new products never fails for its unusable rows, each gets
    its line with the reason)."""
    return Pipeline(
        [
            Node(
                with_floor(nodes.ingest_catalogue, min_kept_share),
                ["raw_products", "params:data_prep"],
                ["ingested_products", "ingest_quarantine"],
                name="ingest_catalogue_node",
            ),
            Node(
                with_floor(nodes.clean_catalogue, min_kept_share),
                ["ingested_products", "params:data_prep"],
                ["cleaned_products", "clean_quarantine"],
                name="clean_catalogue_node",
            ),
            Node(
                nodes.build_model_inputs,
                ["cleaned_products", "params:data_prep"],
                "model_inputs",
                name="build_model_inputs_node",
            ),
            Node(
                nodes.load_student_tokenizer,
                "student_base_model",
                "student_tokenizer",
                name="load_student_tokenizer_node",
            ),
            Node(
                with_floor(nodes.filter_by_length, min_kept_share),
                ["model_inputs", "student_tokenizer", "params:data_prep"],
                ["length_filtered_examples", "length_quarantine"],
                name="filter_by_length_node",
            ),
            Node(
                nodes.collect_quarantine,
                ["ingest_quarantine", "clean_quarantine", "length_quarantine"],
                "quarantine",
                name="collect_quarantine_node",
            ),
        ]
    )


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            create_cleaning_pipeline(),
            Node(
                nodes.split_examples,
                ["length_filtered_examples", "params:data_prep"],
                ["train_examples", "validation_examples", "test_examples"],
                name="split_examples_node",
            ),
            Node(
                nodes.summarise_data_prep,
                [
                    "raw_products",
                    "quarantine",
                    "train_examples",
                    "validation_examples",
                    "test_examples",
                ],
                "data_prep_summary",
                name="summarise_data_prep_node",
            ),
        ],
        tags="data_prep",
    )
