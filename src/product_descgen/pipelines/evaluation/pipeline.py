"""evaluation wiring (see README.md beside this file)."""

from kedro.pipeline import Node, Pipeline

from product_descgen.pipelines.evaluation import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.build_eval_set,
                ["distill_test", "test_examples"],
                "eval_set",
                name="build_eval_set_node",
            ),
            Node(
                nodes.describe_with_student,
                [
                    "eval_set",
                    "student_adapter",
                    "student_openvino",
                    "student_llm",
                    "params:models",
                    "params:finetune",
                    "params:evaluation",
                ],
                "student_outputs",
                name="describe_with_student_node",
            ),  # fmt: skip
            Node(
                nodes.describe_with_base_student,
                [
                    "eval_set",
                    "baseline_prompts",
                    "student_llm",
                    "params:models",
                    "params:teacher_generation",
                    "params:evaluation",
                ],
                "base_student_outputs",
                name="describe_with_base_student_node",
            ),  # fmt: skip
            Node(
                nodes.score_systems,
                ["eval_set", "student_outputs", "base_student_outputs", "params:evaluation"],
                ["eval_item_scores", "eval_metrics"],
                name="score_systems_node",
            ),
            Node(
                nodes.export_human_eval_kit,
                ["eval_set", "student_outputs", "params:evaluation"],
                ["human_eval_sheet", "human_eval_page", "human_eval_key"],
                name="export_human_eval_kit_node",
            ),
            Node(
                nodes.summarise_human_ratings,
                ["human_ratings", "human_eval_key", "params:evaluation"],
                ["human_judgments", "human_rating_rejections", "human_preference"],
                name="summarise_human_ratings_node",
            ),
            Node(
                nodes.judge_pairs,
                [
                    "eval_set",
                    "student_outputs",
                    "judge_prompts",
                    "judge_llm",
                    "judge_call_store",
                    "params:models",
                    "params:evaluation",
                ],
                ["judge_verdicts", "judge_preference"],
                name="judge_pairs_node",
            ),  # fmt: skip
            Node(
                nodes.measure_speed,
                [
                    "test_examples",
                    "student_adapter",
                    "student_openvino",
                    "teacher_prompts",
                    "teacher_llm",
                    "student_llm",
                    "params:models",
                    "params:teacher_generation",
                    "params:finetune",
                    "params:evaluation",
                ],
                ["speed_table", "speed_summary"],
                name="measure_speed_node",
            ),  # fmt: skip
        ],
        tags="evaluation",
    )
