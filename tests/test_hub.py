"""Phase-2 encoders on the Hub (xstilts/hub.py): the model card and upload folder of a real tiny phase-2 run, the
push (one commit, refused before training when it cannot succeed, retried alone after a failure), and Hub ids as
--intermediate_checkpoint (a fake local Hub cache, offline)."""

import json
import logging
import shutil
from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub import constants, metadata_load

from conftest import HUB, run_script
from xstilts.run import hub
from xstilts.training.modeling import read_meta

REPO = "me/tiny-mnli-xstilts"
SHA = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    """Stands in for huggingface_hub.HfApi: records what a push sends; ``fail`` makes the commit fail."""

    calls: list = []
    fail: Exception | None = None
    remote = [".gitattributes", "README.md", "old_weights.safetensors"]

    def __init__(self, token=None, **kwargs):
        self.token = token

    def whoami(self, token=None):
        return {"name": "me", "orgs": [{"name": "lab"}], "auth": {"accessToken": {"role": "write"}}}

    def create_repo(self, repo_id, private=None, exist_ok=False):
        FakeHub.calls.append(("create_repo", repo_id))

    def create_branch(self, repo_id, branch, exist_ok=False):
        FakeHub.calls.append(("create_branch", branch))

    def repo_info(self, repo_id, revision=None):
        return type("Info", (), {"sha": "f" * 40})()

    def list_repo_files(self, repo_id, revision=None):
        return list(FakeHub.remote)

    def create_commit(self, repo_id, operations, **kwargs):
        if FakeHub.fail is not None:
            raise FakeHub.fail
        ops = list(operations)
        FakeHub.calls.append(("create_commit", repo_id, ops, kwargs))
        return type("CommitInfo", (), {"oid": "c" * 40, "commit_url": f"https://hf.co/{repo_id}/commit/ccc"})()


@pytest.fixture
def online(monkeypatch):
    """The Hub 'reachable' through FakeHub, with a token."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHub)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_fake")
    FakeHub.calls, FakeHub.fail = [], None
    return FakeHub


def _phase2(tiny, out, *extra):
    return run_script("run_intermediate", [
        "--model", str(tiny), "--task", "mnli", "--preset", "tiny", "--data_root", str(HUB), "--output_dir", str(out),
        "--max_steps", "4", "--eval_steps_or_epoch", "2", "--disable_tqdm", "true", *extra])


@pytest.fixture(scope="module")
def pushed(tiny, tmp_path_factory):
    """A real tiny phase-2 run with --push_to_hub (the Hub faked), keeping the Trainer's checkpoints on disk."""
    mp = pytest.MonkeyPatch()
    mp.setattr(constants, "HF_HUB_OFFLINE", False)
    mp.setattr(huggingface_hub, "HfApi", FakeHub)
    mp.setattr(huggingface_hub, "get_token", lambda: "hf_fake")
    FakeHub.calls, FakeHub.fail = [], None
    ckpt = tmp_path_factory.mktemp("phase2") / "mnli"
    try:
        rc = _phase2(tiny, ckpt, "--keep_checkpoints", "true", "--push_to_hub", "--hub_model_id", REPO)
    finally:
        mp.undo()
    return ckpt, rc, list(FakeHub.calls)


ENCODER_FILES = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "xstilts_meta.json"}


def test_phase2_pushes_the_encoder_only_folder_in_one_commit_after_saving(pushed):
    ckpt, rc, calls = pushed
    assert rc == 0 and read_meta(str(ckpt))["finished"]
    assert (ckpt / "trainer").is_dir()  # --keep_checkpoints: the Trainer's checkpoints exist locally ...
    commits = [c for c in calls if c[0] == "create_commit"]
    assert len(commits) == 1  # ... one commit, made by the kit (the Trainer itself never pushed)
    _, repo, ops, kwargs = commits[0]
    added = {op.path_in_repo: op for op in ops if type(op).__name__ == "CommitOperationAdd"}
    deleted = [op.path_in_repo for op in ops if type(op).__name__ == "CommitOperationDelete"]
    assert repo == REPO and set(added) == ENCODER_FILES | {"README.md"}  # no trainer/, no kit state files
    assert deleted == ["old_weights.safetensors"]  # a file an earlier push left does not survive
    assert kwargs["parent_commit"] == "f" * 40
    assert Path(added["model.safetensors"].path_or_fileobj) == ckpt / "model.safetensors"
    assert added["README.md"].path_or_fileobj.decode() == hub.model_card(ckpt, REPO)
    record = json.loads((ckpt / hub.PUSH_RECORD).read_text())["pushes"]
    assert [(r["repo_id"], r["commit"]) for r in record] == [(REPO, "c" * 40)]


def test_card_and_upload_folder_of_a_real_phase2_run(pushed, tmp_path):
    ckpt, _, _ = pushed
    meta = read_meta(str(ckpt))
    names = hub.stage(ckpt, tmp_path / "upload", REPO)
    assert set(names) == ENCODER_FILES | {"README.md"}
    for name in ENCODER_FILES:
        assert (tmp_path / "upload" / name).read_bytes() == (ckpt / name).read_bytes()
    card = (tmp_path / "upload" / "README.md").read_text()
    yaml = metadata_load(tmp_path / "upload" / "README.md")
    x = yaml["xstilts"]
    assert x["version"] == meta["provenance"]["versions"]["xstilts"] and x["commit"] == meta["provenance"]["git_commit"]
    assert x["tasks"] == ["mnli"] and x["seed"] == 1 and x["preset"] == "tiny"
    assert x["preset_source"] == meta["preset"]["source"] and x["meta_file"] == "xstilts_meta.json"
    assert x["dev"] == {"mnli": {"accuracy": meta["dev_metric"]["accuracy"]}}
    assert "base_model" not in yaml  # a local base model is not a Hub id
    assert "model-index" not in yaml and "datasets" not in yaml  # fixture data, read from a local mirror
    from safetensors.torch import load_file

    n = sum(t.numel() for t in load_file(str(ckpt / "model.safetensors")).values())
    assert hub.safetensors_parameters(ckpt) == n and f"{n / 1e6:,.1f} M parameters" in card
    assert f"a local mirror of the Hub layout (`{HUB}`)" in card
    assert "`nyu-mll/glue` config `mnli` split `validation_matched`" in card
    assert f"accuracy = {meta['dev_metric']['accuracy']:.4f} (split validation_matched, n = {meta['dev_metric']['n']})" in card
    assert f"torch {meta['provenance']['versions']['torch']}" in card
    assert f"--intermediate_checkpoint {REPO}" in card
    with pytest.raises(hub.UsageError, match="exists"):
        hub.stage(ckpt, tmp_path / "upload", REPO)


def test_card_of_a_hub_base_model_trained_on_hub_data(pushed, tmp_path):
    ckpt, _, _ = pushed
    copy = tmp_path / "ckpt"
    shutil.copytree(ckpt, copy, ignore=shutil.ignore_patterns("trainer"))
    meta = read_meta(str(copy))
    meta["model"] = {"name": "xlmr-base", "path_or_id": "FacebookAI/xlm-roberta-base"}
    meta["data_root"] = None
    (copy / "xstilts_meta.json").write_text(json.dumps(meta))
    card = hub.model_card(copy, REPO)
    (tmp_path / "README.md").write_text(card)
    yaml = metadata_load(tmp_path / "README.md")
    assert yaml["base_model"] == "FacebookAI/xlm-roberta-base" and yaml["datasets"] == ["nyu-mll/glue"]
    result = yaml["model-index"][0]["results"][0]
    assert result["dataset"]["type"] == "nyu-mll/glue" and result["dataset"]["split"] == "validation_matched"
    assert result["metrics"][0]["value"] == meta["dev_metric"]["accuracy"]
    assert "--model xlmr-base --task xnli" in card and "Data read from | the Hugging Face Hub" in card


def test_push_is_refused_before_training_when_offline(tiny, tmp_path, capsys):
    out = tmp_path / "mnli"
    assert constants.is_offline_mode()  # the test session runs with HF_HUB_OFFLINE=1
    assert _phase2(tiny, out, "--push_to_hub", "--hub_model_id", REPO) == 2
    err = capsys.readouterr().err
    assert f"push to '{REPO}' refused: HF_HUB_OFFLINE=1" in err and "python -m xstilts.hub push" in err
    assert not (out / "model.safetensors").exists() and not (out / "xstilts_meta.json").exists()


@pytest.mark.parametrize("flags,message", [
    (["--push_to_hub"], "--push_to_hub needs --hub_model_id"),
    (["--hub_model_id", REPO], "without --push_to_hub"),
    (["--push_to_hub", "--hub_model_id", "not a repo"], "is not a Hub model id"),
    (["--push_to_hub", "--hub_model_id", REPO, "--hub_strategy", "checkpoint"], "never the Trainer's checkpoints"),
    (["--push_to_hub", "--hub_model_id", "someone-else/x"], "writes to 'me', 'lab', not 'someone-else'"),
    (["--push_to_hub", "--hub_model_id", REPO, "--hub_token", "hf_secret"], "give the token as HF_TOKEN"),
])
def test_push_flags_are_checked_before_training(tiny, tmp_path, capsys, online, flags, message):
    out = tmp_path / "mnli"
    assert _phase2(tiny, out, *flags) == 2
    assert message in capsys.readouterr().err
    assert not (out / "model.safetensors").exists() and online.calls == []


def test_push_without_a_token_is_refused(tiny, tmp_path, capsys, online, monkeypatch):
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    assert _phase2(tiny, tmp_path / "mnli", "--push_to_hub", "--hub_model_id", REPO) == 2
    assert "no Hugging Face token" in capsys.readouterr().err


def test_a_failed_push_leaves_the_checkpoint_finished_and_says_how_to_retry(tiny, pushed, tmp_path, online, caplog):
    ckpt, _, _ = pushed
    copy = tmp_path / "mnli"
    shutil.copytree(ckpt, copy)
    online.fail = ConnectionError("network is unreachable")
    with caplog.at_level(logging.ERROR, logger="xstilts.hub"):
        # re-running the finished phase 2 with --push_to_hub skips training and pushes: here the push fails
        assert _phase2(tiny, copy, "--keep_checkpoints", "true", "--push_to_hub",
                       "--hub_model_id", REPO) == 1
    assert f"push it alone with: python -m xstilts.hub push {copy} {REPO}" in caplog.text
    assert read_meta(str(copy))["finished"]
    pushes = json.loads((copy / hub.PUSH_RECORD).read_text())["pushes"]
    assert len(pushes) == 1  # only the fixture's own push: the failed one recorded nothing

    online.fail = None  # the retry, alone
    assert hub.main(["push", str(copy), REPO]) == 0
    assert len(json.loads((copy / hub.PUSH_RECORD).read_text())["pushes"]) == 2
    assert [c[0] for c in online.calls].count("create_commit") == 1


# ----------------------------------------------------------------------------- Hub ids as --intermediate_checkpoint
@pytest.fixture
def hub_cache(pushed, tmp_path, monkeypatch):
    """A local Hugging Face cache holding the pushed checkpoint as REPO at commit SHA (what a download leaves)."""
    ckpt, _, _ = pushed
    cache = tmp_path / "hf_cache"
    repo = cache / ("models--" + REPO.replace("/", "--"))
    snapshot = repo / "snapshots" / SHA
    snapshot.mkdir(parents=True)
    for f in hub.upload_files(ckpt):
        shutil.copy2(f, snapshot / f.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(SHA)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return snapshot


def test_a_hub_id_is_loaded_from_the_cache_offline_and_recorded(tiny, hub_cache, tmp_path):
    out = tmp_path / "tatoeba"
    assert run_script("run_retrieval", [
        "--model", str(tiny), "--task", "tatoeba", "--languages", "de", "--layers", "default",
        "--data_root", str(HUB), "--intermediate_checkpoint", REPO, "--output_dir", str(out)]) == 0
    r = json.loads((out / "results.json").read_text())
    assert r["intermediate_task"] == "mnli"
    assert r["intermediate_meta"]["hub"] == {"repo_id": REPO, "revision": "main", "commit": SHA}
    assert Path(r["intermediate_checkpoint"]) == hub_cache


def test_a_hub_id_pinned_to_a_commit(tiny, hub_cache):
    from xstilts.run.models import resolve_model

    path, meta = hub.intermediate_checkpoint(f"{REPO}@{SHA}", resolve_model(str(tiny)))
    assert Path(path) == hub_cache and meta["hub"] == {"repo_id": REPO, "revision": SHA, "commit": SHA}


def test_a_hub_id_not_in_the_cache_offline_is_a_usage_error(tiny, hub_cache, tmp_path, capsys):
    rc = run_script("run_retrieval", ["--model", str(tiny), "--task", "tatoeba", "--data_root", str(HUB),
                                      "--intermediate_checkpoint", "me/not-downloaded", "--output_dir", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "'me/not-downloaded' is not a local folder; as a Hub id: HF_HUB_OFFLINE=1" in err
    assert str(hub_cache.parents[2]) in err  # names the cache it looked in


def test_a_hub_checkpoint_gets_the_checks_of_a_local_one(tiny_models, hub_cache, tmp_path, capsys):
    rc = run_script("run_retrieval", ["--model", str(tiny_models["tiny-4l-h128"]), "--task", "tatoeba", "--data_root",
                                      str(HUB), "--intermediate_checkpoint", REPO, "--output_dir", str(tmp_path)])
    assert rc == 2
    assert f"(Hub commit {SHA})" in capsys.readouterr().err  # the local checks: num_hidden_layers differs

    from xstilts.errors import UsageError
    from xstilts.run.models import ModelEntry

    meta = read_meta(str(hub_cache))
    meta["model"] = {"name": "xlmr-base", "path_or_id": "FacebookAI/xlm-roberta-base"}
    (hub_cache / "xstilts_meta.json").write_text(json.dumps(meta))
    large = ModelEntry("xlmr-large", "FacebookAI/xlm-roberta-large", 24, 14, 32, None, False, True)
    with pytest.raises(UsageError, match="was trained from 'FacebookAI/xlm-roberta-base'"):
        hub.intermediate_checkpoint(REPO, large)


def test_a_multitask_phase2_pushes_with_a_card_per_task(tiny, tmp_path, online):
    out = tmp_path / "mix"
    assert run_script("run_intermediate", [
        "--model", str(tiny), "--tasks", "mnli,qqp", "--preset", "tiny", "--data_root", str(HUB),
        "--output_dir", str(out), "--max_steps", "2", "--eval_steps_or_epoch", "2", "--max_train_samples", "32",
        "--max_eval_samples", "16", "--disable_tqdm", "true", "--push_to_hub", "--hub_model_id", "lab/mix"]) == 0
    meta = read_meta(str(out))
    (commit,) = [c for c in online.calls if c[0] == "create_commit"]
    added = {op.path_in_repo for op in commit[2] if type(op).__name__ == "CommitOperationAdd"}
    assert added == ENCODER_FILES | {"README.md"} and commit[1] == "lab/mix"
    card = hub.model_card(out, "lab/mix")
    (tmp_path / "README.md").write_text(card)
    x = metadata_load(tmp_path / "README.md")["xstilts"]
    assert x["tasks"] == ["mnli", "qqp"] and set(x["dev"]) == {"mnli", "qqp"}
    for task, m in meta["dev_metric"]["per_task"].items():
        metric = next(k for k in m if k not in ("split", "n"))
        assert x["dev"][task] == {metric: m[metric]} and f"`{task}` {metric} = {m[metric]:.4f}" in card
    assert "qqp train: `nyu-mll/glue` config `qqp`" in card and "one multi-task mixture, sampling rates mnli" in card
    assert f"average of the tasks' metrics = {meta['dev_metric']['average']:.4f}" in card
