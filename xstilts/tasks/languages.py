"""Every language table of the kit, stated once. Everything else (task declarations, the scorer's
task -> language tables, Make's lists, converters) derives from these.

Codes are ISO 639-1 as google-research/xtreme ``evaluate.py`` names them (XTREME_TASK2LANGS /
XTREME_R_TASK2LANGS, commit 838c13b), in that script's order: the order of ``per_language`` in every result.
Where a dataset names a language differently, the table maps the kit's code to the dataset's code (a Hub
config name, an ISO 639-3 code, an id prefix). Adding a language to a task = one entry here (plus its data).
"""

from __future__ import annotations

from typing import NamedTuple

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

# ----------------------------------------------------------------------------- the language table
class Language(NamedTuple):
    """One language of the kit: what its code is, its family, genus and script (sources: LANGUAGE_SOURCES)."""

    name: str
    iso639_3: str  # the ISO 639-3 code used to look the language up (macrolanguages: the variety in the data)
    glottocode: str  # Glottolog languoid
    family: str  # Glottolog top-level family ("<name> (isolate)" for an isolate)
    wals: str  # WALS language code
    genus: str  # WALS genus
    script: str  # ISO 15924 code of the language's default script (CLDR likely subtags)


# Where each column comes from (cited in the report beside every grouping by family or script)
LANGUAGE_SOURCES = {
    "family": "Glottolog 5.1 (Hammarström, Forkel, Haspelmath, Bank), glottolog/glottolog-cldf cldf/languages.csv "
              "@ b6d3ea2: the top-level family of the glottocode",
    "genus": "WALS Online v2020.4 (Dryer & Haspelmath eds. 2013), cldf-datasets/wals cldf/languages.csv @ 3a9efd6: "
             "the Genus of the WALS code",
    "script": "Unicode CLDR 49 likely subtags (common/supplemental/likelySubtags.xml, read through Babel 2.19.0): "
              "the language's default script, not a per-dataset check (zh test data may hold Traditional "
              "characters; ja and ko mix scripts)",
    "iso639_3": "macrolanguages mapped to the variety in the data: ar->arb, az->azj, et->ekk, fa->pes, ms->zsm, "
                "sw->swh, zh->cmn, qu->quz (which Quechua XCOPA and WikiANN hold is not established; the family is "
                "Quechuan either way)",
}

SCRIPT_NAMES = {
    "Arab": "Arabic", "Beng": "Bengali", "Cyrl": "Cyrillic", "Deva": "Devanagari", "Geor": "Georgian",
    "Grek": "Greek", "Gujr": "Gujarati", "Guru": "Gurmukhi", "Hans": "Han (Simplified)", "Hebr": "Hebrew",
    "Jpan": "Japanese (Han + kana)", "Kore": "Korean (Hangul + Han)", "Latn": "Latin", "Mlym": "Malayalam",
    "Mymr": "Myanmar", "Taml": "Tamil", "Telu": "Telugu", "Thai": "Thai",
}

# Every real language of the kit's tasks (the 50 of XTREME-R, which include XTREME's 40). The synthetic world's
# languages are not here: they have no family or script.
LANGUAGES: dict[str, Language] = {
    "af": Language("Afrikaans", "afr", "afri1274", "Indo-European", "afr", "Germanic", "Latn"),
    "ar": Language("Arabic", "arb", "stan1318", "Afro-Asiatic", "ams", "Semitic", "Arab"),
    "az": Language("Azerbaijani", "azj", "nort2697", "Turkic", "aze", "Turkic", "Latn"),
    "bg": Language("Bulgarian", "bul", "bulg1262", "Indo-European", "bul", "Slavic", "Cyrl"),
    "bn": Language("Bengali", "ben", "beng1280", "Indo-European", "ben", "Indic", "Beng"),
    "de": Language("German", "deu", "stan1295", "Indo-European", "ger", "Germanic", "Latn"),
    "el": Language("Greek", "ell", "mode1248", "Indo-European", "grk", "Greek", "Grek"),
    "en": Language("English", "eng", "stan1293", "Indo-European", "eng", "Germanic", "Latn"),
    "es": Language("Spanish", "spa", "stan1288", "Indo-European", "spa", "Romance", "Latn"),
    "et": Language("Estonian", "ekk", "esto1258", "Uralic", "est", "Finnic", "Latn"),
    "eu": Language("Basque", "eus", "basq1248", "Basque (isolate)", "bsq", "Basque", "Latn"),
    "fa": Language("Persian", "pes", "west2369", "Indo-European", "prs", "Iranian", "Arab"),
    "fi": Language("Finnish", "fin", "finn1318", "Uralic", "fin", "Finnic", "Latn"),
    "fr": Language("French", "fra", "stan1290", "Indo-European", "fre", "Romance", "Latn"),
    "gu": Language("Gujarati", "guj", "guja1252", "Indo-European", "guj", "Indic", "Gujr"),
    "he": Language("Hebrew", "heb", "hebr1245", "Afro-Asiatic", "heb", "Semitic", "Hebr"),
    "hi": Language("Hindi", "hin", "hind1269", "Indo-European", "hin", "Indic", "Deva"),
    "ht": Language("Haitian Creole", "hat", "hait1244", "Indo-European", "hcr", "Creoles and Pidgins", "Latn"),
    "hu": Language("Hungarian", "hun", "hung1274", "Uralic", "hun", "Ugric", "Latn"),
    "id": Language("Indonesian", "ind", "indo1316", "Austronesian", "ind", "Malayo-Sumbawan", "Latn"),
    "it": Language("Italian", "ita", "ital1282", "Indo-European", "ita", "Romance", "Latn"),
    "ja": Language("Japanese", "jpn", "nucl1643", "Japonic", "jpn", "Japanese", "Jpan"),
    "jv": Language("Javanese", "jav", "java1254", "Austronesian", "jav", "Javanese", "Latn"),
    "ka": Language("Georgian", "kat", "nucl1302", "Kartvelian", "geo", "Kartvelian", "Geor"),
    "kk": Language("Kazakh", "kaz", "kaza1248", "Turkic", "kaz", "Turkic", "Cyrl"),
    "ko": Language("Korean", "kor", "kore1280", "Koreanic", "kor", "Korean", "Kore"),
    "lt": Language("Lithuanian", "lit", "lith1251", "Indo-European", "lit", "Baltic", "Latn"),
    "ml": Language("Malayalam", "mal", "mala1464", "Dravidian", "mym", "Dravidian", "Mlym"),
    "mr": Language("Marathi", "mar", "mara1378", "Indo-European", "mhi", "Indic", "Deva"),
    "ms": Language("Malay", "zsm", "stan1306", "Austronesian", "mly", "Malayo-Sumbawan", "Latn"),
    "my": Language("Burmese", "mya", "nucl1310", "Sino-Tibetan", "brm", "Burmese-Lolo", "Mymr"),
    "nl": Language("Dutch", "nld", "dutc1256", "Indo-European", "dut", "Germanic", "Latn"),
    "pa": Language("Punjabi", "pan", "panj1256", "Indo-European", "pan", "Indic", "Guru"),
    "pl": Language("Polish", "pol", "poli1260", "Indo-European", "pol", "Slavic", "Latn"),
    "pt": Language("Portuguese", "por", "port1283", "Indo-European", "por", "Romance", "Latn"),
    "qu": Language("Quechua", "quz", "cusc1236", "Quechuan", "qcu", "Quechuan", "Latn"),
    "ro": Language("Romanian", "ron", "roma1327", "Indo-European", "rom", "Romance", "Latn"),
    "ru": Language("Russian", "rus", "russ1263", "Indo-European", "rus", "Slavic", "Cyrl"),
    "sw": Language("Swahili", "swh", "swah1253", "Atlantic-Congo", "swa", "Bantu", "Latn"),
    "ta": Language("Tamil", "tam", "tami1289", "Dravidian", "tml", "Dravidian", "Taml"),
    "te": Language("Telugu", "tel", "telu1262", "Dravidian", "tel", "Dravidian", "Telu"),
    "th": Language("Thai", "tha", "thai1261", "Tai-Kadai", "tha", "Kam-Tai", "Thai"),
    "tl": Language("Tagalog", "tgl", "taga1270", "Austronesian", "tag", "Greater Central Philippine", "Latn"),
    "tr": Language("Turkish", "tur", "nucl1301", "Turkic", "tur", "Turkic", "Latn"),
    "uk": Language("Ukrainian", "ukr", "ukra1253", "Indo-European", "ukr", "Slavic", "Cyrl"),
    "ur": Language("Urdu", "urd", "urdu1245", "Indo-European", "urd", "Indic", "Arab"),
    "vi": Language("Vietnamese", "vie", "viet1252", "Austroasiatic", "vie", "Vietic", "Latn"),
    "wo": Language("Wolof", "wol", "nucl1347", "Atlantic-Congo", "wlf", "Wolof", "Latn"),
    "yo": Language("Yoruba", "yor", "yoru1245", "Atlantic-Congo", "yor", "Defoid", "Latn"),
    "zh": Language("Chinese (Mandarin)", "cmn", "mand1415", "Sino-Tibetan", "mnd", "Chinese", "Hans"),
}

# ----------------------------------------------------------------------------- language families
# Per-group summaries of retrieval results (metric vs layer per group), pooled from LANGUAGES so that a group is
# not a single language: a group is a Glottolog family or, inside Indo-European, a set of WALS genera; "East Asian"
# is areal (Sino-Tibetan, Japonic, Koreanic). Anything else (and a code not in LANGUAGES) counts as "other".
FAMILY_POOLS: dict[str, tuple[str, tuple[str, ...]]] = {  # group -> (column of LANGUAGES, the values it pools)
    "Germanic": ("genus", ("Germanic",)),
    "Romance": ("genus", ("Romance",)),
    "Slavic/Baltic": ("genus", ("Slavic", "Baltic")),
    "Indo-Iranian": ("genus", ("Indic", "Iranian")),
    "Afro-Asiatic": ("family", ("Afro-Asiatic",)),
    "Uralic": ("family", ("Uralic",)),
    "Turkic": ("family", ("Turkic",)),
    "Austronesian": ("family", ("Austronesian",)),
    "Dravidian": ("family", ("Dravidian",)),
    "East Asian": ("family", ("Sino-Tibetan", "Japonic", "Koreanic")),
}
FAMILIES: dict[str, tuple[str, ...]] = {
    group: tuple(code for code, lang in LANGUAGES.items() if getattr(lang, column) in values)
    for group, (column, values) in FAMILY_POOLS.items()
}
FAMILIES["other"] = tuple(code for code in LANGUAGES if not any(code in codes for codes in FAMILIES.values()))
