# xstilts: English intermediate-task training x model size, zero-shot cross-lingual transfer.
#
#   make demo      set up, synthetic world + 3 tiny models + demo grid offline -> results/demo-synthetic/report.md
#   make test      set up and run the test suite (offline)
#   make venv [LOCKED=0]   set up .venv from the lock requirements.txt (LOCKED=0: pyproject.toml's ranges)
#   make lock [UPGRADE=1]  recompile the lock from pyproject.toml
#   make plan  MODELS="xlmr-base xlmr-large" [INTERMEDIATE=... TARGETS=... SEEDS=...]   cells + GPU-hour estimate
#   make grid  MODELS="xlmr-base xlmr-large" INTERMEDIATE="none mnli all" TARGETS="xnli udpos tatoeba" SEEDS="1 2 3"
#              [CALIBRATION=calibration/overlay.json] [DIVERGED_RETRIES=1]     (mk/calibrate.mk, mk/divergence.mk)
#   make calibrate MODELS=... INTERMEDIATE=... TARGETS=... [CAL_SEEDS=...]   learning rates per size x task (English dev)
#   make -n grid   show the exact commands;   make slurm ...   the same grid as SLURM array jobs (docs/cluster.md)
#   make xtreme-r MODEL=xlmr-large INTERMEDIATE=mnli    one checkpoint on all ten XTREME-R tasks (also: make xtreme)
#   make data-bucc data-tatoeba data-udpos-ud27 data-udpos-xtreme data-lareqa data-mewslix data-ccg   data that is not on the Hub
#   make report    turn $(RESULTS) into report.md + CSV + PNG (gain vs size with CIs)
#   make bench-cpu | bench-gpu | bench-commands    throughput benchmarks -> bench/results (bench/README.md)
#
# Results are file targets: $(RESULTS)/<model>/<intermediate|none>/<target>/seed<k>/results.json,
# each depending on its phase-2 checkpoint $(CKPTS)/<model>/<intermediate>/xstilts_meta.json.
# Re-running a target redoes only missing or failed cells.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# LOCKED=1 (default): install requirements.txt, the exact hashed lock of what CI tests (CPU torch included);
# LOCKED=0: the ranges of pyproject.toml instead (the newest versions that fit)
LOCKED ?= 1
# a torch installed before everything else. Locked: none (the lock's CPU torch); on a GPU cluster your CUDA build
# of the locked version, e.g. TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128", which the
# lock's torch==2.13.0 pin then keeps (README: Installing on a GPU cluster). LOCKED=0: torch==2.13.0 by default.
TORCH ?= $(if $(filter 1,$(LOCKED)),,torch==2.13.0)
STAMP := $(VENV)/.installed
# sdist-only dependencies: built after everything else is installed (DeepSpeed's build imports torch)
LOCK_SDISTS := deepspeed seqeval

OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
comma := ,

# Generated from the package (`make tasks-mk`; never edited by hand): the task, benchmark and language lists
# (mk/tasks.mk, from xstilts/tasks) and the results path scheme (mk/layout.mk, from xstilts/run/layout.py).
GENERATED_MK := mk/tasks.mk mk/layout.mk
include $(GENERATED_MK)

# ---------------------------------------------------------------- grid settings (override on the command line)
# Defaults: the study at two sizes. The intermediate tasks of Phang et al. 2020 (CCG needs CCGbank, LDC2005T13:
# `make data-ccg CCGBANK=...` -> $(CCG_DIR)) plus their multi-task mix, every XTREME and XTREME-R target task.
MODELS ?= xlmr-base xlmr-large
INTERMEDIATE ?= $(BASELINE) $(STUDY_INTERMEDIATE) $(MIXTURE_ALL)
TARGETS ?= $(STUDY_TARGETS)
SEEDS ?= 1
# the gain (points x100) that `make plan` and the report size the seeds for (80 % power; docs/study.md)
MIN_GAIN ?= 0.5
CCG_DIR ?= data/ccg
PRESET ?= xtreme
RESULTS ?= results
CKPTS ?= checkpoints
# extra flags for every phase script, e.g. DATA_ARGS="--data_root /data/hub-mirror"
DATA_ARGS ?=
# extra flags for the training scripts only (run_intermediate.py / run_target.py)
TRAIN_ARGS ?=
# extra flags for the cells only (run_target.py / run_retrieval.py), e.g. EVAL_ARGS="--languages de,zh" for a pilot
EVAL_ARGS ?=
# the environment every phase runs in (the demo sets $(OFFLINE))
RUN_ENV ?=
# how the training scripts start: one process by default; e.g. LAUNCH="$(VENV)/bin/torchrun --nproc_per_node 4",
# "$(VENV)/bin/deepspeed --num_gpus 4" or "$(VENV)/bin/accelerate launch --num_processes 4" (docs/cluster.md)
LAUNCH ?= $(PY)
# a name in MODELS may stand for a model directory: MODEL_DIR_<name>=/path/to/model (default: the name itself,
# a configs/models.json entry); results and checkpoints are filed under the name
model_arg = $(or $(MODEL_DIR_$(1)),$(1))

# ---------------------------------------------------------------- demo settings
# `make demo`: the synthetic world (mk/synthetic.mk, docs/synthetic.md) on three sizes pre-trained on it.
# Largest first: `make -j2` then starts the longest chain (its pre-training) first.
SYNTH_SIZES ?= synth-4l-h128 synth-3l-h96 synth-2l-h64
SYNTH_MODEL_DIR ?= models
SYNTH_MODELS = $(foreach s,$(SYNTH_SIZES),$(SYNTH_MODEL_DIR)/$(s)/model.safetensors)
SYNTH_DATA ?= data/synthetic
DEMO_RESULTS ?= results/demo-synthetic
DEMO_CKPTS ?= checkpoints/demo-synthetic
# processes at a time (demo stages, pre-training), one intra-op thread each (two 2-thread torch processes on
# 2 cores are far slower)
DEMO_JOBS ?= 2
# `make demo-fixtures`: the pipeline on the test models (English fixture corpus) and the fixture data
FIXTURE_SIZES := tiny-2l-h64 tiny-4l-h128
FIXTURE_MODELS := $(foreach s,$(FIXTURE_SIZES),models/$(s)/model.safetensors)
FIXTURES := tests/fixtures/hub
FIXTURE_DEMO_RESULTS := results/demo-fixtures
FIXTURE_DEMO_CKPTS := checkpoints/demo-fixtures

.PHONY: help venv lock tiny-models fixture-models synthetic-data demo demo-fixtures demo-fixtures-grid grid report test \
	clean-demo fixtures tasks-mk

help:
	@sed -n '2,20p' Makefile | sed 's/^# \{0,1\}//'

# ---------------------------------------------------------------- environment
venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(if $(TORCH),$(PIP) install -q $(TORCH))
ifeq ($(LOCKED),1)
	# the lock: every wheel first (torch, the build tools), then the sdists, built against them (no build isolation)
	$(PYTHON) -m xstilts.lockfile without $(LOCK_SDISTS) < requirements.txt > $(VENV)/lock-wheels.txt
	$(PIP) install -q --require-hashes -r $(VENV)/lock-wheels.txt
	$(PIP) install -q --require-hashes --no-build-isolation -r requirements.txt
else
	$(PIP) install -q -U pip
	$(PIP) install -q --group build-tools
	$(PIP) install -q --no-build-isolation -e ".[test]"
endif
	# the kit itself, editable: the xstilts-* commands and its version
	$(PIP) install -q --no-deps --no-build-isolation -e .
	# DeepSpeed's CPU shared-memory op, which a DeepSpeed run on the CPU (the tests' ZeRO runs) JIT-compiles on first
	# use (~25 s; torch keys its build on this venv's paths): built once here, into the venv; the tests read it there
	# (TORCH_EXTENSIONS_DIR, tests/conftest.py). Without a C++ compiler it is built on first use instead.
	TORCH_EXTENSIONS_DIR=$(abspath $(VENV))/torch_extensions $(PY) -c "from deepspeed.ops.op_builder.cpu import \
	  ShareMemCommBuilder as B; B().load()" > $(VENV)/deepspeed-ops.log 2>&1 \
	  || echo "note: DeepSpeed's CPU op did not build here (see $(VENV)/deepspeed-ops.log): built on first use"
	touch $@

# ---------------------------------------------------------------- the lock: make lock [UPGRADE=1]
# Recompiles requirements.txt from pyproject.toml with uv (in its own venv, LOCK_VENV): exact pins + hashes for
# CPython 3.11 on Linux x86-64, torch LOCK_TORCH (CPU build) from LOCK_TORCH_FROM (this machine's wheel folder;
# elsewhere e.g. LOCK_TORCH_FROM="--torch-backend cpu"). Pins still inside their ranges are kept; UPGRADE=1 takes
# the newest versions that fit. tests/test_package.py fails when the lock and pyproject.toml drift apart.
LOCK_VENV ?= .venv-lock
UV_VERSION ?= 0.13.9
LOCK_TORCH ?= torch==2.13.0+cpu
LOCK_TORCH_FROM ?= --find-links /opt/wheels
LOCK_COMPILE = uv pip compile pyproject.toml --extra test --group build-tools --generate-hashes \
  --python-version 3.11 --python-platform x86_64-manylinux_2_28 --constraint $(LOCK_VENV)/torch.txt $(LOCK_TORCH_FROM)
LOCK_RECORD = make lock: uv $(UV_VERSION), $(LOCK_COMPILE) ($(LOCK_VENV)/torch.txt: $(LOCK_TORCH))

lock:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install -q uv==$(UV_VERSION)
	echo "$(LOCK_TORCH)" > $(LOCK_VENV)/torch.txt
	cp requirements.txt $(LOCK_VENV)/compiled.txt  # its pins are uv's preferences (kept unless UPGRADE=1)
	$(LOCK_VENV)/bin/$(LOCK_COMPILE) $(if $(filter 1,$(UPGRADE)),--upgrade) --no-header -o $(LOCK_VENV)/compiled.txt
	$(PYTHON) -m xstilts.lockfile finish --compile_command "$(LOCK_RECORD)" \
	  < $(LOCK_VENV)/compiled.txt > $(LOCK_VENV)/requirements.txt
	mv $(LOCK_VENV)/requirements.txt requirements.txt

# ---------------------------------------------------------------- tiny embedded models (one shared tokenizer)
# synth-*: the demo models, MLM on the synthetic corpus (rules in mk/synthetic.mk), DEMO_JOBS sizes at a time
# with one thread each. tiny-*: test / fixture-demo models, a short warm-up on the English fixture corpus.
tiny-models: | $(STAMP)
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory -j$(DEMO_JOBS) $(SYNTH_MODELS); \
	echo "tiny-models wall time: $$(( $$(date +%s) - start )) s"

fixture-models: $(FIXTURE_MODELS)

$(FIXTURE_MODELS) &: tests/fixtures/corpus.txt xstilts/tiny.py | $(STAMP)
	$(OFFLINE) $(PY) -m xstilts.tiny --out_dir models --sizes $(FIXTURE_SIZES)

fixtures: | $(STAMP)
	$(OFFLINE) $(PY) tests/fixtures/build_fixtures.py

tasks-mk: | $(STAMP)
	$(PY) -m xstilts.tasks mk > mk/tasks.mk.tmp && mv mk/tasks.mk.tmp mk/tasks.mk
	$(PY) -m xstilts.run.layout mk > mk/layout.mk.tmp && mv mk/layout.mk.tmp mk/layout.mk

# ---------------------------------------------------------------- the grid (file targets)
# Paths: cell_path / ckpt_meta (mk/layout.mk). Multi-task intermediates in the grid: INTERMEDIATE="mnli+qqp all"
# -> --tasks mnli,qqp / --tasks all (task_arg, mk/layout.mk). Translate-train targets (NOT zero-shot):
# TARGETS="xnli@tta" -> --task xnli --train_languages tta (target_arg, mk/layout.mk).
# CCG (alone, in a "+" mix, or in "all") reads CCGbank from $(CCG_DIR)
ccg_arg = $(if $(or $(filter ccg $(MIXTURE_ALL),$(1)),$(filter ccg,$(subst +, ,$(1)))),--ccg_dir $(CCG_DIR))

# $(1)=model $(2)=intermediate task
define intermediate_rule
$(call ckpt_meta,$(CKPTS),$(1),$(2)): | $(STAMP)
	$(RUN_ENV) $(LAUNCH) run_intermediate.py --model $(call model_arg,$(1)) $(call task_arg,$(2)) $(call ccg_arg,$(2)) --preset $(PRESET) --seed 1 \
	  --output_dir $$(@D) $(DATA_ARGS) $(TRAIN_ARGS) $$(CAL_FLAGS)
endef

# An encoder recipe (a preset's encoder_recipes.<name>: XTREME-R's SQuAD v1.1 model for Tatoeba) fine-tunes the
# cell's encoder (none: the pretrained model) into its own checkpoint, recipe_ckpt_meta (mk/layout.mk); a retrieval
# task that names the recipe (RECIPE_OF_<task>, mk/tasks.mk) embeds with that checkpoint.
# $(1)=model $(2)=intermediate|none $(3)=recipe
define recipe_rule
$(call recipe_ckpt_meta,$(CKPTS),$(1),$(2),$(3)): $(if $(filter $(BASELINE),$(2)),,$(call ckpt_meta,$(CKPTS),$(1),$(2))) | $(STAMP)
	$(RUN_ENV) $(LAUNCH) run_intermediate.py --model $(call model_arg,$(1)) --encoder_recipe $(3) --preset $(PRESET) --seed 1 \
	  $(if $(filter $(BASELINE),$(2)),,--intermediate_checkpoint $(call ckpt_dir,$(CKPTS),$(1),$(2))) \
	  --output_dir $$(@D) $(DATA_ARGS) $(TRAIN_ARGS)
endef

# the checkpoint a cell starts from: its recipe's (a recipe task), else the phase-2 one (none: no checkpoint)
# $(1)=model $(2)=intermediate|none $(3)=target
cell_ckpt = $(if $(RECIPE_OF_$(3)),$(call recipe_ckpt_dir,$(CKPTS),$(1),$(2),$(RECIPE_OF_$(3))),$(if $(filter $(BASELINE),$(2)),,$(call ckpt_dir,$(CKPTS),$(1),$(2))))

# $(1)=model $(2)=intermediate|none $(3)=target $(4)=seed
define cell_rule
$(call cell_path,$(RESULTS),$(1),$(2),$(3),$(4)): $(if $(call cell_ckpt,$(1),$(2),$(3)),$(call cell_ckpt,$(1),$(2),$(3))/$(META_FILE)) | $(STAMP)
	$(RUN_ENV) $(if $(filter $(3),$(RETRIEVAL_TASKS)),$(PY) run_retrieval.py --preset $(PRESET),$(LAUNCH) run_target.py --preset $(PRESET) $(TRAIN_ARGS) $$(CAL_FLAGS)) \
	  --model $(call model_arg,$(1)) $(call target_arg,$(3)) --seed $(4) --output_dir $$(@D) \
	  $(if $(call cell_ckpt,$(1),$(2),$(3)),--intermediate_checkpoint $(call cell_ckpt,$(1),$(2),$(3))) \
	  --write_labels $$(@D)/$(LABELS_DIR) $(DATA_ARGS) $(EVAL_ARGS)
endef

GRID_RECIPES = $(sort $(foreach t,$(filter $(RECIPE_TASKS),$(TARGETS)),$(RECIPE_OF_$(t))))
$(foreach m,$(MODELS),$(foreach i,$(filter-out $(BASELINE),$(INTERMEDIATE)),$(eval $(call intermediate_rule,$(m),$(i)))))
$(foreach m,$(MODELS),$(foreach i,$(INTERMEDIATE),$(foreach r,$(GRID_RECIPES),$(eval $(call recipe_rule,$(m),$(i),$(r))))))
$(foreach m,$(MODELS),$(foreach i,$(INTERMEDIATE),$(foreach t,$(TARGETS),$(foreach s,$(SEEDS),\
  $(eval $(call cell_rule,$(m),$(i),$(t),$(s)))))))

CELLS := $(foreach m,$(MODELS),$(foreach i,$(INTERMEDIATE),$(foreach t,$(TARGETS),$(foreach s,$(SEEDS),\
  $(call cell_path,$(RESULTS),$(m),$(i),$(t),$(s))))))

grid: $(CELLS)

report: | $(STAMP)
	$(PY) -m xstilts.report --results_dir $(RESULTS) --min_gain $(MIN_GAIN)

# ---------------------------------------------------------------- demo: the grid on the synthetic world, offline
# data -> tokenizer -> 3 pre-trained sizes -> {none, synth_nli} x {synth_pair x DEMO_SEEDS, synth_pos, synth_tatoeba}
# -> report, in two stages of DEMO_JOBS processes (mk/synthetic.mk: demo-run). docs/synthetic.md
demo: $(STAMP)
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory demo-run; \
	echo "demo wall time (data, tokenizer, pre-training, grid, report): $$(( $$(date +%s) - start )) s"
	@echo
	@echo "Report: $(DEMO_RESULTS)/report.md"

# the kit on its test models and the fixture data (numbers near chance: it exercises the pipeline)
demo-fixtures: $(STAMP) $(FIXTURE_MODELS)
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory demo-fixtures-grid; \
	echo "fixture demo wall time: $$(( $$(date +%s) - start )) s"
	@echo
	@echo "Report: $(FIXTURE_DEMO_RESULTS)/report.md"

demo-fixtures-grid:
	$(MAKE) --no-print-directory grid MODELS="$(FIXTURE_SIZES)" INTERMEDIATE="none mnli" TARGETS="xnli tatoeba" \
	  SEEDS="1" PRESET=tiny RESULTS=$(FIXTURE_DEMO_RESULTS) CKPTS=$(FIXTURE_DEMO_CKPTS) RUN_ENV="$(OFFLINE)" \
	  DATA_ARGS="--data_root $(FIXTURES)" TRAIN_ARGS="--disable_tqdm true"
	$(OFFLINE) $(PY) -m xstilts.report --results_dir $(FIXTURE_DEMO_RESULTS) --title "xstilts fixture demo report" \
	  --note "These are TINY test models (make fixture-models: a short MLM warm-up on an English fixture corpus) \
	trained on small FIXTURE data (tests/fixtures/hub: synthetic English NLI, real Tatoeba sentences). The numbers \
	exercise the full pipeline; they are not estimates of anything about XLM-R or XTREME. See make demo."

clean-demo:
	rm -rf $(DEMO_RESULTS) $(DEMO_CKPTS) $(DEMO_CAL_DIR) $(FIXTURE_DEMO_RESULTS) $(FIXTURE_DEMO_CKPTS)

# ---------------------------------------------------------------- tests (offline, CPU)
# TEST_JOBS pytest-xdist workers (default: the cores, at most 8); TEST_JOBS=0: one process. Tests that share a
# module-scoped fixture run on one worker, slowest first (tests/conftest.py); the 15 slowest are listed at the end.
# The scripts that the Make and torchrun tests start run in a warm python (tests/forkserver.py: forked from a
# process that imported torch and transformers once); XSTILTS_TEST_FORKSERVER=0 make test: real processes.
TEST_JOBS ?= $(shell n=$$(nproc); echo $$(( n > 8 ? 8 : n )))
test: $(STAMP)
	$(OFFLINE) $(PY) -m pytest -q tests -n $(TEST_JOBS) --dist loadgroup --no-loadscope-reorder --durations=15

# ---------------------------------------------------------------- more targets, one file per topic (mk/*.mk)
-include $(filter-out $(GENERATED_MK),$(sort $(wildcard mk/*.mk)))
