"""Tatoeba: English <-> foreign sentence retrieval, top-1 accuracy in both directions, for every evaluated layer
(the embeddings of all layers come from one forward pass, :mod:`xstilts.retrieval.embed`)."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..data.sources import check_columns, load_source
from ..errors import UsageError
from ..tasks.types import Source, Task
from .embed import embed_layers
from .search import Search, resolve


def nearest(queries: np.ndarray, candidates: np.ndarray, k: int = 1, search: Search | None = None):
    """Exact inner-product k-NN: returns (scores [nq, k], ids [nq, k]); ``search`` is the backend
    (:mod:`xstilts.retrieval.search`; default ``resolve("auto")``: torch on CUDA, else FAISS)."""
    return (search or resolve("auto")).topk(queries, candidates, k)


def top1_accuracy(queries: np.ndarray, candidates: np.ndarray, gold: np.ndarray | None = None,
                  search: Search | None = None) -> tuple[float, np.ndarray]:
    """Fraction of queries whose nearest candidate is the gold one (default gold: same row index)."""
    _, ids = nearest(queries, candidates, k=1, search=search)
    pred = ids[:, 0]
    gold = np.arange(len(queries)) if gold is None else np.asarray(gold)
    return float((pred == gold).mean()) if len(gold) else float("nan"), pred


def tatoeba_all_layers(src_layers: np.ndarray, en_layers: np.ndarray, search: Search | None = None) -> list[dict]:
    """Per row of the layer axis: accuracy of English->foreign (XTREME's direction: each English sentence
    retrieves among the foreign sentences) and foreign->English; row i of each side are translations."""
    search = search or resolve("auto")
    rows = []
    for j in range(src_layers.shape[0]):
        en2xx, pred = top1_accuracy(en_layers[j], src_layers[j], search=search)
        xx2en, _ = top1_accuracy(src_layers[j], en_layers[j], search=search)
        rows.append({"accuracy": en2xx, "accuracy_xx2en": xx2en, "accuracy_mean_both": (en2xx + xx2en) / 2,
                     "predictions": pred})
    return rows


# --------------------------------------------------------------------------------------------- Tatoeba

def run_tatoeba(model, tokenizer, task, languages: Sequence[str], load_pairs: Callable[[str], tuple],
                layers: Sequence[int], *, embed_kwargs: dict, search: Search | None = None,
                on_predictions: Callable[[str, int, list[int], int], None] | None = None) -> dict:
    """Accuracy per language for every layer in ``layers``.

    ``load_pairs(lang) -> (foreign sentences, English sentences)`` (row i are translations).
    ``on_predictions(lang, layer, preds, n)`` receives, per layer, the index of the foreign sentence
    retrieved for each English sentence (the leaderboard file's lines; gold = range(n)).
    Returns ``{"per_layer": {layer: {lang: metrics}}, "n_sentences": int}``.
    """
    from tqdm.auto import tqdm

    per_layer = {layer: {} for layer in layers}
    n_sentences = 0
    for lang in tqdm(languages, desc=f"{task.name}: embed + search, {len(layers)} layer(s)", unit="lang"):
        src, en = load_pairs(lang)
        if len(src) != len(en):
            raise UsageError(f"{task.name} {lang}: {len(src)} foreign but {len(en)} English sentences")
        src_emb = embed_layers(model, tokenizer, src, layers=layers, desc=f"{lang}", **embed_kwargs)
        en_emb = embed_layers(model, tokenizer, en, layers=layers, desc="en", **embed_kwargs)
        n_sentences += len(src) + len(en)
        for layer, row in zip(layers, tatoeba_all_layers(src_emb, en_emb, search=search)):
            preds = [int(p) for p in row.pop("predictions")]
            per_layer[layer][lang] = dict(row, n=len(src))
            if on_predictions is not None:
                on_predictions(lang, layer, preds, len(en))
        del src_emb, en_emb
    return {"per_layer": per_layer, "n_sentences": n_sentences}


def load_pairs(task: Task, source: Source, data, lang: str):
    """Aligned sentence pairs for one language: (non-English sentences, English sentences).

    Row i of both lists are translations of each other (Tatoeba: the gold is the row index).
    The Hub loader keeps a trailing newline on Tatoeba lines; it is stripped here.
    """
    code = task.code(lang)
    ds = load_source(source, data, code)
    check_columns(ds, source, code)
    src = [s.rstrip("\n") for s in ds[source.columns["source"]]]
    tgt = [s.rstrip("\n") for s in ds[source.columns["target"]]]
    return src, tgt
