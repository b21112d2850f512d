"""finetune wiring (see README.md beside this file)."""

from kedro.pipeline import Node, Pipeline

from product_descgen.pipelines.finetune import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.build_finetune_config,
                ["distill_train", "student_base_model", "params:finetune"],
                "finetune_ludwig_config",
                name="build_finetune_config_node",
            ),
            Node(
                nodes.train_student_model,
                [
                    "finetune_ludwig_config",
                    "distill_train",
                    "distill_validation",
                    "validation_examples",
                    "params:finetune",
                ],
                [
                    "student_model",
                    "student_adapter",
                    "training_history",
                    "probe_outputs",
                    "vice_report",
                ],
                name="train_student_model_node",
            ),  # fmt: skip
            Node(
                nodes.export_student_for_openvino,
                ["student_adapter", "student_llm"],
                "student_openvino",
                name="export_student_for_openvino_node",
            ),
            Node(
                nodes.export_student_gguf,
                "student_adapter",
                "student_gguf",
                name="export_student_gguf_node",
            ),
        ],
        tags="finetune",
    )
