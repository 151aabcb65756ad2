"""Sentence embeddings from the encoder's hidden states: the embeddings of many layers in one forward pass.
The two retrieval tasks built on them (every layer at once) are :mod:`xstilts.retrieval.tatoeba` (accuracy) and
:mod:`xstilts.retrieval.bucc` (mining F1).

Protocol choices are explicit arguments and stored with every result:

* ``layer``: index into Hugging Face ``hidden_states`` (0 = embedding output, L = last layer). The
  study's setting for XLM-R Large is layer 14 of 24 (XTREME's ``--specific_layer 13`` over the last
  24 outputs, and jiant's ``retrieval_layer=14``); configs/models.json gives each size the same
  relative depth (base 7/12, XL 21/36, XXL 28/48).
* ``layers``: which hidden states are pooled and evaluated in the one forward pass (``all``, ``default``
  = the configured layer, or a list). The forward pass computes every layer anyway; what a layer costs
  is memory for its embeddings (``n x hidden x 4`` bytes a side) and one search (Tatoeba) or one
  mining pass (BUCC).
* ``pooling``: ``mean`` over non-padding tokens (default; XTREME's and jiant's), with or without the
  special tokens ``<s>``/``</s>`` (XTREME includes them by default), or ``cls`` (first token).
* vectors are L2-normalised, so inner product = cosine; search is exact (:mod:`xstilts.retrieval.search`: a chunked
  torch matrix product on CUDA, ``faiss.IndexFlatIP`` otherwise; ``--search_backend`` chooses).

Embedding is streamed: sentences are sorted by token length and embedded in batches padded to their own
longest member; each batch's pooled vectors are written straight into ONE preallocated array
``[n_layers, n, hidden]`` (in memory, or a ``numpy.memmap`` on disk when it would exceed the memory
budget), so no second copy of the embeddings ever exists.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import UsageError

logger = logging.getLogger(__name__)

POOLINGS = ("mean", "cls")
LAYER_SPECS = ("all", "default")


# --------------------------------------------------------------------------------------------- layers

def resolve_layer(layer: int | None, num_layers: int, model_default: int | None) -> tuple[int, str]:
    """Explicit layer > model registry default > same relative depth as layer 14 of 24."""
    if layer is not None:
        return layer, "command line"
    if model_default is not None:
        return model_default, "model registry (configs/models.json)"
    return int(round(num_layers * 14 / 24)), "relative depth 14/24 (study setting for XLM-R Large)"


def check_layer(layer: int, num_layers: int, flag: str = "--layer") -> None:
    if not isinstance(layer, int) or not 0 <= layer <= num_layers:
        raise UsageError(f"{flag} {layer} is outside the model: valid hidden_states indices are 0..{num_layers} "
                         f"(0 = embeddings, {num_layers} = last layer)")


def parse_layers(spec: str | None, num_layers: int, default_layer: int) -> list[int]:
    """``all`` -> 0..L, ``default`` -> [default_layer], ``i,j,k`` -> those (checked, sorted, unique).

    The configured (default) layer is always included: it is the headline number."""
    spec = (spec or "all").strip()
    if spec == "all":
        layers = list(range(num_layers + 1))
    elif spec == "default":
        layers = [default_layer]
    else:
        layers = []
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                layers.append(int(part))
            except ValueError:
                raise UsageError(f"--layers {spec!r}: {part!r} is not a layer index; valid: 'all', 'default' or "
                                 f"comma-separated hidden_states indices 0..{num_layers}") from None
        if not layers:
            raise UsageError(f"--layers {spec!r} names no layer; valid: 'all', 'default' or indices 0..{num_layers}")
        for layer in layers:
            check_layer(layer, num_layers, "--layers: layer")
    return sorted(set(layers) | {default_layer})


# --------------------------------------------------------------------------------------------- embedding

def embeddings_nbytes(n: int, n_layers: int, hidden: int) -> int:
    return 4 * n * n_layers * hidden


def allocate(shape: tuple[int, int, int], *, memory_budget_bytes: float | None = None,
             spill_dir: str | os.PathLike | None = None, name: str = "emb") -> np.ndarray:
    """A float32 array for ``shape``: in memory, or a ``numpy.memmap`` under ``spill_dir`` when it is
    larger than ``memory_budget_bytes`` (the caller deletes ``spill_dir`` when done)."""
    nbytes = 4 * math.prod(shape)
    if memory_budget_bytes is None or nbytes <= memory_budget_bytes or spill_dir is None:
        return np.zeros(shape, dtype=np.float32)
    path = Path(spill_dir) / f"{name}.f32"
    path.parent.mkdir(parents=True, exist_ok=True)
    logger.info("embeddings %s (%.1f GB) exceed the memory budget (%.1f GB): memory-mapped at %s", shape,
                nbytes / 1e9, memory_budget_bytes / 1e9, path)
    return np.memmap(path, dtype=np.float32, mode="w+", shape=shape)


def _token_lengths(tokenizer, sentences: Sequence[str], max_length: int, chunk: int = 8192) -> np.ndarray:
    """Token count of every sentence (special tokens included, truncated), computed chunk by chunk so the
    token ids of a large corpus are never all held at once."""
    out = np.zeros(len(sentences), dtype=np.int64)
    for start in range(0, len(sentences), chunk):
        enc = tokenizer(list(sentences[start:start + chunk]), truncation=True, max_length=max_length)
        out[start:start + chunk] = [len(ids) for ids in enc["input_ids"]]
    return out


@torch.inference_mode()
def embed_layers(model, tokenizer, sentences: Sequence[str], *, layers: Sequence[int] | None = None,
                 pooling: str = "mean", include_special_tokens: bool = True, batch_size: int = 64,
                 max_length: int = 512, device=None, progress: bool = True, desc: str = "embed",
                 out: np.ndarray | None = None) -> np.ndarray:
    """Pooled, L2-normalised embeddings of ``sentences`` at the hidden states ``layers`` (default: all),
    from one forward pass per batch: float32 ``[len(layers), len(sentences), hidden]`` in input order.

    Batches are length-sorted (by token count) and padded to their own longest member. ``out`` (same shape;
    e.g. from :func:`allocate`) receives the vectors directly, so only one copy exists.
    """
    from tqdm.auto import tqdm

    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; valid: {', '.join(POOLINGS)}")
    n_states = model.config.num_hidden_layers + 1
    layers = list(range(n_states)) if layers is None else [int(l) for l in layers]
    for layer in layers:
        if not 0 <= layer < n_states:
            raise ValueError(f"layer {layer} outside 0..{n_states - 1}")
    device = device or next(model.parameters()).device
    n, hidden = len(sentences), model.config.hidden_size
    shape = (len(layers), n, hidden)
    if out is None:
        out = np.zeros(shape, dtype=np.float32)
    elif tuple(out.shape) != shape:
        raise ValueError(f"out has shape {tuple(out.shape)}, expected {shape}")
    if n == 0:
        return out
    order = np.argsort(_token_lengths(tokenizer, sentences, max_length), kind="stable")
    model.eval()
    for start in tqdm(range(0, n, batch_size), desc=desc, disable=not progress, leave=False):
        idx = order[start:start + batch_size]
        enc = tokenizer([sentences[i] for i in idx], padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt", return_special_tokens_mask=True)
        special = enc.pop("special_tokens_mask")
        enc = {k: v.to(device) for k, v in enc.items()}
        hidden_states = model(**enc, output_hidden_states=True).hidden_states  # tuple of [B, T, H]
        attn = enc["attention_mask"]
        mask = attn * (1 - special.to(device)) if not include_special_tokens else attn
        # a sentence with no ordinary token (empty text) falls back to all its tokens
        mask = torch.where(mask.sum(1, keepdim=True) > 0, mask, attn).unsqueeze(-1).float()
        denom = mask.sum(1).clamp(min=1.0)
        for j, layer in enumerate(layers):
            h = hidden_states[layer].float()
            v = h[:, 0] if pooling == "cls" else (h * mask).sum(1) / denom
            out[j, idx] = torch.nn.functional.normalize(v, dim=-1).cpu().numpy()
    if isinstance(out, np.memmap):
        out.flush()
    return out


def embed_all_layers(model, tokenizer, sentences: list[str], **kwargs) -> np.ndarray:
    """:func:`embed_layers` over every hidden state: ``[num_layers + 1, n, hidden]``."""
    return embed_layers(model, tokenizer, sentences, layers=None, **kwargs)
