# The study on a cluster: budget it (make plan) and run it as SLURM arrays (make slurm). docs/cluster.md
#
#   make plan  MODELS="xlmr-base xlmr-large" INTERMEDIATE="none mnli" TARGETS="xnli tatoeba" SEEDS="1 2 3" [MIN_GAIN=0.5]
#   make slurm MODELS=... INTERMEDIATE=... TARGETS=... SEEDS=... SLURM_PARTITION=gpu SLURM_GPUS=1
#
# Both take the grid variables of the Makefile (MODELS INTERMEDIATE TARGETS SEEDS PRESET RESULTS CKPTS DATA_ARGS
# TRAIN_ARGS EVAL_ARGS RUN_ENV LAUNCH MODEL_DIR_<name>); the cells they list are exactly `make grid`'s file targets.

SLURM_SCRIPT ?= slurm/xstilts-grid.sh
SLURM_GPUS ?= 1
SLURM_CPUS ?= 8
SLURM_MEM ?=
SLURM_TIME ?=
SLURM_PARTITION ?=
SLURM_ACCOUNT ?=
SLURM_MAX_PARALLEL ?= 0
SLURM_EXTRA ?=
SLURM_LOGS ?= slurm/logs

MODEL_DIR_VARS := $(sort $(filter MODEL_DIR_%,$(.VARIABLES)))
PLAN_ARGS = --models "$(MODELS)" --intermediate "$(INTERMEDIATE)" --targets "$(TARGETS)" --seeds "$(SEEDS)" \
  --preset "$(PRESET)" --results "$(RESULTS)" --ckpts "$(CKPTS)" --train_args '$(TRAIN_ARGS)' --eval_args '$(EVAL_ARGS)' \
  $(foreach v,$(MODEL_DIR_VARS),--model_dir '$(patsubst MODEL_DIR_%,%,$(v))=$($(v))')
SLURM_MAKE_VARS = $(foreach v,MODELS INTERMEDIATE TARGETS SEEDS PRESET RESULTS CKPTS DATA_ARGS TRAIN_ARGS EVAL_ARGS RUN_ENV LAUNCH \
  CALIBRATION CALIBRATION_MISSING \
  $(MODEL_DIR_VARS),--make_var '$(v)=$($(v))')

.PHONY: plan slurm

plan: | $(STAMP)
	@$(OFFLINE) $(PY) -m xstilts.plan plan $(PLAN_ARGS) --min_gain "$(MIN_GAIN)"
	@echo
	@$(OFFLINE) $(PY) -m xstilts.study.calibrate plan $(CAL_ARGS)

slurm: | $(STAMP)
	@$(OFFLINE) $(PY) -m xstilts.plan slurm $(PLAN_ARGS) $(SLURM_MAKE_VARS) --out "$(SLURM_SCRIPT)" \
	  --gpus $(SLURM_GPUS) --cpus $(SLURM_CPUS) --mem "$(SLURM_MEM)" --time "$(SLURM_TIME)" \
	  --partition "$(SLURM_PARTITION)" --account "$(SLURM_ACCOUNT)" --max_parallel $(SLURM_MAX_PARALLEL) \
	  --sbatch_extra '$(SLURM_EXTRA)' --logs "$(SLURM_LOGS)"
