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

.PHONY: synthetic-data demo-run demo-prepare demo-models demo-cells demo-report clean-synthetic

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

# The demo uses the grid's own cell rules (Makefile) with these settings, in two stages of DEMO_JOBS processes
# at a time, one thread each: (1) pre-training of every size (largest first: the others together take about as
# long); (2) one goal list: the phase-2 checkpoints, then the baseline cells, then the cells after an intermediate
# task (their checkpoints are done by then), so make keeps every process busy to the end. (A static split into
# lanes by size left one lane ~35 s longer than the other on 2 cores.)
DEMO_GRID_VARS = MODELS="$(SYNTH_SIZES)" INTERMEDIATE="$(DEMO_INTERMEDIATE)" \
  TARGETS="$(DEMO_SEEDED_TARGETS) $(DEMO_ONCE_TARGETS) $(DEMO_RETRIEVAL_TARGETS)" SEEDS="$(DEMO_SEEDS)" PRESET=tiny \
  RESULTS=$(DEMO_RESULTS) CKPTS=$(DEMO_CKPTS) RUN_ENV="$(OFFLINE) OMP_NUM_THREADS=1" \
  DATA_ARGS="--data_root $(SYNTH_DATA)" TRAIN_ARGS="--disable_tqdm true" \
  $(if $(filter-out models,$(SYNTH_MODEL_DIR)),$(foreach m,$(SYNTH_SIZES),MODEL_DIR_$(m)=$(SYNTH_MODEL_DIR)/$(m)))

DEMO_MODELS = $(foreach m,$(filter synth-%,$(MODELS)),$(SYNTH_MODEL_DIR)/$(m)/model.safetensors)
DEMO_PHASE2 = $(foreach m,$(MODELS),$(foreach i,$(filter-out $(BASELINE),$(INTERMEDIATE)),$(call ckpt_meta,$(CKPTS),$(m),$(i))))
# the baseline cells (they need no checkpoint), then those after an intermediate task; by target (paraphrase for
# every seed, then tagging and retrieval once), each for every size (largest first)
DEMO_CELLS = $(foreach i,$(filter $(BASELINE),$(INTERMEDIATE)) $(filter-out $(BASELINE),$(INTERMEDIATE)),\
  $(foreach t,$(DEMO_SEEDED_TARGETS),$(foreach m,$(MODELS),$(foreach s,$(SEEDS),$(call cell_path,$(RESULTS),$(m),$(i),$(t),$(s))))) \
  $(foreach t,$(DEMO_ONCE_TARGETS) $(DEMO_RETRIEVAL_TARGETS),$(foreach m,$(MODELS),$(call cell_path,$(RESULTS),$(m),$(i),$(t),$(firstword $(SEEDS))))))

# A grid cell or phase-2 checkpoint of a synth-* model needs that model and the world (built when missing).
$(foreach m,$(filter synth-%,$(MODELS)),$(eval \
  $(filter $(RESULTS)/$(m)/%,$(DEMO_CELLS) $(CELLS)) \
  $(foreach i,$(filter-out $(BASELINE),$(INTERMEDIATE)),$(call ckpt_meta,$(CKPTS),$(m),$(i))): \
  | $(SYNTH_MODEL_DIR)/$(m)/model.safetensors $(SYNTH_DATA)/world.json))

demo-run: | $(STAMP)
	$(MAKE) --no-print-directory demo-prepare $(DEMO_GRID_VARS)
	$(MAKE) --no-print-directory -j$(DEMO_JOBS) demo-models $(DEMO_GRID_VARS)
	$(MAKE) --no-print-directory -j$(DEMO_JOBS) demo-cells $(DEMO_GRID_VARS)
	$(MAKE) --no-print-directory demo-report $(DEMO_GRID_VARS)

# the world and the shared tokenizer (every size needs them)
demo-prepare: $(SYNTH_TOKENIZER)/xstilts_tokenizer.json

demo-models: $(DEMO_MODELS)

demo-cells: $(DEMO_PHASE2) $(DEMO_CELLS)

demo-report: $(DEMO_CELLS) | $(STAMP)
	$(if $(filter synth-%,$(MODELS)),,$(error demo-report: run it through `make demo` (MODELS has no synth-* model)))
	$(OFFLINE) $(PY) -m xstilts.synthetic.summary --results_dir $(RESULTS) --data_root $(SYNTH_DATA) \
	  --out $(RESULTS)/summary.md
	$(OFFLINE) $(PY) -m xstilts.report --results_dir $(RESULTS) --title "xstilts demo: a synthetic multilingual world" \
	  --note "$$(cat $(RESULTS)/summary.md)"
	@$(OFFLINE) $(PY) -m xstilts.synthetic.summary --results_dir $(RESULTS) --data_root $(SYNTH_DATA) --timings

clean-synthetic:
	rm -rf $(DEMO_RESULTS) $(DEMO_CKPTS) $(SYNTH_DATA) $(SYNTH_TOKENIZER) $(foreach s,$(SYNTH_SIZES),$(SYNTH_MODEL_DIR)/$(s))
