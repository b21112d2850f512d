"""data_prep nodes: thin adapters over :mod:`product_descgen.prep` (no node mutates its inputs)."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from product_descgen.prep.clean import clean_product, content_key
from product_descgen.prep.config import DataPrepParams
from product_descgen.prep.ingest import ingest
from product_descgen.prep.inputs import (
    audience_for,
    build_input_text,
    cut_input_to_fit,
    original_description,
    unmatched_audiences,
)
from product_descgen.prep.quarantine import (
    QUARANTINE_COLUMNS,
    quarantine_frame,
    quarantine_row,
    require_kept,
)
from product_descgen.prep.split import SPLITS, coverage_report, stratified_split
from product_descgen.prep.tables import frame_to_products, products_to_frame

logger = logging.getLogger(__name__)


def floor(params: DataPrepParams, min_kept_share: float | None) -> float:
    """The kept-share floor a stage applies: the one given, else data_prep's."""
    return params.limits.min_kept_share if min_kept_share is None else min_kept_share


def ingest_catalogue(
    raw_products: pd.DataFrame,
    params: DataPrepParams,
    min_kept_share: float | None = None,
    allow_empty: bool = False,
    source: str = "raw_products",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Map raw columns onto the canonical schema; unusable rows go to quarantine.
    ``min_kept_share`` (here and in the next stages): the floor under which the stage fails
    (:func:`~product_descgen.prep.quarantine.require_kept`); default the training data's,
    ``data_prep.limits.min_kept_share``; describe's is 0. ``allow_empty`` (describe): an empty
    file is a batch without products, not an error. ``source``: the dataset read, for messages."""
    if allow_empty and raw_products.empty:
        logger.warning("Ingested 0 rows: the file holds no products")
        return products_to_frame([]), quarantine_frame([])
    kept, quarantined = ingest(
        raw_products, params.columns, params.attributes, params.limits, source
    )
    logger.info(
        "Ingested %d rows: %d kept, %d quarantined", len(raw_products), len(kept), len(quarantined)
    )
    frame = quarantine_frame(quarantined)
    require_kept("ingest", len(kept), frame, floor(params, min_kept_share))
    return products_to_frame(kept), frame


def clean_catalogue(
    products: pd.DataFrame,
    params: DataPrepParams,
    min_kept_share: float | None = None,
    dedupe_content: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Clean text and attributes; products left without a title or enough attributes, and exact
    duplicates (after cleaning) unless ``dedupe_content`` is off (describe: each product gets
    its description; the same prompt is generated once), go to quarantine."""
    kept, quarantined = [], []
    first_seen: dict[tuple[str, str, str], str] = {}
    for product in frame_to_products(products):
        cleaned = clean_product(product, params.cleaning)
        # validated again after cleaning: a title of markup alone, or attributes whose values
        # were only markup or control characters, leave nothing to describe
        empty = (
            ("missing_title", "the title is empty after cleaning") if not cleaned["title"]
            else ("no_usable_attributes", f"{len(cleaned['attributes'])} attribute(s) left "
                  f"after cleaning, need {params.limits.min_attributes}")
            if len(cleaned["attributes"]) < params.limits.min_attributes else None
        )  # fmt: skip
        if empty:
            quarantined.append(quarantine_row(cleaned, "clean", *empty, cleaned["product_id"]))
            continue
        key = content_key(cleaned)
        if dedupe_content and key in first_seen:
            quarantined.append(
                quarantine_row(
                    cleaned,
                    "clean",
                    "duplicate_content",
                    f"same title, attributes and description as {first_seen[key]}",
                    cleaned["product_id"],
                )
            )
            continue
        first_seen[key] = cleaned["product_id"]
        kept.append(cleaned)
    duplicates = sum(q["reason"] == "duplicate_content" for q in quarantined)
    logger.info(
        "Cleaned %d products; quarantined %d exact duplicate(s) and %d left empty by cleaning",
        len(kept), duplicates, len(quarantined) - duplicates,
    )  # fmt: skip
    frame = quarantine_frame(quarantined)
    require_kept("clean", len(kept), frame, floor(params, min_kept_share))
    return products_to_frame(kept), frame


MAX_CATEGORIES_LOGGED = 20  # a leaf-level taxonomy has thousands


def log_unmatched_audiences(categories: pd.Series, params: DataPrepParams) -> None:
    """Warn of ``audience.per_category`` keys that look meant for a category of the catalogue
    (which then gets the default audience); log the keys for categories it does not hold."""
    unmatched = unmatched_audiences(categories, params.audience)
    for key, close in unmatched.items():
        if close is not None:
            logger.warning(
                "data_prep.audience.per_category: %r matches no category of this catalogue; "
                "%r is close, and its products get the default audience (keys match whatever "
                "the case, spacing or '&'/'and')", key, close,
            )  # fmt: skip
    unused = [key for key, close in unmatched.items() if close is None]
    if unused:
        present = sorted(set(categories))
        more = len(present) - MAX_CATEGORIES_LOGGED
        logger.info(
            "data_prep.audience.per_category: no product of this catalogue is in %s; its "
            "categories: %s%s", ", ".join(map(repr, unused)),
            ", ".join(present[:MAX_CATEGORIES_LOGGED]), f" and {more} more" if more > 0 else "",
        )  # fmt: skip


def build_model_inputs(
    products: pd.DataFrame, params: DataPrepParams, check_audiences: bool = True
) -> pd.DataFrame:
    """Add the target audience and the model input text to each product. ``check_audiences``
    (the training catalogue; not a batch of new products, which holds few categories): warn of
    ``audience.per_category`` keys that look misspelt (close to a category without its own
    audience), and log the keys this catalogue has no products for."""
    if check_audiences:
        log_unmatched_audiences(products["category"], params)
    audiences = [audience_for(c, params.audience) for c in products["category"]]
    texts = [
        build_input_text(p, a) for p, a in zip(frame_to_products(products), audiences, strict=True)
    ]
    return products.assign(audience=audiences, input_text=texts)


def load_student_tokenizer(student_base_model: str) -> Any:
    """The student's tokenizer, from its base model directory."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(student_base_model)


def filter_by_length(
    examples: pd.DataFrame,
    tokenizer: Any,
    params: DataPrepParams,
    min_kept_share: float | None = None,
    cut_to_fit: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep examples whose input tokens plus the output budget fit ``max_tokens``; the rest go
    to quarantine (``too_many_tokens``). ``cut_to_fit`` (describe): an input over the budget
    has its original description (and, if need be, its last attributes) cut to fit instead
    (``cut_from_tokens``: its tokens before), and is quarantined only when not even its first
    attribute fits."""
    bound = params.length_filter
    limit = bound.max_tokens - bound.output_token_budget  # input tokens a row may have

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    texts = examples["input_text"].tolist()
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
    counted = examples.assign(
        input_tokens=pd.Series([len(row) for row in ids], index=examples.index, dtype="int64")
    )
    fits = counted["input_tokens"] <= limit
    if cut_to_fit:
        counted["cut_from_tokens"] = pd.Series(pd.NA, index=counted.index, dtype="Int64")
        for i in counted.index[~fits]:
            text = cut_input_to_fit(counted.at[i, "input_text"], count, limit)
            if text is not None:
                counted.loc[i, ["cut_from_tokens", "input_tokens"]] = [
                    counted.at[i, "input_tokens"],
                    count(text),
                ]
                counted.at[i, "input_text"] = text
                counted.at[i, "description"] = original_description(text)
                fits[i] = True
    rows = [
        quarantine_row(
            record,
            "length_filter",
            "too_many_tokens",
            f"{record['input_tokens']} input tokens + {bound.output_token_budget} output budget "
            f"> max_tokens {bound.max_tokens}"
            + ("; too many even with one attribute and no description" if cut_to_fit else ""),
            record["product_id"],
        )
        for record in counted.loc[~fits].to_dict(orient="records")
    ]
    cut = (
        f" ({int(counted['cut_from_tokens'].notna().sum())} with their input cut to fit)"
        if cut_to_fit
        else ""
    )
    logger.info(
        "Length filter: %d kept%s, %d over %d input tokens (max_tokens %d less the output "
        "budget %d)",
        int(fits.sum()), cut, len(rows), limit, bound.max_tokens, bound.output_token_budget,
    )  # fmt: skip
    frame = quarantine_frame(rows)
    require_kept("length_filter", int(fits.sum()), frame, floor(params, min_kept_share))
    return counted.loc[fits].reset_index(drop=True), frame


def split_examples(
    examples: pd.DataFrame, params: DataPrepParams
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Stratified, seeded train/validation/test split."""
    shares = {name: getattr(params.split, name) for name in SPLITS}
    labelled = stratified_split(examples, shares, params.split.seed)
    parts = tuple(
        labelled.loc[labelled["split"] == name].drop(columns="split").reset_index(drop=True)
        for name in SPLITS
    )
    logger.info("Split: %s", {name: len(part) for name, part in zip(SPLITS, parts, strict=True)})
    return parts


def collect_quarantine(*parts: pd.DataFrame) -> pd.DataFrame:
    """All quarantined rows of every stage in one table."""
    non_empty = [p for p in parts if len(p)]
    if not non_empty:
        return quarantine_frame([])
    return pd.concat(non_empty, ignore_index=True)[QUARANTINE_COLUMNS]


def summarise_data_prep(
    raw_products: pd.DataFrame,
    quarantine: pd.DataFrame,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    test: pd.DataFrame,
) -> dict[str, Any]:
    """Counts of kept and quarantined rows by reason; fails if any row is unaccounted for."""
    splits = dict(zip(SPLITS, (train, validation, test), strict=True))
    kept = sum(len(p) for p in splits.values())
    if kept + len(quarantine) != len(raw_products):
        raise RuntimeError(
            f"rows lost in data_prep: {len(raw_products)} raw != {kept} kept + "
            f"{len(quarantine)} quarantined"
        )
    labelled = pd.concat([p.assign(split=n) for n, p in splits.items()], ignore_index=True)
    return {
        "raw_rows": len(raw_products),
        "kept": kept,
        "quarantined": len(quarantine),
        "quarantined_by_reason": quarantine["reason"].value_counts().sort_index().to_dict(),
        "quarantined_by_stage": quarantine["stage"].value_counts().sort_index().to_dict(),
        "splits": {n: len(p) for n, p in splits.items()},
        "split_shares": {n: round(len(p) / kept, 4) if kept else 0.0 for n, p in splits.items()},
        "categories": {
            n: p["category"].value_counts().sort_index().to_dict() for n, p in splits.items()
        },
        "category_coverage": coverage_report(labelled) if kept else {},
    }
