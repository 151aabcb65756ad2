"""Multilingual MLM co-training (task mlm, xstilts/formats/masked_lm.py, xstilts/training/mlm.py): the masking
statistics and special tokens, the corpus (per-language cap, held-out documents, temperature sampling), the
pretrained LM head reused on the shared encoder and dropped at the encoder-only hand-off, the mixture's MLM share,
and the bad inputs (exit 2 before any model loads)."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch
from safetensors import safe_open

from conftest import HUB, run_script
from xstilts.data.sources import DataSettings
from xstilts.errors import UsageError
from xstilts.formats import masked_lm as M
from xstilts.tasks import TASKS
from xstilts.training import multitask as MT
from xstilts.training.mlm import pretrained_lm_head

from test_multitask import _phase2  # noqa: E402

MLM_LANGS = "en,de,ar,zh,ja"


# ----------------------------------------------------------------------------------------------- masking
def test_masking_statistics_and_special_tokens():
    vocab, special_ids, mask_id = 5000, torch.tensor([0, 1, 2, 3, 4999]), 4999  # <s> <pad> </s> <unk> ... <mask>
    g = torch.Generator().manual_seed(0)
    b, n = 4000, 64
    ids = torch.randint(5, vocab - 1, (b, n), generator=g)
    ids[:, 0] = 0
    lengths = torch.randint(8, n, (b,), generator=g)
    for i, k in enumerate(lengths.tolist()):  # </s> then padding
        ids[i, k] = 2
        ids[i, k + 1:] = 1
    ids[::7, 3] = 3  # some <unk>
    special = torch.isin(ids, special_ids)
    keep = torch.ones(vocab, dtype=torch.bool)
    keep[special_ids] = False
    replacement = torch.nonzero(keep).flatten()
    inputs, labels = M.mask_tokens(ids, special, mask_id=mask_id, replacement_ids=replacement, generator=g)

    chosen = labels != M.IGNORE
    assert not (chosen & special).any()  # special tokens and padding never chosen
    assert torch.equal(labels[chosen], ids[chosen])  # labels: the original tokens
    assert torch.equal(inputs[~chosen], ids[~chosen])  # nothing else changes
    maskable = (~special).sum(1)
    per_seq = chosen.sum(1)  # fairseq: int(0.15 * n + U), i.e. floor or ceil of 0.15 n
    assert ((per_seq == torch.floor(0.15 * maskable)) | (per_seq == torch.ceil(0.15 * maskable))).all()
    assert per_seq.sum().item() / maskable.sum().item() == pytest.approx(0.15, abs=0.002)
    masked = chosen & (inputs == mask_id)
    unchanged = chosen & (inputs == ids)
    randomised = chosen & ~masked & ~unchanged
    total = chosen.sum().item()
    assert masked.sum().item() / total == pytest.approx(0.8, abs=0.01)
    assert randomised.sum().item() / total == pytest.approx(0.1, abs=0.01)  # (a random token equal to the original
    assert unchanged.sum().item() / total == pytest.approx(0.1, abs=0.01)   # counts as unchanged: 1/5000 of them)
    assert not torch.isin(inputs[randomised], special_ids).any()  # random tokens are never special


def test_collator_masks_training_rows_and_keeps_fixed_dev_masks(tiny):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    collate = M.MaskingCollator(tok, generator=torch.Generator().manual_seed(1))
    rows = [{"input_ids": tok("Maria bought a red bicycle at the market on Monday.")["input_ids"]},
            {"input_ids": tok("Tom sang.")["input_ids"]}]
    batch = collate(rows)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    assert batch["input_ids"][1, len(rows[1]["input_ids"]):].eq(tok.pad_token_id).all()
    assert batch["labels"][1, len(rows[1]["input_ids"]):].eq(M.IGNORE).all()
    assert batch["labels"][:, 0].eq(M.IGNORE).all()  # <s> never chosen
    fixed = [{"input_ids": [0, 5, 6, 2], "labels": [-100, 5, -100, -100]}]
    out = collate(fixed)  # dev rows carry their masks: padded, never re-masked
    assert out["input_ids"].tolist() == [[0, 5, 6, 2]] and out["labels"].tolist() == [[-100, 5, -100, -100]]


def test_language_rates_follow_alpha():
    counts = {"en": 10000, "de": 1000, "sw": 10}
    r = M.language_rates(counts, 0.3)
    w = {k: v ** 0.3 for k, v in counts.items()}
    assert r == pytest.approx({k: v / sum(w.values()) for k, v in w.items()})
    assert M.language_rates(counts, 1.0) == pytest.approx({k: v / 11010 for k, v in counts.items()})
    shares = M.largest_remainder(r, 11010)
    assert sum(shares.values()) == 11010 and shares["sw"] > 10 * 10 and shares["en"] < 10000


# ----------------------------------------------------------------------------------------------- corpus
def test_corpus_cap_dev_documents_segments_and_sampling(tiny):
    from transformers import AutoTokenizer

    task = TASKS["mlm"]
    fmt = M.MaskedLM(languages=MLM_LANGS, max_documents=3, dev_documents=1, alpha=0.3)
    data = DataSettings(HUB)
    train = fmt.load(task, task.train, data)
    dev = fmt.load(task, task.dev, data)
    langs = MLM_LANGS.split(",")
    # fixture: en 2 documents (XQuAD), de/ar/zh 6 (2 XQuAD + 4 Tatoeba), ja 4 (Tatoeba)
    assert Counter(dev["lang"]) == {l: 1 for l in langs}
    assert Counter(train["lang"]) == {"en": 1, "de": 3, "ar": 3, "zh": 3, "ja": 3}  # the cap: 3 per language
    assert not set(train["text"]) & set(dev["text"])  # held-out documents are never trained on
    assert fmt.load(task, task.train, data)["text"] == train["text"]  # the corpus order is fixed

    tok = AutoTokenizer.from_pretrained(tiny)
    segs = fmt.featurize(train, tok, 32, task, train=True)
    for ids in segs["input_ids"]:
        assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id and len(ids) <= 32
    counts = fmt.stats["train_segments"]
    shares = M.largest_remainder(M.language_rates({l: counts[l]["segments"] for l in langs}, 0.3),
                                 sum(counts[l]["segments"] for l in langs))
    assert Counter(segs["lang"]) == shares  # resampled to p_L ~ n_L ** 0.3 at the corpus size
    dev_segs = fmt.featurize(dev, tok, 32, task, train=False)
    again = fmt.featurize(dev, tok, 32, task, train=False)
    assert dev_segs["labels"] == again["labels"] and any(l != M.IGNORE for row in dev_segs["labels"] for l in row)


# ----------------------------------------------------------------------------------------------- the model
def test_pretrained_lm_head_is_reused_on_the_shared_encoder(tiny):
    """The mlm task model of a mixture computes exactly what the pretrained XLMRobertaForMaskedLM computes at the
    chosen positions: its own head, its tied embeddings (not a fresh head); the other task's head is fresh."""
    from transformers import XLMRobertaForMaskedLM

    from xstilts.formats import get_format

    tasks = [TASKS["mnli"], TASKS["mlm"]]
    fmts = [get_format(t.format) for t in tasks]
    model, handoff = MT.build_model(tasks, fmts, str(tiny), seed=1)
    assert handoff["pretrained_head_tensors"] == {"mlm": sorted(f"heads.mlm.lm_head.{k}" for k in
                                                                ("dense.weight", "dense.bias", "layer_norm.weight",
                                                                 "layer_norm.bias", "bias"))}
    assert "mlm" not in handoff["fresh_head_tensors"] and "mnli" in handoff["fresh_head_tensors"]
    mlm = model.task_models[1]
    assert mlm.encoder is model.encoder and mlm.word_embeddings is model.encoder.embeddings.word_embeddings.weight
    ref = XLMRobertaForMaskedLM.from_pretrained(tiny).eval()
    assert torch.equal(model.heads["mlm"]["lm_head"].dense.weight, ref.lm_head.dense.weight)
    model.eval()
    ids = torch.tensor([[0, 10, 11, 12, 13, 14, 2], [0, 20, 21, 22, 2, 1, 1]])
    att = (ids != 1).long()
    labels = torch.full_like(ids, M.IGNORE)
    labels[0, 2], labels[0, 4], labels[1, 3] = 11, 13, 22
    with torch.no_grad():
        out = model(task_id=torch.tensor([1, 1]), input_ids=ids, attention_mask=att, labels=labels)
        want = ref(input_ids=ids, attention_mask=att, labels=labels)
    assert out.loss.item() == pytest.approx(want.loss.item(), rel=1e-5)
    chosen = labels != M.IGNORE
    assert torch.equal(out.predictions[chosen], want.logits.argmax(-1)[chosen])
    # an encoder-only checkpoint has no LM head: refused, naming what is missing
    assert set(pretrained_lm_head(str(tiny))) == {"dense.weight", "dense.bias", "layer_norm.weight",
                                                  "layer_norm.bias", "bias"}


def test_with_auxiliary_share_and_epoch():
    rates, per_epoch = MT.with_auxiliary({"mnli": 0.6, "qqp": 0.4}, 100, ["mlm"], 0.2)
    assert rates == pytest.approx({"mnli": 0.48, "qqp": 0.32, "mlm": 0.2}) and per_epoch == 125
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(UsageError, match="--mlm_proportion must be strictly between 0 and 1"):
            MT.with_auxiliary({"mnli": 1.0}, 10, ["mlm"], bad)


def test_mnli_mlm_end_to_end_and_head_dropped_at_handoff(tiny, tmp_path, capsys):
    out = tmp_path / "mnli+mlm"
    rc = _phase2(tiny, out, "mnli,mlm", "--mlm_languages", MLM_LANGS, "--max_train_samples", "48",
                 "--num_train_epochs", "1", "--mlm_proportion", "0.4")
    assert rc == 0, capsys.readouterr().err
    meta = json.loads((out / "xstilts_meta.json").read_text())
    mix = meta["multitask"]
    assert mix["rates"]["mlm"] == pytest.approx(0.4) and mix["auxiliary"]["proportion"] == 0.4
    assert meta["dev_metric"]["per_task"]["mlm"]["selected_on"] is False
    assert meta["dev_metric"]["average"] == pytest.approx(meta["dev_metric"]["per_task"]["mnli"]["accuracy"])
    assert mix["batches_drawn"]["mlm"] > 0 and mix["batches_drawn"]["mnli"] > 0
    assert meta["preset"]["task_entry"] == "mnli"  # mnli+mlm trains with mnli's preset entry
    assert meta["hyperparameters"]["mlm_proportion"] == 0.4
    assert meta["run_settings"]["mlm"]["mlm_languages"] == MLM_LANGS
    assert meta["data"]["mlm"]["format_settings"]["documents"]["de"]["dev"] == 1
    # the hand-off: no head travels, the LM head included
    assert {f"heads.mlm.lm_head.{k}" for k in ("dense.weight", "bias")} <= set(meta["dropped_head_tensors"])
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert not [k for k in keys if "lm_head" in k or k.startswith("heads.")]
    with pytest.raises(UsageError, match="has no pretrained LM head"):
        pretrained_lm_head(str(out))
    # phase 3 from it: a fresh classifier, nothing reused
    rc = run_script("run_target", ["--model", str(tiny), "--intermediate_checkpoint", str(out), "--task", "xnli",
                                   "--languages", "en,de", "--preset", "tiny", "--data_root", str(HUB),
                                   "--max_train_samples", "32", "--num_train_epochs", "1",
                                   "--output_dir", str(tmp_path / "xnli"), "--disable_tqdm", "true"])
    assert rc == 0
    result = json.loads((tmp_path / "xnli" / "results.json").read_text())
    assert result["intermediate_task"] == "mnli+mlm" and result["zero_shot"] is True
    assert result["handoff"]["head_found_in_checkpoint_and_reinitialised"] == []


# ----------------------------------------------------------------------------------------------- bad input
@pytest.fixture
def no_model_loading(monkeypatch):
    import transformers

    def forbidden(*a, **k):
        raise AssertionError("a model was loaded before input validation finished")

    for cls in (transformers.AutoModelForSequenceClassification, transformers.AutoModel,
                transformers.AutoModelForMaskedLM):
        monkeypatch.setattr(cls, "from_pretrained", forbidden)


@pytest.mark.parametrize("script,argv,message", [
    ("run_intermediate", ["--tasks", "mlm"], "mlm is an auxiliary objective: it joins an intermediate task, listed "
                                             "after it (e.g. --tasks mnli,mlm; grid name mnli+mlm); intermediate tasks: mnli"),
    ("run_intermediate", ["--tasks", "mlm,mnli"], "--tasks mlm,mnli: list mlm after the task(s) it joins, e.g. --tasks mnli,mlm"),
    ("run_intermediate", ["--task", "mlm"], "task 'mlm' is an auxiliary phase-2 objective"),
    ("run_target", ["--task", "mlm"], "task 'mlm' is an auxiliary phase-2 objective"),
    ("run_target", ["--task", "mlm"], "valid target tasks: xnli, pawsx"),
    ("run_intermediate", ["--tasks", "mnli,mlm", "--mlm_languages", "en,klingon"],
     "--mlm_languages: unknown language(s) klingon; valid choices: xtreme, xtreme-r, all, or a comma list of af, ar"),
    ("run_intermediate", ["--tasks", "mnli,mlm"],  # XTREME's 40 by default: the fixture mirror lacks ms, my, yo
     "MLM corpus, language 'ms' (--mlm_languages xtreme): dataset 'wikimedia/wikipedia' under data root"),
    ("run_intermediate", ["--tasks", "mnli,mlm"], "has no config '20231101.ms'; available configs: 20231101.af"),
    ("run_intermediate", ["--tasks", "mnli,mlm", "--mlm_proportion", "1.5", "--mlm_languages", "en"],
     "--mlm_proportion must be strictly between 0 and 1"),
    ("run_intermediate", ["--tasks", "mnli,qqp", "--mlm_proportion", "0.3"], "--mlm_proportion 0.3 is the share of MLM "
                                                                           "batches, but --tasks mnli,qqp has no mlm"),
    ("run_intermediate", ["--tasks", "mnli,mlm", "--mlm_languages", "en", "--mlm_alpha", "0"], "--mlm_alpha must be in (0, 1]"),
])
def test_mlm_bad_input_exits_2_before_any_model_loads(script, argv, message, tiny, tmp_path, capsys,
                                                      no_model_loading):
    rc = run_script(script, [*argv, "--model", str(tiny), "--data_root", str(HUB), "--preset", "tiny",
                             "--output_dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert message in err
