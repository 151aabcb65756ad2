"""Exact search backends (xstilts.retrieval.search): the chunked torch path run on the CPU against faiss.IndexFlatIP.

Same neighbours except among exactly tied scores (the test data has ties on purpose: duplicated database rows and
vectors of small integers, whose inner products are exact in float32), same mined BUCC pairs and F1 on the
fixtures, same dual-encoder mAP@20 and Tatoeba accuracy; chunking edge cases; the backend choice and its
errors; the choice recorded in results.json.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import HUB, run_script
from xstilts.errors import UsageError
from xstilts.formats import dual_encoder as de
from xstilts.prepare import bucc as bucc_data
from xstilts.run.args import get_task
from xstilts.retrieval import bucc, search, tatoeba
from xstilts.retrieval.search import Search, faiss_topk, plan_chunks, resolve, torch_topk

EPS = 1e-5  # float32 rounding of a dot product of unit vectors in a few hundred dimensions (sums differ in order)
BF16_TOL = 2.0**-8  # bf16 keeps 8 significant bits: |cos_bf16 - cos| <= 2 * 2^-9 * sum|q_i d_i| <= 2^-8


def _unit(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)


def _tied_data(seed: int, n_q: int = 61, n_db: int = 97, dim: int = 16):
    """Queries and a database with exact ties: rows of small integers (products exact in float32), every
    database row of the first quarter duplicated further down, and a few queries equal to database rows."""
    rng = np.random.default_rng(seed)
    db = rng.integers(-2, 3, size=(n_db, dim)).astype(np.float32)
    db[n_db - n_db // 4:] = db[:n_db // 4]  # duplicated rows: identical scores for every query
    db[db.sum(1) == 0, 0] = 1.0  # no zero rows
    q = rng.integers(-2, 3, size=(n_q, dim)).astype(np.float32)
    q[:5] = db[:5]
    return q, db


def assert_same_neighbours(q, db, got, ref, eps=EPS):
    """``got`` and ``ref`` are (sims, ids) top-k results of the same search. Sorted scores agree within eps; each
    returned id really has its score and appears once; at every rank whose score is more than eps away from the
    other top-k scores and from the best excluded score, the ids are identical. Returns the number of rank
    positions inside ties (where either id is correct)."""
    (s_g, i_g), (s_r, i_r) = got, ref
    assert s_g.shape == s_r.shape == i_g.shape == i_r.shape
    np.testing.assert_allclose(s_g, s_r, atol=eps)
    exact = q.astype(np.float64) @ db.astype(np.float64).T
    k = s_r.shape[1]
    ties = 0
    for row in range(len(q)):
        assert len(set(i_g[row])) == k and len(set(i_r[row])) == k, row
        np.testing.assert_allclose(exact[row, i_g[row]], s_g[row], atol=eps)
        order = np.sort(exact[row])[::-1]
        cut = order[k] if k < len(order) else -np.inf
        for r in range(k):
            others = np.delete(s_r[row], r)
            isolated = np.all(np.abs(others - s_r[row, r]) > eps) and s_r[row, r] - cut > eps
            if isolated:
                assert i_g[row, r] == i_r[row, r], (row, r)
            else:
                ties += 1
    return ties


# --------------------------------------------------------------------------------------------- neighbours

@pytest.mark.parametrize("memory_bytes", [None, 18500, 1])
def test_torch_path_equals_faiss_with_ties(memory_bytes):
    """Default budget (one chunk), a budget that forces many chunks of both sides, and the smallest possible one
    (1 query x 1 database row: every chunk smaller than k)."""
    q, db = _tied_data(0)
    s = Search("torch", "cpu", memory_bytes=memory_bytes)
    for k in (1, 4, 20):
        got, ref = s.topk(q, db, k), faiss_topk(q, db, k)
        ties = assert_same_neighbours(q, db, got, ref)
        assert ties > 0  # the data has exact ties inside the top-k, and they were recognised as such
    plan = s.chunks[-1]
    if memory_bytes == 1:
        assert plan == (1, 1)
    elif memory_bytes == 18500:
        assert 1 < plan[1] < len(db) and len(db) % plan[1] and len(q) % plan[0]  # ragged last chunks
    else:
        assert plan == (len(q), len(db))


def test_chunk_edge_cases_on_unit_vectors():
    rng = np.random.default_rng(1)
    q, db = _unit(rng.standard_normal((33, 48))), _unit(rng.standard_normal((10, 48)))
    ref = faiss_topk(q, db, 4)
    for budget in (1, 900, 2500, 10**6):  # chunk 1 (< k), chunks of 1-3 rows (10 not a multiple), all at once
        got = torch_topk(q, db, 4, memory_bytes=budget)
        assert_same_neighbours(q, db, got[:2], ref)
    s, i, plan = torch_topk(q, db, 25, memory_bytes=2500)  # k > n: all 10 database rows, best first
    assert s.shape == i.shape == (33, 10) and plan[1] < 10
    np.testing.assert_array_equal(np.sort(i, 1), np.tile(np.arange(10), (33, 1)))
    assert np.all(np.diff(s, axis=1) <= 0)
    # empty sides
    assert torch_topk(q[:0], db, 4)[0].shape == (0, 4) and torch_topk(q, db[:0], 4)[0].shape == (33, 0)
    with pytest.raises(ValueError, match="dimension mismatch"):
        torch_topk(q, db[:, :5], 4)


def test_plan_chunks_fits_the_budget():
    n_q, n_db, dim, k = 1000, 5000, 64, 4
    assert plan_chunks(n_q, n_db, dim, k, 4, 10**9) == (n_q, n_db)  # everything fits: one chunk each
    budget = 2**20
    qc, dc = plan_chunks(n_q, n_db, dim, k, 4, budget)
    assert dc < n_db and qc < n_q
    used = n_q * k * 12 + dc * dim * 4 + qc * (dim * 4 + 2 * 4 * dc + 2 * 12 * k)
    assert used <= budget
    assert plan_chunks(n_q, n_db, dim, k, 2, budget)[1] == 2 * dc  # bf16: twice the database rows
    assert plan_chunks(n_q, n_db, dim, k, 4, 0) == (1, 1)


def test_bfloat16_inputs_within_the_documented_tolerance():
    rng = np.random.default_rng(2)
    q, db = _unit(rng.standard_normal((40, 256))), _unit(rng.standard_normal((300, 256)))
    s, i, _ = torch_topk(q, db, 4, dtype="bfloat16", memory_bytes=20000)
    ref_s, _ = faiss_topk(q, db, 4)
    assert s.dtype == np.float32
    np.testing.assert_allclose(s, ref_s, atol=BF16_TOL)
    exact = (q.astype(np.float64) @ db.T.astype(np.float64))
    np.testing.assert_allclose(np.take_along_axis(exact, i, 1), s, atol=BF16_TOL)
    # and the bf16 result is not float32's: the inputs really were rounded
    assert np.abs(s - ref_s).max() > 1e-6


def test_out_of_memory_halves_the_budget_and_retries(monkeypatch):
    q, db = _tied_data(3)
    real, plans = search._search, []

    def flaky(qq, dd, k, device, dtype, q_chunk, db_chunk):
        plans.append((q_chunk, db_chunk))
        if len(plans) == 1:
            raise torch.OutOfMemoryError("simulated")
        return real(qq, dd, k, device, dtype, q_chunk, db_chunk)

    monkeypatch.setattr(search, "_search", flaky)
    s, i, plan = torch_topk(q, db, 4, memory_bytes=6000)
    assert plan == plans[1] and plans[1][1] < plans[0][1]
    assert_same_neighbours(q, db, (s, i), faiss_topk(q, db, 4))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (the CPU path is tested above)")
def test_cuda_path_equals_faiss():
    """On a GPU machine: the CUDA path (budget from free memory, and a small one that forces chunks) gives FAISS's
    neighbours; bfloat16 inputs stay within the documented tolerance and come back as float32."""
    q, db = _tied_data(6)
    for budget in (None, 18500):
        s = resolve("torch", memory_bytes=budget)
        assert s.device == "cuda"
        assert assert_same_neighbours(q, db, s.topk(q, db, 4), faiss_topk(q, db, 4)) > 0
    rng = np.random.default_rng(7)
    x, y = _unit(rng.standard_normal((500, 256))), _unit(rng.standard_normal((3000, 256)))
    got = resolve("torch", dtype="bfloat16").topk(x, y, 4)
    assert got[0].dtype == np.float32
    np.testing.assert_allclose(got[0], faiss_topk(x, y, 4)[0], atol=BF16_TOL)
    exact = x.astype(np.float64) @ y.T.astype(np.float64)
    np.testing.assert_allclose(np.take_along_axis(exact, got[1], 1), got[0], atol=BF16_TOL)
    assert torch.get_float32_matmul_precision() == "highest"  # restored (or never changed)


# --------------------------------------------------------------------------------------------- the choice

def test_resolve_auto_explicit_and_refused_combinations():
    assert (resolve("auto", cuda=False).backend, resolve("auto", cuda=False).device) == ("faiss", "cpu")
    auto_gpu = resolve("auto", cuda=True)
    assert (auto_gpu.backend, auto_gpu.device, auto_gpu.reason) == ("torch", "cuda", "auto: CUDA is available")
    assert resolve("torch", cuda=False).device == "cpu" and resolve("faiss", cuda=True).backend == "faiss"
    assert resolve("auto", cuda=True, index="hnsw").backend == "faiss"  # approximate: FAISS only
    assert resolve("torch", dtype="bfloat16", cuda=True).dtype == "bfloat16"
    with pytest.raises(UsageError, match=r"unknown --search_backend 'gpu'; valid choices: auto, faiss, torch"):
        resolve("gpu")
    with pytest.raises(UsageError, match=r"unknown --search_dtype 'fp16'; valid choices: float32, bfloat16"):
        resolve("auto", dtype="fp16")
    with pytest.raises(UsageError, match="--index hnsw is a FAISS approximate index"):
        resolve("torch", index="hnsw")
    with pytest.raises(UsageError, match="--search_dtype bfloat16 applies to the torch backend"):
        resolve("auto", dtype="bfloat16", cuda=False)
    d = Search("torch", "cpu", memory_bytes=4096).describe()
    assert d["accumulation"] == "float32" and d["exact"] is True and d["chunks_used"] == []
    assert resolve("faiss", index="hnsw").describe()["exact"] is False


# --------------------------------------------------------------------------------------------- the tasks

def test_tatoeba_accuracy_and_predictions_equal():
    rng = np.random.default_rng(4)
    en = _unit(rng.standard_normal((3, 50, 32)).reshape(-1, 32)).reshape(3, 50, 32)
    src = _unit((en + 0.3 * rng.standard_normal(en.shape)).reshape(-1, 32)).reshape(3, 50, 32)
    rows_f = tatoeba.tatoeba_all_layers(src, en, search=resolve("faiss"))
    rows_t = tatoeba.tatoeba_all_layers(src, en, search=Search("torch", "cpu", memory_bytes=3000))
    assert 0.5 < rows_f[0]["accuracy"] < 1.0  # not trivial
    for f, t in zip(rows_f, rows_t):
        assert {k: v for k, v in f.items() if k != "predictions"} == {k: v for k, v in t.items() if k != "predictions"}
        np.testing.assert_array_equal(f["predictions"], t["predictions"])


def _bucc_embeddings(split, seed):
    """Gold pairs share a direction (with noise), every other text its own random vector, in 64 dimensions:
    some gold pairs are missed, some distractors mined, so the threshold and F1 are not trivial."""
    rng = np.random.default_rng(seed)
    src, trg = bucc.dedupe(split.src_ids, split.src_sentences), bucc.dedupe(split.trg_ids, split.trg_sentences)
    src_text, trg_text = dict(zip(split.src_ids, split.src_sentences)), dict(zip(split.trg_ids, split.trg_sentences))
    vec, d = {}, 64
    for s, t in sorted(split.gold):
        v = rng.standard_normal(d)
        vec[("s", src_text[s])] = v + 0.9 * rng.standard_normal(d)
        vec[("t", trg_text[t])] = v + 0.9 * rng.standard_normal(d)
    x = _unit([vec.get(("s", u), rng.standard_normal(d)) for u in src[0]])
    y = _unit([vec.get(("t", u), rng.standard_normal(d)) for u in trg[0]])
    return src, trg, x, y


@pytest.mark.parametrize("lang", ["de", "fr", "ru", "zh"])
def test_bucc_mined_pairs_and_f1_equal_on_the_fixtures(lang):
    root = bucc_data.kit_dir(HUB)
    dev, test = (bucc_data.read_split(root, lang, s) for s in ("dev", "test"))
    torch_search = Search("torch", "cpu", memory_bytes=2000)  # chunks of a few rows: every edge is crossed
    out = {}
    for name, s in (("faiss", resolve("faiss")), ("torch", torch_search)):
        cands = {}
        for split, seed in ((dev, 10), (test, 11)):
            src, trg, x, y = _bucc_embeddings(split, seed)
            cands[split.split] = bucc.mine_ids(src, trg, x, y, search=s)
        out[name] = (cands, bucc.bucc_protocol(cands["dev"], dev.gold, cands["test"], test.gold))
    assert max(torch_search.chunks)[1] < 29  # the database really was chunked
    (cf, pf), (ct, pt) = out["faiss"], out["torch"]
    for split in ("dev", "test"):
        assert [(s, t) for s, t, _ in cf[split]] == [(s, t) for s, t, _ in ct[split]]
        np.testing.assert_allclose([v for *_, v in cf[split]], [v for *_, v in ct[split]], atol=EPS)
    assert 0 < pf["f1"] < 100  # not trivial
    assert pt["f1"] == pf["f1"] and pt["dev_oracle_f1"] == pf["dev_oracle_f1"]
    assert pt["threshold"] == pytest.approx(pf["threshold"], abs=EPS)


def test_dual_encoder_map_equal_on_the_lareqa_fixture():
    task = get_task("lareqa")
    ex = de.load(task, task.test, HUB, ["de", "zh", "en"])
    roles, relevant, langs = ex["role"][:], ex["relevant"][:], ex["lang"][:]
    rng = np.random.default_rng(5)
    emb = rng.standard_normal((len(roles), 32))
    ids = ex["id"][:]
    row_of = {i: r for r, i in enumerate(ids)}
    for r, role in enumerate(roles):  # each query near one of its relevant answers (noisy): mAP in (0, 1)
        if role == "query":
            emb[r] = emb[row_of[relevant[r][0]]] + 1.5 * rng.standard_normal(32)
    emb = _unit(emb)
    maps = {}
    for name, s in (("faiss", resolve("faiss")), ("torch", Search("torch", "cpu", memory_bytes=5000))):
        ranked = de.rank(emb, ex, search=s)
        maps[name] = {lang: de.score(task, [ranked[i] for i, l in enumerate(langs) if l == lang],
                                     [relevant[i] for i, l in enumerate(langs) if l == lang])["map@20"]
                      for lang in ("de", "zh", "en")}
        maps[name + "_rankings"] = ranked
    assert maps["torch"] == maps["faiss"] and all(0 < v < 1 for v in maps["faiss"].values())
    assert maps["torch_rankings"] == maps["faiss_rankings"]


# --------------------------------------------------------------------------------------------- run_retrieval

def test_run_retrieval_records_the_backend_and_gives_the_same_numbers(tiny, tmp_path):
    results = {}
    for backend in ("faiss", "torch"):
        out = tmp_path / backend
        assert run_script("run_retrieval", ["--model", str(tiny), "--task", "bucc2018", "--data_root", str(HUB),
                                            "--languages", "de,zh", "--layers", "0,1", "--search_backend", backend,
                                            "--output_dir", str(out)]) == 0
        results[backend] = json.loads((out / "results.json").read_text())
    f, t = results["faiss"]["retrieval"], results["torch"]["retrieval"]
    assert f["search"]["backend"] == "faiss" and f["search"]["requested"] == "faiss"
    assert t["search"] == dict(t["search"], backend="torch", device="cpu", dtype="float32", accumulation="float32",
                               exact=True)
    assert t["search"]["chunks_used"] and t["mining"]["knn_db_chunk"] is None  # FAISS options: not used
    for layer in ("0", "1"):
        for lang in ("de", "zh"):
            a, b = f["per_layer"][layer]["per_language"][lang], t["per_layer"][layer]["per_language"][lang]
            thresholds = ("threshold", "test_oracle_threshold")  # midpoints of scores: equal up to float noise
            assert {k: v for k, v in a.items() if k not in thresholds} == \
                {k: v for k, v in b.items() if k not in thresholds}
            for key in thresholds:
                assert (a[key] is None) == (b[key] is None)
                if a[key] is not None:
                    assert a[key] == pytest.approx(b[key], abs=EPS)


@pytest.mark.parametrize("extra, message", [
    (["--search_backend", "gpu"], "unknown --search_backend 'gpu'; valid choices: auto, faiss, torch"),
    (["--search_dtype", "half"], "unknown --search_dtype 'half'; valid choices: float32, bfloat16"),
    (["--search_backend", "torch", "--index", "hnsw"], "--index hnsw is a FAISS approximate index"),
    (["--search_dtype", "bfloat16"], "--search_dtype bfloat16 applies to the torch backend"),
])
def test_bad_search_flags_exit_2_before_the_model_loads(extra, message, tiny, tmp_path, capsys, monkeypatch):
    import transformers

    def forbidden(*a, **k):
        raise AssertionError("a model was loaded before input validation finished")

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", forbidden)
    monkeypatch.setattr(search, "_cuda_available", lambda: False)  # the bf16 case: auto means FAISS here
    rc = run_script("run_retrieval", ["--model", str(tiny), "--task", "bucc2018", "--data_root", str(HUB),
                                      "--output_dir", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert rc == 2 and message in err, err
    assert not (tmp_path / "o" / "results.json").exists()
