"""``make data-udpos-xtreme`` (xstilts.prepare.udpos_xtreme): XTREME's own UD-POS files rebuilt from UD 2.5.

The fixture release below is written by hand. Every expected token and tag was derived by reading the reference
code at google-research/xtreme 838c13b (cited at each case); none of it was produced by running the kit.
"""

import tarfile
from types import SimpleNamespace

import pytest

from conftest import HUB
from xstilts.data.sources import DataSettings, load_source
from xstilts.errors import UsageError
from xstilts.prepare import udpos_xtreme as UX
from xstilts.run.args import get_task, select_source_variant
from xstilts.tasks.types import PreparedSource


def _w(i, form, upos, head, deps="_"):
    return "\t".join([str(i), form, "_", upos, "_", "_", str(head), "dep", deps, "_"])


def _mwt(span, form):
    return "\t".join([span, form, "_", "_", "_", "_", "_", "_", "_", "_"])


def _file(*sentences, closed=True):
    text = "\n\n".join("\n".join(s) for s in sentences) + "\n"
    return text + "\n" if closed else text


EL_TEST = _file(
    # 1. Greek στο = σε (ADP) + το (DET), both dependents of σπίτι: a tie on depth (conll.py:105-114), so the
    # default precedence list decides (conllu_to_conll.py:29, ADP before DET; conll.py:121-127): στο/ADP
    ["# text = στο σπίτι .", _mwt("1-2", "στο"), _w(1, "σε", "ADP", 3), _w(2, "το", "DET", 3),
     _w(3, "σπίτι", "NOUN", 0), _w(4, ".", "PUNCT", 3)],
    # 2. one word of the span is the other's head: the single highest word (conll.py:112-114) -> AB/VERB
    [_mwt("1-2", "AB"), _w(1, "A", "VERB", 0), _w(2, "B", "PRON", 1), _w(3, "C", "NOUN", 1)],
    # 3. enhanced DEPS edges count as ancestors (conll.py:384-385 + nx.ancestors at :105): the basic tree ties
    # (ADP would win), but DEPS gives word 1 a second head 2, so word 2 is the single highest -> XY/DET. The empty
    # node 3.1 and the DEPS head 3.1 are not read (conll.py:10-11, :28)
    [_mwt("1-2", "XY"), _w(1, "x", "ADP", 3, "3:case|2:dep|3.1:dep"), _w(2, "y", "DET", 3, "3:det"),
     _w(3, "z", "NOUN", 0, "0:root"), "3.1\tε\t_\tVERB\t_\t_\t_\t_\t3:conj\t_"],
    # 4. forms "_" for all but one word: dropped (utils_preprocess.py:197-200, 2 < 3 - 1 is false)
    [_w(1, "_", "NOUN", 0), _w(2, "_", "VERB", 1), _w(3, "κ", "NOUN", 1)],
    # 5. spaces and U+200C are removed inside forms (utils_preprocess.py:221); forms are stripped (:203)
    [_w(1, "α β", "NOUN", 0), _w(2, "γ\u200cδ", "VERB", 1), _w(3, "λ ", "PUNCT", 1)],
)
GRC_TEST = _file([_w(1, "λόγος", "NOUN", 0)])  # Ancient Greek: prefix grc, not el (download_data.sh:80-85)
EN_TRAIN = _file([_w(1, "Hello", "INTJ", 0), _w(2, "!", "PUNCT", 1)])
EN_TEST = _file([_w(1, "Bye", "INTJ", 0)])
# the last sentence has no closing blank line: the tool appends a sentence at a blank line only (conll.py:357-367)
EN_DEV = _file([_w(1, "Hi", "INTJ", 0)], [_w(1, "Lost", "VERB", 0)], closed=False)
# Spanish: a depth tie between two NOUNs, and NOUN is not in the es list (conllu_to_conll.py:31), so
# pos_precedence_list.index raises (conll.py:125): the tool converts nothing of this file
ES_TEST = _file([_mwt("1-2", "ab"), _w(1, "a", "NOUN", 3), _w(2, "b", "NOUN", 3), _w(3, "c", "VERB", 0)])


def _release(root):
    files = {"UD_Greek-GDT/el_gdt-ud-test.conllu": EL_TEST,
             "UD_Ancient_Greek-PROIEL/grc_proiel-ud-test.conllu": GRC_TEST,
             "UD_English-EWT/en_ewt-ud-train.conllu": EN_TRAIN,
             "UD_English-EWT/en_ewt-ud-dev.conllu": EN_DEV,
             "UD_English-EWT/en_ewt-ud-test.conllu": EN_TEST,
             "UD_Spanish-GSD/es_gsd-ud-test.conllu": ES_TEST}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("udx")
    ud = _release(tmp / "ud-treebanks-v2.5")
    report = UX.convert(ud, tmp / "root", ["el", "en", "es"])
    return tmp, ud, report


def test_xtreme_sentences_of_the_fixture_release(converted):
    tmp, ud, report = converted
    assert report["el"] == {"files": {"el_gdt-ud-test.conllu": {"split": "test", "sentences": 4}},
                            "not_converted": {}}  # grc_proiel is not Greek for XTREME
    assert report["en"]["files"] == {"en_ewt-ud-dev.conllu": {"split": "validation", "sentences": 1},
                                     "en_ewt-ud-test.conllu": {"split": "test", "sentences": 1},
                                     "en_ewt-ud-train.conllu": {"split": "train", "sentences": 1}}
    assert list(report["es"]["not_converted"]) == ["es_gsd-ud-test.conllu"] and not report["es"]["files"]

    task = select_source_variant(get_task("udpos"), "xtreme")
    data = DataSettings(tmp / "root")
    test = load_source(task.test, data, "Greek")
    tags = test.features["pos_tags"].feature.names
    assert [r["tokens"] for r in test] == [["στο", "σπίτι", "."], ["AB", "C"], ["XY", "z"], ["αβ", "γδ", "λ"]]
    assert [[tags[t] for t in r["pos_tags"]] for r in test] == [
        ["ADP", "NOUN", "PUNCT"], ["VERB", "NOUN"], ["DET", "NOUN"], ["NOUN", "VERB", "PUNCT"]]
    assert [r["tokens"] for r in load_source(task.train, data)] == [["Hello", "!"]]
    assert [r["tokens"] for r in load_source(task.dev, data, "English")] == [["Hi"]]


def test_the_tgz_reads_as_the_extracted_release(converted, tmp_path):
    _, ud, report = converted
    tgz = tmp_path / UX.UD25_TGZ
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(ud, arcname="ud-treebanks-v2.5")
    assert UX.convert(tgz, tmp_path / "root", ["el", "en", "es"]) == report


def test_hub_reading_differs_where_the_issue_says():
    """The Hub's rule keeps σε + το (ud27.read_conllu, google/xtreme's reader); XTREME keeps στο."""
    from xstilts.prepare.ud27 import read_conllu

    assert read_conllu(EL_TEST)[0]["tokens"] == ["σε", "το", "σπίτι", "."]
    assert UX.convert_conllu(EL_TEST, "el")[0] == [("στο", "ADP"), ("σπίτι", "NOUN"), (".", "PUNCT")]


def test_source_variant_selection():
    udpos = get_task("udpos")
    assert select_source_variant(udpos, None) is udpos and select_source_variant(udpos, "hub") is udpos
    x = select_source_variant(udpos, "xtreme")
    for s in (x.train, x.dev, x.test):
        assert isinstance(s, PreparedSource) and s.hub_id == "local/udpos-xtreme"
        assert s.describe("Greek")["prepared_by"] == "make data-udpos-xtreme"
    assert x.lang_sources == udpos.lang_sources  # XTREME-R's UD 2.7 languages: unchanged
    with pytest.raises(UsageError, match=r"unknown --source_variant of task 'udpos' 'xtrem'; valid choices: hub, "
                                         r"xtreme"):
        select_source_variant(udpos, "xtrem")
    with pytest.raises(UsageError, match=r"'panx' 'xtreme'; valid choices: hub$"):
        select_source_variant(get_task("panx"), "xtreme")


def test_unprepared_variant_names_the_make_target(tmp_path):
    from xstilts.data.sources import check_source

    x = select_source_variant(get_task("udpos"), "xtreme")
    with pytest.raises(UsageError, match=r"Run `make data-udpos-xtreme DATA_DIR="):
        check_source(x.test, DataSettings(tmp_path), "Greek")


def test_a_download_that_differs_from_the_recorded_sum_is_refused(tmp_path):
    tgz = tmp_path / "download" / "ud25" / UX.UD25_TGZ
    tgz.parent.mkdir(parents=True)
    tgz.write_bytes(b"not the release")  # fetch keeps an existing file; verify_file checks it
    with pytest.raises(UsageError, match=r"does not match the recorded 5ff973e4"):
        UX.download(tmp_path)


def test_a_variant_run_is_another_run(converted, tiny):
    """The variant is part of the run settings, so a result of the Hub's data is never taken for (or resumed as)
    the variant's; the declared sources leave the settings as they were (older results still match)."""
    from xstilts.run import rundir
    from xstilts.run.start import prepare, settings_fingerprint

    tmp, _, _ = converted
    (tmp / "root" / "google").symlink_to(HUB / "google")  # the Hub mirror's google/xtreme beside local/
    runs = {}
    for variant in (None, "xtreme"):
        data_args = SimpleNamespace(task="udpos", languages="en", data_root=str(tmp / "root"), ccg_dir=None,
                                    eval_split="test", source_variant=variant)
        runs[variant] = prepare("target", SimpleNamespace(model=str(tiny), intermediate_checkpoint=None), data_args,
                                seed=1, output_dir=str(tmp / "out"))
    assert runs[None].task.test.hub_id == "google/xtreme"
    assert runs["xtreme"].task.test.hub_id == "local/udpos-xtreme"
    fp = {v: settings_fingerprint(r) for v, r in runs.items()}
    assert "source_variant" not in fp[None]
    assert rundir.settings_diff(fp[None], fp["xtreme"]) == ["source_variant: (absent) -> 'xtreme'"]
