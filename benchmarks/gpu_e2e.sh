#!/usr/bin/env bash
# The GPU end-to-end check (benchmarks/gpu_e2e.py) in one call, on the lent H100/H200 machine or
# any CUDA box: the real CLI on the SD1.5 architecture (random weights) at 512 px: the full
# config with prior preservation and class generation, the LoRA config with the text encoder,
# an fp16 run stopped and resumed, then generate from final/, a checkpoint and the LoRA; the
# whole-run peak GPU memory of each next to the sample config's "fits" claim in README.md.
#   - installs the carried wheels (.whl/) into /tmp/site, as benchmarks/gpu_check.sh does;
#   - $OUT (default /tmp/gpu-e2e-out) gets e2e.json, summary.txt and the commands' log.txt.
# Needs about 25 GB of disk (the model, two full checkpoints, final/) and under 10 minutes.
#
#   bash benchmarks/gpu_e2e.sh                          # the GPU run
#   SKIP_WHEELS=1 TINY=1 bash benchmarks/gpu_e2e.sh     # its logic on a CPU (tiny model, 32 px)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-e2e-out}
mkdir -p "$OUT"
. benchmarks/gpu_env.sh
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null \
    || echo "no nvidia-smi"
} | tee "$OUT/summary.txt"
args=(--out "${WORK:-/tmp/gpu-e2e-work}" --json "$OUT/e2e.json" --timeout "${CMD_TIMEOUT:-240}")
[ "${TINY:-0}" = 1 ] && args+=(--tiny)
timeout "${TOTAL_TIMEOUT:-570}" python3 -m benchmarks.gpu_e2e "${args[@]}" 2>&1 | tee -a "$OUT/summary.txt"
rc=${PIPESTATUS[0]}
cp "${WORK:-/tmp/gpu-e2e-work}/log.txt" "$OUT/log.txt" 2>/dev/null
exit "$rc"
