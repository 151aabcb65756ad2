# ---------------------------------------------------------------- retrieval data not on the Hub (docs/retrieval.md)
#   make data-bucc        BUCC 2018 release archives (comparable.limsi.fr; sample = dev, training = test, as in
#                         XTREME) -> $(DATA_DIR)/download/bucc2018, SHA-256 checked, converted into
#                         $(DATA_DIR)/local/bucc2018/<lang>-en.{dev,test}.{<lang>,en,gold} (test gold kept)
#   make data-tatoeba     XTREME-R's Tatoeba languages az lt pl uk ro (LASER repository files at a pinned commit)
#                         -> $(DATA_DIR)/local/tatoeba-laser (Hub-mirror layout, google/xtreme's tatoeba fields)
#   RECORD=1              also write the observed SHA-256 into xstilts/prepare/data_checksums.json (entries still null)
#   With a --data_root mirror: make data-bucc DATA_DIR=/mirror (run_retrieval.py reads --data_root, else data/)
#
# Checksums: the kit was written offline and has never downloaded these files, so the BUCC archive sums (and the
# LASER files' full sums) are NOT recorded yet: the first download prints them as UNVERIFIED and stores them in
# $(DATA_DIR)/download/<name>/SHA256SUMS; later downloads must match (and must match xstilts/prepare/data_checksums.json
# once RECORD=1 has filled it in). LASER files are also checked offline: line counts and the SHA-256 of their
# first 40 lines (the excerpt vendored in tests/fixtures/sources/realdata).

DATA_DIR ?= data
BUCC_LANGS ?= $(BUCC2018_LANGUAGES)
RECORD ?=

.PHONY: data-bucc data-tatoeba

data-bucc: | $(STAMP)
	$(PY) -m xstilts.prepare.bucc --download --out_dir $(DATA_DIR) --langs $(BUCC_LANGS) \
	  $(if $(RECORD),--record_checksums,)

data-tatoeba: | $(STAMP)
	$(PY) -m xstilts.prepare.tatoeba_laser --out_dir $(DATA_DIR) $(if $(RECORD),--record_checksums,)
