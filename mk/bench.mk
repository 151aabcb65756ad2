# ---------------------------------------------------------------- benchmarks (bench/README.md)
#   make bench-cpu        the small CPU shapes of bench/README.md (about 10 min on 2 cores)
#   make bench-gpu        every GPU row: training base/large x pair128/pair256/tag128/qa384 (hf vs kit, MFU),
#                         evaluation of the large shape on XNLI/PAN-X/MLQA at full size (then configs/throughput.json
#                         updated from the base/large figures so `make plan` uses them), embedding 50k sentences
#                         at all 25 layers, BUCC mining 25k..400k with the torch path on the GPU (its search rate
#                         stored for `make plan`), FAISS mining 50k x 50k on the GPU (when faiss has GPU support), and
#                         bench/README.md's tables regenerated
#   make bench-scaling    BUCC mining at 25k..200k sentences a side on this CPU, FAISS and the torch path, the fitted
#                         n^2 curve projected to full size; stores the search rates for `make plan` (hours on 2 cores:
#                         run it on a quiet machine)
#   make bench-dataprep   loading + featurizing MNLI, SQuAD, PAN-X (40 languages) and ANLI+ (1.1M pairs) at full size
#                         (a synthetic mirror in the Hub layout) through the phase scripts, twice on one cache
#   make bench-commands   `make demo` and `make test` wall time in a fresh clone of HEAD
#   BENCH_FLAGS=--overwrite   replace recorded results (they are never replaced silently)
# Results: bench/results/<benchmark>-<device>-<shape>.json (device, versions, settings, the exact command).

BENCH_FLAGS ?=
BENCH_TASK_SHAPES ?= pair128 pair256 tag128 qa384
BENCH_MODEL_SHAPES ?= base large

.PHONY: bench-cpu bench-gpu bench-scaling bench-commands bench-dataprep

SCALING_NS ?= 25000,50000,100000,200000
BENCH_SCALING_FLAGS ?=
SCALING_NS_GPU ?= 25000,50000,100000,200000,400000

bench-cpu: | $(STAMP)
	$(PY) bench/bench_train.py --model_shape tiny --task_shape pair128 $(BENCH_FLAGS)
	$(PY) bench/bench_train.py --model_shape tiny --task_shape tag128 $(BENCH_FLAGS)
	$(PY) bench/bench_train.py --model_shape tiny --task_shape qa384 --batch_size 16 $(BENCH_FLAGS)
	for t in xnli panx mlqa; do $(PY) bench/bench_eval.py --model_shape tiny --task $$t --scale 0.02 $(BENCH_FLAGS); done
	$(PY) bench/bench_embed.py --model_shape tiny --n 4000 $(BENCH_FLAGS)
	$(PY) bench/bench_mining.py --n 20000 --dim 768 $(BENCH_FLAGS)
	$(PY) bench/summarize.py --write

bench-gpu: | $(STAMP)
	@$(PY) -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'bench-gpu: torch sees no CUDA device')"
	for m in $(BENCH_MODEL_SHAPES); do for t in $(BENCH_TASK_SHAPES); do \
	  $(PY) bench/bench_train.py --model_shape $$m --task_shape $$t --settings hf,dynamic,grouped,kit $(BENCH_FLAGS); \
	done; done
	for t in xnli panx mlqa; do $(PY) bench/bench_eval.py --model_shape large --task $$t --scale 1 $(BENCH_FLAGS); done
	$(PY) bench/bench_eval.py --model_shape base --task xnli --scale 1 $(BENCH_FLAGS)
	$(PY) -m xstilts.plan from-bench --model xlmr-base --train bench/results/train-gpu-base-pair128.json \
	  --eval bench/results/eval-gpu-base-xnli.json --write
	$(PY) -m xstilts.plan from-bench --model xlmr-large --train bench/results/train-gpu-large-pair128.json \
	  --eval bench/results/eval-gpu-large-xnli.json --write
	$(PY) bench/bench_embed.py --model_shape large --n 50000 --layers all $(BENCH_FLAGS)
	$(PY) bench/bench_scaling.py --gpu --ns $(SCALING_NS_GPU) --dim 1024 $(BENCH_FLAGS)
	$(PY) -m xstilts.plan from-bench --search \
	  bench/results/scaling-gpu-d1024-$(firstword $(subst $(comma), ,$(SCALING_NS_GPU)))-$(lastword $(subst $(comma), ,$(SCALING_NS_GPU))).json --write
	@# GPU mining needs a faiss build with GPU support (requirements.txt installs faiss-cpu); the CPU mining rows
	@# come from `make bench-cpu` on the CPU they describe
	if $(PY) -c "import sys, faiss; sys.exit(0 if faiss.get_num_gpus() > 0 else 1)"; then \
	  $(PY) bench/bench_mining.py --n 50000 --dim 768 --gpu $(BENCH_FLAGS); \
	else echo "bench-gpu: this faiss build has no GPU support: GPU mining not measured (install faiss-gpu)"; fi
	$(PY) bench/summarize.py --write

bench-scaling: | $(STAMP)
	$(PY) bench/bench_scaling.py --ns $(SCALING_NS) --dim 1024 --repeat 1 $(BENCH_SCALING_FLAGS) $(BENCH_FLAGS)
	$(PY) -m xstilts.plan from-bench --search \
	  bench/results/scaling-cpu-d1024-$(firstword $(subst $(comma), ,$(SCALING_NS)))-$(lastword $(subst $(comma), ,$(SCALING_NS))).json --write
	$(PY) bench/summarize.py --write

DATAPREP_CASES ?= xnli,squad_v1,panx,anli_plus
bench-dataprep: | $(STAMP)
	$(PY) bench/bench_dataprep.py --cases $(DATAPREP_CASES) $(BENCH_FLAGS)
	$(PY) bench/summarize.py --write

bench-commands: | $(STAMP)
	$(PY) bench/bench_commands.py $(BENCH_FLAGS)
