# The paper's alternative arms (docs/intermediate.md): translated intermediate data, multilingual MLM co-training,
# translate-train targets.
#
#   make data-squad-translate-train    XTREME's SQuAD v1.1 translate-train files (gs://xtreme_translations, 10 languages)
#                                      -> $(DATA_DIR)/download/xtreme_translations (SHA-256 checked against the record
#                                      in xstilts/prepare/data_checksums.json) -> $(DATA_DIR)/local/xtreme_translations
#                                      configs SQuAD.<lang> (tasks squad_v1_tt, squad_v1_tta; xquad@tt, mlqa@tta, ...)
#   make data-tydiqa-translate-train   the same for TyDiQA-GoldP (8 languages; tydiqa@tt, tydiqa@tta)
#   TT_LANGS="de es"                   only these languages
#
# Translated MNLI (mnli_tt, mnli_tta, xnli@tt/tta) is on the Hub (facebook/xnli), PAWS-X's translations too
# (google/xtreme PAWS-X.<lang> train), and the MLM corpus (wikimedia/wikipedia): no make target.

TT_LANGS ?=

.PHONY: data-squad-translate-train data-tydiqa-translate-train

data-squad-translate-train: | $(STAMP)
	$(PY) -m xstilts.prepare.translations squad --out_dir $(DATA_DIR) $(if $(TT_LANGS),--langs $(TT_LANGS)) \
	  $(if $(RECORD),--record_checksums,)

data-tydiqa-translate-train: | $(STAMP)
	$(PY) -m xstilts.prepare.translations tydiqa --out_dir $(DATA_DIR) $(if $(TT_LANGS),--langs $(TT_LANGS)) \
	  $(if $(RECORD),--record_checksums,)
