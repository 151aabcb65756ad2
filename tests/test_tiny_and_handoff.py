"""Tiny models (tokenizer layout, sizes, reload) and the encoder-only hand-off between phases."""

import json

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from conftest import HUB, run_script
from xstilts.training.modeling import load_for_task, read_meta


def test_tiny_tokenizer_has_xlmr_layout(tiny_models):
    tok = AutoTokenizer.from_pretrained(tiny_models["tiny-2l-h64"])
    assert tok.convert_ids_to_tokens([0, 1, 2, 3]) == ["<s>", "<pad>", "</s>", "<unk>"]
    assert tok.mask_token_id == len(tok) - 1
    ids = tok("Hello world", "Bonjour")["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2 and ids.count(2) == 3  # <s> A </s></s> B </s>
    # NFKC normalisation survives save/reload (full-width letters become ASCII pieces)
    assert tok.tokenize("ｆｕｌｌ") == tok.tokenize("full")
    # both sizes share one vocabulary, as the real XLM-R sizes do
    tok2 = AutoTokenizer.from_pretrained(tiny_models["tiny-4l-h128"])
    assert tok.get_vocab() == tok2.get_vocab()


def test_tiny_sizes_differ_and_reload(tiny_models):
    from transformers import AutoModel

    n = {}
    for name, path in tiny_models.items():
        m = AutoModel.from_pretrained(path)
        assert m.config.model_type == "xlm-roberta"
        n[name] = sum(p.numel() for p in m.parameters())
        info = json.loads((path / "xstilts_tiny.json").read_text())
        assert info["mlm_warmup"]["steps"] == 10
    assert n["tiny-4l-h128"] > 2 * n["tiny-2l-h64"]


def test_phase2_saves_encoder_only_and_phase3_head_is_fresh(tiny, tmp_path):
    ckpt = tmp_path / "mnli"
    rc = run_script("run_intermediate", [
        "--model", str(tiny), "--task", "mnli", "--preset", "tiny", "--data_root", str(HUB),
        "--output_dir", str(ckpt), "--max_steps", "6", "--eval_steps_or_epoch", "3", "--disable_tqdm", "true"])
    assert rc == 0
    meta = read_meta(str(ckpt))
    assert meta["finished"] and meta["encoder_only"] and meta["task"] == "mnli"
    assert meta["dropped_head_tensors"] and all(k.startswith("classifier.") for k in meta["dropped_head_tensors"])
    assert 0.0 <= meta["dev_metric"]["accuracy"] <= 1.0
    assert not (ckpt / "trainer").exists()  # intermediate Trainer checkpoints cleaned up
    cfg = json.loads((ckpt / "config.json").read_text())
    assert cfg["architectures"] == ["XLMRobertaModel"]

    from safetensors.torch import load_file

    saved = load_file(str(ckpt / "model.safetensors"))
    assert not any(k.startswith(("classifier", "lm_head")) for k in saved)

    model, handoff = load_for_task(AutoModelForSequenceClassification, str(ckpt), num_labels=3)
    # encoder equals the phase-2 encoder, tensor by tensor
    enc = model.roberta.state_dict()
    for k, v in saved.items():
        key = k[len("roberta."):] if k.startswith("roberta.") else k
        assert torch.equal(enc[key], v), k
    assert handoff["transferred_tensors"] == len(saved)
    assert handoff["fresh_head_tensors"] == sorted(k for k in model.state_dict() if k.startswith("classifier."))
    assert handoff["head_found_in_checkpoint_and_reinitialised"] == []


def test_a_full_classifier_checkpoint_never_lends_its_head(tiny, tmp_path):
    """The MNLI-head-reused-for-XNLI trap: a head found in a checkpoint is re-initialised."""
    full = AutoModelForSequenceClassification.from_pretrained(tiny, num_labels=3)
    with torch.no_grad():
        full.classifier.out_proj.weight.fill_(0.5)
    full.save_pretrained(tmp_path / "full")
    AutoTokenizer.from_pretrained(tiny).save_pretrained(tmp_path / "full")
    model, handoff = load_for_task(AutoModelForSequenceClassification, str(tmp_path / "full"), num_labels=3)
    assert handoff["head_found_in_checkpoint_and_reinitialised"] == ["classifier"]
    assert not torch.allclose(model.classifier.out_proj.weight, torch.full_like(model.classifier.out_proj.weight, 0.5))
