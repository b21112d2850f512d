"""Teacher throughput over one server against two: the teacher's draft step through the
OpenAI-compatible backend, served by ``transformers serve`` processes of the configured teacher
(one thread each), on the same Flipkart products; rounds alternate the order.

    .venv/bin/python benchmarks/teacher_servers.py --products 24 --rounds 3

Prints one JSON: per setting the median and range of seconds and generated tokens/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from speed_comparison import flipkart_items  # noqa: E402
from tests.servers import start_transformers_serve, stop_process  # noqa: E402

from product_descgen.llm.backends import Connection, make_backend  # noqa: E402
from product_descgen.models import resolve_model_dir  # noqa: E402
from product_descgen.project_config import (  # noqa: E402
    load_project_config,
    load_project_models,
    load_project_params,
)
from product_descgen.prompting import PromptSet  # noqa: E402
from product_descgen.step_runner import step_requests  # noqa: E402
from product_descgen.teacher.config import TeacherParams  # noqa: E402
from product_descgen.teacher.generate import draft_variables  # noqa: E402


def run_once(urls: list[str], model: str, requests: list, settings, concurrency: int) -> dict:
    connection = Connection(
        backend="openai", model=model, base_url=urls, concurrency=concurrency, timeout_s=600
    )
    backend = make_backend(connection, None, settings)
    started = time.perf_counter()
    results = [r for batch in backend.generate(requests) for r in batch]
    seconds = time.perf_counter() - started
    failed = [r.error for r in results if not r.ok]
    if failed:
        raise RuntimeError(f"{len(failed)} calls failed: {failed[:2]}")
    tokens = sum(r.completion_tokens for r in results)
    return {"seconds": seconds, "generated_tokens": tokens, "tokens_per_s": tokens / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4, help="calls in flight per server")
    args = parser.parse_args()
    models = load_project_models()
    model_dir = resolve_model_dir(models.teacher, models.cache_dir)
    teacher = TeacherParams.model_validate(load_project_params()["teacher_generation"])
    prompt_file = load_project_config("catalog")["teacher_prompts"]["filepath"]
    prompts = PromptSet.model_validate(_yaml(prompt_file))
    settings = prompts.with_stop(teacher.draft)
    items = flipkart_items(args.products + 2, seed=3)
    requests = step_requests(
        items, prompts, "draft", model_dir, settings, lambda it: draft_variables(it, teacher.rules)
    )
    warmup, measured = requests[:2], requests[2:]
    with tempfile.TemporaryDirectory() as tmp:
        servers = [start_transformers_serve(Path(model_dir), Path(tmp) / f"s{i}.log", 300)
                   for i in range(2)]  # fmt: skip
        try:
            urls = [url for url, _ in servers]
            run_once(urls, model_dir, warmup, settings, args.concurrency)  # both servers warm
            runs: dict[str, list[dict]] = {"one server": [], "two servers": []}
            for round_ in range(args.rounds):
                order = ["one server", "two servers"][:: 1 if round_ % 2 == 0 else -1]
                for name in order:
                    chosen = urls[:1] if name == "one server" else urls
                    runs[name].append(
                        run_once(chosen, model_dir, measured, settings, args.concurrency)
                    )
        finally:
            for _, proc in servers:
                stop_process(proc)
    out = {"products": len(measured), "rounds": args.rounds, "concurrency": args.concurrency}
    for name, results in runs.items():
        for key in ("seconds", "tokens_per_s"):
            values = [r[key] for r in results]
            out[f"{name} {key}"] = {"median": statistics.median(values),
                                    "min": min(values), "max": max(values)}  # fmt: skip
    one, two = out["one server tokens_per_s"]["median"], out["two servers tokens_per_s"]["median"]
    out["ratio"] = two / one
    print(json.dumps(out, indent=1))  # noqa: T201


def _yaml(path: str) -> dict:
    import yaml

    return yaml.safe_load(Path(path).read_text())


if __name__ == "__main__":
    main()
