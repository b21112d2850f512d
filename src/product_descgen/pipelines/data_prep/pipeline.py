"""data_prep wiring (see README.md beside this file)."""

from collections.abc import Callable
from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from product_descgen.pipelines.data_prep import nodes


def fixed(func: Callable, **kwargs: object) -> Callable:
    """``func`` with ``kwargs`` fixed, named as ``func`` in logs and Kedro-Viz."""
    return update_wrapper(partial(func, **kwargs), func) if kwargs else func


def create_cleaning_pipeline(new_products: bool = False) -> Pipeline:
    """``raw_products`` to usable model inputs (``length_filtered_examples``) and one
    ``quarantine`` table: the part describe reuses on new products (under a namespace). For
    ``new_products`` no stage fails for its share of unusable rows (each gets its line with
    the reason), an empty file is a batch without products, products with the same content are
    not quarantined as duplicates, and an input over the length budget is cut to fit (its
    original description, then its last attributes) rather than being quarantined: training
    data is chosen, new products are all to be described."""
    ingest, clean, build, length = {}, {}, {}, {}
    if new_products:
        ingest = {"min_kept_share": 0.0, "allow_empty": True, "source": "new_products"}
        clean = {"min_kept_share": 0.0, "dedupe_content": False}
        build = {"check_audiences": False}
        length = {"min_kept_share": 0.0, "cut_to_fit": True}
    return Pipeline(
        [
            Node(
                fixed(nodes.ingest_catalogue, **ingest),
                ["raw_products", "params:data_prep"],
                ["ingested_products", "ingest_quarantine"],
                name="ingest_catalogue_node",
            ),
            Node(
                fixed(nodes.clean_catalogue, **clean),
                ["ingested_products", "params:data_prep"],
                ["cleaned_products", "clean_quarantine"],
                name="clean_catalogue_node",
            ),
            Node(
                fixed(nodes.build_model_inputs, **build),
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
                fixed(nodes.filter_by_length, **length),
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
