# ---------------------------------------------------------------- learning-rate calibration (docs/calibration.md)
#   make calibrate MODELS="xlmr-base xlmr-large" INTERMEDIATE="none mnli" TARGETS="xnli udpos" \
#        [CAL_SEEDS="1 2"] [CAL_RATES="5e-6 1e-5 2e-5"] [CAL_SCHEDULE="--max_steps 2000"] [CAL_DIR=calibration]
#   make grid ... CALIBRATION=calibration/overlay.json [CALIBRATION_MISSING=refuse|preset]
#
# A small learning-rate grid per model x task (phase 2 of every intermediate task; each training target from the
# pretrained model (arm none) and from each intermediate task's phase-2 encoder), selected on English dev only,
# written as a preset overlay with its provenance (xstilts/study/calibrate.py: the default grid per size, the
# choice, the overlay format). Calibration runs are ordinary runs in their own tree CAL_DIR (paths: cal_* of
# mk/layout.mk), resumable and skipped when finished; they take PRESET, DATA_ARGS, TRAIN_ARGS, then CAL_SCHEDULE.
# Two stages (a target arm starts from its intermediate task's phase-2 encoder at the chosen rate, known only once
# phase 2 is calibrated), then the overlay. `make plan` prices it.

CAL_DIR ?= calibration
CAL_OUT ?= $(CAL_DIR)/overlay.json
CAL_SEEDS ?= 1
CAL_RATES ?=
CAL_SCHEDULE ?=
# make grid: the overlay (empty: the preset's rates), and what a run it has no rate for does (refuse | preset)
CALIBRATION ?=
CALIBRATION_MISSING ?= refuse

CAL_MODEL_DIRS = $(foreach v,$(sort $(filter-out MODEL_DIR_VARS,$(filter MODEL_DIR_%,$(.VARIABLES)))),--model_dir '$(patsubst MODEL_DIR_%,%,$(v))=$($(v))')
CAL_ARGS = --models "$(MODELS)" --intermediate "$(INTERMEDIATE)" --targets "$(TARGETS)" --seeds "$(CAL_SEEDS)" \
  --rates "$(CAL_RATES)" --schedule '$(CAL_SCHEDULE)' --preset "$(PRESET)" --cal_dir "$(CAL_DIR)" --results "$(RESULTS)" \
  --ckpts "$(CKPTS)" --train_args '$(TRAIN_ARGS)' $(CAL_MODEL_DIRS)

.PHONY: calibrate calibrate-stage calibration-check

calibrate: | $(STAMP)
	@$(PY) -m xstilts.study.calibrate check $(CAL_ARGS)
	$(MAKE) --no-print-directory calibrate-stage CAL_STAGE=phase2
	$(MAKE) --no-print-directory calibrate-stage CAL_STAGE=target
	$(PY) -m xstilts.study.calibrate write $(CAL_ARGS) --out "$(CAL_OUT)"

ifneq ($(CAL_STAGE),)
CAL_WORDS := $(shell $(PY) -m xstilts.study.calibrate words --stage $(CAL_STAGE) $(CAL_ARGS))
ifneq ($(.SHELLSTATUS),0)
$(error make calibrate: the $(CAL_STAGE) calibration runs could not be listed (the error is above))
endif
# field $(2) of a word of CAL_WORDS (fields separated by :)
cal_f = $(word $(2),$(subst :, ,$(1)))

# phase-2 word MODEL:INTERMEDIATE:RATE:SEED. Exit 3: the run diverged before selecting a checkpoint (its record
# is written): a diverged candidate, not a failure of the calibration.
cal_phase2_file = $(call cal_phase2_meta,$(CAL_DIR),$(call cal_f,$(1),1),$(call cal_f,$(1),2),$(call cal_f,$(1),3),$(call cal_f,$(1),4))
define cal_phase2_rule
$(call cal_phase2_file,$(1)): | $(STAMP)
	$(RUN_ENV) $(LAUNCH) run_intermediate.py --model $(call model_arg,$(call cal_f,$(1),1)) \
	  $(call task_arg,$(call cal_f,$(1),2)) $(call ccg_arg,$(call cal_f,$(1),2)) --preset $(PRESET) --seed $(call cal_f,$(1),4) \
	  --output_dir $$(@D) $(DATA_ARGS) $(TRAIN_ARGS) $(CAL_SCHEDULE) --learning_rate $(call cal_f,$(1),3) || [ $$$$? -eq 3 ]
endef

# target word MODEL:INTERMEDIATE|none:PHASE2_RATE:ENCODER_SEED:TASK:RATE:SEED:LANGUAGE (- for the pretrained arm).
# English dev only: the evaluated split is the dev split; the choice reads the English dev metric at selection.
cal_target_arm = $(call cal_arm,$(call cal_f,$(1),2),$(call cal_f,$(1),3))
cal_target_file = $(call cal_cell_path,$(CAL_DIR),$(call cal_f,$(1),1),$(call cal_target_arm,$(1)),$(call cal_f,$(1),5),$(call cal_f,$(1),6),$(call cal_f,$(1),7))
cal_encoder = $(if $(filter $(BASELINE),$(call cal_f,$(1),2)),,$(call $(2),$(CAL_DIR),$(call cal_f,$(1),1),$(call cal_f,$(1),2),$(call cal_f,$(1),3),$(call cal_f,$(1),4)))
define cal_target_rule
$(call cal_target_file,$(1)): $(call cal_encoder,$(1),cal_phase2_meta) | $(STAMP)
	$(RUN_ENV) $(LAUNCH) run_target.py --preset $(PRESET) --model $(call model_arg,$(call cal_f,$(1),1)) \
	  --task $(call cal_f,$(1),5) --seed $(call cal_f,$(1),7) --output_dir $$(@D) \
	  $(if $(call cal_encoder,$(1),cal_phase2_dir),--intermediate_checkpoint $(call cal_encoder,$(1),cal_phase2_dir)) \
	  --eval_split validation --languages $(call cal_f,$(1),8) $(DATA_ARGS) $(TRAIN_ARGS) $(CAL_SCHEDULE) \
	  --learning_rate $(call cal_f,$(1),6)
endef

CAL_TARGETS := $(foreach w,$(CAL_WORDS),$(call cal_$(CAL_STAGE)_file,$(w)))
$(foreach w,$(CAL_WORDS),$(eval $(call cal_$(CAL_STAGE)_rule,$(w))))

calibrate-stage: $(CAL_TARGETS)
endif

# ---------------------------------------------------------------- make grid CALIBRATION=...
# The training commands of the grid (Makefile) take $(CAL_FLAGS); every phase-2 checkpoint and cell waits for the
# overlay's check (every training run has a rate, or CALIBRATION_MISSING=preset), done once before any training.
CAL_FLAGS = $(if $(CALIBRATION),--calibration $(CALIBRATION) --calibration_missing $(CALIBRATION_MISSING))

ifneq ($(CALIBRATION),)
$(CELLS) $(foreach m,$(MODELS),$(foreach i,$(filter-out $(BASELINE),$(INTERMEDIATE)),$(call ckpt_meta,$(CKPTS),$(m),$(i)))): \
  | calibration-check
endif

calibration-check: | $(STAMP)
	$(PY) -m xstilts.study.calibrate check-grid --calibration "$(CALIBRATION)" --missing "$(CALIBRATION_MISSING)" \
	  --models "$(MODELS)" --intermediate "$(INTERMEDIATE)" --targets "$(TARGETS)" --seeds "$(SEEDS)" $(CAL_MODEL_DIRS)
