"""Loading encoders with fresh task heads, and the encoder-only hand-off between phases.

Phase 2 saves the *encoder only* (no task head) so that phase 3 and retrieval always start from
the intermediate-trained encoder with a freshly initialised head. Loading a full MNLI classifier
for XNLI would silently reuse the MNLI head (a trap of older kits); here a head found in a
checkpoint is re-initialised and the fact is logged and stored with the result.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from pathlib import Path

import torch

from ..errors import UsageError
from ..run.layout import META_FILE

logger = logging.getLogger(__name__)


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def load_tokenizer(path_or_id: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path_or_id)


def read_meta(path_or_id: str) -> dict | None:
    p = Path(path_or_id) / META_FILE
    return json.loads(p.read_text()) if p.exists() else None


def check_intermediate_checkpoint(path: str, base_model_path: str | None = None) -> dict:
    """A phase-2 checkpoint must exist, be ours (meta file), and match the chosen base model."""
    p = Path(path)
    if not (p / "config.json").exists():
        raise UsageError(f"intermediate checkpoint {path!r} does not exist or has no config.json; "
                         f"run run_intermediate.py first (make target: checkpoints/<model>/<task>)")
    meta = read_meta(path)
    if meta is None:
        raise UsageError(f"{path!r} has no {META_FILE}: it is not a phase-2 checkpoint written by run_intermediate.py")
    if not meta.get("finished"):
        raise UsageError(f"intermediate checkpoint {path!r} is not finished (phase 2 did not complete); re-run it")
    check_weight_files(p)
    if base_model_path is not None:
        from transformers import AutoConfig

        a = AutoConfig.from_pretrained(base_model_path)
        b = AutoConfig.from_pretrained(path)
        for key in ("model_type", "vocab_size", "hidden_size", "num_hidden_layers"):
            if getattr(a, key, None) != getattr(b, key, None):
                raise UsageError(f"intermediate checkpoint {path!r} has {key}={getattr(b, key, None)} but model "
                                 f"{base_model_path!r} has {key}={getattr(a, key, None)}: it was trained from another model")
        ta, tb = _tokenizer_vocab_digest(base_model_path), _tokenizer_vocab_digest(path)
        if ta and tb and ta != tb:
            raise UsageError(f"intermediate checkpoint {path!r} has a different tokenizer vocabulary than model "
                             f"{base_model_path!r}: it was trained from another model")
    return meta


def check_weight_files(directory: Path) -> None:
    """The safetensors weights of a model directory are all there and whole: every file (``model.safetensors``,
    or each shard its index names) opens and its header covers the file. A file cut short by a full disk or a
    killed copy fails here with its name, before any model loads (reads the headers only)."""
    from safetensors import SafetensorError, safe_open

    index = directory / "model.safetensors.index.json"
    if index.exists():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
            raise UsageError(f"{index} is not a valid safetensors index ({e!r}); copy the checkpoint again") from None
    else:
        shards = ["model.safetensors"]
    for name in shards:
        f = directory / name
        if not f.is_file():
            raise UsageError(f"{directory} lacks its weights file {name}; the checkpoint is incomplete: copy it "
                             f"again or re-run phase 2")
        try:
            with safe_open(str(f), framework="pt"):
                pass
        except (SafetensorError, OSError) as e:
            raise UsageError(f"{f} is damaged ({e}): truncated or not a safetensors file. Copy the checkpoint "
                             f"again or re-run phase 2 (run_intermediate.py --overwrite)") from None


def _head_prefixes(model) -> list[str]:
    base = model.base_model_prefix
    return sorted({k.split(".")[0] for k in model.state_dict() if not k.startswith(base + ".")})


def safe_from_pretrained(auto_cls, path_or_id: str, **kwargs):
    """from_pretrained with safetensors only (no pickle), and no remote code."""
    try:
        return auto_cls.from_pretrained(path_or_id, use_safetensors=True, trust_remote_code=False, **kwargs)
    except OSError as e:
        if "safetensors" in str(e).lower() or "model.safetensors" in str(e):
            raise UsageError(f"{path_or_id!r} has no safetensors weights; the kit loads safetensors only (never "
                             f"pickled .bin files). Use a revision that has them or convert the weights once "
                             f"in a trusted environment. ({e})") from None
        raise


def _tokenizer_vocab_digest(path: str) -> str | None:
    import hashlib

    p = Path(path) / "tokenizer.json"
    if not p.exists():
        return None
    model = json.loads(p.read_text(encoding="utf-8")).get("model", {})
    return hashlib.sha256(json.dumps(model.get("vocab"), sort_keys=True).encode()).hexdigest()


@torch.no_grad()
def reinit_module(module: torch.nn.Module, std: float) -> None:
    """BERT-style fresh initialisation (normal(0, std) weights, zero biases, unit LayerNorm).

    Done explicitly: transformers 5's ``_init_weights`` skips tensors marked as loaded from a checkpoint.
    """
    for m in module.modules():
        if isinstance(m, torch.nn.Linear):
            m.weight.normal_(0.0, std)
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, torch.nn.Embedding):
            m.weight.normal_(0.0, std)
        elif isinstance(m, torch.nn.LayerNorm):
            m.weight.fill_(1.0)
            m.bias.zero_()


def load_for_task(auto_cls, path_or_id: str, **config_kwargs):
    """Load ``auto_cls`` (e.g. AutoModelForSequenceClassification) with a guaranteed fresh head.

    Returns (model, handoff) where handoff lists the tensors transferred from the checkpoint and
    the freshly initialised head tensors.
    """
    model, info = safe_from_pretrained(auto_cls, path_or_id, output_loading_info=True,
                                       ignore_mismatched_sizes=True, **config_kwargs)
    state = model.state_dict()
    base = model.base_model_prefix
    head_keys = [k for k in state if not k.startswith(base + ".")]
    missing = set(info.get("missing_keys", [])) | {k[0] if isinstance(k, tuple) else k
                                                      for k in info.get("mismatched_keys", [])}
    reused = [k for k in head_keys if k not in missing]
    reinitialised = []
    if reused:
        # The checkpoint carried a task head (e.g. a full MNLI classifier). Never reuse it.
        for prefix in sorted({k.split(".")[0] for k in reused}):
            reinit_module(getattr(model, prefix), getattr(model.config, "initializer_range", 0.02))
            reinitialised.append(prefix)
        logger.warning("checkpoint %s contained task-head weights %s; they were re-initialised (fresh head)",
                       path_or_id, reinitialised)
    transferred = sorted(k for k in state if k.startswith(base + ".") and k not in missing)
    fresh_encoder = sorted(k for k in state if k.startswith(base + ".") and k in missing)
    handoff = {
        "from": path_or_id,
        "transferred_tensors": len(transferred),
        "fresh_head_tensors": sorted(head_keys),
        "head_found_in_checkpoint_and_reinitialised": reinitialised,
        "encoder_tensors_not_in_checkpoint": fresh_encoder,
        "unexpected_checkpoint_tensors": sorted(info.get("unexpected_keys", []))[:50],
    }
    logger.info("hand-off from %s: %d encoder tensors transferred, fresh head tensors: %s",
                path_or_id, len(transferred), ", ".join(head_keys))
    if fresh_encoder:
        logger.warning("encoder tensors not found in checkpoint (randomly initialised): %s", fresh_encoder)
    return model, handoff


def save_encoder_only(model, tokenizer, out_dir: str | Path, meta: dict) -> dict:
    """Save the base encoder (no head) + tokenizer; returns the meta to write next (the caller writes
    META_FILE last: its presence with ``finished`` marks a complete checkpoint).

    Files are written to a staging folder first and moved in only once all of them exist, after the
    old meta file (if any) is removed, so a crash never leaves a "finished" checkpoint with mixed files.
    """
    import shutil

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    staging = out / ".staging-encoder"
    if staging.exists():
        shutil.rmtree(staging)
    encoder = model.base_model
    config = copy.deepcopy(encoder.config)
    config.architectures = [type(encoder).__name__]
    config.num_labels = 2  # resets id2label/label2id to the library default: no task labels travel
    config.problem_type = None
    old_config = encoder.config
    encoder.config = config
    try:
        encoder.save_pretrained(staging, safe_serialization=True)
    finally:
        encoder.config = old_config
    tokenizer.save_pretrained(staging)
    (out / META_FILE).unlink(missing_ok=True)
    for f in sorted(staging.iterdir()):
        os.replace(f, out / f.name)
    staging.rmdir()
    dropped = [k for k in model.state_dict() if not k.startswith(model.base_model_prefix + ".")]
    return dict(meta, encoder_only=True, dropped_head_tensors=dropped)


def load_encoder(path_or_id: str):
    """Bare encoder for retrieval (hidden states only; no pooler)."""
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(path_or_id)
    kwargs = {"add_pooling_layer": False} if config.model_type in ("xlm-roberta", "xlm-roberta-xl", "roberta", "bert") else {}
    model, info = safe_from_pretrained(AutoModel, path_or_id, output_loading_info=True, **kwargs)
    if info.get("missing_keys"):
        logger.warning("encoder tensors missing from %s (random): %s", path_or_id, info["missing_keys"][:20])
    return model
