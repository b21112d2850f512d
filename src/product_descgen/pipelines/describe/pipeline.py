"""describe wiring (see README.md beside this file): data_prep's cleaning nodes on the new
products, then the student and the quality checks."""

from kedro.pipeline import Node, Pipeline

from product_descgen.pipelines.data_prep import nodes as prep
from product_descgen.pipelines.describe import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                prep.ingest_catalogue,
                ["new_products", "params:data_prep"],
                ["new_ingested", "new_ingest_quarantine"],
                name="ingest_new_products_node",
            ),
            Node(
                prep.clean_catalogue,
                ["new_ingested", "params:data_prep"],
                ["new_cleaned", "new_clean_quarantine"],
                name="clean_new_products_node",
            ),
            Node(
                prep.build_model_inputs,
                ["new_cleaned", "params:data_prep"],
                "new_model_inputs",
                name="build_new_model_inputs_node",
            ),
            Node(
                prep.load_student_tokenizer,
                "params:models",
                "describe_tokenizer",
                name="load_describe_tokenizer_node",
            ),
            Node(
                prep.filter_by_length,
                ["new_model_inputs", "describe_tokenizer", "params:data_prep"],
                ["new_inputs", "new_length_quarantine"],
                name="filter_new_by_length_node",
            ),
            Node(
                prep.collect_quarantine,
                ["new_ingest_quarantine", "new_clean_quarantine", "new_length_quarantine"],
                "new_quarantine",
                name="collect_new_quarantine_node",
            ),
            Node(
                nodes.generate_new_descriptions,
                [
                    "new_inputs",
                    "student_adapter",
                    "student_openvino",
                    "student_llm",
                    "params:models",
                    "params:finetune",
                    "params:evaluation",
                    "params:describe",
                ],
                "new_outputs",
                name="generate_new_descriptions_node",
            ),  # fmt: skip
            Node(
                nodes.check_new_descriptions,
                ["new_inputs", "new_outputs", "new_quarantine", "params:describe"],
                "descriptions",
                name="check_new_descriptions_node",
            ),
        ],
        tags="describe",
    )
