#!/usr/bin/env bash
# On a CUDA machine: a few real 4-bit QLoRA steps with Ludwig, printing step time and peak GPU
# memory. Uses the student from `models.student` (default: SmolLM2-135M-Instruct) unless
# STUDENT=/path/to/model is given.  Usage: bash scripts/gpu_check.sh [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 KEDRO_DISABLE_TELEMETRY=true
PY=${PY:-.venv/bin/python}
STEPS=${1:-20}
"$PY" - "$STEPS" <<'PY'
import json, logging, os, sys, time
import pandas as pd, torch
from product_descgen.models import ModelsParams, resolve_model_dir
from product_descgen.project_config import load_project_params
from product_descgen.training import ludwig_compat
from product_descgen.training.config import FinetuneParams, build_ludwig_config

assert torch.cuda.is_available(), "no CUDA device"
steps = int(sys.argv[1])
params = load_project_params()
models = ModelsParams.model_validate(params["models"])
base = os.environ.get("STUDENT") or resolve_model_dir(models.student, models.cache_dir)
ft = FinetuneParams.model_validate(params["finetune"])
batch = 4
rows = [{"input_text": f"Product: Mug {i}\n- Color: Red\n- Capacity: 350 ml",
         "target": "A sturdy red mug that holds 350 ml of tea or coffee. " * 4} for i in range(steps * batch)]
data = pd.DataFrame(rows)
ludwig = {**ft.ludwig, "quantization": {**ft.ludwig["quantization"], "bnb_4bit_compute_dtype": "bfloat16"},
          "trainer": {**ft.ludwig["trainer"], "epochs": 1, "batch_size": batch, "gradient_accumulation_steps": 1,
                      "early_stop": -1}}
config = build_ludwig_config(ft.model_copy(update={"ludwig": ludwig}), base, list(data.columns))
ludwig_compat.apply()
from ludwig.api import LudwigModel
torch.cuda.reset_peak_memory_stats()
model = LudwigModel(config, logging_level=logging.WARNING)
start = time.perf_counter()
model.train(training_set=data, validation_set=data.head(batch), output_directory="/tmp/gpu_check",
            skip_save_processed_input=True)
elapsed = time.perf_counter() - start
print(json.dumps({"device": torch.cuda.get_device_name(0), "base_model": base, "steps": steps,
                  "batch_size": batch, "seconds_per_step_incl_setup": elapsed / steps,
                  "peak_gpu_memory_gib": torch.cuda.max_memory_allocated() / 2**30}, indent=2))
PY
