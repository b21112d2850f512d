"""Loopback servers for tests: a real ``transformers serve`` and a fault-injecting fake."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_transformers_serve(
    model_dir: Path, log_path: Path, timeout_s: float = 120
) -> tuple[str, subprocess.Popen]:
    """``transformers serve MODEL`` on a free loopback port, up: its /v1 base URL and process."""
    port = free_port()
    exe = Path(sys.executable).with_name("transformers")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [str(exe), "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port)]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"transformers serve exited:\n{log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base}/v1/models", timeout=2):
                return f"{base}/v1", proc
        except OSError:
            if time.monotonic() > deadline:
                stop_process(proc)
                raise TimeoutError(f"transformers serve not up in {timeout_s}s") from None
            time.sleep(0.5)


def stop_process(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def transformers_serve(model_dir: Path, log_path: Path, timeout_s: float = 120) -> Iterator[str]:
    """Start ``transformers serve MODEL`` on a free loopback port; yield its /v1 base URL."""
    base_url, proc = start_transformers_serve(model_dir, log_path, timeout_s)
    try:
        yield base_url
    finally:
        stop_process(proc)


class FaultyServer:
    """An OpenAI-compatible fake on loopback that fails a share of calls on purpose.

    Failure modes: HTTP 500, HTTP 429, a response slower than the client's timeout, a dropped
    connection, and a 200 with a malformed JSON body. ``fail_share`` can be changed live.
    ``script``: modes served first, in order, before the random ones; besides the above:
    ``trickle`` (a valid answer sent a byte at a time), ``oversized`` (a 200 with a huge
    text), ``nochoices`` (a 200 with an empty choices list), ``echoauth`` (a 500 whose body
    echoes the Authorization header), ``retryafter`` (a 429 asking to wait 1 s), ``404`` (a
    path the server does not serve).
    """

    MODES = ("500", "429", "timeout", "drop", "badjson")

    def __init__(
        self, fail_share: float = 0.4, seed: int = 0, slow_s: float = 1.5, modes: tuple = MODES
    ) -> None:
        self.modes = modes
        self.answered: list[str] = []  # the prompt of every valid answer delivered
        self.fail_share = fail_share
        self.slow_s = slow_s
        self.rng = random.Random(seed)
        self.seen: Counter[str] = Counter()  # mode -> count
        self.bodies: list[dict] = []  # every request body received
        self.times: list[float] = []  # when each request arrived (monotonic)
        self.script: list[str] = []
        self.latency_s = 0.0  # every answer waits this long (to make runs overlap)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FaultyServer:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", self.port), self._loop
        )
        self._server = future.result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # keep-alive: several requests per connection
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {
                    k.lower(): v.strip()
                    for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)
                }
                body = json.loads(
                    await reader.readexactly(int(headers.get("content-length", 0))) or b"{}"
                )
                self.bodies.append(body)
                self.times.append(time.monotonic())
                if self.script:
                    mode = self.script.pop(0)
                else:
                    failing = self.rng.random() < self.fail_share
                    mode = self.rng.choice(self.modes) if failing else "ok"
                self.seen[mode] += 1
                if mode == "drop":
                    writer.transport.abort()
                    return
                if mode == "timeout":
                    await asyncio.sleep(self.slow_s)
                    writer.transport.abort()
                    return
                await asyncio.sleep(self.latency_s)
                status, payload = self._reply(mode, path, body)
                if mode == "echoauth":
                    payload = json.dumps({"error": {"message": "bad auth",
                                                    "headers": headers}}).encode()  # fmt: skip
                wait = "1" if mode == "retryafter" else "0"
                head = (
                    f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(payload)}\r\nretry-after: {wait}\r\n\r\n"
                ).encode()
                if mode == "trickle":
                    writer.write(head)
                    for i in range(len(payload)):
                        writer.write(payload[i : i + 1])
                        await writer.drain()
                        await asyncio.sleep(0.1)
                    continue
                writer.write(head + payload)
                await writer.drain()
                if mode == "ok":
                    self.answered.append(body.get("prompt") or body["messages"][-1]["content"])
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            writer.transport.abort()

    @staticmethod
    def _reply(mode: str, path: str, body: dict) -> tuple[str, bytes]:
        failures = {
            "500": ("500 Internal Server Error", b'{"error": {"message": "boom"}}'),
            "404": ("404 Not Found", b'{"detail": "Not Found"}'),
        }
        if mode in failures:
            return failures[mode]
        if mode in ("429", "retryafter"):
            return "429 Too Many Requests", b'{"error": {"message": "slow down"}}'
        if mode == "badjson":
            return "200 OK", b'{"choices": [{"text": "unterminated'
        if mode == "echoauth":
            return "500 Internal Server Error", b""  # the body is filled by the handler
        if mode == "nochoices":
            return "200 OK", json.dumps({"id": "x", "object": "text_completion", "created": 0,
                                         "model": "m", "choices": []}).encode()  # fmt: skip
        if path.endswith("/chat/completions"):
            prompt = body["messages"][-1]["content"]
            message = {"role": "assistant", "content": f"Echo: {prompt[:40]}."}
            choice = {"index": 0, "finish_reason": "stop", "message": message}
            obj = "chat.completion"
        else:
            prompt = body["prompt"]
            text = "x" * 200_000 if mode == "oversized" else f"Echo: {prompt[:40]}."
            choice = {"index": 0, "finish_reason": "stop", "text": text}
            obj = "text_completion"
        reply = {
            "id": "x", "object": obj, "created": 0, "model": body.get("model", "m"),
            "choices": [choice],
            "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": 3,
                      "total_tokens": len(prompt.split()) + 3},
        }  # fmt: skip
        return "200 OK", json.dumps(reply).encode()
