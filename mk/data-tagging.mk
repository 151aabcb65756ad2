# ---------------------------------------------------------------- tagging data that is not on the Hub (docs/tagging.md)
#   make data-udpos-ud27     UD 2.7 test treebanks of XTREME-R's extra UD-POS languages (lt pl uk wo ro) ->
#                            $(DATA_DIR)/local/udpos-ud27 (google/xtreme udpos schema). Downloads
#                            ud-treebanks-v2.7.tgz from LINDAT once (large: several hundred MB), as XTREME-R does.
#                            With a --data_root mirror, write into it: make data-udpos-ud27 DATA_DIR=/path/to/mirror
#   make data-udpos-xtreme   XTREME's own UD-POS files for its 33 languages, rebuilt from UD 2.5 as its scripts do
#                            (Greek = GDT only, multi-word tokens as fused forms) -> $(DATA_DIR)/local/udpos-xtreme;
#                            read with run_target.py --task udpos --source_variant xtreme (docs/tagging.md).
#                            Downloads ud-treebanks-v2.5.tgz (355 MB) once, refused unless its SHA-256 matches.
#   make data-ccg CCGBANK=/path/to/ccgbank
#                            CCGbank (LDC2005T13, licensed, not downloadable) AUTO files -> $(CCG_DIR)/{train,dev,test}.txt;
#                            then: run_intermediate.py --task ccg --ccg_dir $(CCG_DIR)

DATA_DIR ?= data
UD27_URL ?= https://lindat.mff.cuni.cz/repository/xmlui/bitstream/handle/11234/1-3424/ud-treebanks-v2.7.tgz
UD27_TGZ ?= $(DATA_DIR)/download/ud-treebanks-v2.7.tgz
CCG_DIR ?= $(DATA_DIR)/ccg
CCGBANK ?=

.PHONY: data-udpos-ud27 data-udpos-xtreme data-ccg

data-udpos-ud27: $(DATA_DIR)/local/udpos-ud27/README.md

$(DATA_DIR)/local/udpos-ud27/README.md: | $(STAMP)
	@mkdir -p $(dir $(UD27_TGZ))
	@if [ ! -f $(UD27_TGZ) ]; then \
	  echo "downloading $(UD27_URL)"; \
	  curl -fL --retry 3 -o $(UD27_TGZ).part $(UD27_URL) && mv $(UD27_TGZ).part $(UD27_TGZ); \
	fi
	rm -rf $(dir $(UD27_TGZ))ud-treebanks-v2.7
	tar -xzf $(UD27_TGZ) -C $(dir $(UD27_TGZ)) --wildcards $(foreach l,$(UD27_LANGUAGES),'*/$(l)_*-ud-test.conllu')
	$(PY) -m xstilts.ud27 $(dir $(UD27_TGZ))ud-treebanks-v2.7 --out_root $(DATA_DIR)

data-udpos-xtreme: $(DATA_DIR)/local/udpos-xtreme/README.md

$(DATA_DIR)/local/udpos-xtreme/README.md: | $(STAMP)
	$(PY) -m xstilts.prepare.udpos_xtreme --download --out_root $(DATA_DIR)

data-ccg: | $(STAMP)
	@test -n "$(CCGBANK)" || { echo "error: give CCGBANK=/path/to/ccgbank (your copy of LDC2005T13, https://catalog.ldc.upenn.edu/LDC2005T13; it holds data/AUTO/00..24)" >&2; exit 2; }
	$(PY) -m xstilts.ccg convert $(CCGBANK)/data/AUTO $(CCG_DIR)
	@echo "now: run_intermediate.py --task ccg --ccg_dir $(CCG_DIR) ..."
