# ---------------------------------------------------------------- diverged cells (docs/calibration.md)
#   make grid ... DIVERGED_RETRIES=N   re-run each diverged training cell with the next seed, up to N times
#
# A run whose English dev metric at selection stays within the margin of chance, or whose training loss becomes
# NaN/inf, is recorded as diverged in its results.json (xstilts/training/divergence.py). Default 0: the grid is
# exactly the seeds asked for, and the report lists the diverged runs (replacing a run because of its outcome
# changes what the seeds sample: opt in, and say so). With N >= 1, the r-th replacement of the cell of seed k runs
# only when attempt r-1 diverged, in $(call replacement_path,...,k,r) (mk/layout.mk; seed k+1000r), and records
# `replaces`; the diverged result stays where it is, as evidence. Phase 2 is not retried (a diverged phase-2
# checkpoint is recorded in its xstilts_meta.json and in every cell trained from it). Not in `make slurm`.
DIVERGED_RETRIES ?= 0

ifneq ($(filter-out 0,$(DIVERGED_RETRIES)),)
ifeq ($(filter $(DIVERGED_RETRIES),1 2 3 4 5 6 7 8 9),)
$(error DIVERGED_RETRIES=$(DIVERGED_RETRIES): expected a whole number from 0 to 9)
endif
RETRIES := $(wordlist 1,$(DIVERGED_RETRIES),1 2 3 4 5 6 7 8 9)
# the attempt a replacement replaces: the cell itself (r=1) or replacement r-1
replaced_path = $(if $(filter 1,$(5)),$(call cell_path,$(RESULTS),$(1),$(2),$(3),$(4)),\
  $(call replacement_path,$(RESULTS),$(1),$(2),$(3),$(4),$(word $(5),0 1 2 3 4 5 6 7 8)))

# $(1)=model $(2)=intermediate|none $(3)=target $(4)=seed $(5)=retry; the command is the cell's (Makefile
# cell_rule) with --replaces instead of --seed (run_target.py sets the replacement seed)
define replacement_rule
$(call replacement_path,$(RESULTS),$(1),$(2),$(3),$(4),$(5)): $(call replaced_path,$(1),$(2),$(3),$(4),$(5)) | $(STAMP)
	if $(PY) -m xstilts.training.divergence needs-replacement $$<; then \
	  $(RUN_ENV) $(LAUNCH) run_target.py --preset $(PRESET) $(TRAIN_ARGS) $$(CAL_FLAGS) \
	  --model $(call model_arg,$(1)) $(call target_arg,$(3)) --replaces $$< --output_dir $$(@D) \
	  $(if $(filter $(BASELINE),$(2)),,--intermediate_checkpoint $(call ckpt_dir,$(CKPTS),$(1),$(2))) \
	  --write_labels $$(@D)/$(LABELS_DIR) $(DATA_ARGS) $(EVAL_ARGS); fi
endef

REPLACEMENTS := $(foreach m,$(MODELS),$(foreach i,$(INTERMEDIATE),$(foreach t,$(filter-out $(RETRIEVAL_TASKS),$(TARGETS)),\
  $(foreach s,$(SEEDS),$(foreach r,$(RETRIES),$(call replacement_path,$(RESULTS),$(m),$(i),$(t),$(s),$(r)))))))
$(foreach m,$(MODELS),$(foreach i,$(INTERMEDIATE),$(foreach t,$(filter-out $(RETRIEVAL_TASKS),$(TARGETS)),\
  $(foreach s,$(SEEDS),$(foreach r,$(RETRIES),$(eval $(call replacement_rule,$(m),$(i),$(t),$(s),$(r))))))))

grid: $(REPLACEMENTS)
endif
