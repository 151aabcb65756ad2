"""Retrieval: known answers on vectors, every layer in one pass, and Tatoeba / BUCC 2018 end to end on the tiny
model (pretrained and from a phase-2 checkpoint), with leaderboard files that score identically."""

import json
import shutil

import numpy as np
import pytest
from transformers import AutoTokenizer

from conftest import HUB, run_script
from xstilts.errors import UsageError
from xstilts.training.modeling import load_encoder
from xstilts.prepare import bucc as bucc_data
from xstilts.prepare import downloads, tatoeba_laser
from xstilts.tasks import TASKS
from xstilts.run.results import read_results
from xstilts.retrieval import bucc, embed, summary, tatoeba
from xstilts.scoring.xtreme import score_folders

RAW_TATOEBA = HUB.parent / "sources" / "realdata" / "raw" / "tatoeba"


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


# --------------------------------------------------------------------------------------------- search

def test_planted_permutation_is_recovered():
    rng = np.random.default_rng(0)
    en = _unit(rng.normal(size=(50, 16)).astype(np.float32))
    perm = rng.permutation(50)
    foreign = _unit(en[perm] + 0.05 * rng.normal(size=(50, 16)).astype(np.float32))
    # gold for English i is the foreign row j with perm[j] == i
    gold = np.argsort(perm)
    acc, pred = tatoeba.top1_accuracy(en, foreign, gold)
    assert acc == 1.0 and np.array_equal(pred, gold)


def test_known_mistakes_counted():
    en = np.eye(4, dtype=np.float32)
    foreign = np.eye(4, dtype=np.float32)[[0, 1, 3, 2]]  # rows 2 and 3 swapped
    acc, pred = tatoeba.top1_accuracy(en, foreign)
    assert acc == 0.5 and pred.tolist() == [0, 1, 3, 2]


def test_tatoeba_all_layers_reports_both_directions():
    rng = np.random.default_rng(1)
    src = _unit(rng.normal(size=(3, 10, 8)).astype(np.float32))
    en = src.copy()
    en[1] = _unit(rng.normal(size=(10, 8)).astype(np.float32))  # layer 1 unrelated
    rows = tatoeba.tatoeba_all_layers(src, en)
    assert [r["accuracy"] for r in rows][0::2] == [1.0, 1.0]
    assert rows[1]["accuracy"] < 0.5
    assert rows[0]["accuracy_xx2en"] == 1.0 and rows[0]["accuracy_mean_both"] == 1.0


# --------------------------------------------------------------------------------------------- embedding

def test_embed_all_layers_shapes_order_and_norm(tiny):
    tok = AutoTokenizer.from_pretrained(tiny)
    model = load_encoder(str(tiny))
    sents = ["a much longer sentence than the others here", "short", "Ein Satz.", "中文句子"]
    emb = embed.embed_all_layers(model, tok, sents, batch_size=2, progress=False)
    assert emb.shape == (model.config.num_hidden_layers + 1, 4, model.config.hidden_size)
    assert np.allclose(np.linalg.norm(emb, axis=-1), 1.0, atol=1e-5)
    # input order is restored after length-sorted batching: same result one by one
    single = np.stack([embed.embed_all_layers(model, tok, [s], progress=False)[:, 0] for s in sents], axis=1)
    assert np.allclose(emb, single, atol=1e-5)
    cls = embed.embed_all_layers(model, tok, sents, pooling="cls", progress=False)
    nospecial = embed.embed_all_layers(model, tok, sents, include_special_tokens=False, progress=False)
    assert not np.allclose(cls, emb) and not np.allclose(nospecial, emb)
    with pytest.raises(ValueError, match="unknown pooling 'max'"):
        embed.embed_all_layers(model, tok, sents, pooling="max")


def test_layer_subset_and_memory_mapped_output_match_the_full_sweep(tiny, tmp_path):
    tok = AutoTokenizer.from_pretrained(tiny)
    model = load_encoder(str(tiny))
    sents = [f"sentence number {i} " + "word " * (i % 7) for i in range(23)] + [""]
    full = embed.embed_all_layers(model, tok, sents, batch_size=5, progress=False)
    sub = embed.embed_layers(model, tok, sents, layers=[2, 0], batch_size=5, progress=False)
    assert sub.shape == (2, len(sents), model.config.hidden_size)
    np.testing.assert_allclose(sub, full[[2, 0]], atol=1e-6)
    out = embed.allocate(sub.shape, memory_budget_bytes=1, spill_dir=tmp_path / "spill", name="x")
    assert isinstance(out, np.memmap) and (tmp_path / "spill" / "x.f32").is_file()
    mm = embed.embed_layers(model, tok, sents, layers=[2, 0], batch_size=5, progress=False, out=out,
                                include_special_tokens=False)
    assert mm is out and np.isfinite(mm).all()
    np.testing.assert_allclose(np.linalg.norm(mm, axis=-1), 1.0, atol=1e-5)  # the empty sentence too
    assert isinstance(embed.allocate(sub.shape, memory_budget_bytes=1e12, spill_dir=tmp_path), np.ndarray)
    with pytest.raises(ValueError, match="out has shape"):
        embed.embed_layers(model, tok, sents, layers=[1], out=np.zeros((2, 1, 1), np.float32))


def test_layer_resolution_and_selection():
    assert embed.resolve_layer(3, 24, 14) == (3, "command line")
    assert embed.resolve_layer(None, 24, 14)[0] == 14
    assert embed.resolve_layer(None, 12, None)[0] == 7  # the study's relative depth 14/24
    assert embed.resolve_layer(None, 48, None)[0] == 28
    assert embed.parse_layers("all", 4, 2) == [0, 1, 2, 3, 4]
    assert embed.parse_layers("default", 24, 14) == [14]
    assert embed.parse_layers("20, 8", 24, 14) == [8, 14, 20]  # the configured layer always included
    with pytest.raises(UsageError, match="--layers: layer 25 is outside the model: valid hidden_states indices are 0..24"):
        embed.parse_layers("8,25", 24, 14)
    with pytest.raises(UsageError, match="'x' is not a layer index"):
        embed.parse_layers("8,x", 24, 14)
    with pytest.raises(UsageError, match="--layer -1 is outside"):
        embed.check_layer(-1, 24)


def test_every_retrieval_language_has_a_family_group():
    for name in ("tatoeba", "bucc2018"):
        task = TASKS[name]
        groups = summary.group_languages(task.all_languages)
        assert sum(len(v) for v in groups.values()) == len(task.all_languages)
        if name == "tatoeba":  # real families, not one language each; isolates and singletons pooled in "other"
            assert all(len(v) >= 2 for v in groups.values()) and len(groups["other"]) <= 6
    assert summary.language_group("de") == "Germanic" and summary.language_group("zz") == "other"


# --------------------------------------------------------------------------------------------- LASER data

def test_laser_tatoeba_converter(tmp_path, monkeypatch):
    from datasets import load_dataset

    counts = tatoeba_laser.convert_laser_tatoeba(RAW_TATOEBA, tmp_path, ["aze", "ron"], check_lines=False)
    assert counts == {"aze": 40, "ron": 40}
    ds = load_dataset(str(tmp_path / "local" / "tatoeba-laser"), "tatoeba.ron", split="test")
    first = (RAW_TATOEBA / "tatoeba.ron-eng.ron").read_text(encoding="utf-8").split("\n")[0]
    assert ds[0]["source_sentence"] == first and ds[0]["target_lang"] == "eng" and len(ds) == 40
    with pytest.raises(UsageError, match="40 lines, expected 1000"):  # the excerpt is not the full file
        tatoeba_laser.convert_laser_tatoeba(RAW_TATOEBA, tmp_path, ["aze"])
    # a "download" (file:// URL) of a full-length file whose first 40 lines are the real ones
    server = tmp_path / "server"
    server.mkdir()
    for name in tatoeba_laser.laser_file_names("pol"):
        text = (RAW_TATOEBA / name).read_text(encoding="utf-8") + "".join(f"line {i}\n" for i in range(960))
        (server / name).write_text(text, encoding="utf-8")
    table = tmp_path / "table.json"
    table.write_bytes(downloads.CHECKSUMS_FILE.read_bytes())
    monkeypatch.setattr(downloads, "CHECKSUMS_FILE", table)
    out = tatoeba_laser.download_laser_tatoeba(tmp_path / "data", ["pol"], base_url=server.as_uri())
    assert out["rows"] == {"pol": 1000}
    # a file that is not LASER's is refused
    (server / "tatoeba.ukr-eng.ukr").write_text("x\n" * 1000, encoding="utf-8")
    (server / "tatoeba.ukr-eng.eng").write_text("y\n" * 1000, encoding="utf-8")
    with pytest.raises(UsageError, match="first 40 lines differ"):
        tatoeba_laser.download_laser_tatoeba(tmp_path / "data", ["ukr"], base_url=server.as_uri())


# --------------------------------------------------------------------------------------------- end to end

def _retrieval(tiny, task, out, *extra):
    return run_script("run_retrieval", ["--model", str(tiny), "--task", task, "--data_root", str(HUB),
                                        "--preset", "tiny", "--output_dir", str(out), *extra])


def test_tatoeba_41_languages_every_layer_scores_like_the_leaderboard(tiny, tmp_path):
    out, preds, labels = tmp_path / "run", tmp_path / "preds", tmp_path / "labels"
    assert _retrieval(tiny, "tatoeba", out, "--write_predictions", str(preds), "--write_labels", str(labels)) == 0
    r = read_results(out / "results.json")
    task = TASKS["tatoeba"]
    assert list(r["per_language"]) == list(task.all_languages) and len(r["per_language"]) == 41
    ret = r["retrieval"]
    assert ret["layer"] == 1 and ret["layers_evaluated"] == [0, 1, 2] and set(ret["per_layer"]) == {"0", "1", "2"}
    assert ret["pooling"] == "mean" and ret["include_special_tokens"] is True
    assert r["per_language"] == ret["per_layer"]["1"]["per_language"]
    for entry in ret["per_layer"].values():
        assert set(entry["per_language"]) == set(task.all_languages)
        for m in entry["per_language"].values():
            assert 0 <= m["accuracy"] <= 1 and 0 <= m["accuracy_xx2en"] <= 1 and m["n"] == 40
        assert sum(len(g["languages"]) for g in entry["groups"].values()) == 41
    # the 5 XTREME-R languages came from the local LASER copy
    laser = [s for s in r["data"]["sources"] if s["hub_id"] == "local/tatoeba-laser"]
    assert len(laser) == 1 and set(laser[0]["codes"]) == {"az", "lt", "pl", "uk", "ro"} and laser[0]["local"]
    assert laser[0]["prepared_by"] == "make data-tatoeba"
    assert (out / "per_layer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((out / "per_layer.csv").read_text().splitlines()) == 1 + 3 * 42
    # leaderboard files score identically with the official scorer's port, for XTREME (36) and XTREME-R (41)
    for version, n in (("xtreme", 36), ("xtreme-r", 41)):
        detailed = score_folders(str(preds), str(labels), version)["detailed"]["tatoeba"]
        assert len(detailed["accuracy"]) == n
        for lang, acc in detailed["accuracy"].items():
            assert abs(acc - 100 * r["per_language"][lang]["accuracy"]) < 1e-9, lang
        assert abs(detailed["avg_metric"] - 100 * r["average_by_benchmark"][version]["accuracy"]) < 1e-9
    assert len((preds / "tatoeba" / "test-az.tsv").read_text().split()) == 40


@pytest.mark.parametrize("init", ["pretrained", "phase2"])
def test_bucc_end_to_end(init, tiny, phase2, tmp_path):
    out, preds, labels = tmp_path / "run", tmp_path / "preds", tmp_path / "labels"
    extra = ["--intermediate_checkpoint", str(phase2)] if init == "phase2" else []
    assert _retrieval(tiny, "bucc2018", out, "--write_predictions", str(preds), "--write_labels", str(labels),
                      "--write_candidates", "true", *extra) == 0
    r = read_results(out / "results.json")
    assert r["task"] == "bucc2018" and r["metric"] == "f1" and list(r["per_language"]) == ["de", "fr", "ru", "zh"]
    assert r["intermediate_task"] == ("mnli" if init == "phase2" else None)
    ret = r["retrieval"]
    assert set(ret["per_layer"]) == {"0", "1", "2"} and ret["mining"]["k"] == 4 and ret["mining"]["strategy"] == "max"
    assert "ORACLE" in ret["metric_definitions"]["dev_oracle_f1"] and "TEST" in ret["metric_definitions"]["f1"]
    for entry in ret["per_layer"].values():
        for m in entry["per_language"].values():
            assert 0 <= m["f1"] <= 1 and 0 <= m["dev_oracle_f1"] <= 1 and m["n_gold"] == 10
            assert m["test_sentences"] == {"src": 30, "en": 30, "src_unique": 29, "en_unique": 29,
                                           "gold_pairs_with_duplicated_text": 1}
    # the leaderboard files score identically
    detailed = score_folders(str(preds), str(labels), "xtreme")["detailed"]["bucc2018"]
    for lang, m in r["per_language"].items():
        assert abs(detailed["f1"][lang] - 100 * m["f1"]) < 1e-9
        assert abs(detailed["precision"][lang] - 100 * m["precision"]) < 1e-9
    assert abs(detailed["avg_metric"] - 100 * r["average"]["f1"]) < 1e-9
    # the threshold is the dev-tuned one (recomputed here from dev), applied unchanged to the test candidates
    tok = AutoTokenizer.from_pretrained(phase2 if init == "phase2" else tiny)
    model = load_encoder(str(phase2 if init == "phase2" else tiny))
    for lang, m in r["per_language"].items():
        dev = bucc_data.read_split(bucc_data.kit_dir(HUB), lang, "dev")
        src, trg = bucc.dedupe(dev.src_ids, dev.src_sentences), bucc.dedupe(dev.trg_ids, dev.trg_sentences)
        x = embed.embed_layers(model, tok, src[0], layers=[1], progress=False)[0]
        y = embed.embed_layers(model, tok, trg[0], layers=[1], progress=False)[0]
        tuned = bucc.tune_threshold(bucc.mine_ids(src, trg, x, y), dev.gold)
        assert (m["threshold"] if m["threshold"] is not None else float("inf")) == pytest.approx(tuned["threshold"])
        assert m["dev_oracle_f1"] == pytest.approx(tuned["dev_oracle_f1"] / 100)
        cands = bucc.read_candidates(bucc.prediction_path(out / "candidates", lang))
        written = bucc.read_predictions(bucc.prediction_path(out / "predictions", lang))
        thr = tuned["threshold"]
        assert written == bucc.apply_threshold(cands, thr) and len(written) == m["n_predicted"]
        assert len(cands) == m["test_n_candidates"]
    # duplicated English sentences: a mined pair with one id of a duplicated text has every id of it, same score
    n_dup_pairs = 0
    for lang in r["per_language"]:
        test = bucc_data.read_split(bucc_data.kit_dir(HUB), lang, "test")
        ids_of: dict = {}
        for i, text in zip(test.trg_ids, test.trg_sentences):
            ids_of.setdefault(text, []).append(i)
        text_of = dict(zip(test.trg_ids, test.trg_sentences))
        cands = bucc.read_candidates(bucc.prediction_path(out / "candidates", lang))
        got = {(s, t): v for s, t, v in cands}
        dup_hits = [(s, t) for s, t, _ in cands if len(ids_of[text_of[t]]) > 1]
        for s, t in dup_hits:
            assert all(got.get((s, other)) == got[(s, t)] for other in ids_of[text_of[t]])
        n_dup_pairs += len(dup_hits)
    assert n_dup_pairs >= 2  # each fixture split has one English text twice; mined, it yields both ids
    assert (out / "per_layer.png").is_file()


def test_tatoeba_from_a_phase2_checkpoint(tiny, phase2, tmp_path):
    out = tmp_path / "run"
    assert _retrieval(tiny, "tatoeba", out, "--intermediate_checkpoint", str(phase2), "--languages", "de,th,az") == 0
    r = read_results(out / "results.json")
    assert r["intermediate_task"] == "mnli" and r["intermediate_checkpoint"] == str(phase2)
    assert list(r["per_language"]) == ["de", "th", "az"] and set(r["retrieval"]["per_layer"]) == {"0", "1", "2"}
    assert r["average_by_benchmark"] == {}  # neither benchmark's full language list was run
    lines = (out / "predictions" / "tatoeba" / "test-az.tsv").read_text().split()
    assert len(lines) == 40 and all(0 <= int(x) < 40 for x in lines)


def _bad(tiny, task, tmp_path, capsys, *extra, data_root=HUB):
    rc = run_script("run_retrieval", ["--model", str(tiny), "--task", task, "--data_root", str(data_root),
                                      "--output_dir", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert not (tmp_path / "o" / "results.json").exists()
    return err


def test_bad_input(tiny, tmp_path, capsys, monkeypatch):
    import transformers

    def forbidden(*a, **k):
        raise AssertionError("a model was loaded before input validation finished")

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", forbidden)
    assert "unknown language for task bucc2018 'es'; valid choices: de, fr, ru, zh" in _bad(
        tiny, "bucc2018", tmp_path, capsys, "--languages", "de,es")
    assert "--layer 3 is outside the model: valid hidden_states indices are 0..2" in _bad(
        tiny, "bucc2018", tmp_path, capsys, "--layer", "3")
    assert "--layers: layer 7 is outside the model" in _bad(tiny, "tatoeba", tmp_path, capsys, "--layers", "0,7")
    assert "unknown --index 'ivf'; valid choices: flat, hnsw" in _bad(tiny, "bucc2018", tmp_path, capsys,
                                                                       "--index", "ivf")
    assert "retrieval tasks have one evaluation split" in _bad(tiny, "tatoeba", tmp_path, capsys,
                                                               "--eval_split", "validation")
    # missing BUCC data: names the make target
    empty = tmp_path / "empty_root"
    empty.mkdir()
    err = _bad(tiny, "bucc2018", tmp_path, capsys, data_root=empty)
    assert "BUCC 2018 data not found under" in err and "make data-bucc" in err
    # a data root without the LASER copy: the XTREME-R languages name `make data-tatoeba`
    root = tmp_path / "root"
    (root / "google").mkdir(parents=True)
    shutil.copytree(HUB / "google" / "xtreme", root / "google" / "xtreme")
    err = _bad(tiny, "tatoeba", tmp_path, capsys, "--languages", "de,az,ro", data_root=root)
    assert "Tatoeba for XTREME-R's az lt pl uk ro" in err and f"make data-tatoeba DATA_DIR={root}" in err
    # ... and XTREME's 36 alone need nothing beyond google/xtreme (validated up to the model load)
    with pytest.raises(AssertionError, match="a model was loaded"):
        run_script("run_retrieval", ["--model", str(tiny), "--task", "tatoeba", "--data_root", str(root),
                                     "--languages", "xtreme", "--output_dir", str(tmp_path / "ok")])


def test_finished_run_is_skipped_and_settings_are_guarded(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    assert _retrieval(tiny, "bucc2018", out, "--languages", "de", "--layers", "default") == 0
    first = (out / "results.json").read_text()
    r = json.loads(first)
    assert r["retrieval"]["layers_evaluated"] == [1] and set(r["retrieval"]["per_layer"]) == {"1"}
    assert _retrieval(tiny, "bucc2018", out, "--languages", "de", "--layers", "default") == 0
    assert (out / "results.json").read_text() == first  # skipped, untouched
    assert _retrieval(tiny, "bucc2018", out, "--languages", "de", "--layers", "default", "--k", "3") == 2
    assert "holds a run with different settings (k: 4 -> 3)" in capsys.readouterr().err


def test_bucc_embeddings_spill_to_disk_beyond_the_memory_budget(tiny, tmp_path, monkeypatch):
    """A tiny memory budget: embeddings go to memory-mapped files in a private folder, which is removed, and the
    numbers equal those of an in-memory run."""
    kinds = []
    real_allocate = embed.allocate

    def spy(*a, **k):
        arr = real_allocate(*a, **k)
        kinds.append(type(arr).__name__)
        return arr

    monkeypatch.setattr(embed, "allocate", spy)
    ram, disk, spill = tmp_path / "ram", tmp_path / "disk", tmp_path / "spill"
    (spill / "keep.txt").parent.mkdir()
    (spill / "keep.txt").write_text("not ours")
    assert _retrieval(tiny, "bucc2018", ram, "--languages", "fr,zh") == 0
    assert kinds == ["ndarray"] * 8  # 2 languages x (dev, test) x 2 sides
    assert _retrieval(tiny, "bucc2018", disk, "--languages", "fr,zh", "--embedding_memory_gb", "1e-6",
                      "--embedding_dir", str(spill)) == 0
    assert kinds[8:] == ["memmap"] * 8
    a, b = read_results(ram / "results.json"), read_results(disk / "results.json")
    assert a["retrieval"]["per_layer"] == b["retrieval"]["per_layer"]
    assert [p.name for p in spill.iterdir()] == ["keep.txt"]  # our folders gone, the user's file kept
