"""Sentence embeddings kept between runs: a catalogue is embedded once."""

from __future__ import annotations

import logging
import os
import sqlite3

import numpy as np

from product_descgen.quality.embedding_cache import CachedEmbedder


class CountingEmbedder:
    """A deterministic stand-in for a sentence embedder that records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        self.asked += texts
        return np.array([[len(t), t.count("a"), 1.0] for t in texts], dtype=np.float32)


def test_each_text_is_embedded_once_across_runs(tmp_path):
    path = tmp_path / "cache" / "model.sqlite"
    first = CountingEmbedder()
    vectors = CachedEmbedder(first, path).encode(["a mug", "a jug", "a mug"])
    assert first.asked == ["a mug", "a jug"]
    assert vectors.tolist() == [[5, 1, 1], [5, 1, 1], [5, 1, 1]]
    later = CountingEmbedder()  # the next run: a new process, the same file
    again = CachedEmbedder(later, path).encode(["a jug", "a bowl", "a mug"])
    assert later.asked == ["a bowl"]
    np.testing.assert_array_equal(again, CountingEmbedder().encode(["a jug", "a bowl", "a mug"]))
    assert CachedEmbedder(CountingEmbedder(), path).encode([]).shape[0] == 0


def test_a_cache_that_cannot_be_opened_is_skipped_with_a_warning(tmp_path, caplog):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache's folder would go")
    embedder = CountingEmbedder()
    with caplog.at_level(logging.WARNING):
        vectors = CachedEmbedder(embedder, blocked / "model.sqlite").encode(["a mug"])
    assert vectors.tolist() == [[5, 1, 1]] and embedder.asked == ["a mug"]
    assert "embedding cache" in caplog.text and "not used" in caplog.text


def test_a_cache_that_cannot_be_written_keeps_nothing_and_says_so(tmp_path, caplog, monkeypatch):
    def refuse(*args) -> None:
        raise sqlite3.OperationalError("attempt to write a readonly database")

    cached = CachedEmbedder(CountingEmbedder(), tmp_path / "model.sqlite")
    monkeypatch.setattr(cached, "_write", refuse)
    with caplog.at_level(logging.WARNING):
        assert cached.encode(["a mug"]).tolist() == [[5, 1, 1]]
    assert "unwritable" in caplog.text and "not kept" in caplog.text
    later = CountingEmbedder()
    CachedEmbedder(later, tmp_path / "model.sqlite").encode(["a mug"])
    assert later.asked == ["a mug"]  # nothing was kept


def test_each_embedder_has_its_own_cache_by_its_files(tmp_path):
    model = tmp_path / "embedder"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"one")
    first = CachedEmbedder.for_model(CountingEmbedder(), model).path
    assert first is not None and first.is_relative_to(os.environ["PRODUCT_DESCGEN_CACHE"])
    (model / "weights.bin").write_bytes(b"two")  # replaced at the same path
    assert CachedEmbedder.for_model(CountingEmbedder(), model).path != first
