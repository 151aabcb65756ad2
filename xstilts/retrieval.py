"""Sentence retrieval with the encoder's hidden states: the embeddings of many layers in one forward pass,
exact search, and the two retrieval tasks (Tatoeba accuracy, BUCC 2018 mining F1) for every layer.

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
* vectors are L2-normalised, so inner product = cosine; search is exact (:mod:`xstilts.search`: a chunked
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
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from .errors import UsageError
from .search import Search, resolve

logger = logging.getLogger(__name__)

POOLINGS = ("mean", "cls")
LAYER_SPECS = ("all", "default")

# Language families for per-group summaries (metric vs layer per group). ISO 639-1 codes as the XTREME
# scorer names them; families as in the XTREME paper's language table (Hu et al. 2020, Table 5) and
# standard references. Small families are pooled into "other" so that a group is not a single language.
LANGUAGE_GROUPS: dict[str, tuple[str, ...]] = {
    "Germanic": ("af", "de", "nl", "en"),
    "Romance": ("es", "fr", "it", "pt", "ro"),
    "Slavic/Baltic": ("bg", "ru", "pl", "uk", "lt"),
    "Indo-Iranian": ("bn", "hi", "mr", "ur", "fa"),
    "Afro-Asiatic": ("ar", "he"),
    "Uralic": ("et", "fi", "hu"),
    "Turkic": ("kk", "tr", "az"),
    "Austronesian": ("id", "jv", "tl", "ms"),
    "Dravidian": ("ml", "ta", "te"),
    "East Asian": ("zh", "ja", "ko", "my"),
    "other": ("el", "eu", "ka", "sw", "th", "vi", "yo", "qu", "ht", "wo", "pa", "gu"),
}
_GROUP_OF = {lang: g for g, langs in LANGUAGE_GROUPS.items() for lang in langs}


def language_group(lang: str) -> str:
    """The family group of an XTREME language code (``other`` for anything not listed)."""
    return _GROUP_OF.get(lang, "other")


def group_languages(languages: Iterable[str]) -> dict[str, list[str]]:
    """``{group: [languages]}`` in LANGUAGE_GROUPS order, only groups that occur."""
    langs = list(languages)
    out = {g: [l for l in langs if language_group(l) == g] for g in LANGUAGE_GROUPS}
    return {g: ls for g, ls in out.items() if ls}


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


# --------------------------------------------------------------------------------------------- search

def nearest(queries: np.ndarray, candidates: np.ndarray, k: int = 1, search: Search | None = None):
    """Exact inner-product k-NN: returns (scores [nq, k], ids [nq, k]); ``search`` is the backend
    (:mod:`xstilts.search`; default ``resolve("auto")``: torch on CUDA, else FAISS)."""
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


# --------------------------------------------------------------------------------------------- summaries

def mean_of(per_language: dict, key: str) -> float:
    vals = [m[key] for m in per_language.values() if m.get(key) is not None]
    return float(sum(vals) / len(vals)) if vals else float("nan")


def summarise(per_language: dict, keys: Sequence[str]) -> dict:
    """Average of ``keys`` over all languages, plus per language group."""
    return {
        "average": {k: mean_of(per_language, k) for k in keys},
        "groups": {g: {"languages": ls, **{k: mean_of({l: per_language[l] for l in ls}, k) for k in keys}}
                   for g, ls in group_languages(per_language).items()},
    }


def benchmark_averages(task, per_language: dict, metric: str) -> dict:
    """The task average over XTREME's and XTREME-R's language lists, where every language was evaluated
    (what ``python -m xstilts.score`` reports as the task's ``avg_metric``, / 100)."""
    out = {}
    if not task.xtreme_name:
        return out  # not an XTREME task (e.g. the synthetic world)
    for bench in ("xtreme", "xtreme-r"):
        langs = task.language_set(bench)
        if bench == "xtreme-r" and not task.languages_xtreme_r:
            continue  # the task is not part of XTREME-R (BUCC) or has the same list
        if langs and all(l in per_language for l in langs):
            out[bench] = {"languages": len(langs), metric: mean_of({l: per_language[l] for l in langs}, metric)}
    return out


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


# --------------------------------------------------------------------------------------------- BUCC

def run_bucc(model, tokenizer, languages: Sequence[str], read_split: Callable[[str, str], object],
             layers: Sequence[int], *, embed_kwargs: dict, mine_kwargs: dict,
             memory_budget_bytes: float | None = None, spill_dir: str | os.PathLike | None = None,
             on_test_pairs: Callable[[str, int, list, list, set], None] | None = None) -> dict:
    """BUCC 2018 mining F1 per language for every layer in ``layers``.

    ``read_split(lang, "dev"|"test")`` returns a :class:`xstilts.bucc_data.BuccSplit` with gold. For each
    language and layer, candidates are mined on the dev corpus (BUCC sample), the threshold that maximises
    dev F1 is chosen, and it is applied unchanged to the candidates of the test corpus (BUCC training).
    The test pairs are scored by the leaderboard scorer's own function (``xstilts.score.bucc_f1``), so the
    numbers equal what ``python -m xstilts.score`` prints for the written files.
    Sentences are de-duplicated before embedding and every id of a duplicated text is kept in the pairs.
    Embeddings of one split (both sides, all ``layers``) exist once at a time; beyond
    ``memory_budget_bytes`` (per side) they are memory-mapped in a private folder under ``spill_dir``, deleted
    after each split.

    ``on_test_pairs(lang, layer, pairs, candidates, gold)`` receives, per layer, the predicted test pairs
    (``score >= threshold``), all test candidates and the test gold.
    Returns ``{"per_layer": {layer: {lang: metrics}}, "n_sentences": int}``; metrics are fractions.
    """
    import shutil
    import tempfile

    from tqdm.auto import tqdm

    from . import bucc
    from .score import bucc_f1

    per_layer = {layer: {} for layer in layers}
    n_sentences = 0
    hidden = model.config.hidden_size
    for lang in tqdm(languages, desc=f"bucc2018: embed + mine, {len(layers)} layer(s)", unit="lang"):
        splits = {name: read_split(lang, name) for name in ("dev", "test")}
        for name, split in splits.items():
            if not split.gold:
                raise UsageError(f"BUCC 2018 {lang}-en {name}: no gold pairs (file {lang}-en.{name}.gold); the "
                                 "kit needs the dev gold for the threshold and the test gold for the score. Re-run "
                                 "`make data-bucc` (it keeps both)")
        tuned: dict[int, dict] = {}
        for name, split in splits.items():
            src = bucc.dedupe(split.src_ids, split.src_sentences)
            trg = bucc.dedupe(split.trg_ids, split.trg_sentences)
            n_sentences += len(src[0]) + len(trg[0])
            sizes = {"src": len(split.src_ids), "en": len(split.trg_ids),
                     "src_unique": len(src[0]), "en_unique": len(trg[0])}
            spill = None
            biggest = embeddings_nbytes(max(len(src[0]), len(trg[0])), len(layers), hidden)
            if spill_dir is not None and memory_budget_bytes is not None and biggest > memory_budget_bytes:
                Path(spill_dir).mkdir(parents=True, exist_ok=True)  # a private folder: only it is deleted
                spill = tempfile.mkdtemp(prefix=f"{lang}-{name}-", dir=spill_dir)
            try:
                src_emb = embed_layers(model, tokenizer, src[0], layers=layers, desc=f"{lang} {name} {lang}",
                                       out=allocate((len(layers), len(src[0]), hidden), spill_dir=spill,
                                                    memory_budget_bytes=memory_budget_bytes,
                                                    name=f"{lang}-{name}-src"), **embed_kwargs)
                trg_emb = embed_layers(model, tokenizer, trg[0], layers=layers, desc=f"{lang} {name} en",
                                       out=allocate((len(layers), len(trg[0]), hidden), spill_dir=spill,
                                                    memory_budget_bytes=memory_budget_bytes,
                                                    name=f"{lang}-{name}-en"), **embed_kwargs)
                for j, layer in enumerate(layers):
                    x, y = np.ascontiguousarray(src_emb[j]), np.ascontiguousarray(trg_emb[j])  # one layer in RAM
                    cands = bucc.mine_ids(src, trg, x, y, **mine_kwargs)
                    del x, y
                    if name == "dev":
                        t = bucc.tune_threshold(cands, split.gold)
                        tuned[layer] = {
                            "threshold": None if math.isinf(t["threshold"]) else t["threshold"],
                            "dev_oracle_f1": t["dev_oracle_f1"] / 100,
                            "dev_oracle_precision": t["dev_oracle_precision"] / 100,
                            "dev_oracle_recall": t["dev_oracle_recall"] / 100,
                            "dev_n_gold": t["dev_n_gold"], "dev_n_candidates": len(cands), "dev_sentences": sizes}
                        continue
                    entry = dict(tuned[layer])
                    thr = entry["threshold"]
                    pairs = bucc.apply_threshold(cands, math.inf if thr is None else thr)
                    scores = bucc_f1(sorted(split.gold), pairs)  # the leaderboard scorer's metric (percent)
                    per_layer[layer][lang] = {
                        "f1": scores["f1"] / 100, "precision": scores["precision"] / 100,
                        "recall": scores["recall"] / 100, "n_predicted": len(pairs), "n_gold": len(split.gold),
                        **entry, "test_n_candidates": len(cands), "test_sentences": sizes}
                    if on_test_pairs is not None:
                        on_test_pairs(lang, layer, pairs, cands, split.gold)
                    del cands
            finally:
                src_emb = trg_emb = None
                if spill is not None:
                    shutil.rmtree(spill, ignore_errors=True)
    if spill_dir is not None and Path(spill_dir).is_dir() and not any(Path(spill_dir).iterdir()):
        Path(spill_dir).rmdir()  # remove the folder too when this run left it empty
    return {"per_layer": per_layer, "n_sentences": n_sentences}
