"""Several OpenAI-compatible servers of one model, used as one: each call goes to the server
with the most free slots among those up; a server whose calls keep failing rests, then is
tried again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


@dataclass
class Server:
    """One server: its client, calls in flight, consecutive transient failures, rest end."""

    url: str
    client: Any  # openai.AsyncOpenAI
    in_flight: int = 0
    failures: int = 0
    resting_until: float = 0.0
    calls: int = field(default=0, compare=False)


class ServerPool:
    """``concurrency`` calls in flight per server. A server with ``max_failures`` transient
    failures in a row rests ``rest_s`` seconds; after that it gets calls again, and its first
    success returns it to the pool (a failure sends it back to rest)."""

    def __init__(
        self, servers: list[Server], concurrency: int, max_failures: int = 3, rest_s: float = 30.0
    ) -> None:
        if not servers:
            raise ValueError("a server pool needs at least one server")
        self.servers = servers
        self.concurrency = concurrency
        self.max_failures = max_failures
        self.rest_s = rest_s
        self._changed = asyncio.Condition()

    def _free(self, now: float) -> list[Server]:
        return [
            s for s in self.servers if s.resting_until <= now and s.in_flight < self.concurrency
        ]

    async def acquire(self) -> Server:
        """A slot on the up server with the most free slots (waits while none has one)."""
        async with self._changed:
            while True:
                now = time.monotonic()
                free = self._free(now)
                if free:
                    server = min(free, key=lambda s: (s.in_flight, s.calls))
                    server.in_flight += 1
                    server.calls += 1
                    return server
                resting = [s.resting_until for s in self.servers if s.resting_until > now]
                wake = min(resting) - now if resting else None
                with contextlib.suppress(TimeoutError):  # on timeout: a server's rest is over
                    await asyncio.wait_for(self._changed.wait(), wake)

    async def release(self, server: Server, failed: bool, pause_s: float = 0.0) -> None:
        """Free the slot; ``failed``: the call met a transient failure (a server problem);
        ``pause_s``: the server asked for a pause (a 429's Retry-After): it gets no calls for
        that long, and its rest, when it comes, lasts only that long if no other server is up
        (a lone rate-limited server is waited for, not rested)."""
        async with self._changed:
            server.in_flight -= 1
            now = time.monotonic()
            resting = server.resting_until > now
            if pause_s:
                server.resting_until = max(server.resting_until, now + pause_s)
            if not failed:
                server.failures = 0
            else:
                server.failures += 1
                if server.failures >= self.max_failures:
                    others_up = any(s.resting_until <= now for s in self.servers if s is not server)
                    rest = self.rest_s if others_up or not pause_s else pause_s
                    if not resting:  # said once a rest, not at every failure
                        logger.warning(
                            "%s: %d failed calls in a row%s, resting %.0f s", server.url,
                            server.failures, " (429: rate limited)" if pause_s else "", rest,
                        )  # fmt: skip
                    server.resting_until = max(server.resting_until, now + rest)
            self._changed.notify_all()
