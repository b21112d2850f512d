"""JSON Lines dataset that never loses a line: malformed lines load as rows with an error.

``pandas.JSONDataset(lines=True)`` fails the whole load on one bad line; a catalogue with a
truncated line should instead quarantine that line and go on. Loaded frames carry ``_line``
(1-based line number) and, for lines that are not JSON objects, ``_load_error``.
"""

from __future__ import annotations

import codecs
import json
from pathlib import PurePosixPath
from typing import Any

import fsspec
import pandas as pd
from kedro.io.core import AbstractDataset, DatasetError, get_filepath_str, get_protocol_and_path

LINE_COLUMN = "_line"
ERROR_COLUMN = "_load_error"
RAW_LINE_COLUMN = "_raw_line"  # a bad line's text, so its quarantine row shows what it held
MAX_RAW_CHARS = 2000


def _raw_text(raw: bytes, encoding: str) -> str:
    text = raw.decode(encoding, errors="replace")
    if len(text) <= MAX_RAW_CHARS:
        return text
    return f"{text[:MAX_RAW_CHARS]}... ({len(text) - MAX_RAW_CHARS} more characters)"


def parse_lines(lines: list[bytes], encoding: str = "utf-8") -> list[dict[str, Any]]:
    """Parse JSON Lines; blank lines are skipped, bad lines (not JSON, not an object, not in
    ``encoding``) become error rows with the line's text (cut at ``MAX_RAW_CHARS``). A byte
    order mark before the first line is ignored."""
    records: list[dict[str, Any]] = []
    for number, raw in enumerate(lines, start=1):
        try:
            line = raw.decode(encoding)
        except UnicodeDecodeError as err:
            records.append(
                {
                    LINE_COLUMN: number,
                    ERROR_COLUMN: f"line {number}: not {encoding} text (byte "
                    f"0x{raw[err.start]:02x} at byte {err.start + 1} of the line)",
                    RAW_LINE_COLUMN: _raw_text(raw, encoding),
                }
            )
            continue
        if number == 1:
            line = line.removeprefix("\ufeff")
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            records.append(
                {
                    LINE_COLUMN: number,
                    ERROR_COLUMN: f"line {number}: {err.msg} (col {err.colno})",
                    RAW_LINE_COLUMN: _raw_text(raw, encoding),
                }  # fmt: skip
            )
            continue
        if not isinstance(value, dict):
            records.append(
                {
                    LINE_COLUMN: number,
                    ERROR_COLUMN: f"line {number}: a JSON {type(value).__name__}, not an object",
                    RAW_LINE_COLUMN: _raw_text(raw, encoding),
                }
            )
            continue
        # a field named like the loader's own columns is the data's: kept under another name
        own = (LINE_COLUMN, ERROR_COLUMN, RAW_LINE_COLUMN)
        clashing = {k: f"source{k}" for k in own if k in value}
        value = {clashing.get(k, k): v for k, v in value.items()}
        records.append({**value, LINE_COLUMN: number})
    return records


class JSONLinesDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """Loads/saves a DataFrame as JSON Lines (one object per line), tolerant of bad lines.

    Example catalog entry::

        raw_products:
          type: product_descgen.datasets.JSONLinesDataset
          filepath: data/01_raw/products.jsonl
    """

    def __init__(
        self,
        filepath: str,
        encoding: str = "utf-8",
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        protocol, path = get_protocol_and_path(filepath)
        self._protocol = protocol
        self._filepath = PurePosixPath(path)
        self._encoding = encoding
        self._fs = fsspec.filesystem(protocol, **(credentials or {}), **(fs_args or {}))
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "protocol": self._protocol}

    def load(self) -> pd.DataFrame:
        path = get_filepath_str(self._filepath, self._protocol)
        if not self._fs.exists(path):
            raise DatasetError(f"JSON Lines file not found: {path}")
        with self._fs.open(path, mode="rb") as handle:
            # each line decoded on its own: one bad byte costs its line, not the file; "\n"
            # only: str.splitlines() also splits at U+2028 and kin, legal inside JSON strings
            data, encoding = handle.read(), self._encoding
        if codecs.lookup(encoding).name.startswith(("utf-16", "utf-32")):  # "\n" is not a byte
            data, encoding = data.decode(encoding).encode("utf-8"), "utf-8"
        records = parse_lines(data.split(b"\n"), encoding)
        # object columns: values stay as the file gives them (an integer id stays an integer,
        # exact past 2**53, even in a column with gaps, where pandas would make it a float)
        frame = pd.DataFrame(records, dtype=object)
        if LINE_COLUMN in frame:
            frame[LINE_COLUMN] = frame[LINE_COLUMN].astype("int64")
        return frame

    def save(self, data: pd.DataFrame) -> None:
        """Written beside the target, then moved over it: a reader (or a kill) never meets a
        half-written file. No rows: an empty file (pandas writes a lone newline)."""
        path = get_filepath_str(self._filepath, self._protocol)
        self._fs.mkdirs(str(PurePosixPath(path).parent), exist_ok=True)
        text = data.to_json(orient="records", lines=True, force_ascii=False) if len(data) else ""
        partial = f"{path}.partial"
        with self._fs.open(partial, mode="w", encoding=self._encoding) as handle:
            handle.write(text)
        self._fs.mv(partial, path)

    def _exists(self) -> bool:
        return self._fs.exists(get_filepath_str(self._filepath, self._protocol))
