"""What a killed training run resumes: its checkpoint, and the history of the epochs before it.

Beside Ludwig's run in ``finetune.work_dir`` the project keeps two files:

- ``run_fingerprint.json``: hashes of what the checkpoints were made of (the Ludwig config and
  the data) and of the probe that described each epoch. A checkpoint made of other config or
  data is refused or discarded (``finetune.on_changed_checkpoint``); another probe keeps the
  checkpoint but starts the history again, as its texts are not comparable.
- ``epoch_history.jsonl``: each finished epoch's history row and probe texts, written as the
  epoch ends, so that a resumed run reports every epoch, the early ones (where vices show)
  included. Ludwig checkpoints an epoch before the project's callback probes it; a run killed
  between the two has that epoch probed on resume, from its checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any, Literal

import pandas as pd

logger = logging.getLogger(__name__)

FINGERPRINT_FILE = "run_fingerprint.json"
HISTORY_FILE = "epoch_history.jsonl"
RUN_NAME = "run"  # Ludwig's experiment directory inside the work dir


def _progress(run_dir: Path) -> dict[str, Any] | None:
    """Ludwig's training progress file in ``run_dir``, read (None: missing or unreadable)."""
    try:
        progress = json.loads((run_dir / "model" / "training_progress.json").read_text())
    except (OSError, ValueError):
        return None
    return progress if isinstance(progress, dict) else None


def resumable(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds what Ludwig resumes from: its training progress, readable,
    and latest checkpoint (a run killed before its first checkpoint has neither, one killed
    while Ludwig wrote its progress file leaves it cut short: either starts again; Ludwig
    failed to resume the second)."""
    model = run_dir / "model"
    progress = model / "training_progress.json"
    if not (progress.is_file() and (model / "training_checkpoints" / "latest.ckpt").is_file()):
        return False
    if isinstance((_progress(run_dir) or {}).get("epoch"), int):
        return True
    logger.warning("%s is unreadable (the run stopped while writing it): training anew", progress)
    return False


def training_fingerprint(
    ludwig_config: dict[str, Any], train: pd.DataFrame, validation: pd.DataFrame
) -> dict[str, str]:
    """Hashes of what a checkpoint depends on: the Ludwig config and the data."""

    def frame_hash(frame: pd.DataFrame) -> str:
        values = pd.util.hash_pandas_object(frame.reset_index(drop=True), index=True).to_numpy()
        return hashlib.sha256(values.tobytes()).hexdigest()

    return {
        "config": hashlib.sha256(json_bytes(ludwig_config)).hexdigest(),
        "data": hashlib.sha256((frame_hash(train) + frame_hash(validation)).encode()).hexdigest(),
    }


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, default=str).encode()


def probe_fingerprint(prompts: list[str], settings: Any, vice_params: Any) -> str:
    """A hash of what makes one epoch's probe measures comparable with another's."""
    parts = [prompts, settings.model_dump(mode="json"), vice_params.model_dump(mode="json")]
    return hashlib.sha256(json_bytes(parts)).hexdigest()


def checkpointed_epochs(run_dir: Path) -> int:
    """Epochs finished in the checkpoint Ludwig resumes (its training progress file)."""
    try:
        return int((_progress(run_dir) or {})["epoch"])
    except (ValueError, KeyError, TypeError):
        return 0


def prepare_run(
    work_dir: Path,
    fingerprint: dict[str, str],
    probe: str,
    on_changed: Literal["fail", "restart"],
) -> tuple[Path | None, int]:
    """Ready ``work_dir`` for training: the run directory to resume (None: train anew, the old
    run removed) and how many epochs of the saved history to keep. A killed run's checkpoint
    made of other config or data fails (``on_changed: fail``) or is discarded (``restart``)."""
    run_dir = work_dir / RUN_NAME
    marker = work_dir / FINGERPRINT_FILE
    finished = (run_dir / "training_statistics.json").is_file()  # written when train() returns
    resume = run_dir if resumable(run_dir) else None
    saved = json.loads(marker.read_text()) if marker.is_file() else {}
    if resume and not finished:
        changed = sorted(k for k in fingerprint if saved.get(k) != fingerprint[k])
        if changed and on_changed == "fail":
            raise ValueError(
                f"the checkpoint in {run_dir} was made with other {' and '.join(changed)} than "
                "this run's: restore them, or set finetune.on_changed_checkpoint: restart to "
                "discard the checkpoint and train anew"
            )
        if changed:
            logger.warning("Discarding the checkpoint in %s: its %s changed", run_dir, changed)
            resume = None
    if finished or (run_dir.exists() and resume is None):
        shutil.rmtree(run_dir)  # a finished or discarded run (train anew), or one killed early
        resume = None
    keep = 0
    if resume:
        logger.info("Resuming training from %s", resume)
        if saved.get("probe") == probe:
            keep = checkpointed_epochs(resume)
        else:
            logger.warning(
                "The probe is not the one the logged history was made with (or none was "
                "recorded): the history starts at the resumed epoch"
            )
    work_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({**fingerprint, "probe": probe}))
    return resume, keep


def logged_epochs(path: str, epochs: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The history rows and probe outputs logged for the first ``epochs`` epochs; the log's
    later lines are removed (those epochs are trained again)."""
    log = Path(path)
    lines = log.read_text().splitlines() if epochs and log.is_file() else []
    kept = [entry for entry in map(json.loads, lines) if entry["row"]["epoch"] <= epochs]
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("".join(json.dumps(entry) + "\n" for entry in kept))
    return [e["row"] for e in kept], [o for e in kept for o in e["outputs"]]


def log_epoch(path: str, row: dict[str, Any], outputs: list[dict[str, Any]]) -> None:
    """Append one finished epoch's history row and probe outputs to the log."""
    with Path(path).open("a") as log:
        log.write(json.dumps({"row": row, "outputs": outputs}, default=plain) + "\n")


def plain(value: Any) -> Any:
    """numpy scalars as Python numbers, anything else as text."""
    return value.item() if hasattr(value, "item") else str(value)
