"""The registered pipelines as Kedro-Viz draws them: one lineage, every dataset layered."""

from __future__ import annotations

import networkx as nx
import pytest
from kedro.config import OmegaConfigLoader
from kedro.framework.project import pipelines
from kedro.framework.startup import bootstrap_project

from tests.conftest import PROJECT_ROOT

FIVE = {"data_prep", "teacher_generation", "finetune", "evaluation", "reporting"}


@pytest.fixture(scope="module")
def default_pipeline():
    bootstrap_project(PROJECT_ROOT)
    return pipelines["__default__"]


def graph(pipeline) -> nx.DiGraph:
    g = nx.DiGraph()
    for node in pipeline.nodes:
        g.add_node(node.name, tags=node.tags)
        g.add_edges_from((name, node.name) for name in node.inputs)
        g.add_edges_from((node.name, name) for name in node.outputs)
    return g


def test_raw_catalogue_to_cost_report_is_one_path_through_all_five_pipelines(default_pipeline):
    g = graph(default_pipeline)
    on_path = nx.descendants(g, "raw_products") & nx.ancestors(g, "cost_speed_chart")
    tags = set().union(*(g.nodes[n]["tags"] for n in on_path if "tags" in g.nodes[n]))
    assert tags >= FIVE
    # the distillation chain itself: raw -> splits -> teacher -> adapter -> speed -> chart -> report
    chain = ["raw_products", "train_examples", "distill_train", "student_adapter", "speed_table",
             "cost_speed_chart", "report_html"]  # fmt: skip
    for upstream, downstream in zip(chain, chain[1:], strict=False):
        assert nx.has_path(g, upstream, downstream), (upstream, downstream)


def test_every_dataset_has_a_kedro_viz_layer(default_pipeline):
    loader = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), base_env="base", default_run_env="base")
    catalog = loader["catalog"]
    names = {d for d in default_pipeline.datasets() if not d.startswith("params:")}
    missing = sorted(d for d in names if d not in catalog)
    assert not missing, f"not in the catalog: {missing}"
    unlayered = sorted(
        d for d in names if not catalog[d].get("metadata", {}).get("kedro-viz", {}).get("layer")
    )
    assert not unlayered, f"no kedro-viz layer: {unlayered}"


def test_no_node_reads_inside_a_parameter_block_another_node_reads_whole(default_pipeline):
    """Kedro validates a block read whole (``params:evaluation``) into its pydantic model, after
    which a nested read of it (``params:evaluation.x``) fails the run's parameter validation."""
    params = {name for node in default_pipeline.nodes for name in node.inputs
              if name.startswith("params:")}  # fmt: skip
    nested = {
        name for name in params
        if any(name.startswith(whole + ".") for whole in params if whole != name)
    }  # fmt: skip
    assert not nested


def test_models_reach_the_nodes_as_catalog_datasets(default_pipeline):
    """Model resolution happens in the catalog's model datasets (Kedro-Viz draws them), not in
    nodes reading a ``models`` parameter block."""
    from product_descgen.datasets import LLMConnectionDataset, ModelDirDataset

    loader = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), base_env="base", default_run_env="base")
    catalog = loader["catalog"]
    inputs = {name for node in default_pipeline.nodes for name in node.inputs}
    assert not any(name.startswith("params:models") for name in inputs)
    model_types = {LLMConnectionDataset.__name__, ModelDirDataset.__name__}
    models = {name for name in inputs if catalog.get(name, {}).get("type", "").split(".")[-1]
              in model_types}  # fmt: skip
    assert models == {"student_base_model", "teacher_llm", "student_llm", "judge_llm",
                      "speed_teacher_llm"}  # fmt: skip
    g = graph(default_pipeline)
    assert nx.has_path(g, "student_base_model", "student_adapter")
    assert nx.has_path(g, "teacher_llm", "distill_train")
