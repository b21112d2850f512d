"""Raters' judgment files, read as raters and their spreadsheets make them, and unblinded
through the key: every row is a judgment or a rejection with its reason, never dropped.

Files come from the rating page (``judgments-<name>.csv``, one per download: a browser names a
second download ``judgments-<name> (1).csv``) or from the sheet filled in by hand; a
spreadsheet may save them with semicolons, in Windows-1252 or UTF-16, with a byte-order mark.
Row numbers are the spreadsheet's: the header is row 1.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import re
from collections.abc import Callable, Iterable
from pathlib import PurePath
from typing import Any

import pandas as pd

from product_descgen.evaluation.preference import KEY_COLUMNS, text_or_none

logger = logging.getLogger(__name__)

JUDGMENT_COLUMNS = ["rater", "item_id", "product_id", "choice", "preferred", "file"]
REJECTION_COLUMNS = ["file", "row", "item_id", "choice", "reason"]
REPLACED = "replaced by a later judgment"  # a rater's changed mind: not an error
UNKNOWN_ITEM = "unknown item_id: not in this kit (rated on an older rate.html?)"
_LINE = "_line"  # the spreadsheet row of each parsed row, kept beside its fields
_VALID = {"a": "A", "b": "B", "tie": "tie"}


def rater_text(content: str | bytes) -> str:
    """A rater file's text: UTF-16 with its byte-order mark, UTF-8 (a BOM dropped), else
    Windows-1252, what Excel saves as CSV on Windows (ids and choices are ASCII in each: only a
    rater's name could read oddly)."""
    if isinstance(content, str):
        return content.lstrip("\ufeff")
    if content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return content.decode("utf-16")
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return content.decode("cp1252", errors="replace")


def _root_cause(err: BaseException) -> str:
    while err.__cause__ is not None:  # a dataset's error wraps what went wrong
        err = err.__cause__
    return f"{type(err).__name__}: {str(err)[:200]}"


def _delimiter(text: str) -> str:
    """Comma, or the semicolon or tab a spreadsheet's locale saves with (its header tells)."""
    header = text.split("\n", 1)[0]
    return max((",", ";", "\t"), key=header.count)


def file_order(name: str) -> list[Any]:
    """Files in the order their downloads were made: by stem, numbers as numbers, so
    ``judgments-zed`` < ``judgments-zed (2)`` < ``judgments-zed (10)`` (the later wins)."""
    stem = PurePath(name).stem.casefold()
    return [int(part) if part.isdecimal() else part for part in re.split(r"(\d+)", stem)]


def in_file_order(names: Iterable[str]) -> list[str]:
    """The rater files among ``names`` (hidden files such as ``.DS_Store`` or ``.gitkeep``,
    and files in hidden folders such as ``.ipynb_checkpoints``, left out), in
    :func:`file_order`."""
    shown = (n for n in names if not any(p.startswith(".") for p in PurePath(n).parts))
    return sorted(shown, key=file_order)


def rejection_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rejection rows as a table whose row numbers stay whole numbers (a file-level rejection
    has none), in parquet too."""
    frame = pd.DataFrame(rows, columns=REJECTION_COLUMNS, dtype=object)
    return frame.astype({"row": "Int64"})


def _rejection(
    name: str, row: int | None, reason: str, item: str | None = None, choice: str | None = None
) -> dict[str, Any]:
    return {"file": name, "row": row, "item_id": item, "choice": choice, "reason": reason}


def parse_rater_files(
    loaders: dict[str, Callable[[], str | bytes]],
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Each rater file's text read (:func:`rater_text`) and parsed on its own, in
    :func:`file_order`: ``(frames, rejections)``. A file that is not a CSV, or cannot be read
    or parsed (empty, an unbalanced quote), is one rejection row; a row whose field count
    differs from the header's is rejected alone, so it cannot shift the columns of the rows
    after it."""
    frames: dict[str, pd.DataFrame] = {}
    rejections: list[dict[str, Any]] = []
    for name in in_file_order(loaders):
        if PurePath(name).suffix.casefold() != ".csv":
            rejections.append(_rejection(name, None, "not a .csv file: save it as CSV"))
            continue
        try:
            text = rater_text(loaders[name]())
            rows = list(
                csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True)
            )
        except Exception as err:  # noqa: BLE001 - one bad file is a rejection, not a failure
            rejections.append(_rejection(name, None, f"unreadable file: {_root_cause(err)}"))
            continue
        if not rows:
            rejections.append(_rejection(name, None, "empty file"))
            continue
        header, good, lines = [h.strip().lower() for h in rows[0]], [], []
        for line, row in enumerate(rows[1:], start=2):
            if len(row) == len(header):
                good.append(row)
                lines.append(line)
            elif any(cell.strip() for cell in row):
                reason = f"ragged row: {len(row)} fields, header has {len(header)}"
                rejections.append(_rejection(name, line, reason))
        frames[name] = pd.DataFrame(good, columns=header).assign(**{_LINE: lines})
    return frames, rejection_frame(rejections)


def rater_from_file(name: str) -> str:
    """The rater a file belongs to when it has no rater column: its name without the page's
    ``judgments-`` prefix and, for the page's files, a browser's `` (1)`` duplicate suffix
    (``sheet (1).csv`` filled in by hand is another rater's copy of the sheet)."""
    stem = PurePath(name).stem
    if stem.startswith("judgments-"):
        stem = re.sub(r"\s*\(\d+\)$", "", stem).removeprefix("judgments-") or stem
    return stem


def read_ratings(
    files: dict[str, pd.DataFrame], key: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate and unblind rater files: ``(judgments, rejections)``; never raises on bad rows.
    A rater is one whatever the case or spacing of the name ("Kim", "kim "); a rater's later
    judgment of an item replaces the earlier one, which is listed as :data:`REPLACED`."""
    lookup = {str(r["item_id"]): r for r in key[KEY_COLUMNS].astype(object).to_dict("records")}
    accepted: dict[tuple[str, str], dict] = {}  # (rater, item_id) -> judgment; later wins
    names: dict[str, str] = {}  # a rater's identity -> the name as first written
    rejections: list[dict] = []

    for name, raw in files.items():
        frame = raw.rename(columns=lambda c: str(c).strip().lower())
        absent = [c for c in ("item_id", "choice") if c not in frame]
        if absent:
            rejections.append(_rejection(name, None, f"missing column: {', '.join(absent)}"))
            continue
        stem = rater_from_file(name)
        raters = frame["rater"] if "rater" in frame else pd.Series([None] * len(frame))
        lines = frame[_LINE] if _LINE in frame else range(2, len(frame) + 2)
        rows = zip(lines, raters, frame["item_id"], frame["choice"], strict=True)
        for line, rater, raw_item, raw_choice in rows:
            item, choice_text = text_or_none(raw_item), text_or_none(raw_choice)
            if item not in lookup:
                rejections.append(_rejection(name, line, UNKNOWN_ITEM, item, choice_text))
                continue
            choice = _VALID.get((choice_text or "").lower())
            if choice is None:
                rejections.append(_rejection(name, line, "invalid choice", item, choice_text))
                continue
            written = " ".join((text_or_none(rater) or stem).split())
            rater_name = names.setdefault(written.casefold(), written)
            previous = accepted.pop((rater_name, item), None)
            if previous is not None:
                earlier = (previous["file"], previous["_row"], REPLACED, item, previous["choice"])
                rejections.append(_rejection(*earlier))
            entry = lookup[item]
            accepted[(rater_name, item)] = {
                "rater": rater_name,
                "item_id": item,
                "product_id": entry["product_id"],
                "choice": choice,
                "preferred": {"A": entry["a_system"], "B": entry["b_system"]}.get(choice, "tie"),
                "file": name,
                "_row": line,
            }
    judgments = pd.DataFrame(list(accepted.values()), columns=JUDGMENT_COLUMNS)
    rejected = rejection_frame(rejections)
    logger.info("read %d judgment(s), rejected %d row(s)", len(judgments), len(rejected))
    return judgments, rejected
