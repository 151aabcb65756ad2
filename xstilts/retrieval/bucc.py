"""BUCC 2018 parallel-sentence mining with a ratio margin, and its evaluation protocol.

What this module does, and how it differs from the XTREME code (``third_party/utils_retrieve.py``,
see shared/reference/prior_art.md §1.4):

* **kNN** (:func:`knn`): exact inner product, with the backend a :class:`xstilts.retrieval.search.Search` names:
  ``faiss.IndexFlatIP`` (queries in batches, the database optionally in chunks, so memory stays bounded;
  on the GPU when faiss has one) or the chunked torch matrix product (:mod:`xstilts.retrieval.search`; on CUDA by
  default when there is a device). ``index="hnsw"`` (``faiss.IndexHNSWFlat``, inner-product metric) is
  there for corpora too large for exact search. It is approximate and FAISS-only; the BUCC corpora (at
  most a few hundred thousand sentences a side) fit exact search.
* **Margin scores** (:func:`margin_scores`): k = 4 neighbours in both directions. The ratio margin is
  ``cos(x, y) / ((mean_kNN_sim(x in Y) + mean_kNN_sim(y in X)) / 2)`` (Artetxe & Schwenk 2019, as in
  LASER, XTREME and jiant). The candidates of a sentence are its k nearest neighbours.
* **"max" strategy** (:func:`mine`): each source's best target and each target's best source go into
  one pool. The pool is sorted by score and pairs are kept greedily, one-to-one: each source and each
  target is used at most once.
* **Duplicates** (``duplicates``, :data:`DUPLICATES`; a recorded setting, from the preset): mining runs on unique
  sentence texts (:func:`dedupe`), then a mined text pair becomes id pairs in one of two ways. ``drop``
  (:func:`drop_duplicated`): a text that occurs more than once on its side maps to no id, so its mined pairs are
  dropped and its gold pairs can never be found (they still count in recall), as LASER
  (``tasks/bucc/bucc.py@74bc6ae:82-95,101-111``) and XTREME (``third_party/utils_retrieve.py@838c13b:266-301``) do.
  ``expand`` (:func:`expand`): every (source id, target id) combination of the two texts, as jiant
  (``Bucc2018EvaluationScheme.get_preds_from_accumulator``, ``itertools.product``) does. The BUCC scorer scores
  id pairs; no official script decides how a mined text maps to ids (docs/retrieval.md).
* **Threshold** (:func:`best_threshold`): a sweep over the candidates sorted by score. Tied scores
  are kept or dropped together, and the cut is the midpoint between the last kept score and the next
  lower one. Cutting after the last candidate gives that candidate's score, so nothing indexes past
  the end (XTREME's ``bucc_optimize`` reads ``items[i + 1]`` there). Prediction rule: ``score >= threshold``.
* **Protocol** (:func:`bucc_protocol`): the threshold is tuned on **dev** gold (the BUCC *sample*
  release) and applied unchanged to test (the *training* release). This is jiant's submission
  protocol and what XTREME issue #13 intends. The dev F1 at its own tuned threshold is an oracle
  number; it is reported as ``dev_oracle_f1`` and never as the task score.
* **Oracle test F1** (``test_oracle_f1``): the test F1 at the threshold tuned on the TEST gold itself, what
  XTREME's ``bucc_eval`` (``utils_retrieve.py@838c13b:304-314``: with a gold file the threshold is always re-tuned
  on it) and LASER's README ("Optimized on the F-scores on the training corpus", the release the kit scores as
  test) report. It is the number comparable to published BUCC figures, stored beside the headline, never as it.

Scales: precision, recall and F1 are percentages (x100), as in :mod:`xstilts.scoring.xtreme`. Scores and
thresholds are raw margin values, about 1 to 1.3 for the ratio margin.
Candidates are ``(src_id, trg_id, score)`` triples; gold is a set of ``(src_id, trg_id)``.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from ..errors import UsageError
from ..files import atomic_write_text
from ..scoring.xtreme import bucc_f1
from .search import Search, as_matrix, faiss_gpus, resolve

logger = logging.getLogger(__name__)

MARGINS = ("ratio", "distance", "absolute")
DUPLICATES = ("drop", "expand")  # how a mined pair of texts becomes id pairs (module docstring)
STRATEGIES = ("max", "fwd", "bwd", "intersect")
INDEXES = ("flat", "hnsw")
DEFAULT_K = 4

Candidate = tuple  # (src, trg, score): indices into the unique sentences, or ids after expand()


# --------------------------------------------------------------------------------------------- kNN

def _build_index(db: np.ndarray, index: str, use_gpu: bool, hnsw_m: int, ef_construction: int,
                 ef_search: int):
    import faiss

    dim = db.shape[1]
    if index == "flat":
        idx = faiss.IndexFlatIP(dim)
        if use_gpu:
            idx = faiss.index_cpu_to_all_gpus(idx)
    elif index == "hnsw":
        idx = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        idx.hnsw.efConstruction = ef_construction
        idx.hnsw.efSearch = ef_search
    else:
        raise ValueError(f"unknown index {index!r}; valid: {', '.join(INDEXES)}")
    idx.add(db)
    return idx


def knn(x, y, k: int, search: Search | None = None, batch_size: int = 8192, *, index: str = "flat",
        db_batch_size: int | None = None, hnsw_m: int = 32, ef_construction: int = 200,
        ef_search: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """The k highest inner products of each row of ``x`` (queries) among the rows of ``y`` (database).

    Returns ``(sims float32 [len(x), k'], ids int64 [len(x), k'])`` sorted by decreasing similarity,
    where ``k' = min(k, len(y))``.

    * ``search``: the backend (:func:`xstilts.retrieval.search.resolve`; default ``resolve("auto")``). The torch backend
      chooses its own chunks from its memory budget; the options below are FAISS's.
    * ``batch_size``: queries per search call (bounds the per-call result and scratch memory).
    * ``db_batch_size``: if set, the database is indexed in chunks of this many rows and the per-chunk
      top-k lists are merged. Use it when ``y`` does not fit GPU memory at once (``index="flat"`` only).
    * FAISS on the GPU (``search.device == "gpu"``): the flat index on all GPUs (falls back to CPU, with a
      warning, for faiss-cpu builds; HNSW always runs on CPU).
    * ``index="hnsw"``: approximate search with ``IndexHNSWFlat`` (M = ``hnsw_m``; ``efSearch`` is at
      least ``k``). Similarities of the returned neighbours are exact; some true neighbours may be missed.
    """
    if index not in INDEXES:
        raise ValueError(f"unknown index {index!r}; valid: {', '.join(INDEXES)}")
    x = as_matrix(x, "x (queries)")
    y = as_matrix(y, "y (database)")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"dimension mismatch: queries have {x.shape[1]}, database has {y.shape[1]}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    search = search or resolve("auto", index=index)
    if search.backend == "torch":
        if index != "flat":
            raise ValueError(f"index={index!r} is a FAISS index; the torch backend searches exactly (index='flat')")
        return search.topk(x, y, k)
    use_gpu = search.device == "gpu"
    k = min(k, len(y))
    sims = np.zeros((len(x), k), dtype=np.float32)
    ids = np.zeros((len(x), k), dtype=np.int64)
    if len(x) == 0 or k == 0:
        return sims, ids
    if use_gpu and (index != "flat" or faiss_gpus() == 0):
        logger.warning("knn: GPU search requested but %s; searching on CPU",
                       "faiss has no GPU" if index == "flat" else f"index={index} runs on CPU only")
        use_gpu = False
    if index == "hnsw" and db_batch_size:
        raise ValueError("db_batch_size applies to index='flat' only (HNSW needs the whole database in one graph)")
    chunk = db_batch_size or len(y)
    ef = max(ef_search, k)
    for dfrom in range(0, len(y), chunk):
        db = y[dfrom:dfrom + chunk]
        idx = _build_index(db, index, use_gpu, hnsw_m, ef_construction, ef)
        kc = min(k, len(db))
        for qfrom in range(0, len(x), batch_size):
            qto = min(qfrom + batch_size, len(x))
            s, i = idx.search(x[qfrom:qto], kc)
            i = np.where(i >= 0, i + dfrom, -1)
            if dfrom == 0:
                if kc < k:  # only possible with a chunked database: pad, later chunks fill the rest
                    s = np.concatenate([s, np.full((len(s), k - kc), -np.inf, np.float32)], axis=1)
                    i = np.concatenate([i, np.full((len(i), k - kc), -1, np.int64)], axis=1)
                sims[qfrom:qto], ids[qfrom:qto] = s, i
            else:  # merge the running top-k with this chunk's top-k
                ms = np.concatenate([sims[qfrom:qto], s], axis=1)
                mi = np.concatenate([ids[qfrom:qto], i], axis=1)
                order = np.argsort(-ms, axis=1, kind="stable")[:, :k]
                sims[qfrom:qto] = np.take_along_axis(ms, order, axis=1)
                ids[qfrom:qto] = np.take_along_axis(mi, order, axis=1)
        del idx
    if (ids < 0).any():  # HNSW can return fewer than k results for tiny graphs
        missing = int((ids < 0).sum())
        raise RuntimeError(f"knn: the {index} index returned {missing} empty neighbour slots; "
                           "raise ef_search or use index='flat'")
    return sims, ids


# --------------------------------------------------------------------------------------------- margin

def _margin_fn(margin: str):
    if margin == "ratio":
        return lambda a, b: a / b
    if margin == "distance":
        return lambda a, b: a - b
    if margin == "absolute":
        return lambda a, b: a
    raise ValueError(f"unknown margin {margin!r}; valid: {', '.join(MARGINS)}")


def _check_normalised(a: np.ndarray, name: str, tol: float = 1e-3) -> None:
    if len(a) == 0:
        return
    norms = np.linalg.norm(a, axis=1)
    if not np.allclose(norms, 1.0, atol=tol):
        worst = float(norms[np.argmax(np.abs(norms - 1.0))])
        raise ValueError(f"{name} must be L2-normalised (a row has norm {worst:.4f}); "
                         "normalise the embeddings first (e.g. faiss.normalize_L2)")


def margin_scores(src_emb, trg_emb, k: int = DEFAULT_K, margin: str = "ratio", **knn_kwargs) -> dict:
    """kNN in both directions and the margin score of every (sentence, neighbour) candidate.

    Returns a dict of arrays:
    ``fwd_ind``/``fwd_scores`` [n_src, k]: each source's k nearest targets and their margin scores;
    ``bwd_ind``/``bwd_scores`` [n_trg, k]: the same from the target side;
    ``fwd_mean`` [n_src] and ``bwd_mean`` [n_trg]: mean similarity to the k nearest neighbours on the
    other side. ``score(x, y) = margin(cos(x, y), (fwd_mean[x] + bwd_mean[y]) / 2)``, computed in float64.
    """
    margin_fn = _margin_fn(margin)
    x = as_matrix(src_emb, "src_emb")
    y = as_matrix(trg_emb, "trg_emb")
    _check_normalised(x, "src_emb")
    _check_normalised(y, "trg_emb")
    fwd_sim, fwd_ind = knn(x, y, k, **knn_kwargs)
    bwd_sim, bwd_ind = knn(y, x, k, **knn_kwargs)
    fwd_mean = fwd_sim.astype(np.float64).mean(axis=1) if fwd_sim.size else np.zeros(len(x))
    bwd_mean = bwd_sim.astype(np.float64).mean(axis=1) if bwd_sim.size else np.zeros(len(y))
    fwd_scores = margin_fn(fwd_sim.astype(np.float64), (fwd_mean[:, None] + bwd_mean[fwd_ind]) / 2)
    bwd_scores = margin_fn(bwd_sim.astype(np.float64), (bwd_mean[:, None] + fwd_mean[bwd_ind]) / 2)
    return {"fwd_ind": fwd_ind, "fwd_scores": np.asarray(fwd_scores, dtype=np.float64),
            "bwd_ind": bwd_ind, "bwd_scores": np.asarray(bwd_scores, dtype=np.float64),
            "fwd_mean": fwd_mean, "bwd_mean": bwd_mean}


def select_pairs(scores: Mapping[str, np.ndarray], strategy: str = "max") -> list[Candidate]:
    """Candidate pairs ``(src index, trg index, score)`` from :func:`margin_scores` output, by strategy:
    ``max`` (pool both directions' best candidates, greedy one-to-one), ``fwd``, ``bwd`` or
    ``intersect`` (mutual best). Sorted by score, descending (ties: forward before backward, then index)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; valid: {', '.join(STRATEGIES)}")
    fwd_ind, fwd_scores = scores["fwd_ind"], scores["fwd_scores"]
    bwd_ind, bwd_scores = scores["bwd_ind"], scores["bwd_scores"]
    n_src, n_trg = len(fwd_ind), len(bwd_ind)
    if n_src == 0 or n_trg == 0:
        return []
    fwd_arg = fwd_scores.argmax(axis=1)
    fwd_best = fwd_ind[np.arange(n_src), fwd_arg]
    fwd_best_score = fwd_scores[np.arange(n_src), fwd_arg]
    bwd_arg = bwd_scores.argmax(axis=1)
    bwd_best = bwd_ind[np.arange(n_trg), bwd_arg]
    bwd_best_score = bwd_scores[np.arange(n_trg), bwd_arg]

    if strategy == "fwd":
        src, trg, sc = np.arange(n_src), fwd_best, fwd_best_score
    elif strategy == "bwd":
        src, trg, sc = bwd_best, np.arange(n_trg), bwd_best_score
    elif strategy == "intersect":
        mutual = bwd_best[fwd_best] == np.arange(n_src)
        src, trg, sc = np.arange(n_src)[mutual], fwd_best[mutual], fwd_best_score[mutual]
    else:
        src = np.concatenate([np.arange(n_src), bwd_best])
        trg = np.concatenate([fwd_best, np.arange(n_trg)])
        sc = np.concatenate([fwd_best_score, bwd_best_score])
    order = np.argsort(-sc, kind="stable")
    src, trg, sc = src[order], trg[order], sc[order]
    if strategy != "max":
        return [(int(s), int(t), float(v)) for s, t, v in zip(src, trg, sc)]
    used_src = np.zeros(n_src, dtype=bool)
    used_trg = np.zeros(n_trg, dtype=bool)
    out = []
    for s, t, v in zip(src.tolist(), trg.tolist(), sc.tolist()):
        if used_src[s] or used_trg[t]:
            continue
        used_src[s] = used_trg[t] = True
        out.append((s, t, v))
    return out


def mine(src_emb, trg_emb, k: int = DEFAULT_K, margin: str = "ratio", strategy: str = "max",
         **knn_kwargs) -> list[Candidate]:
    """Mine candidate pairs between two sets of L2-normalised float32 embeddings.

    Returns ``[(src index, trg index, score), ...]`` sorted by score, descending, with no threshold
    applied (XTREME's ``threshold=0`` candidates file). ``knn_kwargs`` go to :func:`knn`
    (``search``, ``batch_size``, ``index``, ...).
    """
    _margin_fn(margin)  # validate before the (expensive) search
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; valid: {', '.join(STRATEGIES)}")
    return select_pairs(margin_scores(src_emb, trg_emb, k=k, margin=margin, **knn_kwargs), strategy)


# --------------------------------------------------------------------------------------------- duplicates

def dedupe(ids: Sequence[str], sentences: Sequence[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Unique sentence texts (first-occurrence order) and ``{text: [every id with that text]}``.

    Embed and mine ``unique_sentences``; :func:`expand` maps the mined text pairs back to all ids.
    """
    if len(ids) != len(sentences):
        raise ValueError(f"{len(ids)} ids but {len(sentences)} sentences")
    text_to_ids: dict[str, list[str]] = {}
    seen_ids: set[str] = set()
    for i, s in zip(ids, sentences):
        if i in seen_ids:
            raise ValueError(f"duplicate sentence id {i!r}")
        seen_ids.add(i)
        text_to_ids.setdefault(s, []).append(i)
    return list(text_to_ids), text_to_ids


def expand(pairs: Iterable[Candidate], src: tuple[Sequence[str], Mapping[str, Sequence[str]]],
           trg: tuple[Sequence[str], Mapping[str, Sequence[str]]]) -> list[Candidate]:
    """Map mined ``(src index, trg index, score)`` over unique sentences to ``(src_id, trg_id, score)``
    for EVERY id combination of the two texts. ``src``/``trg`` are what :func:`dedupe` returned.
    Sorted by score descending, then ids."""
    src_unique, src_t2i = src
    trg_unique, trg_t2i = trg
    out = []
    for s, t, score in pairs:
        for sid in src_t2i[src_unique[s]]:
            for tid in trg_t2i[trg_unique[t]]:
                out.append((sid, tid, float(score)))
    out.sort(key=lambda c: (-c[2], c[0], c[1]))
    return out


def drop_duplicated(pairs: Iterable[Candidate], src: tuple[Sequence[str], Mapping[str, Sequence[str]]],
                    trg: tuple[Sequence[str], Mapping[str, Sequence[str]]]) -> list[Candidate]:
    """Map mined ``(src index, trg index, score)`` over unique sentences to ``(src_id, trg_id, score)``, keeping
    only pairs whose two texts each have ONE id (LASER ``bucc.py``: ``repeated`` texts are deleted from
    ``sent2id``, and a candidate is kept only ``if src in src_sent2id and trg in trg_sent2id``). Sorted like
    :func:`expand`."""
    src_unique, src_t2i = src
    trg_unique, trg_t2i = trg
    out = []
    for s, t, score in pairs:
        sids, tids = src_t2i[src_unique[s]], trg_t2i[trg_unique[t]]
        if len(sids) == 1 and len(tids) == 1:
            out.append((sids[0], tids[0], float(score)))
    out.sort(key=lambda c: (-c[2], c[0], c[1]))
    return out


def to_ids(pairs: Iterable[Candidate], src, trg, duplicates: str = "expand") -> list[Candidate]:
    """Mined text pairs -> id pairs by the ``duplicates`` rule (``drop`` | ``expand``)."""
    if duplicates == "expand":
        return expand(pairs, src, trg)
    if duplicates == "drop":
        return drop_duplicated(pairs, src, trg)
    raise ValueError(f"unknown duplicates rule {duplicates!r}; valid: {', '.join(DUPLICATES)}")


def gold_with_duplicated_text(gold, src: tuple[Sequence[str], Mapping[str, Sequence[str]]],
                              trg: tuple[Sequence[str], Mapping[str, Sequence[str]]]) -> int:
    """How many gold pairs name an id whose text occurs more than once on its side (``drop`` cannot find
    them; ``expand`` finds them together with the other ids of the text)."""
    dup_src = {i for ids in src[1].values() if len(ids) > 1 for i in ids}
    dup_trg = {i for ids in trg[1].values() if len(ids) > 1 for i in ids}
    return sum(1 for s, t in _gold_set(gold) if s in dup_src or t in dup_trg)


def mine_ids(src: tuple[Sequence[str], Mapping[str, Sequence[str]]],
             trg: tuple[Sequence[str], Mapping[str, Sequence[str]]], src_emb, trg_emb, *,
             duplicates: str = "expand", **mine_kwargs) -> list[Candidate]:
    """:func:`mine` on the embeddings of the unique sentences (rows in ``dedupe`` order), then the id pairs by
    the ``duplicates`` rule (:func:`to_ids`)."""
    if duplicates not in DUPLICATES:
        raise ValueError(f"unknown duplicates rule {duplicates!r}; valid: {', '.join(DUPLICATES)}")
    if len(src_emb) != len(src[0]) or len(trg_emb) != len(trg[0]):
        raise ValueError(f"embeddings ({len(src_emb)}, {len(trg_emb)}) must have one row per unique sentence "
                         f"({len(src[0])}, {len(trg[0])})")
    return to_ids(mine(src_emb, trg_emb, **mine_kwargs), src, trg, duplicates)


# --------------------------------------------------------------------------------------------- scoring

def _best_per_pair(candidates: Iterable[Candidate]) -> list[Candidate]:
    """One entry per (src, trg), keeping its highest score; sorted by score desc, then ids."""
    best: dict[tuple, float] = {}
    for s, t, score in candidates:
        score = float(score)
        key = (s, t)
        if key not in best or score > best[key]:
            best[key] = score
    return sorted(((s, t, v) for (s, t), v in best.items()), key=lambda c: (-c[2], c[0], c[1]))


def _gold_set(gold_pairs) -> set[tuple]:
    return {tuple(p.split("\t")) if isinstance(p, str) else tuple(p) for p in gold_pairs}


def _prf(ncorrect: int, npred: int, ngold: int) -> tuple[float, float, float]:
    if ncorrect == 0:
        return 0.0, 0.0, 0.0
    p = ncorrect / npred
    r = ncorrect / ngold
    return 100 * p, 100 * r, 100 * 2 * p * r / (p + r)


def best_threshold(candidates: Iterable[Candidate], gold_pairs) -> tuple[float, float, float, float]:
    """The score threshold with the highest F1 against ``gold_pairs``: ``(threshold, f1, precision, recall)``.

    Candidates are ranked by score. A cut can only fall between two different scores, so ties are
    kept or dropped together. The threshold is the midpoint between the lowest kept score and the next
    lower score. If every candidate is kept, it is the lowest score itself, so ``score >= threshold``
    keeps everything. With equal F1, the higher threshold wins. If no candidate is a gold pair, the
    result is ``(inf, 0, 0, 0)``: predict nothing. Metrics are percentages.
    """
    items = _best_per_pair(candidates)
    gold = _gold_set(gold_pairs)
    best = (math.inf, 0.0, 0.0, 0.0)
    ncorrect = 0
    n = len(items)
    for i, (s, t, score) in enumerate(items):
        ncorrect += (s, t) in gold
        if i + 1 < n and items[i + 1][2] == score:
            continue  # inside a group of tied scores: no cut here
        p, r, f1 = _prf(ncorrect, i + 1, len(gold))
        if f1 > best[1]:
            threshold = (score + items[i + 1][2]) / 2 if i + 1 < n else score
            best = (threshold, f1, p, r)
    return best


def apply_threshold(candidates: Iterable[Candidate], threshold: float) -> list[tuple]:
    """The ``(src_id, trg_id)`` pairs with ``score >= threshold``, best first (one per pair)."""
    return [(s, t) for s, t, v in _best_per_pair(candidates) if v >= threshold]


def evaluate(candidates: Iterable[Candidate], gold_pairs, threshold: float) -> dict:
    """P/R/F1 (percent) of the candidates with ``score >= threshold`` (a FIXED threshold) against gold."""
    pred = set(apply_threshold(candidates, threshold))
    gold = _gold_set(gold_pairs)
    p, r, f1 = _prf(len(pred & gold), len(pred), len(gold))
    return {"precision": p, "recall": r, "f1": f1, "n_predicted": len(pred), "n_gold": len(gold)}


def tune_threshold(dev_candidates: Iterable[Candidate], dev_gold) -> dict:
    """The dev half of the protocol: the threshold with the best F1 on the dev gold, and that F1.

    Returns ``threshold`` (``inf`` when no dev candidate is a gold pair: predict nothing) and
    ``dev_oracle_f1`` / ``dev_oracle_precision`` / ``dev_oracle_recall`` (percent) / ``dev_n_gold``. The
    dev numbers are tuned on the gold they are measured on: an oracle, never the task score."""
    threshold, dev_f1, dev_p, dev_r = best_threshold(dev_candidates, dev_gold)
    if math.isinf(threshold):
        logger.warning("bucc: no dev candidate is a gold pair; the dev threshold is +inf (predict nothing)")
    return {"threshold": threshold, "dev_oracle_f1": dev_f1, "dev_oracle_precision": dev_p,
            "dev_oracle_recall": dev_r, "dev_n_gold": len(_gold_set(dev_gold))}


def oracle(candidates: Iterable[Candidate], gold) -> dict:
    """The F1 of a split at the threshold tuned on that split's own gold (XTREME's ``bucc_eval`` with a gold file,
    LASER's published protocol): ``{threshold, f1, precision, recall}`` (percent; threshold None when no
    candidate is a gold pair). An ORACLE: comparable to published BUCC figures, never a held-out score."""
    threshold, f1, p, r = best_threshold(candidates, gold)
    return {"threshold": None if math.isinf(threshold) else threshold, "f1": f1, "precision": p, "recall": r}


def bucc_protocol(dev_candidates: Iterable[Candidate], dev_gold, test_candidates: Iterable[Candidate],
                  test_gold=None) -> dict:
    """Tune the threshold on dev gold and apply it unchanged to test.

    Returns test ``precision``/``recall``/``f1``/``n_predicted``/``n_gold`` at that threshold (the task
    score; ``None`` metrics when ``test_gold`` is None, e.g. for a leaderboard submission),
    ``threshold``, and the dev numbers at the dev-tuned threshold as ``dev_oracle_*``. Those are
    tuned on the gold they are measured on, so they are NOT a test score.
    """
    dev_candidates = list(dev_candidates)
    test_candidates = list(test_candidates)
    tuned = tune_threshold(dev_candidates, dev_gold)
    threshold = tuned["threshold"]
    if test_gold is not None:
        test = evaluate(test_candidates, test_gold, threshold)
        test["test_oracle_f1"] = oracle(test_candidates, test_gold)["f1"]
    else:
        test = {"precision": None, "recall": None, "f1": None,
                "n_predicted": len(apply_threshold(test_candidates, threshold)), "n_gold": None,
                "test_oracle_f1": None}
    return {
        **test,
        **tuned,
        "threshold_source": "dev gold (BUCC sample release), applied unchanged to test",
        "dev_n_candidates": len(dev_candidates),
        "test_n_candidates": len(test_candidates),
    }


# --------------------------------------------------------------------------------------------- files

def prediction_path(root: str | os.PathLike, lang: str) -> Path:
    """XTREME leaderboard layout: ``<root>/bucc2018/test-<lang>.tsv``."""
    return Path(root) / "bucc2018" / f"test-{lang}.tsv"


def write_predictions(path: str | os.PathLike, pairs: Iterable[tuple]) -> Path:
    """Write ``src_id<TAB>trg_id`` lines (extra fields such as a score are ignored)."""
    atomic_write_text(path, "".join(f"{p[0]}\t{p[1]}\n" for p in pairs))
    return Path(path)


def _read_tsv(path: str | os.PathLike, fields: tuple[str, ...]) -> list[list[str]]:
    """Non-blank lines split on tabs; each must have exactly ``len(fields)`` columns."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != len(fields):
                raise ValueError(f"{path} line {n}: expected '{'<TAB>'.join(fields)}', got {line!r}")
            out.append(parts)
    return out


def read_predictions(path: str | os.PathLike) -> list[tuple[str, str]]:
    """Read ``src_id<TAB>trg_id`` lines (also a BUCC ``.gold`` file)."""
    return [(s.strip(), t.strip()) for s, t in _read_tsv(path, ("src_id", "trg_id"))]


def write_candidates(path: str | os.PathLike, candidates: Iterable[Candidate]) -> Path:
    """Write all candidates as ``src_id<TAB>trg_id<TAB>score`` (score with full float precision)."""
    atomic_write_text(path, "".join(f"{s}\t{t}\t{float(v)!r}\n" for s, t, v in candidates))
    return Path(path)


def read_candidates(path: str | os.PathLike) -> list[Candidate]:
    return [(s, t, float(v)) for s, t, v in _read_tsv(path, ("src_id", "trg_id", "score"))]


# --------------------------------------------------------------------------------------------- the task, every layer

def run_bucc(model, tokenizer, languages: Sequence[str], read_split: Callable[[str, str], object],
             layers: Sequence[int], *, embed_kwargs: dict, mine_kwargs: dict,
             memory_budget_bytes: float | None = None, spill_dir: str | os.PathLike | None = None,
             on_test_pairs: Callable[[str, int, list, list, set], None] | None = None) -> dict:
    """BUCC 2018 mining F1 per language for every layer in ``layers``.

    ``read_split(lang, "dev"|"test")`` returns a :class:`xstilts.prepare.bucc.BuccSplit` with gold. For each
    language and layer, candidates are mined on the dev corpus (BUCC sample), the threshold that maximises
    dev F1 is chosen, and it is applied unchanged to the candidates of the test corpus (BUCC training).
    The test pairs are scored by the leaderboard scorer's own function (``xstilts.scoring.xtreme.bucc_f1``), so the
    numbers equal what ``python -m xstilts.score`` prints for the written files. The oracle test F1 (threshold
    tuned on the test gold, :func:`oracle`) is stored beside it as ``test_oracle_f1``.
    Sentences are de-duplicated before embedding; ``mine_kwargs["duplicates"]`` (``drop`` | ``expand``) says how
    mined text pairs become id pairs, and each split records how many gold pairs involve a duplicated text.
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

    from . import embed  # torch: only the task run embeds; the mining above needs numpy alone

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
            src = dedupe(split.src_ids, split.src_sentences)
            trg = dedupe(split.trg_ids, split.trg_sentences)
            n_sentences += len(src[0]) + len(trg[0])
            sizes = {"src": len(split.src_ids), "en": len(split.trg_ids),
                     "src_unique": len(src[0]), "en_unique": len(trg[0]),
                     "gold_pairs_with_duplicated_text": gold_with_duplicated_text(split.gold, src, trg)}
            spill = None
            biggest = embed.embeddings_nbytes(max(len(src[0]), len(trg[0])), len(layers), hidden)
            if spill_dir is not None and memory_budget_bytes is not None and biggest > memory_budget_bytes:
                Path(spill_dir).mkdir(parents=True, exist_ok=True)  # a private folder: only it is deleted
                spill = tempfile.mkdtemp(prefix=f"{lang}-{name}-", dir=spill_dir)
            try:
                src_emb = embed.embed_layers(
                    model, tokenizer, src[0], layers=layers, desc=f"{lang} {name} {lang}",
                    out=embed.allocate((len(layers), len(src[0]), hidden), spill_dir=spill,
                                       memory_budget_bytes=memory_budget_bytes, name=f"{lang}-{name}-src"),
                    **embed_kwargs)
                trg_emb = embed.embed_layers(
                    model, tokenizer, trg[0], layers=layers, desc=f"{lang} {name} en",
                    out=embed.allocate((len(layers), len(trg[0]), hidden), spill_dir=spill,
                                       memory_budget_bytes=memory_budget_bytes, name=f"{lang}-{name}-en"),
                    **embed_kwargs)
                for j, layer in enumerate(layers):
                    x, y = np.ascontiguousarray(src_emb[j]), np.ascontiguousarray(trg_emb[j])  # one layer in RAM
                    cands = mine_ids(src, trg, x, y, **mine_kwargs)
                    del x, y
                    if name == "dev":
                        t = tune_threshold(cands, split.gold)
                        tuned[layer] = {
                            "threshold": None if math.isinf(t["threshold"]) else t["threshold"],
                            "dev_oracle_f1": t["dev_oracle_f1"] / 100,
                            "dev_oracle_precision": t["dev_oracle_precision"] / 100,
                            "dev_oracle_recall": t["dev_oracle_recall"] / 100,
                            "dev_n_gold": t["dev_n_gold"], "dev_n_candidates": len(cands), "dev_sentences": sizes}
                        continue
                    entry = dict(tuned[layer])
                    thr = entry["threshold"]
                    pairs = apply_threshold(cands, math.inf if thr is None else thr)
                    scores = bucc_f1(sorted(split.gold), pairs)  # the leaderboard scorer's metric (percent)
                    best = oracle(cands, split.gold)  # tuned on the test gold itself: comparable, not held out
                    per_layer[layer][lang] = {
                        "f1": scores["f1"] / 100, "precision": scores["precision"] / 100,
                        "recall": scores["recall"] / 100, "n_predicted": len(pairs), "n_gold": len(split.gold),
                        **entry, "test_oracle_f1": best["f1"] / 100,
                        "test_oracle_precision": best["precision"] / 100, "test_oracle_recall": best["recall"] / 100,
                        "test_oracle_threshold": best["threshold"],
                        "test_n_candidates": len(cands), "test_sentences": sizes}
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
