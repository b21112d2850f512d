"""The resumable step runner: many model calls as one step, each paid once.

Requests are keyed by everything that fixes their answer; a step generates only the keys its
call store lacks, claims them first (runs sharing a store never pay for one prompt twice),
stores every answer as the backend hands it over, and fails loudly when most calls fail with one
error (:class:`FailureWatch`). Used by the teacher's steps, the judge and both students.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from tqdm.auto import tqdm

from product_descgen.callstore import CallStore, cache_key
from product_descgen.llm.backends import Backend
from product_descgen.llm.types import GenerationSettings, Request, Result, error_cause
from product_descgen.prompting import PromptSet, render

logger = logging.getLogger(__name__)

CLAIM_POLL_S = 2.0  # how often a run looks whether prompts another run holds are done


# A server's failures, not a row's (the openai backend's retried kinds, as recorded): a row that
# failed with one before is not excused when it fails with it again (a server still down).
SERVER_ERRORS = (
    "APIConnectionError", "APITimeoutError", "TimeoutError", "RateLimitError",
    "InternalServerError",
)  # fmt: skip


class FailureWatch:
    """Fails loudly when most calls failed with one error (a dead server, a wrong model, a
    device mismatch, out of memory): that is the stage failing, not a bad row. Judged once
    ``min_rows`` calls have ended, and at the ``final`` check whatever their number.
    ``streak_rows`` calls in a row failing with one error fail it too, however many succeeded
    before (a server that died part way). Counts are kept as results arrive, so each new batch
    costs its own size. ``known``: each retried key's error in an earlier run; a row failing
    again with it is that row's problem, judged when it first failed, so it is kept in
    ``repeats`` and not counted, unless it is a server's error (:data:`SERVER_ERRORS`)."""

    streak_rows = 32

    def __init__(self, what: str, min_rows: int = 8, known: dict[str, str] | None = None) -> None:
        self.what, self.min_rows, self.known = what, min_rows, known or {}
        self.n, self.errors, self.repeats = 0, Counter[str | None](), list[str]()
        self.streak: tuple[str | None, int] = (None, 0)  # the error of the last calls, how many
        self.examples: dict[str | None, str | None] = {}  # each cause as first recorded

    def add(self, results: list[Result], final: bool = False) -> None:
        for r in results:
            cause = error_cause(r.error)  # one cause on several servers is one error
            if (
                not r.ok
                and error_cause(self.known.get(r.key)) == cause
                and not (r.error or "").startswith(SERVER_ERRORS)
            ):
                self.repeats.append(r.error or "")
                continue
            self.n += 1
            if r.ok:
                self.streak = (None, 0)
                continue
            self.errors[cause] += 1
            self.examples.setdefault(cause, r.error)
            error, count = self.streak
            self.streak = (cause, count + 1 if error == cause else 1)
            if self.streak[1] >= self.streak_rows:
                raise RuntimeError(
                    f"{self.what}: the last {self.streak[1]} calls failed with: {r.error}"
                )
        self.check(final)

    def check(self, final: bool = True) -> None:
        if not self.errors or (self.n < self.min_rows and not final):
            return
        error, count = self.errors.most_common(1)[0]
        if count == self.n or ((self.n >= self.min_rows or final) and count * 2 > self.n):
            raise RuntimeError(
                f"{self.what}: {count} of {self.n} calls failed with: {self.examples[error]}"
            )


def keyed(requests: Sequence[Request], **identity: Any) -> list[Request]:
    """``requests`` (each keyed by its item's id) keyed for the call store by their prompt and
    ``identity`` (what else fixes the answer: the model served, the settings), the item's id
    kept as ``item_id``."""
    return [
        dataclasses.replace(
            r,
            key=cache_key(prompt=r.prompt or r.messages, **identity),
            meta={**r.meta, "item_id": r.key},
        )  # fmt: skip
        for r in requests
    ]


def step_requests(
    items: Sequence[dict[str, Any]],
    prompts: PromptSet,
    step: str,
    model_id: str,
    settings: GenerationSettings,
    variables: Callable[[dict[str, Any]], dict[str, Any]],
) -> list[Request]:
    """One request per item; the key hashes the rendered prompt, the prompt file's text for
    this step, the model and the settings, so any change to those regenerates the item."""
    rendered = [render(prompts, step, str(i["product_id"]), variables(i), {}) for i in items]
    return keyed(
        rendered, step=step, template=prompts.template_text(step), model=model_id,
        settings=settings.cache_key(),
    )  # fmt: skip


def run_step(
    requests: Sequence[Request],
    make_backend: Callable[[], Backend],
    store: CallStore,
    step: str,
    progress: bool = True,
    label: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Generate what is not cached yet; return the successful call for every done key.
    ``label`` names the step in progress bars and errors (default ``teacher <step>``).

    The backend is only built (model loaded, connection opened) when there is work to do.
    Keys are claimed in the store first: prompts another run is generating are waited for, not
    paid twice (and taken over if that run's claims lapse). Every result is stored as the
    backend hands it over; a systematic failure (most calls failing with one error) stops the
    step with that error once a batch shows it. A row that fails again with the very error it
    had in an earlier run is that row's problem (a prompt the server refuses), judged when it
    first failed: it is logged, not counted, so a few such rows cannot fail every re-run.
    """
    done = store.done(r.key for r in requests)
    pending = list({r.key: r for r in requests if r.key not in done}.values())
    logger.info(
        "%s: %d requests, %d cached, %d to generate", step, len(requests), len(done), len(pending)
    )
    known_errors = store.last_errors(r.key for r in pending)
    backend: Backend | None = None
    try:
        while pending:
            mine = store.claim(r.key for r in pending)
            if mine:
                backend = backend or make_backend()
                todo = [r for r in pending if r.key in mine]
                watch = FailureWatch(label or f"teacher {step}", known=known_errors)
                _generate(backend, todo, store, step, progress, watch)
            finished = store.done(r.key for r in pending)
            others = [r for r in pending if r.key not in mine and r.key not in finished]
            if others:
                logger.info("%s: waiting for %d prompts another run holds", step, len(others))
                time.sleep(CLAIM_POLL_S)
            pending = others
    except KeyboardInterrupt:
        stored = len(store.done(r.key for r in requests)) - len(done)
        logger.warning(
            "%s interrupted: %d answer%s of this run stored, %d of %d requests done; a re-run "
            "resumes from there", label or f"teacher {step}", stored, "" if stored == 1 else "s",
            len(done) + stored, len(requests),
        )  # fmt: skip
        raise
    finally:
        store.release_claims()
    return store.done(r.key for r in requests)


def _generate(
    backend: Backend,
    todo: list[Request],
    store: CallStore,
    step: str,
    progress: bool,
    watch: FailureWatch,
) -> None:
    started, tokens, failed = time.perf_counter(), 0, 0
    with tqdm(total=len(todo), desc=watch.what, unit="item", disable=not progress) as bar:
        for results in backend.generate(todo):
            store.record(results, step, backend.name, backend.model_id)
            store.renew_claims()
            tokens += sum(r.completion_tokens for r in results)
            failed += sum(not r.ok for r in results)  # so far in this step
            bar.update(len(results))
            rate = tokens / max(time.perf_counter() - started, 1e-9)
            bar.set_postfix(tok_s=f"{rate:.1f}", failed=failed)
            logger.debug("%s: %d done (%d failed so far), %.1f tok/s", step, len(results),
                         failed, rate)  # fmt: skip
            watch.add(results)
    watch.check()
    if watch.errors:  # fewer than most: each row's own problem, or a server down part way
        cause, count = watch.errors.most_common(1)[0]
        error = watch.examples[cause]
        logger.warning(
            "%s: %d of %d calls failed (%d with: %s); a re-run retries them (the call log "
            "has each error)", watch.what, sum(watch.errors.values()), watch.n, count, error,
        )  # fmt: skip
    if watch.repeats:
        logger.warning(
            "%s: %d rows failed again with the error of an earlier run (each row's own problem; "
            "see the call log), e.g. %s",
            watch.what, len(watch.repeats), watch.repeats[0],
        )  # fmt: skip


def missing_reasons(
    requests: Sequence[Request], done: dict[str, dict[str, Any]], store: CallStore
) -> dict[str, str]:
    """Why each request :func:`run_step` left without a successful call has none: its last
    call's error, or ``not generated`` (no call was made for it)."""
    missing = [r.key for r in requests if r.key not in done]
    errors = store.last_errors(missing)
    return {key: errors.get(key, "not generated") for key in missing}
