#!/usr/bin/env bash
# Time the default run pipeline by pipeline: the same nodes `make run`'s `kedro run` executes, in
# the same order, each in its own `kedro run --pipeline` so each gets its own wall time.
#
#   bash benchmarks/default_run.sh            # after `make install models`; prints a table
#
# Run it on a fresh clone (no cached teacher calls, no trained model) for the figures in
# docs/benchmarks.md; on a used checkout the teacher's call store makes teacher_generation cheap.
set -euo pipefail
cd "$(dirname "$0")/.."
export KEDRO_DISABLE_TELEMETRY=true DO_NOT_TRACK=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export TOKENIZERS_PARALLELISM=false  # threads: runtime.threads (conf/base/parameters.yml)
log=data/08_reporting/default_run.log
: > "$log"
total=0
echo "| pipeline | wall s |"
echo "|---|---:|"
for pipeline in data_prep teacher_generation finetune evaluation describe reporting; do
  start=$(date +%s.%N)
  .venv/bin/kedro run --pipeline "$pipeline" >> "$log" 2>&1
  seconds=$(echo "$(date +%s.%N) - $start" | bc)
  total=$(echo "$total + $seconds" | bc)
  printf "| %s | %.0f |\n" "$pipeline" "$seconds"
done
printf "| **total** | **%.0f** (%.1f min) |\n" "$total" "$(echo "$total / 60" | bc -l)"
