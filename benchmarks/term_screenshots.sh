#!/usr/bin/env bash
# Screenshots of the app and of `generate --show` in real terminal emulators under a virtual X
# display, to look at how images are drawn (Sixel, kitty graphics, half-cells) after a change.
#
#   benchmarks/term_screenshots.sh [OUT_DIR]      (default: benchmarks/results/term-screenshots)
#
# Needs: Xvfb, xdotool, ImageMagick (import), and the terminals to try: xterm (built with
# sixel: `xterm -ti vt340`), mlterm, kitty. Debian/Ubuntu:
#   apt-get install xvfb xdotool imagemagick xterm mlterm kitty fonts-dejavu-core
# Terminals that are missing are skipped. Each terminal opens at 120x40 and 80x24 cells; the
# script trains the demo once (CPU, ~1 min) into a scratch project and then, per terminal and
# size, takes: gen.png (`generate --show`), data.png (the Data screen's thumbnails),
# generate.png (the Generate screen after one prompt) and big.png (an enlarged image).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/benchmarks/results/term-screenshots}
WORK=$(mktemp -d)
DISPLAY_NUM=${DISPLAY_NUM:-97}
export DISPLAY=:$DISPLAY_NUM PYTHONPATH=$ROOT HF_HUB_OFFLINE=1
mkdir -p "$OUT"

for tool in Xvfb xdotool import; do
  command -v "$tool" >/dev/null || { echo "error: $tool not found (see the header)" >&2; exit 2; }
done

Xvfb ":$DISPLAY_NUM" -screen 0 1920x1080x24 -nolisten tcp >/dev/null 2>&1 &
XVFB=$!
trap 'kill $XVFB 2>/dev/null; rm -rf "$WORK"' EXIT
sleep 1

# A project with a trained demo run (its final model and samples).
cd "$WORK"
cp "$ROOT/sample_configs/demo.yaml" dreambooth.yaml
python -m engine train dreambooth.yaml --quiet >/dev/null 2>&1 || python -m engine train dreambooth.yaml
RUN=$(ls -d "$WORK"/runs/*/ | head -1)

# terminal name -> the command line that runs "$@" in it, at $COLS x $ROWS cells
term_cmd() {
  local name=$1; shift
  case $name in
    xterm-sixel) echo xterm -ti vt340 -geometry "${COLS}x${ROWS}" -fa Monospace -fs 11 -e "$@" ;;
    xterm-plain) echo xterm -geometry "${COLS}x${ROWS}" -fa Monospace -fs 11 -e "$@" ;;
    mlterm) echo mlterm --geometry "${COLS}x${ROWS}" -e "$@" ;;
    kitty) echo kitty -o "initial_window_width=${COLS}c" -o "initial_window_height=${ROWS}c" "$@" ;;
  esac
}

shoot() {  # shoot NAME FILE KEYS... : wait for the window, send keys, screenshot it
  local file=$1; shift
  sleep 6
  for key in "$@"; do
    if [[ $key == sleep:* ]]; then sleep "${key#sleep:}"; else xdotool key --delay 80 "$key"; fi
  done
  sleep 3
  import -window root -crop "$(xdotool getactivewindow getwindowgeometry --shell 2>/dev/null |
    awk -F= '/WIDTH/{w=$2}/HEIGHT/{h=$2}/^X/{x=$2}/^Y/{y=$2}END{print w"x"h"+"x"+"y}')" "$file" ||
    import -window root "$file"
}

for name in xterm-sixel xterm-plain mlterm kitty; do
  binary=${name%%-*}
  command -v "$binary" >/dev/null || { echo "skip $name: not installed"; continue; }
  for size in 120x40 80x24; do
    COLS=${size%x*} ROWS=${size#*x}
    dir="$OUT/$name-$size"; mkdir -p "$dir"
    # 1. generate --show (auto protocol), the shell kept open for the picture
    # shellcheck disable=SC2046
    $(term_cmd "$name" bash -c "python -m engine generate --run $RUN --prompt 'a photo of sks shape' --num-images 1 --num-inference-steps 4 --output-dir $WORK/gen --show; sleep 30") &
    pid=$!; shoot "$dir/gen.png" sleep:25; kill $pid 2>/dev/null || true
    # 2. the app: Data screen, Generate screen after one prompt, an enlarged image
    # shellcheck disable=SC2046
    $(term_cmd "$name" python -m engine dreambooth.yaml) &
    pid=$!
    shoot "$dir/data.png"
    shoot "$dir/generate.png" 4 g sleep:20
    shoot "$dir/big.png" o
    xdotool key Escape q q 2>/dev/null || true
    sleep 1; kill $pid 2>/dev/null || true
    echo "$name $size: $dir"
  done
done
echo "screenshots in $OUT"
