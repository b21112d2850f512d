"""teacher_generation wiring (see README.md beside this file)."""

from kedro.pipeline import Node, Pipeline

from product_descgen.pipelines.teacher_generation import nodes

_LLM = ["teacher_prompts", "teacher_llm", "teacher_call_store"]


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.select_teacher_inputs,
                [
                    "train_examples",
                    "validation_examples",
                    "test_examples",
                    "params:teacher_generation",
                ],
                "teacher_inputs",
                name="select_teacher_inputs_node",
            ),  # fmt: skip
            Node(
                nodes.generate_drafts,
                ["teacher_inputs", *_LLM, "params:teacher_generation"],
                "teacher_drafts",
                name="generate_drafts_node",
            ),
            Node(
                nodes.generate_refinements,
                ["teacher_inputs", "teacher_drafts", *_LLM, "params:teacher_generation"],
                "teacher_outputs",
                name="generate_refinements_node",
            ),
            Node(
                nodes.gate_teacher_outputs,
                ["teacher_inputs", "teacher_outputs", "params:teacher_generation"],
                ["teacher_accepted", "teacher_rejections"],
                name="gate_teacher_outputs_node",
            ),
            Node(
                nodes.build_distillation_sets,
                "teacher_accepted",
                ["distill_train", "distill_validation", "distill_test"],
                name="build_distillation_sets_node",
            ),
            Node(
                nodes.export_call_log,
                ["teacher_call_store", "teacher_outputs"],
                "teacher_call_log",
                name="export_call_log_node",
            ),
        ],
        tags="teacher_generation",
    )
