"""reporting wiring (see README.md beside this file)."""

from kedro.pipeline import Node, Pipeline

from product_descgen.pipelines.reporting import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.plot_funnel,
                [
                    "data_prep_summary",
                    "teacher_inputs",
                    "teacher_rejections",
                    "distill_train",
                    "distill_validation",
                    "distill_test",
                ],
                "funnel_chart",
                name="plot_funnel_node",
            ),  # fmt: skip
            Node(
                nodes.check_one_training,
                ["student_adapter", "training_history", "vice_report"],
                ["checked_training_history", "checked_vice_report"],
                name="check_one_training_node",
            ),
            Node(
                nodes.plot_training,
                "checked_training_history",
                "training_chart",
                name="plot_training_node",
            ),
            Node(
                nodes.plot_quality,
                "evaluation_summaries",
                "quality_chart",
                name="plot_quality_node",
            ),
            Node(
                nodes.plot_preference,
                "evaluation_summaries",
                "preference_chart",
                name="plot_preference_node",
            ),
            Node(
                nodes.plot_cost_speed,
                ["speed_table", "evaluation_summaries"],
                "cost_speed_chart",
                name="plot_cost_speed_node",
            ),
            Node(
                nodes.check_one_evaluation,
                {
                    name: name
                    for name in ("student_outputs", "student_adapter", "eval_set", *nodes.SUMMARIES)
                },
                "evaluation_summaries",
                name="check_one_evaluation_node",
            ),
            Node(
                nodes.collect_key_metrics,
                "evaluation_summaries",
                "key_metrics",
                name="collect_key_metrics_node",
            ),
            Node(
                nodes.write_report_notes,
                ["evaluation_summaries", "checked_vice_report", "params:reporting"],
                "report_notes",
                name="write_report_notes_node",
            ),  # fmt: skip
            Node(
                nodes.pick_report_numbers,
                "evaluation_summaries",
                "report_key_numbers",
                name="pick_report_numbers_node",
            ),
            Node(
                nodes.pick_report_examples,
                ["eval_set", "student_outputs", "params:reporting"],
                "report_examples",
                name="pick_report_examples_node",
            ),
            Node(
                nodes.collect_report_figures,
                [
                    "funnel_chart",
                    "training_chart",
                    "quality_chart",
                    "preference_chart",
                    "cost_speed_chart",
                ],
                "report_figures",
                name="collect_report_figures_node",
            ),  # fmt: skip
            Node(
                nodes.build_report,
                [
                    "report_figures",
                    "report_notes",
                    "report_key_numbers",
                    "report_examples",
                    "params:reporting",
                ],
                "report_html",
                name="build_report_node",
            ),  # fmt: skip
        ],
        tags="reporting",
    )
