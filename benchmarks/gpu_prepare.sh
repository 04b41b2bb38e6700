#!/usr/bin/env bash
# Run HERE (a machine with package registries) before benchmarks/gpu_bench.sh on the lent GPU
# machine, which reaches nothing: the wheels it lacks go into .whl/ (git-ignored), diffusers'
# DreamBooth scripts into .ref/diffusers-examples/ (git-ignored, never committed). Carry both:
#   run(command="bash benchmarks/gpu_bench.sh", carry=[".whl", ".ref"])
#
#   bash benchmarks/gpu_prepare.sh                         # scripts of the v$DIFFUSERS tag (GitHub)
#   DIFFUSERS_GIT=CLONE DIFFUSERS_REF=REF bash benchmarks/gpu_prepare.sh   # from a local clone
set -euo pipefail
cd "$(dirname "$0")/.."
DIFFUSERS=${DIFFUSERS:-0.42.1}
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any -d .whl \
  "diffusers==$DIFFUSERS" bitsandbytes==0.50.2 pydantic==2.13.4 pydantic-core==2.46.4 \
  annotated-types==0.7.0 typing-inspection==0.4.2 ruamel.yaml==0.19.1 importlib-metadata==10.2.0
if [ -n "${DIFFUSERS_GIT:-}" ]; then
  python3 -m benchmarks.real_scripts prepare --git "$DIFFUSERS_GIT" --ref "${DIFFUSERS_REF:?}"
else
  python3 -m benchmarks.real_scripts prepare --version "$DIFFUSERS"
fi
du -sh .whl .ref
