"""The masked-LM objective's model in a multi-task run: the shared encoder with the pretrained model's own LM head.

Every other head of a mixture is initialised afresh (``multitask.init_head``); the LM head is the one the encoder
was pre-trained with (XLMRobertaForMaskedLM's ``lm_head``: dense, LayerNorm and bias read from the checkpoint's
``lm_head.*`` tensors; its output projection is the encoder's word-embedding matrix, tied as in pre-training), so
MLM continues the pre-training objective instead of starting a new one. The encoder-only hand-off
(``modeling.save_encoder_only``) drops it like every head: phase 3 never sees it.

Under DeepSpeed ZeRO-3 the tied embedding matrix belongs to the encoder's embedding module; the head uses it in
its own forward, so it is registered as an external parameter of the head (``deepspeed.zero.
register_external_parameter``) to be gathered there. (Not exercised by the CPU tests.)
"""

from __future__ import annotations

import json
import logging

import torch

from ..errors import UsageError

logger = logging.getLogger(__name__)

HEAD_PREFIX = "lm_head."
HEAD_TENSORS = ("dense.weight", "dense.bias", "layer_norm.weight", "layer_norm.bias", "bias")


def _weight_files(path_or_id: str) -> list[str]:
    """The safetensors files of a model directory or Hub id (downloaded once into the Hub cache)."""
    from transformers.utils import cached_file

    index = cached_file(path_or_id, "model.safetensors.index.json", _raise_exceptions_for_missing_entries=False)
    if index:
        with open(index, encoding="utf-8") as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        return [cached_file(path_or_id, s) for s in shards]
    single = cached_file(path_or_id, "model.safetensors", _raise_exceptions_for_missing_entries=False)
    if not single:
        raise UsageError(f"{path_or_id!r} has no safetensors weights: the masked-LM objective reads the pretrained "
                         f"LM head from them")
    return [single]


def pretrained_lm_head(path_or_id: str) -> dict[str, torch.Tensor]:
    """The pretrained LM head's own tensors (``HEAD_TENSORS``; the output projection is the tied embeddings). A
    checkpoint without them (an encoder-only checkpoint, a classifier) is a UsageError naming what is missing."""
    from safetensors import safe_open

    found: dict[str, torch.Tensor] = {}
    for path in _weight_files(path_or_id):
        with safe_open(path, framework="pt") as f:
            for key in f.keys():
                if key.startswith(HEAD_PREFIX):
                    found[key[len(HEAD_PREFIX):]] = f.get_tensor(key)
    if "bias" not in found and "decoder.bias" in found:  # older checkpoints store the tied bias as decoder.bias
        found["bias"] = found["decoder.bias"]
    missing = [k for k in HEAD_TENSORS if k not in found]
    if missing:
        raise UsageError(f"{path_or_id!r} has no pretrained LM head (missing {', '.join(HEAD_PREFIX + k for k in missing)}"
                         f"): the mlm objective reuses the model's own LM head, so it needs the pre-trained "
                         f"masked-LM checkpoint (e.g. FacebookAI/xlm-roberta-large), not an encoder-only or task model")
    return {k: found[k] for k in HEAD_TENSORS}


def masked_lm_on_encoder(fmt, task, init_path: str, encoder):
    """(the task model of the masked-LM objective on ``encoder``, with the pretrained LM head; the names of the
    head tensors taken from the checkpoint)."""
    from transformers import AutoConfig
    from transformers.integrations import is_deepspeed_zero3_enabled

    config = AutoConfig.from_pretrained(init_path)
    if not getattr(config, "tie_word_embeddings", True):
        raise UsageError(f"{init_path!r} does not tie its LM head's output projection to the word embeddings "
                         f"(tie_word_embeddings false): the kit's masked-LM head reuses the embeddings")
    tensors = pretrained_lm_head(init_path)
    # a plain torch module (not built by from_config): its tensors are whole even under ZeRO-3, whose engine
    # partitions them when it wraps the model; built without drawing from the global random stream
    with torch.random.fork_rng():
        model = fmt.model_class()(encoder, config)
    head = model.lm_head
    with torch.no_grad():
        for name, param in head.named_parameters():
            if tuple(param.shape) != tuple(tensors[name].shape):
                raise UsageError(f"{init_path!r}: lm_head.{name} has shape {tuple(tensors[name].shape)}, the model "
                                 f"expects {tuple(param.shape)}")
            param.copy_(tensors[name].to(param.dtype))
    if is_deepspeed_zero3_enabled():
        import deepspeed

        deepspeed.zero.register_external_parameter(head, model.word_embeddings)
    logger.info("masked LM: the pretrained LM head of %s reused (%s), output projection tied to the encoder's "
                "word embeddings", init_path, ", ".join(HEAD_PREFIX + k for k in HEAD_TENSORS))
    return model, [HEAD_PREFIX + k for k in HEAD_TENSORS]
