"""Generation through any OpenAI-compatible server (vLLM, llama.cpp, Ollama, TGI,
``transformers serve``) with bounded concurrency, timeouts and retries.

Retried, with exponential backoff and jitter: timeouts, connection errors, 429 and 5xx.
Anything else (a 400, a malformed response body) is recorded on the result, not retried; a
re-run picks failed items up again because only successes are cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from http import HTTPStatus
from typing import Any

import openai
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from product_descgen.llm.server_pool import Server, ServerPool
from product_descgen.llm.types import (
    GenerationSettings,
    Request,
    Result,
    RetryPolicy,
    cut_at_stop,
    error_text,
)

logger = logging.getLogger(__name__)


def is_transient(err: BaseException) -> bool:
    """Worth retrying: timeouts (each read's, or the whole call's), dropped connections, 429
    and 5xx."""
    if isinstance(err, (openai.APIConnectionError, TimeoutError)):  # incl. APITimeoutError
        return True
    if isinstance(err, openai.APIStatusError):
        status = err.status_code
        return status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR
    return False


def rate_limited(err: BaseException) -> bool:
    """A 429: the server is up and asks for a pause (its Retry-After)."""
    return getattr(err, "status_code", None) == HTTPStatus.TOO_MANY_REQUESTS


def hint(err: BaseException) -> str:
    """What a non-retried error most likely means, where it is a common setting mistake."""
    if isinstance(err, openai.NotFoundError):
        return "; does base_url end in /v1, and does the server serve this model?"
    return ""


def retry_after_s(err: BaseException | None) -> float | None:
    """The server's ``Retry-After`` (seconds) on a 429 or 503, if it sent one."""
    response = getattr(err, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to the backoff


def redact(message: str, secrets: list[str]) -> str:
    """``message`` without the secrets, bearer tokens or authorization values a server may echo."""
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_CHARS:
            message = message.replace(secret, "[redacted]")
    return _AUTH.sub(lambda m: f"{m.group(1)}[redacted]", message)


_AUTH = re.compile(
    r"(?i)(bearer\s+|authorization['\"]?\s*[:=]\s*['\"]?|api[-_]?key['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+"
)
MAX_CHARS_PER_TOKEN = 32  # an answer longer than max_tokens x this is not a real answer
MIN_SECRET_CHARS = 4  # shorter "secrets" (placeholders) would redact ordinary words


class OpenAIBackend:
    """Chat or completion calls to an OpenAI-compatible endpoint."""

    name = "openai"

    def __init__(
        self,
        base_url: str | list[str],
        model: str,
        settings: GenerationSettings,
        *,
        api_key: str = "not-needed",
        concurrency: int = 8,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.model_id = model
        self.settings = settings
        self.base_urls = [base_url] if isinstance(base_url, str) else list(base_url)
        self.base_url = self.base_urls[0]
        self.api_key = api_key
        self.concurrency = concurrency
        self.retry = retry or RetryPolicy()
        unsent = {"repetition_penalty": settings.repetition_penalty != 1.0,
                  "no_repeat_ngram_size": settings.no_repeat_ngram_size > 0}  # fmt: skip
        if any(unsent.values()):  # not in the OpenAI API: the server's own settings apply
            logger.warning(
                "%s: %s not sent (the OpenAI API has no such fields): set them on the server "
                "(docs/teacher_server.md)", model, " and ".join(k for k, v in unsent.items() if v),
            )  # fmt: skip

    def _params(self) -> dict[str, Any]:
        s, keyed = self.settings, self.settings.cache_key()  # greedy: seed, top_p as keyed
        params: dict[str, Any] = {
            "model": self.model_id,
            "max_tokens": s.max_new_tokens,
            "temperature": s.temperature,
            "top_p": keyed["top_p"],
            "seed": keyed["seed"],
        }
        if s.stop:
            params["stop"] = s.stop[:4]  # the OpenAI API takes at most four
        return params

    async def _call(self, pool: ServerPool, request: Request) -> Result:
        attempts, url, started = 0, "", 0.0

        async def once() -> Any:
            nonlocal attempts, url, started
            attempts += 1
            server = await pool.acquire()
            url, started = server.url, started or time.perf_counter()  # sent: the clock starts
            client = server.client
            if request.messages is not None:
                call = client.chat.completions.create(
                    messages=list(request.messages), **self._params()
                )
            else:
                call = client.completions.create(prompt=request.prompt, **self._params())
            try:
                response = await asyncio.wait_for(call, self.retry.timeout_s)  # the whole call
            except Exception as err:
                pause = min(retry_after_s(err) or self.retry.backoff_s, self.retry.backoff_max_s)
                await pool.release(
                    server, failed=is_transient(err), pause_s=pause if rate_limited(err) else 0.0
                )
                raise
            await pool.release(server, failed=False)
            return response

        backoff = wait_random_exponential(
            multiplier=self.retry.backoff_s, max=self.retry.backoff_max_s
        )

        def wait(state: Any) -> float:  # the server's Retry-After, within the cap
            after = retry_after_s(state.outcome.exception() if state.outcome else None)
            return min(after, self.retry.backoff_max_s) if after is not None else backoff(state)

        try:
            retrying = AsyncRetrying(
                retry=retry_if_exception(is_transient),
                wait=wait,
                stop=stop_after_attempt(self.retry.max_attempts),
                reraise=True,
            )
            response = await retrying(once)
            if not getattr(response, "choices", None):
                raise ValueError("the server's answer has no choices")
            choice = response.choices[0]
            raw = choice.message.content if request.messages is not None else choice.text
            if raw is None:
                raise ValueError("the server's answer has no text")
            cap = MAX_CHARS_PER_TOKEN * self.settings.max_new_tokens
            if len(raw) > cap:
                raise ValueError(
                    f"the server's answer has {len(raw)} characters, more than max_tokens "
                    f"{self.settings.max_new_tokens} can give ({cap})"
                )
            text, stopped = cut_at_stop(raw, self.settings.stop)
            usage = response.usage
            return Result(
                key=request.key,
                text=text.strip(),
                prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
                completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
                latency_s=time.perf_counter() - started,
                attempts=attempts,
                finish_reason="stop" if stopped else choice.finish_reason,
                meta=request.meta,
            )
        except (Exception, RetryError) as err:  # noqa: BLE001 - recorded per item
            return Result(
                key=request.key,
                text=None,
                latency_s=time.perf_counter() - started if started else 0.0,
                attempts=attempts,
                error=error_text(  # a server's answer names the server
                    redact(f"{type(err).__name__}: {err}", [self.api_key]),
                    redact(url + hint(err), [self.api_key]) if url else "",
                ),
                meta=request.meta,
            )

    async def _run(self, requests: Sequence[Request], done: queue.Queue, live: dict) -> None:
        clients = [
            openai.AsyncOpenAI(
                base_url=url, api_key=self.api_key, timeout=self.retry.timeout_s, max_retries=0
            )
            for url in self.base_urls
        ]
        pool = ServerPool(
            [Server(url, client) for url, client in zip(self.base_urls, clients, strict=True)],
            self.concurrency, self.retry.server_max_failures, self.retry.server_rest_s,
        )  # fmt: skip
        unstored = asyncio.Semaphore(self.concurrency * len(clients))
        try:

            async def one(request: Request) -> None:
                await unstored.acquire()  # given back once the caller has taken the result
                done.put(await self._call(pool, request))

            calls = asyncio.gather(*(one(r) for r in requests))
            live.update(loop=asyncio.get_running_loop(), unstored=unstored, calls=calls)
            await calls
        finally:
            for client in clients:
                await client.close()

    def generate(self, requests: Sequence[Request]) -> Iterator[list[Result]]:
        """Results as each call ends (whatever has ended since the caller last asked), so
        callers persist every paid answer at once; ``concurrency`` calls in flight per server.

        A call starts only while fewer than ``concurrency`` answers per server wait for the
        caller, so a process killed while storing loses at most that many paid answers; a
        caller that stops early cancels the calls not yet made."""
        done: queue.Queue = queue.Queue()
        failure: list[BaseException] = []
        live: dict[str, Any] = {}

        def run() -> None:
            try:
                asyncio.run(self._run(requests, done, live))
            except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
                failure.append(err)
            finally:
                done.put(None)

        def on_loop(callback: Callable[[], object]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: every call ended
                live["loop"].call_soon_threadsafe(callback)

        worker = threading.Thread(target=run, name="openai-calls", daemon=True)
        worker.start()
        finished = False
        try:
            while not finished:
                ready = [done.get()]
                while not done.empty():
                    ready.append(done.get_nowait())
                finished = ready[-1] is None
                results = [r for r in ready if r is not None]
                if results:
                    yield results
                    for _ in results:
                        on_loop(live["unstored"].release)
        finally:
            if not finished and "calls" in live:
                on_loop(live["calls"].cancel)
        worker.join()
        if failure:
            raise failure[0]
