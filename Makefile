# Two entry points that each work alone on a fresh clone: `make repro` and `make test`.
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
MUQ_REFERENCE := $(VENV)/muq-reference
RAY_STAMP := $(VENV)/.installed-ray

.PHONY: repro test lint

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: its CPU wheel is what CI and the docs assume.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	# hf too: CI runs the MERT/CLAP parity, offline and zero-shot tests.
	$(BIN)/python -m pip install --quiet -e '.[dev,hf]'
	touch $(STAMP)

# MuQ's published code for its parity test (tests/test_extractor_muq.py), in a folder of its
# own beside the transformers 4 encoder API it calls (gone in transformers 5) and the
# huggingface_hub and tokenizers that transformers 4 accepts. --no-deps: it asks for
# torchaudio and another torch, which must not replace the pinned one.
$(MUQ_REFERENCE)/.installed: $(STAMP)
	rm -rf $(MUQ_REFERENCE)
	$(BIN)/python -m pip install --quiet --no-deps --target $(MUQ_REFERENCE) muq==0.1.0 \
		transformers==4.57.6 huggingface_hub==0.36.2 tokenizers==0.22.2
	touch $@

# Ray for the Ray engine's tests (tests/test_ray_extraction.py); `make repro` never needs it.
$(RAY_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[ray]'
	touch $(RAY_STAMP)

repro: $(STAMP)
	PATH=$(BIN):$$PATH dvc repro

# --durations: the slowest tests in every log, so CI time is tracked where it is spent.
# -n 2 --dist loadfile: two pytest workers (CI has 2 cores; most slow tests wait on one
# `dvc` subprocess at a time), a test file per worker so a module's DVC project is built once.
test: $(RAY_STAMP) $(MUQ_REFERENCE)/.installed
	PATH=$(BIN):$$PATH python -m pytest -q -n 2 --dist loadfile --durations=25

lint: $(STAMP)
	$(BIN)/ruff check mgc stages tests benchmarks
