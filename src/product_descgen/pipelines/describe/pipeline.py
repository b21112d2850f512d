"""describe wiring (see README.md beside this file): data_prep's cleaning pipeline on the new
products (namespace ``new``), then the student and the quality checks."""

from kedro.pipeline import Node, Pipeline, pipeline

from product_descgen.pipelines.data_prep.pipeline import create_cleaning_pipeline
from product_descgen.pipelines.describe import nodes
from product_descgen.pipelines.evaluation.pipeline import serve_student_node


def create_pipeline(**kwargs) -> Pipeline:
    prepare_new = pipeline(
        create_cleaning_pipeline(new_products=True),
        namespace="new",
        inputs={"raw_products": "new_products", "student_base_model": "student_base_model"},
        outputs={"length_filtered_examples": "new_inputs", "quarantine": "new_quarantine"},
        parameters={"params:data_prep": "params:data_prep"},  # the same cleaning rules
    )
    return Pipeline(
        [
            prepare_new,
            serve_student_node(),
            Node(
                nodes.generate_new_descriptions,
                ["new_inputs", "served_student", "student_call_store", "params:describe"],
                "new_outputs",
                name="generate_new_descriptions_node",
            ),
            Node(
                nodes.check_new_descriptions,
                [
                    "new_inputs",
                    "new_outputs",
                    "new_quarantine",
                    "model_inputs",
                    "params:describe",
                    "params:data_prep",
                ],
                "descriptions",
                name="check_new_descriptions_node",
            ),
        ],
        tags="describe",
    )
