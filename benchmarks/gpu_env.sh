# Sourced by the GPU scripts (gpu_check.sh, gpu_e2e.sh, gpu_bench.sh) from the repo root:
# installs the carried wheels (.whl/, from gpu_prepare.sh) into /tmp/site unless SKIP_WHEELS=1,
# puts the checkout on PYTHONPATH and keeps every run offline.
if [ "${SKIP_WHEELS:-0}" != 1 ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export DREAMBOOTH_TUI_CACHE=${DREAMBOOTH_TUI_CACHE:-/tmp/dbt-cache}
