from product_descgen.callstore import CallStore, cache_key
from product_descgen.llm.types import Result


def test_cache_key_is_stable_and_order_independent():
    assert cache_key(a=1, b={"x": 2, "y": 3}) == cache_key(b={"y": 3, "x": 2}, a=1)
    assert cache_key(a=1) != cache_key(a=2)


def test_done_returns_latest_success_and_errors_are_kept(tmp_path):
    store = CallStore(tmp_path / "calls.sqlite")
    store.record(
        [
            Result(key="a", text=None, error="RateLimitError: 429", attempts=5),
            Result(key="b", text="B", prompt_tokens=3, completion_tokens=1, meta={"item_id": "p2"}),
        ],
        "draft",
        "openai",
        "m",
    )
    store.record([Result(key="a", text="A")], "draft", "openai", "m")
    assert set(store.done(["a", "b", "c"])) == {"a", "b"}
    assert store.done(["b"])["b"]["item_id"] == "p2"
    assert store.last_errors(["a", "b"]) == {"a": "RateLimitError: 429"}
    calls = store.calls()
    assert len(calls) == 3 and calls["attempts"].tolist() == [5, 1, 1]
    assert CallStore(tmp_path / "calls.sqlite").done(["a"])["a"]["text"] == "A"  # persisted


def test_claims_are_exclusive_and_a_dead_runs_claims_free_up_at_once(tmp_path):
    import socket
    import sqlite3

    first, second = CallStore(tmp_path / "c.sqlite"), CallStore(tmp_path / "c.sqlite")
    assert first.claim(["a", "b"]) == {"a", "b"}
    assert second.claim(["a", "b", "c"]) == {"c"}  # a live run's keys are not taken
    with sqlite3.connect(tmp_path / "c.sqlite") as conn:  # as if first's process had died
        conn.execute("UPDATE claims SET owner = ? WHERE run_id = ?",
                     (f"{socket.gethostname()}:999999999", first.run_id))  # fmt: skip
    assert second.claim(["a", "b"]) == {"a", "b"}


def test_runs_opening_a_new_store_at_once_all_get_it(tmp_path):
    import threading

    for round_ in range(10):
        path, errors = tmp_path / f"c{round_}.sqlite", []
        barrier = threading.Barrier(8)

        def open_store(path=path, errors=errors, barrier=barrier) -> None:
            barrier.wait()
            try:
                CallStore(path).claim(["k"])
            except Exception as err:  # noqa: BLE001 - collected for the assertion
                errors.append(err)

        threads = [threading.Thread(target=open_store) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
