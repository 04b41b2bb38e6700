#!/usr/bin/env bash
# Screenshots of the app and of `generate --show` in real terminal emulators under a virtual X
# display, to look at how images are drawn (Sixel, kitty graphics, half-cells) after a change.
#
#   benchmarks/term_screenshots.sh [OUT_DIR] [TERMINAL...]
#       OUT_DIR default: benchmarks/results/term-screenshots
#       TERMINAL: xterm-sixel xterm-plain mlterm kitty (default: all that are installed)
#
# Needs: Xvfb, xdotool, ImageMagick (import), and the terminals to try: xterm (built with
# sixel: `xterm -ti vt340`), mlterm, kitty (it draws with OpenGL: Mesa's software renderer under
# Xvfb). Debian/Ubuntu:
#   apt-get install xvfb xdotool imagemagick xterm mlterm kitty fonts-dejavu-core
# Each terminal opens at 120x40 and 80x24 cells; the script trains the demo once (CPU, ~1 min)
# into a scratch project and then, per terminal and size, takes: gen.png (`generate --show`),
# data.png (the Data screen's thumbnails), generate.png (the Generate screen after one prompt)
# and big.png (an enlarged image).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(realpath -m "${1:-$ROOT/benchmarks/results/term-screenshots}")
shift || true
TERMINALS=("$@")
[[ ${#TERMINALS[@]} -gt 0 ]] || TERMINALS=(xterm-sixel xterm-plain mlterm kitty)
WORK=$(mktemp -d)
DISPLAY_NUM=${DISPLAY_NUM:-97}
export DISPLAY=:$DISPLAY_NUM PYTHONPATH=$ROOT HF_HUB_OFFLINE=1 LIBGL_ALWAYS_SOFTWARE=1
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
python -m engine train dreambooth.yaml --quiet >/dev/null
RUN=$(ls -d "$WORK"/runs/*/ | head -1)

launch() {  # launch TERMINAL COMMAND...: start COMMAND in TERMINAL at $COLS x $ROWS; sets PID
  local name=$1
  shift
  case $name in
    xterm-sixel) xterm -ti vt340 -geometry "${COLS}x${ROWS}+0+0" -fa Monospace -fs 11 -e "$@" & ;;
    xterm-plain) xterm -geometry "${COLS}x${ROWS}+0+0" -fa Monospace -fs 11 -e "$@" & ;;
    mlterm) mlterm --geometry "${COLS}x${ROWS}+0+0" -e "$@" & ;;
    kitty)
      kitty -o "initial_window_width=${COLS}c" -o "initial_window_height=${ROWS}c" \
        -o remember_window_size=no "$@" &
      ;;
  esac
  PID=$!
}

window_of() {  # the X window of process $1 (waits up to 20 s)
  local wid=""
  for _ in $(seq 40); do
    wid=$(xdotool search --onlyvisible --pid "$1" 2>/dev/null | tail -1) && [[ -n $wid ]] && break
    sleep 0.5
  done
  echo "$wid"
}

wait_png() {  # wait_png DIR COUNT: until DIR holds more than COUNT images (at most 180 s)
  for _ in $(seq 360); do
    [[ $(find "$1" -name '*.png' 2>/dev/null | wc -l) -gt $2 ]] && return 0
    sleep 0.5
  done
}

# shoot FILE [KEY|sleep:S|wait:DIR|png:DIR]...: send keys to the terminal (sleep S seconds, wait
# for an image in DIR, wait for one more image in DIR than it holds now), then screenshot it
shoot() {
  local file=$1
  shift
  local wid
  wid=$(window_of "$PID")
  [[ -n $wid ]] || { echo "  no window for $(basename "$file")" >&2; return 0; }
  xdotool windowfocus --sync "$wid" 2>/dev/null || true
  for key in "$@"; do
    case $key in
      sleep:*) sleep "${key#sleep:}" ;;
      png:*) wait_png "${key#png:}" "$(find "${key#png:}" -name '*.png' 2>/dev/null | wc -l)" ;;
      wait:*) wait_png "${key#wait:}" 0 ;;
      *) xdotool key --delay 80 "$key" ;;
    esac
  done
  sleep 3
  import -window "$wid" "$file"
}

PROMPT='a photo of sks shape'
for name in "${TERMINALS[@]}"; do
  binary=${name%%-*}
  command -v "$binary" >/dev/null || { echo "skip $name: not installed"; continue; }
  for size in 120x40 80x24; do
    COLS=${size%x*} ROWS=${size#*x}
    dir="$OUT/$name-$size"
    mkdir -p "$dir"
    # 1. generate --show (the terminal's own protocol), the shell kept open for the picture
    launch "$name" bash -c "python -m engine generate --run '$RUN' --prompt '$PROMPT' \
      --num-images 1 --num-inference-steps 4 --output-dir '$WORK/gen' --show; sleep 120"
    rm -rf "$WORK/gen"
    shoot "$dir/gen.png" "wait:$WORK/gen"
    kill "$PID" 2>/dev/null || true
    # 2. the app: the Data screen, the Generate screen after one prompt, an enlarged image
    launch "$name" python -m dreambooth_tui dreambooth.yaml
    shoot "$dir/data.png" sleep:8
    mkdir -p "$RUN/generated"
    shoot "$dir/generate.png" 4 sleep:2 ctrl+g "png:$RUN/generated"
    shoot "$dir/big.png" Escape o sleep:10
    xdotool key Escape q 2>/dev/null || true
    sleep 2
    kill "$PID" 2>/dev/null || true
    echo "$name $size: $dir"
  done
done
echo "screenshots in $OUT"
