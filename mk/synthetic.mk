# ---------------------------------------------------------------- the synthetic world (docs/synthetic.md)
#   make synthetic-data   write the world under $(SYNTH_DATA) (Hub-layout data root + corpus.txt + world.json)
#   make tiny-models      shared tokenizer, then MLM pre-training of $(SYNTH_SIZES) on the world's corpus
#                         (DEMO_JOBS sizes at a time, one thread each)
#   make demo             both, then the demo grid and its report (Makefile: demo section)
#   make clean-synthetic  remove the world, the synth-* models and the demo's results and checkpoints
#
# Everything here is built when missing (order-only on the code): after changing the generator, the
# settings below or xstilts/tiny.py, run `make clean-synthetic` (the phase scripts never overwrite a
# finished result, so stale cells would otherwise stay).

SYNTH_SEED ?= 1
# extra flags for the world builder, e.g. SYNTH_BUILD_ARGS="--languages en ord c75 lex --sizes corpus=8000"
SYNTH_BUILD_ARGS ?=
SYNTH_TOKENIZER = $(SYNTH_MODEL_DIR)/synth-tokenizer
SYNTH_VOCAB ?= 600
SYNTH_MLM_STEPS ?= 1200
# intra-op threads per pre-training process (1: two sizes run side by side under make -j2)
SYNTH_THREADS ?= 1

# the demo grid: paraphrase for every seed (intervals over seeds); tagging (one seed: intervals over
# languages) and retrieval (no training: seeds change nothing) once
DEMO_SEEDS ?= 1 2
DEMO_INTERMEDIATE ?= $(BASELINE) synth_nli
DEMO_SEEDED_TARGETS ?= synth_pair
DEMO_ONCE_TARGETS ?= synth_pos
DEMO_RETRIEVAL_TARGETS ?= synth_tatoeba

.PHONY: synthetic-data demo-run demo-prepare demo-cells demo-report clean-synthetic

synthetic-data: $(SYNTH_DATA)/world.json

$(SYNTH_DATA)/world.json: | $(STAMP)
	$(OFFLINE) $(PY) -m xstilts.synthetic.build --out $(SYNTH_DATA) --seed $(SYNTH_SEED) $(SYNTH_BUILD_ARGS)

$(SYNTH_TOKENIZER)/xstilts_tokenizer.json: | $(SYNTH_DATA)/world.json $(STAMP)
	$(OFFLINE) $(PY) -m xstilts.tiny --tokenizer $(@D) --tokenizer_only --tokenizer_kind words \
	  --vocab_size $(SYNTH_VOCAB) --corpus $(SYNTH_DATA)/corpus.txt --seed $(SYNTH_SEED)

$(SYNTH_MODEL_DIR)/synth-%/model.safetensors: | $(SYNTH_TOKENIZER)/xstilts_tokenizer.json $(STAMP)
	$(OFFLINE) OMP_NUM_THREADS=$(SYNTH_THREADS) $(PY) -m xstilts.tiny --out_dir $(SYNTH_MODEL_DIR) --sizes synth-$* \
	  --tokenizer $(SYNTH_TOKENIZER) --tokenizer_kind words --vocab_size $(SYNTH_VOCAB) \
	  --corpus $(SYNTH_DATA)/corpus.txt --mlm_steps $(SYNTH_MLM_STEPS) --group_by_length --seed $(SYNTH_SEED)

# The demo uses the grid's own cell rules (Makefile) with these settings, in DEMO_JOBS lanes (one thread per
# process): lane 1 = the largest size's chain (pre-training -> phase 2 -> its cells: the critical path), lane 2 =
# every other size. A static split: make -j would start the largest model's phase 2 late (it finishes a pass
# over the goals first), ~60 s longer on 2 cores. DEMO_JOBS=1: everything in one lane.
DEMO_LANE1 = $(if $(filter 1,$(DEMO_JOBS)),$(SYNTH_SIZES),$(firstword $(SYNTH_SIZES)))
DEMO_LANE2 = $(if $(filter 1,$(DEMO_JOBS)),,$(wordlist 2,$(words $(SYNTH_SIZES)),$(SYNTH_SIZES)))

DEMO_GRID_VARS = MODELS="$(SYNTH_SIZES)" INTERMEDIATE="$(DEMO_INTERMEDIATE)" \
  TARGETS="$(DEMO_SEEDED_TARGETS) $(DEMO_ONCE_TARGETS) $(DEMO_RETRIEVAL_TARGETS)" SEEDS="$(DEMO_SEEDS)" PRESET=tiny \
  RESULTS=$(DEMO_RESULTS) CKPTS=$(DEMO_CKPTS) RUN_ENV="$(OFFLINE) OMP_NUM_THREADS=1" \
  DATA_ARGS="--data_root $(SYNTH_DATA)" TRAIN_ARGS="--disable_tqdm true" \
  $(if $(filter-out models,$(SYNTH_MODEL_DIR)),$(foreach m,$(SYNTH_SIZES),MODEL_DIR_$(m)=$(SYNTH_MODEL_DIR)/$(m)))

# per model (largest first): the cells after an intermediate task first (phase 2 early), then the baseline
DEMO_CELLS = $(foreach m,$(MODELS),$(foreach i,$(filter-out $(BASELINE),$(INTERMEDIATE)) $(filter $(BASELINE),$(INTERMEDIATE)),\
  $(foreach t,$(DEMO_SEEDED_TARGETS),$(foreach s,$(SEEDS),$(call cell_path,$(RESULTS),$(m),$(i),$(t),$(s)))) \
  $(foreach t,$(DEMO_ONCE_TARGETS) $(DEMO_RETRIEVAL_TARGETS),$(call cell_path,$(RESULTS),$(m),$(i),$(t),$(firstword $(SEEDS))))))

# A grid cell or phase-2 checkpoint of a synth-* model needs that model and the world (built when missing).
$(foreach m,$(filter synth-%,$(MODELS)),$(eval \
  $(filter $(RESULTS)/$(m)/%,$(DEMO_CELLS) $(CELLS)) \
  $(foreach i,$(filter-out $(BASELINE),$(INTERMEDIATE)),$(call ckpt_meta,$(CKPTS),$(m),$(i))): \
  | $(SYNTH_MODEL_DIR)/$(m)/model.safetensors $(SYNTH_DATA)/world.json))

demo-run: | $(STAMP)
	$(MAKE) --no-print-directory demo-prepare $(DEMO_GRID_VARS)
	$(MAKE) --no-print-directory -j1 demo-cells $(DEMO_GRID_VARS) MODELS="$(DEMO_LANE1)" & lane1=$$!; \
	lane2=; $(if $(DEMO_LANE2),$(MAKE) --no-print-directory -j1 demo-cells $(DEMO_GRID_VARS) MODELS="$(DEMO_LANE2)" \
	  & lane2=$$!;) \
	s1=0; s2=0; wait $$lane1 || s1=$$?; if [ -n "$$lane2" ]; then wait $$lane2 || s2=$$?; fi; \
	if [ $$s1 -ne 0 ] || [ $$s2 -ne 0 ]; then echo "make demo: a lane failed (exit $$s1 / $$s2; see above)" >&2; exit 1; fi
	$(MAKE) --no-print-directory demo-report $(DEMO_GRID_VARS)

# the world and the shared tokenizer (both lanes need them)
demo-prepare: $(SYNTH_TOKENIZER)/xstilts_tokenizer.json

demo-cells: $(DEMO_CELLS)

demo-report: $(DEMO_CELLS) | $(STAMP)
	$(if $(filter synth-%,$(MODELS)),,$(error demo-report: run it through `make demo` (MODELS has no synth-* model)))
	$(OFFLINE) $(PY) -m xstilts.synthetic.summary --results_dir $(RESULTS) --data_root $(SYNTH_DATA) \
	  --out $(RESULTS)/summary.md
	$(OFFLINE) $(PY) -m xstilts.report --results_dir $(RESULTS) --title "xstilts demo: a synthetic multilingual world" \
	  --note "$$(cat $(RESULTS)/summary.md)"
	@$(OFFLINE) $(PY) -m xstilts.synthetic.summary --results_dir $(RESULTS) --data_root $(SYNTH_DATA) --timings

clean-synthetic:
	rm -rf $(DEMO_RESULTS) $(DEMO_CKPTS) $(SYNTH_DATA) $(SYNTH_TOKENIZER) $(foreach s,$(SYNTH_SIZES),$(SYNTH_MODEL_DIR)/$(s))
