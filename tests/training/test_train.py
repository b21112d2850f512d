from types import SimpleNamespace

import pandas as pd

from product_descgen.training.train import epoch_losses, with_epoch_losses


def test_losses_missing_at_epoch_end_are_filled_from_ludwig_statistics():
    history = pd.DataFrame(
        {"epoch": [1, 2], "train_loss": [None, 0.5], "validation_loss": [None, None]}
    )
    stats = SimpleNamespace(
        training={"combined": {"loss": [(1, 3, 1.2), (1, 6, 1.0), (2, 9, 0.4)]}},
        validation={"combined": {"loss": [(1, 6, 1.1), (2, 9, 0.7)]}},
    )
    assert epoch_losses(stats.training, 2) == {1: 1.0, 2: 0.4}
    assert epoch_losses({"combined": {"loss": [0.9, 0.3]}}, 2) == {1: 0.9, 2: 0.3}
    assert epoch_losses({"combined": {"loss": [0.9, 0.3, 0.2]}}, 2) == {}  # not one per epoch
    out = with_epoch_losses(history, stats)
    assert out["train_loss"].tolist() == [1.0, 0.5]  # a value seen at epoch end is kept
    assert out["validation_loss"].tolist() == [1.1, 0.7]
    assert history["train_loss"].isna().sum() == 1  # input not mutated
