#!/usr/bin/env bash
# The GPU benchmarks in one call (the lent H100/H200 machine, or any CUDA box):
#   - installs the carried wheels (.whl/: diffusers, bitsandbytes, pydantic, ruamel.yaml, ...)
#     into /tmp/site where .whl/ exists (that machine has torch, transformers, accelerate, peft);
#   - prints nvidia-smi and the versions;
#   - builds the SD1.5 architecture with random weights (benchmarks/sd15_arch.py);
#   - runs bench_train at 512 px, batch 1, bf16: full fine-tune (AdamW), full with 8-bit AdamW +
#     gradient checkpointing, LoRA rank 4 (+ a channels_last A/B), each against the reference;
#   - runs bench_generate (engine.generate against the plain pipeline, 25 steps).
# $OUT (default /tmp/gpu-check) gets summary.txt, log.txt (stderr) and one JSON per benchmark.
# Each benchmark has its own time limit, so one failure leaves the others' figures.
#
#   bash benchmarks/gpu_check.sh                         # the GPU run
#   SKIP_WHEELS=1 MODEL=tiny RES=32 STEPS=2 bash benchmarks/gpu_check.sh   # its logic on a CPU
#   SUITE=compile STEPS=8 WARMUP=3 bash benchmarks/gpu_check.sh            # train.torch_compile only
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check}
MODEL=${MODEL:-sd15-arch}
RES=${RES:-512}
STEPS=${STEPS:-10}
WARMUP=${WARMUP:-3}
mkdir -p "$OUT"
. benchmarks/gpu_env.sh
t_start=$(date +%s)

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm,power.limit \
    --format=csv 2>/dev/null || echo "no nvidia-smi"
  python3 - <<'EOF'
import importlib, platform, torch
names = ["torch", "diffusers", "transformers", "accelerate", "peft", "bitsandbytes", "pydantic"]
vers = {}
for n in names:
    try:
        vers[n] = importlib.import_module(n).__version__
    except Exception as exc:  # noqa: BLE001 - report whatever is missing
        vers[n] = f"missing ({exc.__class__.__name__}: {exc})"
print("python", platform.python_version(), vers)
print("cuda", torch.version.cuda, "device", torch.cuda.get_device_name() if torch.cuda.is_available() else "none")
EOF
} 2>&1 | tee -a "$OUT/summary.txt"

if [ "$MODEL" = "sd15-arch" ]; then
  timeout 120 python3 -m benchmarks.sd15_arch 2>>"$OUT/log.txt" | tee -a "$OUT/summary.txt"
  echo "built in $(( $(date +%s) - t_start ))s" | tee -a "$OUT/summary.txt"
fi

common=(--model "$MODEL" --resolution "$RES" --batch-size 1 --mixed-precision bf16
        --steps "$STEPS" --warmup "$WARMUP")
bench() {  # NAME LIMIT_S ARGS...
  local name=$1 limit=$2
  shift 2
  echo "== $name ($(( $(date +%s) - t_start ))s in)" | tee -a "$OUT/summary.txt" "$OUT/log.txt"
  timeout "$limit" python3 -m benchmarks.bench_train "${common[@]}" "$@" \
    --json "$OUT/$name.json" 2>>"$OUT/log.txt" | tee -a "$OUT/summary.txt"
  local rc=${PIPESTATUS[0]}
  [ "$rc" = 0 ] || { echo "$name failed (rc $rc):"; tail -15 "$OUT/log.txt"; } | tee -a "$OUT/summary.txt"
}
if [ "${SUITE:-all}" = compile ]; then  # train.torch_compile against the same reference
  bench full_adamw_compile 150 --method full --optimizer adamw --torch-compile
  bench lora_r4_compile 130 --method lora --lora-rank 4 --torch-compile
  echo "done in $(( $(date +%s) - t_start ))s" | tee -a "$OUT/summary.txt"
  exit 0
fi
bench full_adamw 110 --method full --optimizer adamw
bench full_adamw8bit_ckpt 110 --method full --optimizer adamw8bit --gradient-checkpointing
bench lora_r4 90 --method lora --lora-rank 4 --ab-channels-last 6

echo "== generate ($(( $(date +%s) - t_start ))s in)" | tee -a "$OUT/summary.txt" "$OUT/log.txt"
gen_size=$([ "$MODEL" = "tiny" ] && echo 32 || echo 512)
timeout 75 python3 -m benchmarks.bench_generate --model "$MODEL" --size "$gen_size" \
  --images 2 --steps 25 --rounds 2 --json "$OUT/generate.json" 2>>"$OUT/log.txt" \
  | tee -a "$OUT/summary.txt" || { echo "generate failed:"; tail -15 "$OUT/log.txt"; }
echo "done in $(( $(date +%s) - t_start ))s" | tee -a "$OUT/summary.txt"
