"""The run's time per pipeline is summed by node tag and logged at the end."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from product_descgen.hooks import PipelineTimingHooks


def test_time_is_summed_per_pipeline_tag(caplog):
    hooks = PipelineTimingHooks()
    hooks.before_pipeline_run(run_params={})
    for name, tags in (("a", {"data_prep"}), ("b", {"finetune"}), ("c", {"finetune"})):
        node = SimpleNamespace(name=name, tags=tags)
        hooks.before_node_run(node=node)
        hooks.after_node_run(node=node)
    with caplog.at_level(logging.INFO, logger="product_descgen.hooks"):
        hooks.after_pipeline_run()
    [record] = caplog.records
    assert "data_prep" in record.getMessage() and "finetune" in record.getMessage()
    assert set(hooks._seconds) == {"data_prep", "finetune"}
