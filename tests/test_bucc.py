"""BUCC 2018: margin mining, duplicates, threshold protocol (dev -> test), release reader and converter."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from xstilts.errors import UsageError
from xstilts.prepare import bucc as bucc_data
from xstilts.prepare import downloads
from xstilts.prepare.bucc import (archive_name, check_available, convert_release, download_release, read_split,
                                  sha256_file, write_archive)
from xstilts.retrieval import bucc

FIX = Path(__file__).resolve().parent / "fixtures" / "bucc2018"


def _norm(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)


def _ids(cands):
    return [(str(s), str(t), v) for s, t, v in cands]


# --------------------------------------------------------------------------------------------- kNN / scores

def test_knn_exact_batched_and_chunked_match_brute_force():
    rng = np.random.default_rng(1)
    x, y = _norm(rng.standard_normal((57, 24))), _norm(rng.standard_normal((83, 24)))
    sims = x @ y.T
    ref_ids = np.argsort(-sims, axis=1, kind="stable")[:, :5]
    for kw in ({}, {"batch_size": 10}, {"batch_size": 7, "db_batch_size": 20}, {"db_batch_size": 3}):
        s, i = bucc.knn(x, y, 5, **kw)
        assert s.shape == (57, 5) and i.dtype == np.int64
        np.testing.assert_array_equal(i, ref_ids)
        np.testing.assert_allclose(s, np.take_along_axis(sims, ref_ids, 1), atol=1e-5)
    s, i = bucc.knn(x, y[:3], 10)  # k clamps to the database size
    assert s.shape == (57, 3)
    s, i = bucc.knn(x, y, 5, index="hnsw")  # approximate, but exact on a database this small
    assert (i[:, 0] == ref_ids[:, 0]).mean() > 0.95
    with pytest.raises(ValueError, match="unknown index"):
        bucc.knn(x, y, 5, index="ivf")


def test_margin_scores_match_the_definition():
    rng = np.random.default_rng(2)
    x, y = _norm(rng.standard_normal((20, 16))), _norm(rng.standard_normal((30, 16)))
    k = 4
    ms = bucc.margin_scores(x, y, k=k)
    sims = (x.astype(np.float64) @ y.T.astype(np.float64))
    fwd_mean = np.sort(sims, axis=1)[:, ::-1][:, :k].mean(1)
    bwd_mean = np.sort(sims.T, axis=1)[:, ::-1][:, :k].mean(1)
    for i in range(len(x)):
        for jj, j in enumerate(ms["fwd_ind"][i]):
            expected = sims[i, j] / ((fwd_mean[i] + bwd_mean[j]) / 2)
            assert ms["fwd_scores"][i, jj] == pytest.approx(expected, rel=1e-5)
    for j in range(len(y)):
        for ii, i in enumerate(ms["bwd_ind"][j]):
            expected = sims[i, j] / ((fwd_mean[i] + bwd_mean[j]) / 2)
            assert ms["bwd_scores"][j, ii] == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="L2-normalised"):
        bucc.mine(x * 2, y)


# --------------------------------------------------------------------------------------------- mining

def test_planted_ground_truth_is_mined_exactly():
    rng = np.random.default_rng(3)
    n, d = 60, 64
    base = _norm(rng.standard_normal((n, d)))
    perm = rng.permutation(n)
    x = np.concatenate([base, _norm(rng.standard_normal((15, d)))])  # + source-side distractors
    y = _norm(np.concatenate([base[perm] + 0.15 * rng.standard_normal((n, d)) / np.sqrt(d),
                              rng.standard_normal((25, d))]))  # + target-side distractors
    gold = {(str(perm[j]), str(j)) for j in range(n)}
    cands = bucc.mine(x, y, k=4, margin="ratio", strategy="max")
    scores = [c[2] for c in cands]
    assert scores == sorted(scores, reverse=True)
    assert len({c[0] for c in cands}) == len(cands) and len({c[1] for c in cands}) == len(cands)  # one-to-one
    threshold, f1, p, r = bucc.best_threshold(_ids(cands), gold)
    assert (f1, p, r) == (100.0, 100.0, 100.0)
    assert bucc.evaluate(_ids(cands), gold, threshold)["f1"] == 100.0


def test_ratio_margin_beats_cosine_with_hubs():
    """Sources lean towards 5 'hub' targets: plain cosine pairs some sources with a hub, the ratio
    margin discounts the hubs (their neighbourhood similarity is high) and finds every true pair."""
    rng = np.random.default_rng(0)
    n, d, n_hubs = 50, 128, 5
    c = _norm(rng.standard_normal((n, d)))
    hubs = _norm(rng.standard_normal((n_hubs, d)))
    x = _norm(c + 0.8 * hubs[np.arange(n) % n_hubs])
    noise = _norm(rng.standard_normal((n, d)))
    y = _norm(np.concatenate([c + noise, hubs]))
    gold = {(str(i), str(i)) for i in range(n)}
    f1 = {m: bucc.best_threshold(_ids(bucc.mine(x, y, margin=m)), gold)[1] for m in ("ratio", "absolute")}
    assert f1["ratio"] == 100.0
    assert f1["ratio"] > f1["absolute"]
    assert f1["absolute"] < 95.0


def test_strategies():
    rng = np.random.default_rng(4)
    x, y = _norm(rng.standard_normal((12, 8))), _norm(rng.standard_normal((9, 8)))
    assert len(bucc.mine(x, y, strategy="fwd")) == 12
    assert len(bucc.mine(x, y, strategy="bwd")) == 9
    inter = bucc.mine(x, y, strategy="intersect")
    mx = bucc.mine(x, y, strategy="max")
    assert set((s, t) for s, t, _ in inter) <= set((s, t) for s, t, _ in mx)
    assert bucc.mine(x[:0], y) == []
    with pytest.raises(ValueError, match="strategy"):
        bucc.mine(x, y, strategy="best")


# --------------------------------------------------------------------------------------------- duplicates

def test_duplicates_keep_every_id():
    src_ids = ["de-1", "de-2", "de-3", "de-4"]
    src_sents = ["Hallo Welt", "Guten Tag", "Hallo Welt", "Tschüss"]
    trg_ids = ["en-1", "en-2", "en-3", "en-4"]
    trg_sents = ["Good day", "Hello world", "Bye", "Good day"]
    src, trg = bucc.dedupe(src_ids, src_sents), bucc.dedupe(trg_ids, trg_sents)
    assert src[0] == ["Hallo Welt", "Guten Tag", "Tschüss"]
    assert src[1]["Hallo Welt"] == ["de-1", "de-3"]
    # unique-sentence embeddings: each translation pair shares a direction
    rng = np.random.default_rng(5)
    e = _norm(rng.standard_normal((3, 32)))
    src_emb = e  # Hallo Welt, Guten Tag, Tschüss
    trg_emb = _norm(e[[1, 0, 2]] + 0.01 * rng.standard_normal((3, 32)))  # Good day, Hello world, Bye
    pairs = bucc.mine_ids(src, trg, src_emb, trg_emb)
    got = {(s, t) for s, t, _ in pairs}
    assert {("de-1", "en-2"), ("de-3", "en-2")} <= got  # both ids of the duplicated source sentence
    assert {("de-2", "en-1"), ("de-2", "en-4")} <= got  # both ids of the duplicated target sentence
    assert ("de-4", "en-3") in got and len(got) == 5
    scores = {(s, t): v for s, t, v in pairs}
    assert scores[("de-1", "en-2")] == scores[("de-3", "en-2")]
    with pytest.raises(ValueError, match="duplicate sentence id"):
        bucc.dedupe(["a", "a"], ["x", "y"])


# --------------------------------------------------------------------------------------------- threshold

def test_best_threshold_hand_made():
    gold = {("a", "1"), ("b", "2"), ("d", "4"), ("f", "6")}
    cands = [("a", "1", 1.30), ("b", "2", 1.20), ("c", "3", 1.10), ("d", "4", 1.00), ("e", "5", 0.90)]
    # cuts: F1 = .4, .667, .571, .75 (3 of 4 kept, 3 of 4 gold), .667 -> best after 1.00
    threshold, f1, p, r = bucc.best_threshold(cands, gold)
    assert threshold == pytest.approx(0.95)
    assert (f1, p, r) == pytest.approx((75.0, 75.0, 75.0))
    assert bucc.evaluate(cands, gold, threshold)["f1"] == pytest.approx(f1)

    # optimum at the very end of the list: the threshold is the last score (no index past the end)
    cands_end = [("a", "1", 0.9), ("b", "2", 0.8), ("c", "3", 0.8), ("d", "4", 0.7)]
    gold_end = {("a", "1"), ("b", "2"), ("d", "4")}
    threshold, f1, p, r = bucc.best_threshold(cands_end, gold_end)
    assert threshold == 0.7 and f1 == pytest.approx(100 * 6 / 7)
    assert bucc.evaluate(cands_end, gold_end, threshold)["n_predicted"] == 4

    # tied scores are kept or dropped together: no cut inside the 0.8 tie
    cands_tie = [("a", "1", 0.9), ("b", "2", 0.8), ("c", "3", 0.8), ("d", "4", 0.1)]
    gold_tie = {("a", "1"), ("b", "2")}
    threshold, f1, _, _ = bucc.best_threshold(cands_tie, gold_tie)
    assert threshold == pytest.approx(0.45) and f1 == pytest.approx(80.0)
    assert bucc.evaluate(cands_tie, gold_tie, threshold)["f1"] == pytest.approx(f1)

    # a pair listed twice counts once, with its highest score
    assert bucc.best_threshold(cands + [("a", "1", 0.1)], gold)[:2] == pytest.approx((0.95, 75.0))
    # nothing correct / nothing at all: predict nothing
    assert bucc.best_threshold([("x", "y", 1.0)], gold) == (float("inf"), 0.0, 0.0, 0.0)
    assert bucc.best_threshold([], gold)[1] == 0.0


def test_dev_threshold_is_applied_unchanged_to_test():
    dev_gold = {("a", "1"), ("b", "2"), ("d", "4"), ("f", "6")}
    dev = [("a", "1", 1.30), ("b", "2", 1.20), ("c", "3", 1.10), ("d", "4", 1.00), ("e", "5", 0.90)]
    test_gold = {("p", "1"), ("r", "3"), ("s", "4"), ("u", "6")}
    test = [("p", "1", 1.25), ("q", "2", 1.00), ("r", "3", 0.96), ("s", "4", 0.94), ("t", "5", 0.50)]
    dev_threshold = bucc.best_threshold(dev, dev_gold)[0]
    res = bucc.bucc_protocol(dev, dev_gold, test, test_gold)
    assert res["threshold"] == dev_threshold == pytest.approx(0.95)
    # by hand: kept = 1.25 (gold), 1.00 (not), 0.96 (gold) -> P = 2/3, R = 2/4, F1 = 4/7
    assert res["n_predicted"] == 3 and res["n_gold"] == 4
    assert res["precision"] == pytest.approx(200 / 3)
    assert res["recall"] == pytest.approx(50.0)
    assert res["f1"] == pytest.approx(400 / 7)
    assert res["dev_oracle_f1"] == pytest.approx(75.0)
    # re-tuning on test gold would give a different (higher) number: the protocol must not do that
    assert bucc.best_threshold(test, test_gold)[1] == pytest.approx(75.0) != res["f1"]
    # submission mode: no test gold
    sub = bucc.bucc_protocol(dev, dev_gold, test, None)
    assert sub["f1"] is None and sub["n_predicted"] == 3 and sub["threshold"] == res["threshold"]


# --------------------------------------------------------------------------------------------- files

def test_read_split_fixture():
    s = read_split(FIX, "de", "sample")
    assert len(s.src_ids) == len(s.trg_ids) == 30 and len(s.gold) == 10
    assert all(i.startswith("de-") for i in s.src_ids) and all(i.startswith("en-") for i in s.trg_ids)
    assert len(set(s.src_sentences)) == 29 and len(set(s.trg_sentences)) == 29  # one duplicate a side
    for lang in ("de", "fr", "ru", "zh"):
        for split in ("sample", "training"):
            t = read_split(FIX, lang, split)
            assert len(t.gold) == 10 and {p[0] for p in t.gold} <= set(t.src_ids)
            assert all(i.startswith(f"{lang}-") for i in t.src_ids)
    with pytest.raises(UsageError, match="missing .*make data-bucc"):
        read_split(FIX / "nowhere", "ru", "sample")


def _fixture_candidates(split, seed):
    """Embeddings where each gold pair shares a direction, every other text its own: mining must find
    all gold pairs, plus the duplicated copy of gold pair 0's English sentence (same text, same score)."""
    rng = np.random.default_rng(seed)
    src, trg = bucc.dedupe(split.src_ids, split.src_sentences), bucc.dedupe(split.trg_ids, split.trg_sentences)
    src_text = dict(zip(split.src_ids, split.src_sentences))
    trg_text = dict(zip(split.trg_ids, split.trg_sentences))
    vec, d = {}, 512  # high dimension: unrelated vectors are near-orthogonal, so gold margins are all alike
    for s, t in sorted(split.gold):
        v = rng.standard_normal(d)
        vec[("s", src_text[s])] = v + 0.05 * rng.standard_normal(d)
        vec[("t", trg_text[t])] = v + 0.05 * rng.standard_normal(d)
    src_emb = _norm([vec.get(("s", u), rng.standard_normal(d)) for u in src[0]])
    trg_emb = _norm([vec.get(("t", u), rng.standard_normal(d)) for u in trg[0]])
    return bucc.mine_ids(src, trg, src_emb, trg_emb)


def test_fixture_end_to_end_keeps_duplicate_ids(tmp_path):
    dev, test = read_split(FIX, "de", "sample"), read_split(FIX, "de", "training")
    dev_c, test_c = _fixture_candidates(dev, 6), _fixture_candidates(test, 7)
    # the duplicated English sentence: both of its ids are paired with the gold source id
    dup_text = next(t for t in dev.trg_sentences if dev.trg_sentences.count(t) > 1)
    dup_ids = [i for i, t in zip(dev.trg_ids, dev.trg_sentences) if t == dup_text]
    gold_src = next(s for s, t in dev.gold if t in dup_ids)
    got = {(s, t) for s, t, _ in dev_c}
    assert {(gold_src, dup_ids[0]), (gold_src, dup_ids[1])} <= got
    res = bucc.bucc_protocol(dev_c, dev.gold, test_c, test.gold)
    # every gold pair found, plus the one non-gold copy of the duplicate: P = 10/11, R = 1
    assert res["dev_oracle_f1"] == pytest.approx(100 * 20 / 21)
    assert res["recall"] == 100.0 and res["f1"] == pytest.approx(100 * 20 / 21)
    out = bucc.write_predictions(bucc.prediction_path(tmp_path, "de"), bucc.apply_threshold(test_c, res["threshold"]))
    assert out == tmp_path / "bucc2018" / "test-de.tsv"
    assert len(bucc.read_predictions(out)) == res["n_predicted"] == 11
    assert set(bucc.read_predictions(out)) >= test.gold
    cpath = bucc.write_candidates(tmp_path / "cands.tsv", test_c)
    assert bucc.read_candidates(cpath) == test_c


def _archives(tmp_path) -> Path:
    adir = tmp_path / "archives"
    adir.mkdir()
    shutil.copy(FIX / archive_name("de", "sample"), adir)
    write_archive(adir / archive_name("de", "training"), FIX, "de", "training")
    return adir


def test_fixture_archive_is_up_to_date(tmp_path):
    rebuilt = write_archive(tmp_path / "a.tar.bz2", FIX, "de", "sample")
    assert rebuilt.read_bytes() == (FIX / archive_name("de", "sample")).read_bytes()
    assert rebuilt.stat().st_size < 50_000


def test_convert_release(tmp_path):
    adir = _archives(tmp_path)
    table = {p.name: sha256_file(p) for p in adir.iterdir()}
    manifest = convert_release(adir, tmp_path / "data", langs=["de"], checksums=table)
    kit = tmp_path / "data" / "local" / "bucc2018"
    for split, release in (("dev", "sample"), ("test", "training")):
        for ext in ("de", "en", "gold"):
            assert (kit / f"de-en.{split}.{ext}").read_bytes() == (FIX / f"de-en.{release}.{ext}").read_bytes()
    assert (kit / "de-en.test.gold").exists()  # XTREME deletes the test gold; we keep it
    assert manifest["splits"]["de-dev"] == {"release": "sample", "archive": archive_name("de", "sample"),
                                            "src_sentences": 30, "en_sentences": 30, "gold_pairs": 10,
                                            # one text twice a side; one gold pair names an id of the English one
                                            "src_duplicated_texts": 1, "src_ids_with_duplicated_text": 2,
                                            "en_duplicated_texts": 1, "en_ids_with_duplicated_text": 2,
                                            "gold_pairs_with_duplicated_text": 1}
    assert read_split(kit, "de", "test").gold == read_split(FIX, "de", "training").gold
    # a checksum table file (sha256sum format) that does not match
    bad = tmp_path / "SHA256SUMS"
    bad.write_text("".join(f"{'0' * 64}  {name}\n" for name in table))
    with pytest.raises(UsageError, match="does not match"):
        convert_release(adir, tmp_path / "data2", langs=["de"], checksums=bad)


def test_missing_archive_error(tmp_path):
    adir = tmp_path / "archives"
    adir.mkdir()
    shutil.copy(FIX / archive_name("de", "sample"), adir)
    with pytest.raises(UsageError) as e:
        convert_release(adir, tmp_path / "out", langs=["de"])
    msg = str(e.value)
    assert "bucc2018-de-en.training-gold.tar.bz2" in msg and "sample-gold" not in msg
    assert "make data-bucc" in msg and "https://comparable.limsi.fr/bucc2018/" in msg
    with pytest.raises(UsageError, match="unknown BUCC 2018 language"):
        convert_release(adir, tmp_path / "out", langs=["xx"])


def test_tune_threshold_is_the_dev_half_of_the_protocol():
    dev_gold = {("a", "1"), ("b", "2"), ("d", "4"), ("f", "6")}
    dev = [("a", "1", 1.30), ("b", "2", 1.20), ("c", "3", 1.10), ("d", "4", 1.00), ("e", "5", 0.90)]
    t = bucc.tune_threshold(dev, dev_gold)
    assert t["threshold"] == pytest.approx(0.95) and t["dev_oracle_f1"] == pytest.approx(75.0)
    assert t["dev_n_gold"] == 4
    p = bucc.bucc_protocol(dev, dev_gold, dev, dev_gold)
    assert {k: p[k] for k in t} == t


# --------------------------------------------------------------------------------------------- download

@pytest.fixture
def checksum_table(tmp_path, monkeypatch):
    """A private copy of xstilts/prepare/data_checksums.json, so tests can record sums without touching the kit's."""
    table = tmp_path / "data_checksums.json"
    table.write_bytes(downloads.CHECKSUMS_FILE.read_bytes())
    monkeypatch.setattr(downloads, "CHECKSUMS_FILE", table)
    return table


def _release_dir(tmp_path) -> Path:
    """Release-format archives of every fixture language, served by a file:// URL."""
    server = tmp_path / "server"
    for lang in bucc_data.LANGS:
        for release in bucc_data.RELEASE_OF_SPLIT.values():
            write_archive(server / archive_name(lang, release), FIX, lang, release)
    return server


def test_download_verify_record_and_refuse(tmp_path, checksum_table, capsys):
    import json

    server = _release_dir(tmp_path)
    out = tmp_path / "data"
    m = download_release(out, ["de", "zh"], base_url=server.as_uri())
    # nothing recorded in the kit (the real sums are unknown offline): accepted, printed UNVERIFIED, stored locally
    err = capsys.readouterr().err
    assert err.count("UNVERIFIED") == 4 and sha256_file(server / archive_name("de", "sample")) in err
    assert m["archives"][archive_name("de", "sample")]["verified"] is False
    sums = downloads.read_sums(out / "download" / "bucc2018" / "SHA256SUMS")
    assert sums[archive_name("zh", "training")] == sha256_file(server / archive_name("zh", "training"))
    for lang in ("de", "zh"):
        assert read_split(out / "local" / "bucc2018", lang, "test").gold == read_split(FIX, lang, "training").gold
    check_available(out, ["de", "zh"])
    with pytest.raises(UsageError, match="make data-bucc"):
        check_available(out, ["fr"])

    # a second run verifies against the sums recorded by the first (trust on first use) ...
    m2 = download_release(out, ["de", "zh"], base_url=server.as_uri(), download=False)
    assert m2["archives"][archive_name("de", "sample")]["verified_against"] == "earlier download (SHA256SUMS)"
    # ... and refuses a changed archive
    (out / "download" / "bucc2018" / archive_name("de", "sample")).write_bytes(b"not the archive")
    with pytest.raises(UsageError, match="does not match the recorded"):
        download_release(out, ["de"], download=False)

    # --record_checksums fills null entries of the kit table, never over a recorded value
    download_release(tmp_path / "data2", ["fr"], base_url=server.as_uri(), record=True)
    table = json.loads(checksum_table.read_text())["bucc2018"]["files"]
    assert table[archive_name("fr", "sample")] == sha256_file(server / archive_name("fr", "sample"))
    assert table[archive_name("de", "sample")] is None
    m3 = download_release(tmp_path / "data3", ["fr"], base_url=server.as_uri())
    assert m3["archives"][archive_name("fr", "training")]["verified_against"] == "kit table"
    table_obj = json.loads(checksum_table.read_text())
    table_obj["bucc2018"]["files"][archive_name("fr", "training")] = "0" * 64
    checksum_table.write_text(json.dumps(table_obj))
    with pytest.raises(UsageError, match="does not match the recorded 0000"):
        download_release(tmp_path / "data4", ["fr"], base_url=server.as_uri())


def test_download_errors(tmp_path, checksum_table):
    with pytest.raises(UsageError, match=r"download of .*bucc2018-de-en.sample-gold.tar.bz2 failed"):
        download_release(tmp_path / "d", ["de"], base_url=(tmp_path / "empty").as_uri())
    with pytest.raises(UsageError, match="missing BUCC 2018 archives: .*make data-bucc"):
        download_release(tmp_path / "d", ["de"], download=False)
    with pytest.raises(UsageError, match="unknown BUCC 2018 language 'es'"):
        download_release(tmp_path / "d", ["es"])


def test_kit_checksum_table_is_honest():
    """BUCC sums are not known offline: null (unverified), not made up; LASER prefix hashes match the excerpt."""
    import hashlib
    import json

    table = json.loads(downloads.CHECKSUMS_FILE.read_text())
    assert set(table["bucc2018"]["files"]) == {archive_name(l, r) for l in bucc_data.LANGS
                                               for r in bucc_data.RELEASE_OF_SPLIT.values()}
    assert all(v is None or len(v) == 64 for v in table["bucc2018"]["files"].values())
    raw = FIX.parent / "sources" / "realdata" / "raw" / "tatoeba"
    for name, h in table["laser_tatoeba"]["first40_sha256"].items():
        assert hashlib.sha256((raw / name).read_bytes()).hexdigest() == h  # the excerpt is the first 40 lines
