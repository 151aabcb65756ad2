"""Every language table of the kit, stated once. Everything else (task declarations, the scorer's
task -> language tables, Make's lists, converters) derives from these.

Codes are ISO 639-1 as google-research/xtreme ``evaluate.py`` names them (XTREME_TASK2LANGS /
XTREME_R_TASK2LANGS, commit 838c13b), in that script's order: the order of ``per_language`` in every result.
Where a dataset names a language differently, the table maps the kit's code to the dataset's code (a Hub
config name, an ISO 639-3 code, an id prefix). Adding a language to a task = one entry here (plus its data).
"""

from __future__ import annotations

# ----------------------------------------------------------------------------- classification
XNLI = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")
PAWSX = ("de", "en", "es", "fr", "ja", "ko", "zh")

# ----------------------------------------------------------------------------- tagging
# UD-POS (XTREME): language -> the English language name of its google/xtreme config (udpos.<Name>)
UDPOS = {
    "af": "Afrikaans", "ar": "Arabic", "bg": "Bulgarian", "de": "German", "el": "Greek", "en": "English",
    "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian", "fi": "Finnish", "fr": "French",
    "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian", "id": "Indonesian", "it": "Italian", "ja": "Japanese",
    "kk": "Kazakh", "ko": "Korean", "mr": "Marathi", "nl": "Dutch", "pt": "Portuguese", "ru": "Russian",
    "ta": "Tamil", "te": "Telugu", "th": "Thai", "tl": "Tagalog", "tr": "Turkish", "ur": "Urdu",
    "vi": "Vietnamese", "yo": "Yoruba", "zh": "Chinese",
}
# XTREME-R's UD-POS additions: UD 2.7 test treebanks (not in google/xtreme), converted by `make data-udpos-ud27`
# into configs named like google/xtreme's (udpos.<Name>)
UD27 = {"lt": "Lithuanian", "pl": "Polish", "uk": "Ukrainian", "wo": "Wolof", "ro": "Romanian"}
UDPOS_XTREME_R = (*UDPOS, *UD27)

PANX = ("ar", "he", "vi", "id", "jv", "ms", "tl", "eu", "ml", "ta", "te", "af", "nl", "en", "de", "el", "bn", "hi",
        "mr", "ur", "fa", "fr", "it", "pt", "es", "bg", "ru", "ja", "ka", "ko", "th", "sw", "yo", "my", "zh", "kk",
        "tr", "et", "fi", "hu")
# XTREME-R's PAN-X additions, read from unimelb-nlp/wikiann (same 7-tag ClassLabel as PAN-X)
PANX_XTREME_R_ADDED = ("qu", "pl", "uk", "az", "lt", "pa", "gu", "ro")
PANX_XTREME_R = PANX + PANX_XTREME_R_ADDED

# ----------------------------------------------------------------------------- question answering
XQUAD = ("en", "es", "de", "el", "ru", "tr", "ar", "vi", "th", "zh", "hi")
XQUAD_XTREME_R_ADDED = ("ro",)  # not in google/xtreme: read from google/xquad
XQUAD_XTREME_R = XQUAD + XQUAD_XTREME_R_ADDED
MLQA = ("en", "es", "de", "ar", "hi", "vi", "zh")
# TyDiQA-GoldP: language -> the id prefix of its rows (XTREME utils_preprocess.py LANG2ISO, inverted)
TYDIQA = {"en": "english", "ar": "arabic", "bn": "bengali", "fi": "finnish", "id": "indonesian", "ko": "korean",
          "ru": "russian", "sw": "swahili", "te": "telugu"}

# ----------------------------------------------------------------------------- multiple choice
XCOPA = ("et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr", "vi", "zh")

# ----------------------------------------------------------------------------- retrieval
# Tatoeba (XTREME's 36): language -> the ISO 639-3 code of its google/xtreme config (tatoeba.<iso3>)
TATOEBA = {
    "ar": "ara", "he": "heb", "vi": "vie", "id": "ind", "jv": "jav", "tl": "tgl", "eu": "eus", "ml": "mal",
    "ta": "tam", "te": "tel", "af": "afr", "nl": "nld", "de": "deu", "el": "ell", "bn": "ben", "hi": "hin",
    "mr": "mar", "ur": "urd", "fa": "pes", "fr": "fra", "it": "ita", "pt": "por", "es": "spa", "bg": "bul",
    "ru": "rus", "ja": "jpn", "ka": "kat", "ko": "kor", "th": "tha", "sw": "swh", "zh": "cmn", "kk": "kaz",
    "tr": "tur", "et": "est", "fi": "fin", "hu": "hun",
}
# XTREME-R's five additions: not in google/xtreme; the LASER test sets tatoeba.<iso3>-eng.* (make data-tatoeba)
TATOEBA_XTREME_R_ADDED = {"az": "aze", "lt": "lit", "pl": "pol", "uk": "ukr", "ro": "ron"}
TATOEBA_XTREME_R = (*TATOEBA, *TATOEBA_XTREME_R_ADDED)

BUCC2018 = ("de", "fr", "ru", "zh")  # each mined against English

# ----------------------------------------------------------------------------- dual-encoder retrieval (XTREME-R)
XQUAD_R = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")  # LAReQA's XQuAD-R languages
MEWSLIX = ("ar", "de", "en", "es", "fa", "ja", "pl", "ro", "ta", "tr", "uk")  # Mewsli-X WikiNews mention languages

# ----------------------------------------------------------------------------- translated training data
# (xstilts/tasks/translated.py) the languages each machine translation of an English training set covers
XNLI_MT = tuple(l for l in XNLI if l != "en")  # XNLI-MT 1.0: MultiNLI train in facebook/xnli's <lang> configs
SQUAD_TRANSLATE_TRAIN = ("ar", "de", "el", "es", "hi", "ru", "th", "tr", "vi", "zh")  # XTREME: SQuAD v1.1 train
TYDIQA_TRANSLATE_TRAIN = ("ar", "bn", "fi", "id", "ko", "ru", "sw", "te")  # XTREME: TyDiQA-GoldP English train
PAWSX_TRANSLATED = tuple(l for l in PAWSX if l != "en")  # PAWS-X's own translated train (google/xtreme)

# ----------------------------------------------------------------------------- the synthetic world
# the default world of `make demo` (xstilts.synthetic.world.CATALOGUE codes; English first)
SYNTHETIC = ("en", "ord", "c75", "c75hf", "c75cy", "c75nf", "c50")

# ----------------------------------------------------------------------------- language families
# Per-group summaries of retrieval results (metric vs layer per group). Families as in the XTREME paper's
# language table (Hu et al. 2020, Table 5) and standard references. Small families are pooled into "other"
# so that a group is not a single language; a code not listed is counted as "other".
FAMILIES: dict[str, tuple[str, ...]] = {
    "Germanic": ("af", "de", "nl", "en"),
    "Romance": ("es", "fr", "it", "pt", "ro"),
    "Slavic/Baltic": ("bg", "ru", "pl", "uk", "lt"),
    "Indo-Iranian": ("bn", "hi", "mr", "ur", "fa"),
    "Afro-Asiatic": ("ar", "he"),
    "Uralic": ("et", "fi", "hu"),
    "Turkic": ("kk", "tr", "az"),
    "Austronesian": ("id", "jv", "tl", "ms"),
    "Dravidian": ("ml", "ta", "te"),
    "East Asian": ("zh", "ja", "ko", "my"),
    "other": ("el", "eu", "ka", "sw", "th", "vi", "yo", "qu", "ht", "wo", "pa", "gu"),
}
