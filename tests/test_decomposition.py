"""The gain decomposition (xstilts.study.decompose) on constructed results trees where every part is known exactly,
and the cited language table it groups by (xstilts.tasks.languages.LANGUAGES)."""

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from test_report import LARGE, SMALL, make_result, table_after
from xstilts.run.results import write_results
from xstilts.study import decompose
from xstilts.study.report import build_report, collect, compute_gains, group_results
from xstilts.tasks import TASKS
from xstilts.tasks.languages import FAMILIES, LANGUAGE_SOURCES, LANGUAGES, SCRIPT_NAMES, SYNTHETIC

# baseline per language; the intermediate arm adds DELTA per language (both sizes, large with half the deltas)
BASE = {"en": 0.80, "de": 0.72, "fr": 0.74, "sw": 0.55, "hi": 0.60, "zh": 0.66, "ar": 0.62}
DELTA = {"en": 0.030, "de": 0.010, "fr": 0.020, "sw": 0.060, "hi": 0.040, "zh": 0.000, "ar": 0.020}
SEED_SHIFT = {1: 0.0, 2: 0.01, 3: -0.004}  # the same shift on every language of a seed
SCALE = {"tiny-2l-h64": 1.0, "tiny-4l-h128": 0.5}


def write_tree(root: Path, seeds=(1, 2, 3), metric_n: int | None = None) -> Path:
    for model in (SMALL, LARGE):
        for inter in (None, "mnli"):
            for seed in seeds:
                vals = {l: v + SEED_SHIFT[seed] + (SCALE[model["name"]] * DELTA[l] if inter else 0.0)
                        for l, v in BASE.items()}
                d = make_result(model, inter, "xnli", seed, vals)
                if metric_n is not None:
                    for m in d["per_language"].values():
                        m["n"] = metric_n
                write_results(root / model["name"] / (inter or "none") / "xnli" / f"seed{seed}" / "results.json", d)
    return root


def expected(scale: float) -> dict:
    others = [l for l in BASE if l != "en"]
    d_en = scale * DELTA["en"]
    d_x = scale * sum(DELTA[l] for l in others) / len(others)
    return {"english": d_en, "others": d_x, "gap_change": d_en - d_x,
            "all": scale * sum(DELTA.values()) / len(DELTA)}


def test_decomposition_is_exact_and_the_identities_hold(tmp_path):
    groups = group_results(collect(write_tree(tmp_path / "r")))
    decs = {d.model: d for d in decompose.decompose(groups, 500, 0)}
    for model, scale in SCALE.items():
        d, want = decs[model], expected(scale)
        for name, value in want.items():
            assert d.parts[name].value == pytest.approx(value, abs=1e-12), (model, name)
        m = len(d.languages) - 1
        assert m == 6 and d.languages[0] == "en"
        p = {k: v.value for k, v in d.parts.items()}
        assert p["others"] == pytest.approx(p["english"] - p["gap_change"], abs=1e-12)
        assert p["all"] == pytest.approx(p["english"] - m / (m + 1) * p["gap_change"], abs=1e-12)
        assert p["all"] == pytest.approx(d.average_gain, abs=1e-12)  # the gain table's number
        base_gap = BASE["en"] - sum(v for l, v in BASE.items() if l != "en") / 6
        assert d.gap_base == pytest.approx(base_gap, abs=1e-12)  # a seed shifts every language alike
        assert d.gap_inter - d.gap_base == pytest.approx(want["gap_change"], abs=1e-12)
        # by script (CLDR): Latin = de fr sw, Devanagari hi, Han zh, Arabic ar; by family (Glottolog)
        assert d.scripts["Latn"].languages == ["de", "fr", "sw"]
        assert d.scripts["Latn"].value == pytest.approx(scale * (0.01 + 0.02 + 0.06) / 3, abs=1e-12)
        assert d.scripts["Deva"].value == pytest.approx(scale * 0.04, abs=1e-12)
        assert d.families["Indo-European"].languages == ["de", "fr", "hi"]
        assert d.families["Indo-European"].value == pytest.approx(scale * (0.01 + 0.02 + 0.04) / 3, abs=1e-12)
        assert d.families["Atlantic-Congo"].value == pytest.approx(scale * 0.06, abs=1e-12)
        assert set(d.families) == {"Indo-European", "Atlantic-Congo", "Sino-Tibetan", "Afro-Asiatic"}
        assert d.method == "seeds" and d.n_seeds == d.n_seeds_baseline == 3


def test_seed_interval_of_the_whole_gain_is_the_gain_tables(tmp_path):
    groups = group_results(collect(write_tree(tmp_path / "r")))
    gains = {(g.model, g.target): g for g in compute_gains(groups)}
    for d in decompose.decompose(groups, 2000, 0):
        g = gains[(d.model, "xnli")]
        assert (d.parts["all"].lo, d.parts["all"].hi) == pytest.approx((g.ci_low, g.ci_high), abs=1e-12)
        for part in d.parts.values():
            assert part.lo <= part.value + 1e-12 and part.value <= part.hi + 1e-12


def test_identical_seed_shifts_give_a_degenerate_gap_interval(tmp_path):
    """Every seed shifts all languages equally, so the gap of any resampled mean is the same: the gap-change
    interval is a point (the seeds carry no information about the gap), while the all-language one is not."""
    groups = group_results(collect(write_tree(tmp_path / "r")))
    d = decompose.decompose(groups, 500, 0)[0]
    assert d.parts["gap_change"].hi - d.parts["gap_change"].lo == pytest.approx(0.0, abs=1e-12)
    assert d.parts["all"].hi - d.parts["all"].lo > 0.005


def test_one_seed_accuracy_uses_a_test_example_bootstrap(tmp_path):
    n = 2000
    groups = group_results(collect(write_tree(tmp_path / "r", seeds=(1,), metric_n=n)))
    d = decompose.decompose(groups, 4000, 0)[0]
    assert d.method == "examples"
    # the English gain's interval: a difference of two independent binomial proportions
    p0, p1 = BASE["en"], BASE["en"] + DELTA["en"]
    width = 2 * 1.959964 * math.sqrt(p0 * (1 - p0) / n + p1 * (1 - p1) / n)
    assert d.parts["english"].hi - d.parts["english"].lo == pytest.approx(width, rel=0.08)
    # the zero-shot gain averages 6 languages' independent draws: its interval is narrower
    assert d.parts["others"].hi - d.parts["others"].lo < width


def test_one_seed_f1_has_no_interval_and_retrieval_is_not_decomposed(tmp_path):
    root = tmp_path / "r"
    for inter in (None, "mnli"):
        d = make_result(SMALL, inter, "udpos", 1, {"en": 0.9, "de": 0.8 + (0.02 if inter else 0.0)})
        d["metric"] = "f1"
        d["per_language"] = {l: {"f1": m["accuracy"], "n": 30} for l, m in d["per_language"].items()}
        d["average"] = {"f1": d["average"]["accuracy"]}
        write_results(root / "tiny-2l-h64" / (inter or "none") / "udpos" / "seed1" / "results.json", d)
        write_results(root / "tiny-2l-h64" / (inter or "none") / "tatoeba" / "seed1" / "results.json",
                      make_result(SMALL, inter, "tatoeba", 1, {"de": 0.5, "ar": 0.4}, kind="retrieval", layer=1))
    decs = decompose.decompose(group_results(collect(root)), 200, 0)
    (d,) = decs
    assert d.target == "udpos" and d.method == "none" and math.isnan(d.parts["english"].lo)
    assert d.parts["others"].value == pytest.approx(0.02)
    md = Path(build_report(root, tmp_path / "out", published=None)["report_md"]).read_text(encoding="utf-8")
    assert "Not decomposable (no English test score in both arms): tatoeba." in md
    row = table_after(md, "## What the gain is made of: English gain and transfer gap")[0]
    assert row["English gain ΔE"] == "+0.0 [n/a]" and row["CI over"] == "none"


def test_report_section_csv_and_figures(tmp_path):
    paths = build_report(write_tree(tmp_path / "r"), tmp_path / "out", published=None)
    md = Path(paths["report_md"]).read_text(encoding="utf-8")
    rows = {r["model"]: r for r in table_after(md, "## What the gain is made of: English gain and transfer gap")}
    small = rows["tiny-2l-h64"]
    assert small["English gain ΔE"].startswith("+3.0 [") and small["gap change Δgap"] == "+0.5 [+0.5, +0.5]"
    assert small["zero-shot gain ΔX (non-English mean)"].startswith("+2.5 [") and small["CI over"] == "seeds"
    assert "**ΔX = ΔE − Δgap**" in md and "**ΔA = ΔE − m/(m+1) · Δgap**" in md
    scripts = {r["model"]: r for r in table_after(md, "**xnli, by script** (non-English languages; gain in points ×100)")}
    assert scripts["tiny-2l-h64"]["Latin (de, fr, sw)"].startswith("+3.0 [")
    assert LANGUAGE_SOURCES["family"].split(",")[0] in md and "Glottolog 5.1" in md and "CLDR 49" in md
    for key in ("decomposition_png", "groups_png"):
        assert Path(paths[key]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(paths["decomposition_csv"], newline="") as f:
        recs = list(csv.DictReader(f))
    gap = next(r for r in recs if r["model"] == "tiny-2l-h64" and r["component"] == "gap_change")
    assert float(gap["gain"]) == pytest.approx(expected(1.0)["gap_change"], abs=1e-11)
    fam = next(r for r in recs if r["model"] == "tiny-4l-h128" and r["component"] == "family"
               and r["group"] == "Indo-European")
    assert fam["languages"] == "de fr hi" and float(fam["gain"]) == pytest.approx(0.5 * 0.07 / 3, abs=1e-11)


# ----------------------------------------------------------------------------- the language table
def test_every_real_language_of_every_task_is_in_the_table():
    synthetic = set(SYNTHETIC)
    used = {l for t in TASKS.values() for l in t.all_languages if l not in synthetic}
    assert used and used <= set(LANGUAGES), sorted(used - set(LANGUAGES))
    assert len(LANGUAGES) == 50
    for code, lang in LANGUAGES.items():
        assert lang.script in SCRIPT_NAMES and len(lang.iso639_3) == 3 and len(lang.glottocode) == 8, code
        assert lang.family and lang.genus and lang.wals, code
    assert set(LANGUAGE_SOURCES) >= {"family", "genus", "script"}
    # spot checks against the cited sources (Glottolog 5.1, WALS 2020.4, CLDR)
    assert LANGUAGES["tr"].family == "Turkic" and LANGUAGES["sw"].family == "Atlantic-Congo"
    assert LANGUAGES["ur"].script == "Arab" and LANGUAGES["kk"].script == "Cyrl" and LANGUAGES["fa"].genus == "Iranian"


def test_retrieval_family_pools_derive_from_the_table():
    pooled = [c for codes in FAMILIES.values() for c in codes]
    assert sorted(pooled) == sorted(LANGUAGES) and len(pooled) == len(set(pooled))  # a partition
    assert set(FAMILIES["Indo-Iranian"]) == {"bn", "fa", "gu", "hi", "mr", "pa", "ur"}
    assert set(FAMILIES["East Asian"]) == {"ja", "ko", "my", "zh"}
