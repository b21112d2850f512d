#!/usr/bin/env bash
# The GPU path, checked on a bare CUDA machine (Python, torch and transformers; no registry).
#
#   bash scripts/gpu_check.sh pack [DIR]   # here, after `make install models`: DIR (default
#                                          # build/gpu_check, about 50 MiB) holds what it needs
#   bash scripts/gpu_check.sh run [DIR]    # there, from a copy of DIR (or this repo with DIR)
#   SHAPE=tiny PY=.venv/bin/python bash scripts/gpu_check.sh run [DIR]   # smoke run on a CPU
#
# PY: the Python that has torch and transformers (default python3, the bare machine's; on a
# development machine the project's .venv/bin/python).
#
# `run` trains a randomly initialised model of a real student's shape (SHAPE: llama2-7b, the
# default, or tiny) with the finetune pipeline's training function under conf/gpu, then runs
# evaluation's and describe's student nodes on CUDA, and prints one JSON of figures (also in
# OUT/result.json). See scripts/gpu_check.py; figures in docs/benchmarks.md ("GPU path").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
action=${1:-}
DIR=${2:-build/gpu_check}
# Packages the check imports that a bare CUDA machine lacks: copied from .venv without their
# dependencies (the machine's torch, transformers and their dependencies serve the rest).
PACKAGES="ludwig peft bitsandbytes pydantic pydantic_core annotated_types typing_inspection
  kedro omegaconf kedro_datasets parse dataclasses_json marshmallow retry decorator py
  jsonschema jsonschema_specifications referencing rpds tenacity typing_extensions"
# bitsandbytes ships one library per CUDA version (124 MB in all): keep those named here.
BNB_KEEP=${BNB_KEEP:-'libbitsandbytes_cpu.so libbitsandbytes_cuda13*.so'}  # torch cu13x

pack() {
  local py=.venv/bin/python site
  site=$($py -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  rm -rf "$DIR" && mkdir -p "$DIR/site" "$DIR/wheels" "$DIR/gpu_check" "$DIR/scripts"
  cp -r src conf "$DIR/"
  cp scripts/gpu_check.py scripts/gpu_check.sh "$DIR/scripts/"
  for name in $PACKAGES; do
    if [[ -e $site/$name ]]; then cp -r "$site/$name" "$DIR/site/"
    elif [[ -e $site/$name.py ]]; then cp "$site/$name.py" "$DIR/site/"
    else echo "gpu_check pack: $name is not installed in .venv" >&2; exit 1; fi
  done
  (cd "$DIR/site/bitsandbytes" && for lib in lib*.so; do
    keep=0; for pattern in $BNB_KEEP; do [[ $lib == $pattern ]] && keep=1; done
    ((keep)) || rm -f "$lib"
  done)
  find "$DIR" -name __pycache__ -prune -exec rm -rf {} +
  $py -m pip download --quiet --disable-pip-version-check --no-deps -d "$DIR/wheels" \
    "$(grep '^transformers==' requirements/lock.txt)"
  $py - "$DIR" <<'PY'
"""The student's tokenizer, and training rows from the shared Flipkart sample in the
project's model-input layout (the original description stands in for the teacher's text)."""
import sys
from pathlib import Path

import pandas as pd
from transformers import AutoTokenizer

from product_descgen.models import resolve_model_dir
from product_descgen.pipelines.data_prep.nodes import (
    build_model_inputs, clean_catalogue, ingest_catalogue,
)
from product_descgen.prep.config import DataPrepParams
from product_descgen.project_config import PROJECT_ROOT, load_project_models, load_project_params

out = Path(sys.argv[1]) / "gpu_check"
models = load_project_models()
student = resolve_model_dir(models.student, models.cache_dir)
AutoTokenizer.from_pretrained(student).save_pretrained(out / "tokenizer")
params = DataPrepParams.model_validate(load_project_params("flipkart")["data_prep"])
raw = pd.read_json(PROJECT_ROOT.parent / "shared/data/flipkart_products_2000.jsonl", lines=True)
products, _ = clean_catalogue(ingest_catalogue(raw.head(400), params)[0], params)
rows = build_model_inputs(products, params)
rows = rows.loc[rows["description"].str.split().str.len().between(40, 200)].head(160)
rows = rows.assign(target=rows["description"])
rows[["product_id", "title", "category", "audience", "input_text", "target"]].to_json(
    out / "rows.jsonl", orient="records", lines=True, force_ascii=False
)
print(f"gpu_check pack: {len(rows)} rows, tokenizer of {student}")
PY
  du -sh "$DIR"
}

run() {
  cd "$DIR"
  local wheel
  wheel=$(ls wheels/transformers-*.whl)
  "${PY:-python3}" - "$wheel" <<'PY' || "${PY:-python3}" -m pip install --quiet --no-index --no-deps --no-compile \
      --target tfsite "$wheel"
import sys, transformers
want = sys.argv[1].split("-")[1]
sys.exit(0 if transformers.__version__ == want else 1)
PY
  export PYTHONPATH=$PWD/tfsite:$PWD/site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}
  export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 KEDRO_DISABLE_TELEMETRY=true
  export TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
  "${PY:-python3}" scripts/gpu_check.py
}

case $action in
  pack) pack ;;
  run) if [[ $DIR != /* ]]; then DIR=$ROOT/$DIR; fi; run ;;
  *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
