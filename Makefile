# fastslow: build, test and run the course. GNU make. `make` (or `make help`) lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV = .venv
STAMP = $(VENV)/.installed
NOTEBOOK_DIR = notebooks
SANITIZE = $(NOTEBOOK_DIR)/nbval_sanitize.cfg
LINT_DIRS = $(wildcard fastslow_lib course tests benchmarks scripts examples)

# Batch targets only (not `make lab`): offline Hugging Face hub, quiet tokenizers, fixed hash
# seed, no progress bars in executed notebooks, non-interactive matplotlib for plain Python.
# Notebook kernels are started WITHOUT MPLBACKEND (ipykernel then picks its inline backend;
# with Agg the figures would be missing from executed notebooks).
BATCH_TARGETS = test course notebooks
$(BATCH_TARGETS): export HF_HUB_OFFLINE = 1
$(BATCH_TARGETS): export TOKENIZERS_PARALLELISM = false
$(BATCH_TARGETS): export PYTHONHASHSEED = 0
$(BATCH_TARGETS): export MPLBACKEND = Agg
$(BATCH_TARGETS): export FASTSLOW_PROGRESS = 0

# `make reproduce` keeps its progress bars (it runs for a long time, in a terminal).
reproduce: export HF_HUB_OFFLINE = 1
reproduce: export TOKENIZERS_PARALLELISM = false
reproduce: export PYTHONHASHSEED = 0

.PHONY: help install test course notebooks readme reproduce lab lint clean distclean

help: ## List the targets
	@echo "fastslow targets:"
	@grep -E '^[a-z][a-z-]*:.*## ' $(firstword $(MAKEFILE_LIST)) \
		| awk 'BEGIN {FS = ":.*## "} {printf "  make %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## Create .venv (if missing); install requirements.txt, the method (.) and the course's tooling (course/), editable

$(STAMP): requirements.txt pyproject.toml course/pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --no-compile -r requirements.txt
	$(VENV)/bin/python -m pip install --no-deps -e . -e course
	touch $@

test: $(STAMP) ## Lint, check the library's layers, run the unit tests, then nbval on every notebook
	$(VENV)/bin/ruff check $(LINT_DIRS)
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/python -m pytest tests -n auto
	@shopt -s nullglob; nbs=($(NOTEBOOK_DIR)/*.ipynb); \
	if [ $${#nbs[@]} -eq 0 ]; then \
		echo "no notebooks in $(NOTEBOOK_DIR)/ yet: skipping nbval"; exit 0; \
	fi; \
	sanitize=(); \
	if [ -f $(SANITIZE) ]; then sanitize=(--nbval-sanitize-with $(SANITIZE)); fi; \
	set -x; \
	env -u MPLBACKEND $(VENV)/bin/python -m pytest --nbval --nbval-current-env \
		--nbval-cell-timeout=1200 -p no:cacheprovider "$${sanitize[@]}" "$${nbs[@]}"

course: $(STAMP) ## Execute notebooks/NN_*.ipynb in order into results/executed/, time them
	$(VENV)/bin/python scripts/time_course.py
	$(VENV)/bin/python -m fastslow_course.readme

reproduce: $(STAMP) ## Retrain the release models (data/release/) at full budget, refresh results/test5k.json; resumable; ONLY=name
	$(VENV)/bin/python scripts/reproduce.py $(if $(ONLY),--only $(ONLY))

readme: $(STAMP) ## Fill the README's generated blocks (the claims table) from results/
	$(VENV)/bin/python -m fastslow_course.readme

notebooks: $(STAMP) ## Re-execute notebooks/NN_*.ipynb IN PLACE (refresh committed outputs)
	$(VENV)/bin/python scripts/time_course.py --inplace

lab: $(STAMP) ## Start JupyterLab from the repo root
	$(VENV)/bin/jupyter lab

lint: $(STAMP) ## ruff check on the library, tests, benchmarks and scripts
	$(VENV)/bin/ruff check $(LINT_DIRS)

clean: ## Remove generated data, checkpoints and executed notebooks (keeps .venv and results/*.json)
	rm -rf results/executed data/cache checkpoints

distclean: clean ## clean, and remove .venv too
	rm -rf $(VENV)
