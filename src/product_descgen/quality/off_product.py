"""Off-product check: does a description match its own product better than other products?

Each description is embedded with the project's sentence embedder, as is each product's own
data (title, category and attributes; not its original description, which a copied text would
trivially match). The description is flagged when too many other products of the pool are at
least as close to it as its own product: it reads as a description of something else.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from product_descgen.prep.inputs import ORIGINAL_DESCRIPTION

logger = logging.getLogger(__name__)

_AUDIENCE_LINE = re.compile(r"(?m)^Audience:.*\n?")


class OffProductParams(BaseModel):
    """When a description counts as off-product."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    # flagged when more than this share of the other products is at least as close to the text
    max_closer_share: float = Field(0.02, ge=0.0, lt=1.0)
    min_pool: PositiveInt = 20  # fewer products to compare against: the check is not run


@dataclass(frozen=True)
class OffProduct:
    """The check's finding for one description."""

    own_similarity: float
    closer_share: float  # share of the other products at least as close as its own
    closest_other: str  # the most similar other product's id
    flagged: bool

    def reason(self) -> str:
        return (
            f"{self.closer_share:.0%} of other products are at least as close "
            f"(own {self.own_similarity:.2f}; closest other: {self.closest_other})"
        )


def product_text(input_text: str) -> str:
    """A product's own data from its model input: the original description and the
    configured audience line left out."""
    return _AUDIENCE_LINE.sub("", ORIGINAL_DESCRIPTION.sub("", input_text)).strip()


SIMILARITY_BLOCK = 2**24  # similarities held at once (64 MB of float32)


def _unit(vectors: Any) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float32)
    return array / np.maximum(np.linalg.norm(array, axis=1, keepdims=True), 1e-12)


def check_off_product(
    texts: Sequence[str],
    own_ids: Sequence[str],
    pool_ids: Sequence[str],
    pool_inputs: Sequence[str],
    embedder: Any,
    params: OffProductParams,
) -> list[OffProduct | None]:
    """One finding per text (``None`` for an empty text, or every text when the pool is smaller
    than ``params.min_pool``). ``pool_ids``/``pool_inputs``: the products to compare against
    (the catalogue being described), each text's own product among them."""
    if not params.enabled or len(pool_ids) < params.min_pool:
        return [None] * len(texts)
    index = {pid: i for i, pid in enumerate(pool_ids)}
    missing = [pid for pid in own_ids if pid not in index]
    if missing:
        raise ValueError(f"products not in the comparison pool: {missing[:5]}")
    products = _unit(embedder.encode([product_text(t) for t in pool_inputs], batch_size=64))
    written = [i for i, t in enumerate(texts) if isinstance(t, str) and t.strip()]
    findings: list[OffProduct | None] = [None] * len(texts)
    if not written:
        return findings
    vectors = _unit(embedder.encode([texts[i] for i in written], batch_size=64))
    own = np.array([index[own_ids[i]] for i in written])
    # rows at a time, so a large catalogue never holds the whole texts x products matrix
    rows = max(1, SIMILARITY_BLOCK // len(pool_ids))
    for start in range(0, len(written), rows):
        block = vectors[start : start + rows] @ products.T
        at = np.arange(len(block))
        mine = block[at, own[start : start + rows]]
        closer = (block >= mine[:, None]).sum(axis=1) - 1  # others as close as its own product
        block[at, own[start : start + rows]] = -np.inf
        closest = block.argmax(axis=1)
        for k, i in enumerate(written[start : start + rows]):
            share = float(closer[k]) / max(len(pool_ids) - 1, 1)
            findings[i] = OffProduct(
                own_similarity=float(mine[k]),
                closer_share=share,
                closest_other=str(pool_ids[closest[k]]),
                flagged=share > params.max_closer_share,
            )
    return findings


def off_product_problems(
    texts: Sequence[str | None],
    own_ids: Sequence[str],
    pool: Any,
    params: OffProductParams,
    embedding_model: str | None,
) -> list[list[tuple[str, str]]]:
    """``[("off_product", reason)]`` or ``[]`` per text, against ``pool`` (a frame with
    ``product_id`` and ``input_text``), with the project's embedder (globals
    ``embedding_model``, the one evaluation's metrics use; each text's vector kept between
    runs: :mod:`product_descgen.quality.embedding_cache`). A pool smaller than
    ``params.min_pool`` is logged and not checked."""
    if not params.enabled:
        return [[] for _ in texts]
    if len(pool) < params.min_pool:
        logger.warning(
            "Off-product check not run: %d products to compare against (min_pool %d)",
            len(pool), params.min_pool,
        )  # fmt: skip
        return [[] for _ in texts]
    from product_descgen.evaluation.metrics import embedder_dir, load_embedder
    from product_descgen.quality.embedding_cache import CachedEmbedder

    embedder = CachedEmbedder.for_model(
        load_embedder(embedding_model), embedder_dir(embedding_model)
    )
    findings = check_off_product(
        [t if isinstance(t, str) else "" for t in texts], own_ids,
        pool["product_id"].astype(str).tolist(), pool["input_text"].tolist(), embedder, params,
    )  # fmt: skip
    return [[("off_product", f.reason())] if f and f.flagged else [] for f in findings]
