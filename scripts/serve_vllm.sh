#!/usr/bin/env bash
# Serve a model with vLLM's OpenAI-compatible server, for `backend: openai` (conf/gpu).
#
#   bash scripts/serve_vllm.sh MODEL_DIR [NAME [VLLM_ARGS...]]
#
# MODEL_DIR: a Hugging Face model directory (the teacher, the judge or the student's base).
# NAME: the model name clients ask for (`model:` in the catalog entry; default: the folder name).
# VLLM_ARGS: passed on to `vllm serve` as given, e.g. the teacher's repetition penalty, which
#   the OpenAI API cannot carry: --override-generation-config '{"repetition_penalty": 1.1}'.
# Settings, from the environment (defaults in brackets):
#   PORT [8000]  HOST [127.0.0.1]  DTYPE [bfloat16]  MAX_SEQS [64]  MAX_MODEL_LEN [4096]
#   GPU_MEMORY_UTILIZATION [0.90]  TENSOR_PARALLEL [1]
#   QUANTIZATION: empty (weights as stored), fp8 (dynamic 8-bit, Hopper/Ada), bitsandbytes
#     (4-bit in-flight; the student's QLoRA format)
#   LORA: an adapter to serve beside the base, NAME=PATH (the finetune pipeline's
#     student_adapter, e.g. student=data/06_models/student_adapter/<version>/student_adapter);
#     clients then ask for model NAME. LORA_RANK [16]: the largest rank served.
#   VLLM_API_KEY: when set, clients must send it (credentials.yml: api_key).
#   LOG [data/09_tracking/vllm-NAME.log]  DRY_RUN=1: print the command and exit.
# The server runs in the foreground; the script waits for nothing: readiness is
# GET http://HOST:PORT/health (the project's client retries connection errors).
set -euo pipefail

if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
  sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
MODEL_DIR=$1
NAME=${2:-$(basename "$MODEL_DIR")}
if [[ ${DRY_RUN:-0} != 1 && ! -f $MODEL_DIR/config.json ]]; then
  echo "serve_vllm: $MODEL_DIR is not a Hugging Face model directory (no config.json)" >&2
  exit 1
fi

cmd=(vllm serve "$MODEL_DIR"
  --served-model-name "$NAME"
  --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
  --dtype "${DTYPE:-bfloat16}"
  --max-num-seqs "${MAX_SEQS:-64}"
  --max-model-len "${MAX_MODEL_LEN:-4096}"
  --gpu-memory-utilization "${GPU_MEMORY_UTILIZATION:-0.90}"
  --tensor-parallel-size "${TENSOR_PARALLEL:-1}"
  --generation-config vllm)  # the request's settings only, not the model's shipped defaults
if [[ -n ${QUANTIZATION:-} ]]; then
  cmd+=(--quantization "$QUANTIZATION")
fi
if [[ -n ${LORA:-} ]]; then
  lora_path=${LORA#*=}
  if [[ ${DRY_RUN:-0} != 1 && ! -f $lora_path/adapter_config.json ]]; then
    echo "serve_vllm: LORA=$LORA: no adapter_config.json in $lora_path" >&2
    exit 1
  fi
  cmd+=(--enable-lora --lora-modules "$LORA" --max-lora-rank "${LORA_RANK:-16}")
fi
cmd+=("${@:3}")

if [[ ${DRY_RUN:-0} == 1 ]]; then
  printf '%q ' "${cmd[@]}"
  echo
  exit 0
fi
command -v vllm >/dev/null || {
  echo "serve_vllm: vllm is not installed here (pip install vllm on the GPU machine)" >&2
  exit 1
}
log=${LOG:-data/09_tracking/vllm-$NAME.log}
mkdir -p "$(dirname "$log")"
echo "serve_vllm: ${cmd[*]} (log: $log)" >&2
exec "${cmd[@]}" > >(tee -a "$log") 2>&1
