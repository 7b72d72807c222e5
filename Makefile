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

# The results files `make results` keeps up to date (their rules are further down):
# results/NAME.json, made with the release models (then it depends on their manifest too) or
# with the library alone.
LIB_SOURCES := $(shell find fastslow_lib -name '*.py' -not -path '*/__pycache__/*')
RELEASE_MANIFEST = data/release/MANIFEST.json
RELEASE_RESULTS = test5k rerank_all_queries distill_signals slow_ablations itm_trials \
	spatial_student warm_student bench_rerank caption_detail
LIB_RESULTS = distill_sweep distill_sweep_12ep tune_fast text_binding slow_budget \
	bench_index bench_slow bench_world
RESULTS = $(patsubst %,results/%.json,$(RELEASE_RESULTS) $(LIB_RESULTS))
# A results rule's recipe: its script (the prerequisite under scripts/ or benchmarks/), run by
# the venv's Python.
RUN_SCRIPT = $(VENV)/bin/python $(firstword $(filter scripts/%.py benchmarks/%.py,$^))

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

.PHONY: help install test course notebooks readme reproduce results lab lint clean distclean

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

results: $(RESULTS) ## Rerun the scripts whose results/*.json is older than its script, the library or the release models (dry run: make -n results)

readme: $(STAMP) ## Fill the README's generated blocks (the claims table) from results/
	$(VENV)/bin/python -m fastslow_course.readme

notebooks: $(STAMP) ## Re-execute notebooks/NN_*.ipynb IN PLACE (refresh committed outputs)
	$(VENV)/bin/python scripts/time_course.py --inplace

# --- results/*.json: each file a script writes, with the script that writes it ---------------
# A file is rebuilt when it is older than its script, than any of the library's sources
# (fastslow_lib/**/*.py) or, for a script that loads the release models, than their manifest
# (data/release/MANIFEST.json, rewritten by `make reproduce`). The script writes the file itself
# (fastslow_course.experiment.write_result stamps machine, device, date and commit). `make -n
# results` lists what would run; `make -q results/NAME.json` says whether one is up to date. Not
# here: the GPU files (*_gpu*.json: scripts/gpu_figures.sh on a GPU machine), course_times.json
# and summary.json (`make course`), reproduce_check.json (scripts/reproduce.py --check).
$(RESULTS): $(LIB_SOURCES) | $(STAMP)
$(patsubst %,results/%.json,$(RELEASE_RESULTS)): $(RELEASE_MANIFEST)
$(RESULTS): export HF_HUB_OFFLINE = 1
$(RESULTS): export TOKENIZERS_PARALLELISM = false
$(RESULTS): export PYTHONHASHSEED = 0
$(RESULTS): export MPLBACKEND = Agg

results/test5k.json: scripts/test5k.py
	$(RUN_SCRIPT)
results/rerank_all_queries.json: scripts/rerank_all_queries.py
	$(RUN_SCRIPT)
results/distill_signals.json: scripts/distill_signals.py
	$(RUN_SCRIPT)
results/slow_ablations.json: scripts/slow_ablations.py
	$(RUN_SCRIPT)
results/itm_trials.json: scripts/trial_itm.py
	$(RUN_SCRIPT)
results/spatial_student.json: scripts/trial_spatial_student.py
	$(RUN_SCRIPT)
results/warm_student.json: scripts/trial_warm_student.py
	$(RUN_SCRIPT)
results/bench_rerank.json: benchmarks/bench_rerank.py
	$(RUN_SCRIPT)
# notebook 03's worlds whose captions leave things out have release models of their own
results/caption_detail.json: scripts/caption_detail.py \
		$(wildcard data/release/captions-*/MANIFEST.json)
	$(RUN_SCRIPT)
results/distill_sweep.json: scripts/distill_sweep.py
	$(RUN_SCRIPT)
results/distill_sweep_12ep.json: scripts/distill_sweep.py
	$(RUN_SCRIPT) --epochs 12
results/tune_fast.json: scripts/tune_fast.py
	$(RUN_SCRIPT)
results/text_binding.json: scripts/text_binding.py
	$(RUN_SCRIPT) --threads 1
results/slow_budget.json: scripts/trial_slow.py
	$(RUN_SCRIPT) --epochs 15 --queries 200 --splits test --json $@ --name "15 epochs of 64"
	$(RUN_SCRIPT) --batch 32 --queries 200 --splits test --json $@ --name "6 epochs of 32"
results/bench_index.json: benchmarks/bench_index.py
	$(RUN_SCRIPT)
results/bench_slow.json: benchmarks/bench_slow.py
	$(RUN_SCRIPT)
results/bench_world.json: benchmarks/bench_world.py
	$(RUN_SCRIPT)

# As root (a container, some classroom machines) JupyterLab refuses to start without
# --allow-root: pass it there, and only there.
lab: $(STAMP) ## Start JupyterLab from the repo root (as root too: containers, classroom machines)
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root)

lint: $(STAMP) ## ruff check on the library, tests, benchmarks and scripts
	$(VENV)/bin/ruff check $(LINT_DIRS)

clean: ## Remove generated data, checkpoints and executed notebooks (keeps .venv and results/*.json)
	rm -rf results/executed data/cache checkpoints

distclean: clean ## clean, and remove .venv too
	rm -rf $(VENV)
