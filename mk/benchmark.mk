# ---------------------------------------------------------------- one checkpoint on a whole benchmark
#   make xtreme-r MODEL=xlmr-large INTERMEDIATE=mnli [SEED=1]     the ten XTREME-R tasks
#   make xtreme   MODEL=xlmr-large INTERMEDIATE=none              the nine XTREME tasks
# Runs the grid cells of one (model, intermediate, seed) for every task of the benchmark (each cell is a
# normal grid cell: resumable, skipped when done), gathers the cells' predictions and gold labels into one
# leaderboard folder $(RESULTS)/leaderboard/<benchmark>/<model>/<intermediate>/seed<k>/{predictions,labels}
# and scores it with `python -m xstilts.score` (the official evaluate.py's numbers) -> scores.json.
# PARTIAL=1 scores partial mirrors (e.g. the test fixtures, with EVAL_ARGS="--languages available"): marked
# partial, not comparable with published numbers. Prepared data first: make data-tatoeba data-udpos-ud27 data-lareqa data-mewslix (xtreme-r), data-bucc (xtreme).

# XTREME_TASKS / XTREME_R_TASKS: mk/tasks.mk (generated from xstilts/tasks/benchmarks.py)
MODEL ?= xlmr-large
SEED ?= 1
BENCH_INTERMEDIATE = $(if $(filter command line,$(origin INTERMEDIATE)),$(INTERMEDIATE),$(BASELINE))

.PHONY: xtreme-r xtreme

# $(1)=benchmark name (xtreme|xtreme-r) $(2)=task list
define benchmark_rule
$(1):
	@test $$(words $$(BENCH_INTERMEDIATE)) -eq 1 || { echo "make $(1): INTERMEDIATE must be one name, got '$$(BENCH_INTERMEDIATE)'" >&2; exit 2; }
	$$(MAKE) --no-print-directory grid MODELS="$$(MODEL)" INTERMEDIATE="$$(BENCH_INTERMEDIATE)" TARGETS="$(2)" SEEDS="$$(SEED)" \
	  EVAL_ARGS="$$(EVAL_ARGS)"
	$$(RUN_ENV) $$(PY) -m xstilts.leaderboard --results $$(RESULTS) --benchmark $(1) --model $$(MODEL) \
	  --intermediate $$(BENCH_INTERMEDIATE) --seed $$(SEED) --tasks $(2) $$(if $$(PARTIAL),--partial)
endef
$(eval $(call benchmark_rule,xtreme-r,$(XTREME_R_TASKS)))
$(eval $(call benchmark_rule,xtreme,$(XTREME_TASKS)))
