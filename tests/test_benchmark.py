"""`make xtreme-r` / `make xtreme`: every task of a benchmark for one checkpoint, gathered into one leaderboard
folder and scored by xstilts.score. Offline on the fixtures (a partial mirror: --languages available + PARTIAL=1)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import HUB, ROOT
from test_grid import MAKE_ENV, dry_run_cells, make

from xstilts.errors import UsageError
from xstilts.scoring.xtreme import score_folders
from xstilts.study.leaderboard import gather

XTREME_R = "xnli xcopa udpos panx xquad mlqa tydiqa mewslix lareqa tatoeba".split()  # the leaderboard folders
# the kit's cells: XTREME-R's Tatoeba embeds with the SQuAD v1.1-fine-tuned encoder (task tatoeba_squad)
XTREME_R_CELLS = [t if t != "tatoeba" else "tatoeba_squad" for t in XTREME_R]


def test_dry_run_lists_the_ten_xtreme_r_cells(tmp_path):
    out = make("-n", "xtreme-r", "MODEL=xlmr-large", "INTERMEDIATE=mnli", f"RESULTS={tmp_path}/r",
               f"CKPTS={tmp_path}/c").stdout
    cells = dry_run_cells(out)
    assert cells[0] == ("run_intermediate.py", f"{tmp_path}/c/xlmr-large/mnli", False)
    # the SQuAD v1.1 fine-tuning of the mnli encoder (run_tatoeba.sh@838c13b:44-45), for Tatoeba
    assert ("run_intermediate.py", f"{tmp_path}/c/xlmr-large/mnli.tatoeba_squad", True) in cells
    results = [c for c in cells if c[1].startswith(f"{tmp_path}/r/")]
    got = sorted(c[1].split("/")[-2] for c in results)
    assert got == sorted(XTREME_R_CELLS) and len(cells) == 12
    assert all(c[2] for c in results)  # every cell starts from the phase-2 checkpoint (or its SQuAD fine-tuning)
    assert "xstilts.leaderboard" in out and "--benchmark xtreme-r" in out


def test_xtreme_r_on_the_tiny_model_scores_all_ten_tasks(tiny, tmp_path):
    res = tmp_path / "results"
    make("xtreme-r", "MODEL=tiny-2l-h64", f"MODEL_DIR_tiny-2l-h64={tiny}", "INTERMEDIATE=none", "PRESET=tiny",
         f"RESULTS={res}", f"CKPTS={tmp_path}/ckpt", f"DATA_ARGS=--data_root {HUB}", "PARTIAL=1",
         "TRAIN_ARGS=--max_steps 2 --eval_steps_or_epoch 2 --disable_tqdm true",
         "EVAL_ARGS=--languages available", timeout=600)
    out = res / "leaderboard" / "xtreme-r" / "tiny-2l-h64" / "none" / "seed1"
    scores = json.loads((out / "scores.json").read_text())
    assert sorted(scores["detailed"]) == sorted(XTREME_R)
    assert all("avg_metric" in d for d in scores["detailed"].values())
    assert 0 <= scores["overall"]["all_task"] <= 100
    # the overall score is the mean of the ten task scores (evaluate.py's all_task)
    mean = sum(d["avg_metric"] for d in scores["detailed"].values()) / 10
    assert scores["overall"]["all_task"] == pytest.approx(mean)
    assert scores["partial"]["udpos"] and scores["partial"]["panx"]  # the fixture mirror lacks languages
    # the folder scores the same with the scorer's CLI
    cli = subprocess.run([sys.executable, "-m", "xstilts.score", "--prediction_folder", str(out / "predictions"),
                          "--label_folder", str(out / "labels"), "--xtreme_version", "xtreme-r", "--partial"],
                         cwd=ROOT, env=MAKE_ENV, capture_output=True, text=True, check=True)
    assert json.loads(cli.stdout)["overall"] == scores["overall"]
    # a cell's headline number equals the scorer's for the same task
    xnli = json.loads((res / "tiny-2l-h64" / "none" / "xnli" / "seed1" / "results.json").read_text())
    assert 100 * xnli["average"]["accuracy"] == pytest.approx(scores["detailed"]["xnli"]["avg_metric"])


def test_missing_cells_and_languages_are_named(tmp_path):
    with pytest.raises(UsageError, match=r"cells without results.json.*xnli/seed1"):
        gather(tmp_path, "xtreme-r", "m", "none", 1, ["xnli"])
    # without --partial a folder with missing language files is refused, naming a file
    (tmp_path / "p" / "xnli").mkdir(parents=True)
    (tmp_path / "l" / "xnli").mkdir(parents=True)
    (tmp_path / "p" / "xnli" / "test-en.tsv").write_text("entailment\n")
    (tmp_path / "l" / "xnli" / "test-en.tsv").write_text("entailment\n")
    with pytest.raises(UsageError, match=r"missing: .*test-ar\.tsv"):
        score_folders(str(tmp_path / "p"), str(tmp_path / "l"), "xtreme-r")
    s = score_folders(str(tmp_path / "p"), str(tmp_path / "l"), "xtreme-r", partial=True)
    assert s["detailed"]["xnli"]["avg_accuracy"] == 100.0 and "ar" in s["partial"]["xnli"]
