"""Data read as the benchmark meant it (issue 18, "Data"): QA answer offsets checked at load (google/xtreme strips
contexts but keeps answer_start: HF xtreme.py@8803c182e6^:637-643), the Social IQa / Cosmos QA fallback source,
UD-POS Greek."""

import dataclasses
import logging

import pytest
from datasets import Dataset

from conftest import HUB
from xstilts.data.sources import DataSettings
from xstilts.errors import UsageError
from xstilts.formats import span_qa
from xstilts.formats.span_qa import SpanQA, check_offsets
from xstilts.tasks import TASKS


# --------------------------------------------------------------------------------------------- QA offsets

def _qa(rows):
    return Dataset.from_list([dict(id=str(i), title="", question="q", lang="en", context=c, answer_text=t,
                                   answer_start=s) for i, (c, t, s) in enumerate(rows)], features=span_qa._qa_features())


def test_check_offsets_repairs_counts_and_drops(caplog):
    far = "x" * (span_qa.REPAIR_WINDOW + 10) + "gold"
    ex = _qa([
        ("the broncos won", ["broncos"], [4]),            # ok
        ("the broncos won", ["broncos"], [5]),            # stripped context: off by one -> repaired to 4
        ("the broncos won", ["broncos", "rams"], [4, 0]),  # one answer not in the context: removed
        ("the broncos won", ["rams"], [0]),               # no answer left: dropped
        (far, ["gold"], [0]),                             # text too far from answer_start: not repaired, dropped
        ("no answer here", [], []),                       # unanswerable (SQuAD 2.0): kept as is
    ])
    with caplog.at_level(logging.WARNING):
        out, counts = check_offsets(ex, "demo")
    assert counts == {"answers_checked": 6, "offset_ok": 2, "repaired": 1, "repair_shifts": {"-1": 1},
                      "not_found": 3, "examples_dropped": 2, "repair_window_chars": span_qa.REPAIR_WINDOW}
    assert out["id"] == ["0", "1", "2", "5"]
    assert out["answer_start"] == [[4], [4], [4], []] and out["answer_text"] == [["broncos"]] * 3 + [[]]
    assert "1 of 6 answers repaired" in caplog.text and "2 example(s) left without an answer dropped" in caplog.text


def test_dev_offsets_checked_at_load_and_recorded(tmp_path):
    """XQuAD.ar as the Hub holds it (fixture: the loader's strip, 14 answer_start values one too far) read as a dev
    source: every answer repaired by -1, recorded with the source; the test source is left alone."""
    xquad = TASKS["xquad"]
    dev = dataclasses.replace(xquad.test, config="XQuAD.ar")
    task = dataclasses.replace(xquad, dev=dev, dev_language="ar")
    fmt = SpanQA()
    data = DataSettings(HUB)
    ex = fmt.load(task, task.dev, data, ["ar"])
    rec = fmt.describe_source(task.dev)["answer_offsets"]
    assert rec["repaired"] == 14 and rec["repair_shifts"] == {"-1": 14} and rec["not_found"] == 0
    assert all(c[s[0]:s[0] + len(t[0])] == t[0] for c, t, s in zip(ex["context"], ex["answer_text"], ex["answer_start"]))
    raw = fmt.load(task, task.test, data, ["ar"])  # test: scored by answer text, never rewritten
    assert fmt.describe_source(task.test) == {}
    assert sum(c[s[0]:s[0] + len(t[0])] != t[0] for c, t, s in zip(raw["context"], raw["answer_text"],
                                                                    raw["answer_start"])) == 14


# --------------------------------------------------------------------------------------------- Social IQa fallback

def test_siqa_declares_its_verified_parquet_copy():
    """lm-evaluation-harness PR #3943: lighteval/siqa == allenai/social_i_qa, train 33410 / validation 1954."""
    from xstilts.tasks.multiple_choice import SIQA_STAGE

    for source, rows in ((SIQA_STAGE.train, 33410), (SIQA_STAGE.dev, 1954)):
        fb = source.fallback
        assert fb.source.hub_id == "lighteval/siqa" and fb.source.split == source.split and fb.rows == rows
        assert fb.source.columns == source.columns and "PR #3943" in fb.evidence
        assert source.describe()["fallback"]["hub_id"] == "lighteval/siqa"


def _siqa_root(tmp_path):
    """A data root whose allenai/social_i_qa is missing and whose lighteval/siqa holds the fixture's rows."""
    import shutil

    root = tmp_path / "root"
    shutil.copytree(HUB / "allenai" / "social_i_qa", root / "lighteval" / "siqa")
    return root


def test_siqa_falls_back_verified_and_recorded(tmp_path, caplog):
    from xstilts.data.sources import check_source, content_hash, describe_source, load_source
    from xstilts.tasks.multiple_choice import SIQA_STAGE
    from xstilts.tasks.types import Fallback

    primary = SIQA_STAGE.train
    want = load_source(dataclasses.replace(primary, fallback=None), DataSettings(HUB))  # the primary's rows
    digest = content_hash(want, primary)
    source = dataclasses.replace(primary, fallback=Fallback(primary.fallback.source, len(want), digest, "test"))
    data = DataSettings(_siqa_root(tmp_path))
    check_source(source, data)  # the copy is there: the run may start
    with caplog.at_level(logging.WARNING):
        got = load_source(source, data)
    assert got.to_list() == want.to_list()
    assert "allenai/social_i_qa/default[train] could not be loaded" in caplog.text
    assert "reading its FALLBACK lighteval/siqa/default[train]" in caplog.text
    rec = describe_source(source, data)["read_from_fallback"]
    assert rec["hub_id"] == "lighteval/siqa" and rec["rows"] == len(want) and rec["content_sha256"] == digest
    assert rec["verified_by"] == "row count and content hash"
    assert "read_from_fallback" not in describe_source(source, DataSettings(HUB))  # a run that read the primary
    # a copy with other rows is refused, naming both counts / hashes
    for bad in (Fallback(primary.fallback.source, len(want) + 1, digest, "test"),
                Fallback(primary.fallback.source, len(want), "0" * 64, "test")):
        with pytest.raises(UsageError, match="not used"):
            load_source(dataclasses.replace(primary, fallback=bad), DataSettings(data.root))
    # the declared one (no hash recorded yet) says it is checked by row count only
    declared = dataclasses.replace(primary, fallback=Fallback(primary.fallback.source, len(want), None, "test"))
    fresh = DataSettings(data.root)
    load_source(declared, fresh)
    assert describe_source(declared, fresh)["read_from_fallback"]["verified_by"].startswith("row count only")


def test_content_hash_ignores_row_order_and_label_dtype():
    from xstilts.data.sources import content_hash
    from xstilts.tasks.multiple_choice import SIQA_STAGE

    rows = [dict(context="c", question="q", answerA="a", answerB="b", answerC="x", label=l) for l in ("1", "3")]
    a = Dataset.from_list(rows)
    b = Dataset.from_list(rows[::-1])
    c = Dataset.from_list([dict(r, label=int(r["label"])) for r in rows])
    assert content_hash(a, SIQA_STAGE.train) == content_hash(b, SIQA_STAGE.train) == content_hash(c, SIQA_STAGE.train)
    assert content_hash(a, SIQA_STAGE.train) != content_hash(Dataset.from_list(rows[:1]), SIQA_STAGE.train)


# --------------------------------------------------------------------------------------------- UD-POS Greek

# file names of the UD 2.5 release (ud-treebanks-v2.5/<dir>/<file>) for the languages where the rules disagree
UD25 = ["UD_Greek-GDT/el_gdt-ud-test.conllu", "UD_Ancient_Greek-PROIEL/grc_proiel-ud-test.conllu",
        "UD_Ancient_Greek-Perseus/grc_perseus-ud-test.conllu", "UD_Greek-GDT/el_gdt-ud-train.conllu",
        "UD_French-GSD/fr_gsd-ud-test.conllu", "UD_Old_French-SRCMF/fro_srcmf-ud-test.conllu",
        "UD_Arabic-PADT/ar_padt-ud-test.conllu", "UD_Arabic-NYUAD/ar_nyuad-ud-test.conllu",
        "UD_English-EWT/en_ewt-ud-test.conllu"]

GREEK_MWT = """# text = Πήγα στο σπίτι.
1\tΠήγα\tπηγαίνω\tVERB\t_\t_\t0\troot\t_\t_
2-3\tστο\t_\t_\t_\t_\t_\t_\t_\t_
2\tσε\tσε\tADP\t_\t_\t4\tcase\t_\t_
3\tτο\tο\tDET\t_\t_\t4\tdet\t_\t_
4\tσπίτι\tσπίτι\tNOUN\t_\t_\t1\tobl\t_\t_
5\t.\t.\tPUNCT\t_\t_\t1\tpunct\t_\t_

# text = Ναι.
1\tΝαι\tναι\tINTJ\t_\t_\t0\troot\t_\t_
2\t.\t.\tPUNCT\t_\t_\t1\tpunct\t_\t_
"""


def test_hub_udpos_greek_reads_ancient_greek_xtreme_does_not():
    """HF xtreme.py@8803c182e6^:922 (f"_{lang}" in path) vs XTREME download_data.sh@838c13b:61-97 (file prefix)."""
    from xstilts.prepare.udpos_audit import extra_treebanks, hub_selects, xtreme_selects

    names = {"el": "Greek", "fr": "French", "ar": "Arabic", "en": "English"}
    extra = extra_treebanks(UD25, names)
    assert extra == {
        "el": {"hub_only": ["UD_Ancient_Greek-PROIEL/grc_proiel-ud-test.conllu",
                            "UD_Ancient_Greek-Perseus/grc_perseus-ud-test.conllu"], "xtreme_only": []},
        "fr": {"hub_only": ["UD_Old_French-SRCMF/fro_srcmf-ud-test.conllu"], "xtreme_only": []},
        "ar": {"hub_only": [], "xtreme_only": ["UD_Arabic-NYUAD/ar_nyuad-ud-test.conllu"]},
    }
    assert hub_selects("UD_Greek-GDT/el_gdt-ud-test.conllu", "Greek", "test")
    assert not xtreme_selects("UD_Greek-GDT/el_gdt-ud-train.conllu", "el", "test")
    assert TASKS["udpos"].lang_codes["el"] == "Greek"  # the kit reads udpos.Greek: the Hub's merged set


def test_multi_word_tokens_hub_vs_fused_forms():
    from xstilts.prepare.ud27 import read_conllu
    from xstilts.prepare.udpos_audit import mwt_counts

    hub = read_conllu(GREEK_MWT)  # the Hub's reading (the kit's rows)
    assert hub[0]["tokens"] == ["Πήγα", "σε", "το", "σπίτι", "."] and hub[0]["pos_tags"][1:3] == ["ADP", "DET"]
    assert mwt_counts(GREEK_MWT) == {"mwt_ranges": 1, "syntactic_words_in_mwts": 2, "sentences_with_mwt": 1,
                                     "tokens_hub": 7, "tokens_fused_forms": 6}


def test_udpos_audit_cli_on_a_release_tree(tmp_path, capsys):
    import json

    from xstilts.prepare.udpos_audit import main

    for p in UD25:
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / p).write_text(GREEK_MWT, encoding="utf-8")
    assert main([str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["treebank_differences"]["el"]["hub_only"][0].startswith("UD_Ancient_Greek")
    assert out["multi_word_tokens"]["el"]["UD_Greek-GDT/el_gdt-ud-test.conllu"]["mwt_ranges"] == 1
    with pytest.raises(SystemExit) as e:
        main([str(tmp_path / "nothing")])
    assert e.value.code == 2 and "holds no UD_*" in capsys.readouterr().err
