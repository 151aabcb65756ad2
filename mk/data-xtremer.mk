# ---------------------------------------------------------------- XTREME-R retrieval data not on the Hub (docs/xtreme_r.md)
#   make data-lareqa      LAReQA release (XQuAD-R with sentence breaks, github.com/google-research-datasets/lareqa)
#                         + SQuAD v1.1 train/dev JSON -> $(DATA_DIR)/local/lareqa (downloads into
#                         $(DATA_DIR)/download/lareqa once). With a --data_root mirror: make data-lareqa DATA_DIR=/mirror
#   make data-mewslix MEWSLIX_DIR=/path/to/mewsli_x/output/dataset
#                         converts a Mewsli-X release build (the five .jsonl files of get-mewsli-x.sh) ->
#                         $(DATA_DIR)/local/mewslix. Without MEWSLIX_DIR it first runs the official builder
#                         (make mewslix-release: google-research's get-mewsli-x.sh; needs wget, unzip, bash and a
#                         python with that project's requirements; downloads WikiNews dumps from archive.org).
#   Then: run_target.py --task lareqa|mewslix ... (add --data_root DIR when DATA_DIR is not data/)

DATA_DIR ?= data
MEWSLIX_BUILD ?= $(DATA_DIR)/download/mewslix
GOOGLE_RESEARCH_ZIP_URL ?= https://github.com/google-research/google-research/archive/refs/heads/master.zip
MEWSLIX_MEL := $(MEWSLIX_BUILD)/google-research-master/dense_representations_for_entity_retrieval/mel
MEWSLIX_DIR ?=

.PHONY: data-lareqa data-mewslix mewslix-release

data-lareqa: $(DATA_DIR)/local/lareqa/README.md

$(DATA_DIR)/local/lareqa/README.md: | $(STAMP)
	$(PY) -m xstilts.lareqa_data --out_dir $(DATA_DIR) --download_dir $(DATA_DIR)/download/lareqa

data-mewslix: $(DATA_DIR)/local/mewslix/README.md

$(DATA_DIR)/local/mewslix/README.md: | $(STAMP)
	@if [ -z "$(MEWSLIX_DIR)" ] && [ ! -f $(MEWSLIX_MEL)/mewsli_x/output/dataset/wikinews_mentions-test.jsonl ]; then \
	  $(MAKE) --no-print-directory mewslix-release; fi
	$(PY) -m xstilts.mewslix_data --out_dir $(DATA_DIR) \
	  --source_dir $(or $(MEWSLIX_DIR),$(MEWSLIX_MEL)/mewsli_x/output/dataset)

# The official Mewsli-X builder (what XTREME-R's scripts/download_mewslix_data.sh runs): fetches the descriptor
# archive mewsli-x_20220518_6.zip from storage.googleapis.com/gresearch/mewsli and the WikiNews dumps, and
# restores the article text. Long-running; needs network access.
mewslix-release:
	mkdir -p $(MEWSLIX_BUILD)
	cd $(MEWSLIX_BUILD) && { [ -f google-research-master.zip ] || curl -fL --retry 3 -o google-research-master.zip \
	  $(GOOGLE_RESEARCH_ZIP_URL); } && \
	  unzip -q -o google-research-master.zip 'google-research-master/dense_representations_for_entity_retrieval/*'
	cd $(MEWSLIX_MEL) && bash get-mewsli-x.sh
