"""Sentence embeddings kept between runs, so a catalogue is embedded once, not on every run.

describe checks each batch of new products against the whole training catalogue (the
off-product check), and the teacher's gate against every product it was given: without a cache
each run embedded every one of them again (minutes for tens of thousands of products on a CPU).
Vectors are keyed by the embedder (its files' fingerprint) and the text, in one SQLite file per
embedder under the user cache (beside the model fingerprints), so a replaced embedder starts
afresh. A cache that cannot be opened or written is warned about and skipped. Nothing is ever
evicted (about 1.5 KB a text with the default embedder): delete the folder to reclaim it. On a
network file system whose locks SQLite cannot trust, point ``PRODUCT_DESCGEN_CACHE`` at a
local disk.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np

from product_descgen.models import model_fingerprint, user_cache

logger = logging.getLogger(__name__)

QUERY_CHUNK = 500  # keys per SELECT (SQLite's variable limit is far above it)


def _key(text: str) -> str:
    """The text's key in the cache (its hash)."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class CachedEmbedder:
    """``embedder.encode`` with each text's vector kept in ``path`` (None: no cache)."""

    def __init__(self, embedder: Any, path: Path | None) -> None:
        self.embedder = embedder
        self.path = path

    @classmethod
    def for_model(cls, embedder: Any, model_dir: str | Path) -> CachedEmbedder:
        """The cache of the embedder loaded from ``model_dir`` (by its files' fingerprint)."""
        fingerprint = model_fingerprint(model_dir)
        path = user_cache() / "embeddings" / f"{fingerprint}.sqlite" if fingerprint else None
        return cls(embedder, path)

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        """The cache file, created with its table if new."""
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=60)
        db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB)")
        return db

    def _read(self, path: Path, keys: list[str]) -> dict[str, np.ndarray]:
        """The vectors the cache holds of ``keys``."""
        with closing(self._connect(path)) as db:
            found = {}
            for start in range(0, len(keys), QUERY_CHUNK):
                chunk = keys[start : start + QUERY_CHUNK]
                marks = ",".join("?" * len(chunk))  # placeholders only: the keys are bound
                rows = db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})", chunk)
                found |= {k: np.frombuffer(v, dtype=np.float32) for k, v in rows}
            return found

    def _write(self, path: Path, vectors: dict[str, np.ndarray]) -> None:
        """``vectors`` kept (a key another process wrote meanwhile is left as it is)."""
        with closing(self._connect(path)) as db, db:
            db.executemany(
                "INSERT OR IGNORE INTO vectors (key, vector) VALUES (?, ?)",
                [(k, v.astype(np.float32).tobytes()) for k, v in vectors.items()],
            )

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """One float32 vector per text (a row each), the embedder run on the texts it has not
        embedded before."""
        keys = [_key(t) for t in texts]
        known: dict[str, np.ndarray] = {}
        if self.path is not None:
            try:
                known = self._read(self.path, sorted(set(keys)))
            except (OSError, sqlite3.Error) as err:
                logger.warning("embedding cache %s unreadable (%s): not used", self.path, err)
                self.path = None
        new = {k: t for k, t in zip(keys, texts, strict=True) if k not in known}
        if new:
            encoded = self.embedder.encode(list(new.values()), batch_size=batch_size)
            fresh = dict(zip(new, np.asarray(encoded, dtype=np.float32), strict=True))
            known |= fresh
            if self.path is not None:
                try:
                    self._write(self.path, fresh)
                except (OSError, sqlite3.Error) as err:
                    logger.warning("embedding cache %s unwritable (%s): not kept", self.path, err)
        if self.path is not None:
            logger.info("Embedded %d texts: %d new to the cache", len(texts), len(new))
        dims = next(iter(known.values())).shape[0] if known else 0
        return np.stack([known[k] for k in keys]) if keys else np.empty((0, dims), np.float32)
