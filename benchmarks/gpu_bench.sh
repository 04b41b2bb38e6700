#!/usr/bin/env bash
# Issue 13's GPU comparison in one command, inside BUDGET seconds (default 540: a lent H200 gives
# a command 10 minutes). Prepare first where package registries are reachable:
#   bash benchmarks/gpu_prepare.sh              # .whl/ (wheels) and .ref/ (diffusers' scripts)
# then on the GPU machine, carrying both:
#   bash benchmarks/gpu_bench.sh                # -> $OUT/results.tgz, summary.txt, log.txt
# Its logic on a CPU with the tiny model (SCALE multiplies each part's estimate and limit; PARTS
# picks parts by name; tests/shims stands in for torchvision where the box has none):
#   PYTHONPATH=tests/shims SKIP_WHEELS=1 MODEL=tiny RES=32 PREC=no STEPS=4 WARMUP=2 BATCHES=1,2 \
#     SCALE=8 BUDGET=3600 PARTS=real_lora,batch_lora bash benchmarks/gpu_bench.sh
#
# Parts, most important first; one that would not finish inside BUDGET is skipped and said so:
#   real_{full,lora}         bench_real: the engine against diffusers' real scripts (careful flags)
#   compile_lora             bench_compile: regional compile, first run (cold) and second (cache)
#   real_lora_compile        bench_real with train.torch_compile (cache warm from compile_lora)
#   batch_{lora,full}        bench_batch: images/s and MFU at BATCHES (default 1,4,8)
#   real_full_8bit_ckpt      bench_real: 8-bit AdamW + gradient checkpointing
#   recreated_{full,lora}    bench_train: the re-created step (the second, labelled row)
#   sdxl_lora                bench_train on sdxl-arch (issue 11): 1024 px, bf16, batch 1, LoRA
#                            rank 16: step time and peak memory (the engine alone). Alone:
#                            PARTS=sdxl_lora BUDGET=540 bash benchmarks/gpu_bench.sh
# Whole-run peak memory with sampling and class generation per sample config is helper h9d's
# benchmarks/gpu_e2e.sh (gpu_e2e.py); it is not repeated here.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-bench}
MODEL=${MODEL:-sd15-arch}
RES=${RES:-512}
PREC=${PREC:-bf16}
STEPS=${STEPS:-25}
WARMUP=${WARMUP:-5}
BATCHES=${BATCHES:-1,4,8}
BUDGET=${BUDGET:-540}
SCALE=${SCALE:-1}
PARTS=${PARTS:-all}
WORK=${WORK:-/tmp/gpu-bench-work}
rm -rf "$WORK"  # a fresh compile cache too: compile_lora's first run is the cold one
mkdir -p "$OUT" "$WORK"
t_start=$(date +%s)
. benchmarks/gpu_env.sh
export TORCHINDUCTOR_CACHE_DIR=$WORK/compile-cache  # compile_lora fills it, real_lora_compile reads

elapsed() { echo $(( $(date +%s) - t_start )); }
say() { echo "$*" | tee -a "$OUT/summary.txt"; }
pack() {  # the lent machine returns at most 8 files: every part's JSON goes into one archive
  tar czf "$OUT/results.tgz" -C "$WORK" --exclude compile-cache --exclude '*.log' . 2>/dev/null
}
trap pack EXIT

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit \
    --format=csv 2>/dev/null || echo "no nvidia-smi"
  python3 - <<'EOF'
import importlib, platform, torch
vers = {}
for n in ["torch", "diffusers", "transformers", "accelerate", "peft", "bitsandbytes", "torchvision"]:
    try:
        vers[n] = importlib.import_module(n).__version__
    except Exception as exc:  # noqa: BLE001 - report whatever is missing
        vers[n] = f"missing ({exc.__class__.__name__})"
print("python", platform.python_version(), vers)
print("device", torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu")
EOF
  cat .ref/diffusers-examples/SOURCE.json 2>/dev/null || echo "no .ref/diffusers-examples"
} 2>&1 | tee -a "$OUT/summary.txt"

if [ "$MODEL" = "sd15-arch" ]; then
  timeout 150 python3 -m benchmarks.sd15_arch 2>>"$OUT/log.txt" | tee -a "$OUT/summary.txt"
  say "built in $(elapsed)s"
fi

part() {  # NAME ESTIMATE_S LIMIT_S MODULE ARGS...: skipped when it would overrun BUDGET
  local name=$1 est=$(( $2 * SCALE )) limit=$(( $3 * SCALE )) module=$4
  shift 4
  case ",$PARTS," in *",$name,"*|",all,") ;; *) return ;; esac
  local left=$(( BUDGET - $(elapsed) ))
  if [ "$est" -gt "$left" ]; then
    say "== $name skipped: needs ~${est}s, ${left}s of the budget left"
    return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  say "== $name ($(elapsed)s in, limit ${limit}s)"
  timeout -k 15 "$limit" python3 -m "$module" "$@" --json "$WORK/$name.json" \
    2>>"$OUT/log.txt" | tee -a "$OUT/summary.txt"
  local rc=${PIPESTATUS[0]}
  [ "$rc" = 0 ] || { say "$name failed (rc $rc)"; tail -20 "$OUT/log.txt" >>"$OUT/summary.txt"; }
  pack
}

common=(--model "$MODEL" --resolution "$RES" --mixed-precision "$PREC")
real=(benchmarks.bench_real "${common[@]}" --steps "$STEPS" --warmup "$WARMUP" --timeout $(( 240 * SCALE )))
part real_full 70 200 "${real[@]}" --method full --optimizer adamw
part real_lora 60 200 "${real[@]}" --method lora --lora-rank 4
part compile_lora 120 300 benchmarks.bench_compile "${common[@]}" --method lora --steps 10 \
  --warmup 2 --cache-dir "$TORCHINDUCTOR_CACHE_DIR" --timeout $(( 240 * SCALE ))
part real_lora_compile 80 240 "${real[@]}" --method lora --lora-rank 4 --torch-compile
part batch_lora 60 150 benchmarks.bench_batch "${common[@]}" --method lora --batch-sizes "$BATCHES" \
  --steps 6 --warmup 2
part batch_full 70 150 benchmarks.bench_batch "${common[@]}" --method full --batch-sizes "$BATCHES" \
  --steps 6 --warmup 2
part real_full_8bit_ckpt 70 200 "${real[@]}" --method full --optimizer adamw8bit \
  --gradient-checkpointing
part recreated_full 50 120 benchmarks.bench_train "${common[@]}" --batch-size 1 --steps 6 \
  --warmup 2 --method full --optimizer adamw
part recreated_lora 45 120 benchmarks.bench_train "${common[@]}" --batch-size 1 --steps 6 \
  --warmup 2 --method lora --lora-rank 4
part sdxl_lora 240 420 benchmarks.bench_train --model sdxl-arch --resolution 1024 \
  --mixed-precision bf16 --batch-size 1 --steps 8 --warmup 2 --method lora --lora-rank 16
say "done in $(elapsed)s"
