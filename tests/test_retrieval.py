"""Retrieval on vectors with a known answer, and embeddings of every layer in one pass."""

import numpy as np
import pytest
from transformers import AutoTokenizer

from xstilts import retrieval
from xstilts.modeling import load_encoder


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_planted_permutation_is_recovered():
    rng = np.random.default_rng(0)
    en = _unit(rng.normal(size=(50, 16)).astype(np.float32))
    perm = rng.permutation(50)
    foreign = _unit(en[perm] + 0.05 * rng.normal(size=(50, 16)).astype(np.float32))
    # gold for English i is the foreign row j with perm[j] == i
    gold = np.argsort(perm)
    acc, pred = retrieval.top1_accuracy(en, foreign, gold)
    assert acc == 1.0 and np.array_equal(pred, gold)


def test_known_mistakes_counted():
    en = np.eye(4, dtype=np.float32)
    foreign = np.eye(4, dtype=np.float32)[[0, 1, 3, 2]]  # rows 2 and 3 swapped
    acc, pred = retrieval.top1_accuracy(en, foreign)
    assert acc == 0.5 and pred.tolist() == [0, 1, 3, 2]


def test_tatoeba_all_layers_reports_both_directions():
    rng = np.random.default_rng(1)
    src = _unit(rng.normal(size=(3, 10, 8)).astype(np.float32))
    en = src.copy()
    en[1] = _unit(rng.normal(size=(10, 8)).astype(np.float32))  # layer 1 unrelated
    rows = retrieval.tatoeba_all_layers(src, en)
    assert [r["accuracy"] for r in rows][0::2] == [1.0, 1.0]
    assert rows[1]["accuracy"] < 0.5


def test_embed_all_layers_shapes_order_and_norm(tiny):
    tok = AutoTokenizer.from_pretrained(tiny)
    model = load_encoder(str(tiny))
    sents = ["a much longer sentence than the others here", "short", "Ein Satz.", "中文句子"]
    emb = retrieval.embed_all_layers(model, tok, sents, batch_size=2, progress=False)
    assert emb.shape == (model.config.num_hidden_layers + 1, 4, model.config.hidden_size)
    assert np.allclose(np.linalg.norm(emb, axis=-1), 1.0, atol=1e-5)
    # input order is restored after length-sorted batching: same result one by one
    single = np.stack([retrieval.embed_all_layers(model, tok, [s], progress=False)[:, 0] for s in sents], axis=1)
    assert np.allclose(emb, single, atol=1e-5)
    cls = retrieval.embed_all_layers(model, tok, sents, pooling="cls", progress=False)
    nospecial = retrieval.embed_all_layers(model, tok, sents, include_special_tokens=False, progress=False)
    assert not np.allclose(cls, emb) and not np.allclose(nospecial, emb)
    with pytest.raises(ValueError, match="unknown pooling 'max'"):
        retrieval.embed_all_layers(model, tok, sents, pooling="max")


def test_layer_resolution():
    assert retrieval.resolve_layer(3, 24, 14) == (3, "command line")
    assert retrieval.resolve_layer(None, 24, 14)[0] == 14
    assert retrieval.resolve_layer(None, 12, None)[0] == 7
