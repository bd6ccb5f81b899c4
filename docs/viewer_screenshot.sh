#!/usr/bin/env bash
# docs/viewer.png: the viewer window on the demo avatar (run `make demo` first), saying a sentence.
# Under Xvfb when there is no display.
set -euo pipefail
cd "$(dirname "$0")/.."
run=()
if [ -z "${DISPLAY:-}" ]; then run=(xvfb-run -a -s "-screen 0 1280x1024x24"); fi
"${run[@]}" .venv/bin/avatar view out/demo/avatar --text "Good morning. Here is the weather for the week, from a bright Monday to a calm weekend by the sea." \
    --mute --screenshot docs/viewer.png --after 2
