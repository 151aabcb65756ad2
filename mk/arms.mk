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

# ---------------------------------------------------------------- the arms in the synthetic world (docs/synthetic.md)
#   make demo-arms    the demo's grid (make demo) plus the two intermediate arms, in the demo's folders: synth_nli
#                     with masked LM on new text of every world language (synth_nli+synth_mlm) and synth_nli's
#                     training rows translated (synth_nli_tt: translations only, synth_nli_tta: English + them);
#                     the report's "Alternative arms" section compares each with synth_nli at every size.
#                     Not part of `make demo` (about 2.5 times its time). A world built before the arms existed
#                     lacks their data: `make clean-synthetic` first.
DEMO_ARMS ?= synth_nli+synth_mlm synth_nli_tt synth_nli_tta

.PHONY: demo-arms

demo-arms: | $(STAMP)
	@test ! -f $(SYNTH_DATA)/world.json -o -f $(SYNTH_DATA)/xstilts-synthetic/text/README.md || \
	  { echo "demo-arms: $(SYNTH_DATA) was built before the arms' data existed; run make clean-synthetic first" >&2; \
	    exit 2; }
	$(MAKE) --no-print-directory demo-run DEMO_INTERMEDIATE="$(BASELINE) synth_nli $(DEMO_ARMS)"
