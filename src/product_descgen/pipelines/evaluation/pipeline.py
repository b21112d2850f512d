"""evaluation wiring (see README.md beside this file)."""

from kedro.pipeline import Node, Pipeline

from product_descgen.pipelines.evaluation import nodes


def serve_student_node() -> Node:
    """The trained student as evaluation, describe and the speed test serve it (one path)."""
    return Node(
        nodes.serve_student,
        [
            "student_adapter",
            "student_openvino",
            "student_llm",
            "params:finetune",
            "params:evaluation",
        ],
        "served_student",
        name="serve_student_node",
    )


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.build_eval_set,
                ["distill_test", "test_examples"],
                "eval_set",
                name="build_eval_set_node",
            ),
            serve_student_node(),
            Node(
                nodes.describe_with_student,
                ["eval_set", "served_student", "student_call_store", "params:evaluation"],
                "student_outputs",
                name="describe_with_student_node",
            ),
            Node(
                nodes.describe_with_base_student,
                [
                    "eval_set",
                    "baseline_prompts",
                    "student_llm",
                    "student_call_store",
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
                ["human_ratings", "human_eval_key", "student_outputs", "params:evaluation"],
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
                    "params:evaluation",
                ],
                ["judge_verdicts", "judge_preference"],
                name="judge_pairs_node",
            ),  # fmt: skip
            Node(
                nodes.teacher_speed_job,
                [
                    "test_examples",
                    "teacher_prompts",
                    "speed_teacher_llm",
                    "params:teacher_generation",
                    "params:evaluation",
                ],
                "speed_teacher_job",
                name="teacher_speed_job_node",
            ),  # fmt: skip
            Node(
                nodes.student_speed_job,
                [
                    "test_examples",
                    "served_student",
                    "params:teacher_generation",
                    "params:evaluation",
                ],
                "speed_student_job",
                name="student_speed_job_node",
            ),  # fmt: skip
            Node(
                nodes.measure_speed,
                [
                    "speed_teacher_job",
                    "speed_student_job",
                    "model_inputs",
                    "params:teacher_generation",
                    "params:evaluation",
                ],
                ["speed_table", "speed_summary", "speed_rounds", "speed_outputs"],
                name="measure_speed_node",
            ),
        ],
        tags="evaluation",
    )
