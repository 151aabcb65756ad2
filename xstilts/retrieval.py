"""Sentence retrieval with the encoder's hidden states: embeddings of every layer in one pass, FAISS search.

Protocol choices are explicit arguments and stored with every result:

* ``layer``: index into Hugging Face ``hidden_states`` (0 = embedding output, L = last layer). The
  study's setting for XLM-R Large is layer 14 of 24 (XTREME's ``--specific_layer 13`` over the last
  24 outputs, and jiant's ``retrieval_layer=14``); configs/models.json gives each size the same
  relative depth.
* ``pooling``: ``mean`` over non-padding tokens (default; XTREME's and jiant's), with or without the
  special tokens ``<s>``/``</s>`` (XTREME includes them by default), or ``cls`` (first token).
* vectors are L2-normalised, so inner product = cosine; search is exact (``faiss.IndexFlatIP``).
"""

from __future__ import annotations

import logging

import numpy as np
import torch

logger = logging.getLogger(__name__)

POOLINGS = ("mean", "cls")


@torch.no_grad()
def embed_all_layers(model, tokenizer, sentences: list[str], *, pooling: str = "mean",
                     include_special_tokens: bool = True, batch_size: int = 64, max_length: int = 512,
                     device: str | None = None, progress: bool = True, desc: str = "embed") -> np.ndarray:
    """Return float32 array [num_layers + 1, len(sentences), hidden], L2-normalised per vector.

    Sentences are embedded in length-sorted batches, each padded only to its own longest member,
    and returned in the input order.
    """
    from tqdm.auto import tqdm

    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; valid: {', '.join(POOLINGS)}")
    device = device or next(model.parameters()).device
    n = len(sentences)
    n_states = model.config.num_hidden_layers + 1
    out = np.zeros((n_states, n, model.config.hidden_size), dtype=np.float32)
    if n == 0:
        return out
    lengths = [len(s) for s in sentences]
    order = np.argsort(lengths, kind="stable")
    model.eval()
    batches = range(0, n, batch_size)
    for start in tqdm(batches, desc=desc, disable=not progress, leave=False):
        idx = order[start:start + batch_size]
        enc = tokenizer([sentences[i] for i in idx], padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt", return_special_tokens_mask=True)
        special = enc.pop("special_tokens_mask")
        enc = {k: v.to(device) for k, v in enc.items()}
        hidden = model(**enc, output_hidden_states=True).hidden_states  # tuple of [B, T, H]
        mask = enc["attention_mask"].clone()
        if not include_special_tokens:
            mask = mask * (1 - special.to(device))
        mask = mask.unsqueeze(-1).float()
        for layer, h in enumerate(hidden):
            h = h.float()
            if pooling == "cls":
                v = h[:, 0]
            else:
                v = (h * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            v = torch.nn.functional.normalize(v, dim=-1)
            out[layer, idx] = v.cpu().numpy()
    return out


def nearest(queries: np.ndarray, candidates: np.ndarray, k: int = 1, use_gpu: bool = False):
    """Exact inner-product k-NN with FAISS: returns (scores [nq, k], ids [nq, k])."""
    import faiss

    q = np.ascontiguousarray(queries, dtype=np.float32)
    c = np.ascontiguousarray(candidates, dtype=np.float32)
    index = faiss.IndexFlatIP(c.shape[1])
    if use_gpu and hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
        index = faiss.index_cpu_to_all_gpus(index)
    index.add(c)
    return index.search(q, k)


def top1_accuracy(queries: np.ndarray, candidates: np.ndarray, gold: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Fraction of queries whose nearest candidate is the gold one (default gold: same row index)."""
    _, ids = nearest(queries, candidates, k=1)
    pred = ids[:, 0]
    gold = np.arange(len(queries)) if gold is None else np.asarray(gold)
    return float((pred == gold).mean()) if len(gold) else float("nan"), pred


def tatoeba_all_layers(src_layers: np.ndarray, en_layers: np.ndarray) -> list[dict]:
    """Per layer: accuracy of English->foreign (XTREME's direction: each English sentence retrieves
    among the foreign sentences) and foreign->English; row i of each side are translations."""
    rows = []
    for layer in range(src_layers.shape[0]):
        en2xx, pred = top1_accuracy(en_layers[layer], src_layers[layer])
        xx2en, _ = top1_accuracy(src_layers[layer], en_layers[layer])
        rows.append({"accuracy": en2xx, "accuracy_xx2en": xx2en, "accuracy_mean_both": (en2xx + xx2en) / 2,
                     "predictions": pred})
    return rows


def resolve_layer(layer: int | None, num_layers: int, model_default: int | None) -> tuple[int, str]:
    """Explicit layer > model registry default > same relative depth as layer 14 of 24."""
    if layer is not None:
        return layer, "command line"
    if model_default is not None:
        return model_default, "model registry (configs/models.json)"
    return int(round(num_layers * 14 / 24)), "relative depth 14/24 (study setting for XLM-R Large)"
