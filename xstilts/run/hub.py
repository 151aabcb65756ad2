"""Phase-2 encoders on the Hugging Face Hub: the model card, the one-commit push, and Hub ids as
``--intermediate_checkpoint``.

    python run_intermediate.py --model xlmr-large --task mnli --preset phang2020 \\
        --push_to_hub --hub_model_id me/xlmr-large-mnli-xstilts            # push after the encoder is saved
    python -m xstilts.hub push checkpoints/xlmr-large/mnli me/xlmr-large-mnli-xstilts   # push (or retry) alone
    python -m xstilts.hub stage checkpoints/xlmr-large/mnli /tmp/upload --repo_id me/x  # what a push uploads, offline
    python run_target.py --model xlmr-large --task xnli --intermediate_checkpoint me/xlmr-large-mnli-xstilts

What is pushed is the encoder-only folder phase 3 loads (weights, config, tokenizer, ``xstilts_meta.json``) plus a
generated model card (README.md); never the Trainer's checkpoints (task head, optimizer state) nor the kit's local
state files. The push is ONE commit (``create_commit``), made only from a finished checkpoint: a failed push
leaves the Hub repo as it was and the local checkpoint finished, and says how to retry.

A Hub id given as ``--intermediate_checkpoint`` (``org/name`` or ``org/name@revision``) is downloaded to (or, with
HF_HUB_OFFLINE=1, found in) the Hugging Face cache and checked exactly like a local folder: its
``xstilts_meta.json`` must say phase 2 finished and match the chosen model and tokenizer.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError, exits_on_usage_error
from ..files import atomic_write_json
from ..tasks import TASKS
from ..training.modeling import check_intermediate_checkpoint
from . import models
from .layout import LOCK_FILE, META_FILE, RUN_FILE

logger = logging.getLogger(__name__)

CARD_FILE = "README.md"
PUSH_RECORD = "xstilts_hub.json"  # local: where and when this checkpoint was pushed (never uploaded)
# kit state that stays local: the run claim (local paths, resume state), the run's lock (held while a phase-2 run
# pushes at its end) and the push record
LOCAL_ONLY = (RUN_FILE, LOCK_FILE, PUSH_RECORD, CARD_FILE)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")  # the kit writes and loads safetensors only
DOWNLOAD_IGNORE = ["*" + s for s in PICKLE_SUFFIXES] + ["*.h5", "*.msgpack", "*.onnx", "trainer/*"]
HUB_TASK_TYPES = {"pair_classification": "text-classification", "token_tagging": "token-classification",
                  "span_qa": "question-answering", "multiple_choice": "multiple-choice"}


# ----------------------------------------------------------------------------- the push request (phase 2)
@dataclass(frozen=True)
class PushRequest:
    repo_id: str
    token: str = field(repr=False)
    private: bool | None = None
    revision: str | None = None


def push_request(training_args) -> PushRequest | None:
    """``--push_to_hub`` / ``--hub_model_id`` (TrainingArguments' flags), checked before any training.

    Refuses (UsageError, exit 2) what cannot succeed: offline mode, no token, an unreachable Hub, a read-only
    token, a namespace the token cannot write to. Turns the Trainer's own pushing off: it would push its
    internal checkpoints (task head, optimizer state) instead of the encoder-only folder. Only the main process
    (of all nodes) asks the Hub and gets a request; the others get None and never push."""
    from transformers.trainer_utils import HubStrategy

    if not training_args.push_to_hub:
        if training_args.hub_model_id:
            raise UsageError(f"--hub_model_id {training_args.hub_model_id!r} without --push_to_hub: add "
                             f"--push_to_hub to push the phase-2 encoder, or drop --hub_model_id")
        return None
    if HubStrategy(training_args.hub_strategy) != HubStrategy.EVERY_SAVE or training_args.hub_always_push:
        raise UsageError("--hub_strategy / --hub_always_push: the kit pushes the encoder-only folder once, after "
                         "phase 2 has finished (never the Trainer's checkpoints); drop these flags")
    if not training_args.hub_model_id:
        raise UsageError("--push_to_hub needs --hub_model_id <user or org>/<name>, e.g. "
                         "--hub_model_id <you>/xlmr-large-mnli-xstilts")
    if training_args.hub_token:
        raise UsageError("--hub_token: the command line is stored with every result and pushed in "
                         "xstilts_meta.json; give the token as HF_TOKEN or by `hf auth login` instead")
    repo_id = validate_repo_id(training_args.hub_model_id, "--hub_model_id")
    main_process = training_args.process_index == 0
    token = preflight(repo_id, ask_hub=main_process)
    training_args.push_to_hub = False
    if not main_process:
        return None
    return PushRequest(repo_id, token, training_args.hub_private_repo, training_args.hub_revision)


def validate_repo_id(repo_id: str, what: str) -> str:
    from huggingface_hub.utils import HFValidationError
    from huggingface_hub.utils import validate_repo_id as _validate

    try:
        _validate(repo_id)
    except HFValidationError as e:
        raise UsageError(f"{what} {repo_id!r} is not a Hub model id ({e})") from None
    if repo_id.count("/") != 1:
        raise UsageError(f"{what} {repo_id!r}: expected <user or org>/<name>")
    return repo_id


def preflight(repo_id: str, ask_hub: bool = True) -> str:
    """The checks a push needs before any work: online, a token, and (``ask_hub``) the Hub reachable and the
    token allowed to write to the namespace. Returns the token (HF_TOKEN or the one `hf auth login` saved)."""
    from huggingface_hub import HfApi, constants, get_token

    retry = "train without --push_to_hub and push the finished checkpoint later with `python -m xstilts.hub push`"
    if constants.is_offline_mode():
        raise UsageError(f"push to {repo_id!r} refused: HF_HUB_OFFLINE=1 (offline mode) forbids any Hub access; "
                         f"unset it, or {retry}")
    token = get_token()
    if not token:
        raise UsageError(f"push to {repo_id!r} refused: no Hugging Face token (run `hf auth login` or set "
                         f"HF_TOKEN)")
    if not ask_hub:
        return token
    try:
        me = HfApi().whoami(token=token)
    except Exception as e:  # connection errors, a rejected token (401), Hub down: all end the same way
        raise UsageError(f"push to {repo_id!r} refused: the Hub could not confirm the token "
                         f"({type(e).__name__}: {e}); check the network and the token, or {retry}") from None
    role = ((me.get("auth") or {}).get("accessToken") or {}).get("role")
    if role == "read":
        raise UsageError(f"push to {repo_id!r} refused: the token of {me.get('name')!r} is read-only")
    namespaces = [me.get("name")] + [o.get("name") for o in me.get("orgs") or []]
    if repo_id.split("/")[0] not in namespaces:
        raise UsageError(f"push to {repo_id!r} refused: the token of {me.get('name')!r} writes to "
                         f"{', '.join(repr(n) for n in namespaces if n)}, not {repo_id.split('/')[0]!r}")
    return token


# ----------------------------------------------------------------------------- what is uploaded
def upload_files(ckpt_dir: str | Path) -> list[Path]:
    """The checkpoint's files a push uploads (sorted), besides the generated card: the top-level files of the
    encoder-only folder. Left out: folders (the Trainer's checkpoints under trainer/), hidden files, the kit's
    local state and any pickled weights."""
    files = []
    for p in sorted(Path(ckpt_dir).iterdir()):
        if not p.is_file() or p.name.startswith(".") or p.name in LOCAL_ONLY or p.suffix in PICKLE_SUFFIXES:
            continue
        files.append(p)
    return files


def safetensors_parameters(folder: Path) -> int | None:
    """Parameter count from the safetensors headers (no tensor is read)."""
    total, files = 0, sorted(folder.glob("*.safetensors"))
    for f in files:
        with open(f, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
        for name, t in header.items():
            if name != "__metadata__":
                count = 1
                for d in t["shape"]:
                    count *= d
                total += count
    return total if files else None


def _source_parts(described: dict | None) -> list[dict]:
    if not described:
        return []
    return list(described["concatenation"]) if "concatenation" in described else [described]


def _task_records(meta: dict) -> dict[str, dict]:
    """{task: {"train": ..., "dev": ...}} for single-task metas (meta["data"] holds train/dev) and multi-task
    ones (meta["data"] holds one record per task)."""
    data = meta.get("data") or {}
    return {meta["task"]: data} if "train" in data else data


def _dev_scores(meta: dict) -> list[tuple[str, str, float, dict]]:
    """(task, metric, value, dev source) per intermediate task."""
    dev, out = meta["dev_metric"], []
    records = _task_records(meta)
    if "per_task" in dev:
        for task, m in dev["per_task"].items():
            metric = next(k for k in m if k not in ("split", "n"))
            out.append((task, metric, m[metric], (records.get(task) or {}).get("dev")))
    else:
        metric = next(k for k in dev if k not in ("split", "n"))
        out.append((meta["task"], metric, dev[metric], (records.get(meta["task"]) or {}).get("dev")))
    return out


def _fmt_source(s: dict) -> str:
    rev = s.get("revision")
    return (f"`{s.get('hub_id')}` config `{s.get('config')}` split `{s.get('split')}` "
            f"@ {('`' + rev + '`') if rev else 'no pinned revision'}")


def model_card(ckpt_dir: str | Path, repo_id: str | None) -> str:
    """README.md for a finished phase-2 checkpoint: YAML front matter (base model, datasets, the English dev
    score as model-index, an ``xstilts`` summary) and a body that says how the encoder was made and how to use it.
    Everything comes from the checkpoint's ``xstilts_meta.json`` (pushed beside the card) and config.json."""
    from huggingface_hub import EvalResult, ModelCardData

    ckpt = Path(ckpt_dir)
    meta = json.loads((ckpt / META_FILE).read_text())
    config = json.loads((ckpt / "config.json").read_text())
    base = meta["model"]
    base_id = base["path_or_id"] if looks_like_hub_id(base["path_or_id"]) else None
    n_params = safetensors_parameters(ckpt)
    prov = meta.get("provenance") or {}
    versions = prov.get("versions") or {}
    preset = meta.get("preset") or {}
    hp = meta.get("hyperparameters") or {}
    records = _task_records(meta)
    sources = [(task, role, part) for task, rec in records.items() for role in ("train", "dev")
               for part in _source_parts(rec.get(role))]
    name = repo_id or f"{base['name']}-{meta['task']}"
    # the Hub's metadata (datasets, model-index) only for data read from the Hub itself, not from a mirror
    from_hub = "data_root" in meta and meta["data_root"] is None

    eval_results = []
    for task, metric, value, dev in _dev_scores(meta):
        parts = _source_parts(dev)
        fmt = TASKS[task].format if task in TASKS else None
        if not from_hub or len(parts) != 1 or fmt not in HUB_TASK_TYPES:
            continue  # model-index describes one Hub dataset split; mirrors and concatenations stay in the text
        d = parts[0]
        eval_results.append(EvalResult(
            task_type=HUB_TASK_TYPES[fmt], task_name=task, dataset_type=d["hub_id"], dataset_name=d["hub_id"],
            dataset_config=d.get("config"), dataset_split=d.get("split"), dataset_revision=d.get("revision"),
            metric_type=metric, metric_value=value,
            metric_name=f"English dev {metric} (the split phase 2 selected its checkpoint on)"))
    summary = {
        "version": versions.get("xstilts"), "commit": prov.get("git_commit"), "dirty": prov.get("git_dirty"),
        "base_model": base["path_or_id"], "tasks": meta.get("tasks") or [meta["task"]], "seed": meta.get("seed"),
        "preset": preset.get("name"), "preset_source": preset.get("source"),
        "dev": {t: {m: v} for t, m, v, _ in _dev_scores(meta)}, "meta_file": META_FILE,
    }
    card_data = ModelCardData(
        base_model=base_id, library_name="transformers", pipeline_tag="feature-extraction",
        datasets=sorted({p["hub_id"] for _, _, p in sources if from_hub and p.get("hub_id")}) or None,
        tags=["xstilts", "intermediate-task-training", "encoder-only", *[f"intermediate-{t}" for t in summary["tasks"]]],
        model_name=name, eval_results=eval_results or None, xstilts=summary)

    tasks = ", ".join(f"`{t}`" for t in summary["tasks"])
    size = (f"{n_params / 1e6:,.1f} M parameters, " if n_params else "") + \
        f"{config.get('num_hidden_layers')} layers, hidden size {config.get('hidden_size')}"
    scores = "; ".join(f"`{t}` {m} = {v:.4f}" for t, m, v, _ in _dev_scores(meta))
    dev = meta["dev_metric"]
    if "per_task" in dev:  # a mixture selects on the mean of its tasks' metrics
        selected = next(k for k in dev if k not in ("split", "per_task"))
        dev_line = f"{selected} of the tasks' metrics = {dev[selected]:.4f} ({scores})"
    else:
        dev_line = f"{scores} (split {dev['split']}, n = {dev['n']})"
    overrides = ", ".join(f"`--{k}`" for k in preset.get("cli_overrides") or []) or "none"
    sel = meta.get("selection") or {}
    lib_keys = ("python", "torch", "transformers", "datasets", "tokenizers", "accelerate", "deepspeed", "numpy")
    libs = ", ".join(f"{k} {versions[k]}" for k in lib_keys if k in versions)
    commit = prov.get("git_commit") or "not recorded"
    dirty = {True: " (with uncommitted changes)", False: "", None: ""}[prov.get("git_dirty")]
    entry = models.registry().get(base["name"]) or {}
    same = entry.get("hub_id") == base["path_or_id"] or base["path_or_id"].endswith(entry.get("path") or "\0")
    model_flag = base["name"] if entry and same else base["path_or_id"]
    data_line = ("the Hugging Face Hub" if from_hub else
                 f"a local mirror of the Hub layout (`{meta['data_root']}`)" if meta.get("data_root") else
                 "not recorded (a checkpoint written before the kit recorded its data root)")
    rows = [
        ("Base model", f"`{base['path_or_id']}` (kit name `{base['name']}`): {size}"),
        ("Intermediate task(s)", tasks + (" (one multi-task mixture, sampling rates " + ", ".join(
            f"{t} {r:.3f}" for t, r in meta["multitask"]["rates"].items()) + ")" if meta.get("multitask") else "")),
        ("Training data", "<br>".join(f"{t} {role}: {_fmt_source(p)}" for t, role, p in sources) or "not recorded"),
        ("Data read from", data_line),
        ("Preset", f"`{preset.get('name')}`: {preset.get('description') or ''} Source: {preset.get('source')}. "
                   f"Flags given on the command line (over the preset): {overrides}"),
        ("Training", f"{meta.get('global_step')} optimizer steps, learning rate {hp.get('learning_rate')}, "
                     f"effective batch {hp.get('effective_train_batch_size')}, max sequence length "
                     f"{hp.get('max_seq_length')}, seed {meta.get('seed')}"),
        ("English dev score", f"{dev_line}. " + (
            f"Phase 2 selected its checkpoint on it ({sel.get('best_checkpoint')}, the best of "
            f"{len(sel.get('evaluations') or [])} evaluations): an optimistic number"
            if sel.get("rule", "best_dev") == "best_dev" else
            f"Phase 2 kept the model after step {sel.get('global_step')} (checkpoint rule {sel.get('rule')}): "
            f"evaluated once, not used to choose")),
        ("Libraries", libs),
        ("Kit", f"xstilts {versions.get('xstilts')}, commit `{commit}`{dirty}"),
        ("Made", f"{prov.get('created')} on {prov.get('device')}"),
    ]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    ref = repo_id or "<this repo id>"
    body = f"""
# {name}

An **encoder-only** checkpoint made by the [xstilts](https://arxiv.org/abs/2005.13013) reproduction kit (phase 2
of X-STILTs, Phang et al. 2020): `{base['path_or_id']}` fine-tuned on the English intermediate task(s) {tasks}.
The task head was dropped: the repo holds the encoder and its tokenizer, to be fine-tuned with a fresh head on a
target task and evaluated zero-shot in other languages.

| | |
|---|---|
{table}

`{META_FILE}` in this repo is the complete record phase 2 wrote (every hyperparameter, the dev curve, the
hand-off, provenance); this card is generated from it.

## Use it

With the kit, as the phase-2 checkpoint of phase 3 or retrieval (checked like a local one: phase 2 finished, and
the same architecture, sizes and tokenizer as `--model`):

```bash
python run_target.py --model {model_flag} --task xnli --preset xtreme --intermediate_checkpoint {ref}
python run_retrieval.py --model {model_flag} --task tatoeba --intermediate_checkpoint {ref}
# with the package installed: xstilts-target / xstilts-retrieval, same flags; pin a revision with {ref}@<commit>
```

In plain transformers, `AutoModel.from_pretrained("{ref}")` gives the encoder (no task head).

The license terms of the base model and of the training data apply.
"""
    return f"---\n{card_data.to_yaml()}\n---\n{body}"


def stage(ckpt_dir: str | Path, dest: str | Path, repo_id: str | None) -> list[str]:
    """Write the upload folder of a finished checkpoint to ``dest`` (a new folder): the files a push uploads,
    hard-linked where possible, and README.md. Returns the file names."""
    ckpt, dest = Path(ckpt_dir), Path(dest)
    check_intermediate_checkpoint(str(ckpt))
    if dest.exists():
        raise UsageError(f"{dest} exists; stage writes a new folder")
    dest.mkdir(parents=True)
    for f in upload_files(ckpt):
        try:
            os.link(f, dest / f.name)
        except OSError:
            shutil.copy2(f, dest / f.name)
    (dest / CARD_FILE).write_text(model_card(ckpt, repo_id), encoding="utf-8")
    return sorted(p.name for p in dest.iterdir())


# ----------------------------------------------------------------------------- the push
def push(ckpt_dir: str | Path, request: PushRequest) -> dict:
    """Push a finished checkpoint as ONE commit: every upload file, the card, and the deletion of files an
    earlier push left that this checkpoint does not have (no stale file survives). ``parent_commit`` makes
    the commit fail rather than mix with a concurrent change. Records the push in ``xstilts_hub.json``."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi


    ckpt = Path(ckpt_dir)
    meta = check_intermediate_checkpoint(str(ckpt))
    card = model_card(ckpt, request.repo_id).encode("utf-8")
    files = upload_files(ckpt)
    api = HfApi(token=request.token)
    api.create_repo(request.repo_id, private=request.private, exist_ok=True)
    if request.revision:
        api.create_branch(request.repo_id, branch=request.revision, exist_ok=True)
    head = api.repo_info(request.repo_id, revision=request.revision).sha
    keep = {f.name for f in files} | {CARD_FILE, ".gitattributes"}
    stale = [p for p in api.list_repo_files(request.repo_id, revision=head) if p not in keep]
    ops = [CommitOperationDelete(path_in_repo=p) for p in stale]
    ops += [CommitOperationAdd(path_in_repo=f.name, path_or_fileobj=str(f)) for f in files]
    ops.append(CommitOperationAdd(path_in_repo=CARD_FILE, path_or_fileobj=card))
    tasks = ",".join(meta.get("tasks") or [meta["task"]])
    info = api.create_commit(
        request.repo_id, ops, revision=request.revision, parent_commit=head,
        commit_message=f"xstilts phase-2 encoder: {meta['model']['name']} on {tasks} (seed {meta.get('seed')})",
        commit_description=f"Pushed by xstilts {(meta.get('provenance') or {}).get('versions', {}).get('xstilts')} "
                           f"from {ckpt.resolve()}.")
    record = {"repo_id": request.repo_id, "revision": request.revision or "main", "commit": info.oid,
              "url": info.commit_url, "files": sorted([f.name for f in files] + [CARD_FILE]), "deleted": stale,
              "pushed": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    path = ckpt / PUSH_RECORD
    history = json.loads(path.read_text())["pushes"] if path.exists() else []
    atomic_write_json(path, {"pushes": history + [record]})
    return record


def push_finished(request: PushRequest | None, ckpt_dir: str | Path) -> int:
    """The end of phase 2 with ``--push_to_hub``: push the finished checkpoint; 0 on success (or nothing to do),
    1 when the push failed (the checkpoint stays finished; the message gives the command that retries)."""
    if request is None:
        return 0
    try:
        record = push(ckpt_dir, request)
    except Exception as e:  # the network, the Hub, permissions: the local checkpoint is finished either way
        retry = f"python -m xstilts.hub push {ckpt_dir} {request.repo_id}"
        if request.revision:
            retry += f" --revision {request.revision}"
        if request.private:
            retry += " --private"
        logger.error("push to %s failed (%s: %s); nothing was committed. The checkpoint in %s is finished; push it "
                     "alone with: %s", request.repo_id, type(e).__name__, e, ckpt_dir, retry)
        return 1
    logger.info("pushed %s to %s (commit %s)", ckpt_dir, record["url"], record["commit"])
    return 0


# ----------------------------------------------------------------------------- Hub ids as --intermediate_checkpoint
def looks_like_hub_id(spec: str) -> bool:
    """``org/name`` or ``org/name@revision`` that is not a local path."""
    repo = spec.split("@", 1)[0]
    return not Path(spec).exists() and repo.count("/") == 1 and not spec.startswith((".", "/", "~"))


def download_checkpoint(spec: str) -> tuple[str, dict]:
    """A Hub checkpoint's local folder (downloaded, or the cached snapshot when offline) and where it came from:
    {"repo_id", "revision", "commit"}. Pickled weights are never downloaded."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    repo_id, _, revision = spec.partition("@")
    validate_repo_id(repo_id, "--intermediate_checkpoint")
    try:
        path = snapshot_download(repo_id, revision=revision or None, ignore_patterns=DOWNLOAD_IGNORE)
    except RevisionNotFoundError:
        raise UsageError(f"--intermediate_checkpoint {spec!r}: the Hub repo {repo_id!r} has no revision "
                         f"{revision!r}") from None
    except RepositoryNotFoundError:
        raise UsageError(f"--intermediate_checkpoint {spec!r} is neither a local folder nor a Hub model this "
                         f"token can read (private repos need `hf auth login` or HF_TOKEN)") from None
    except LocalEntryNotFoundError as e:
        why = ("HF_HUB_OFFLINE=1 and it is not in the local Hugging Face cache "
               f"({constants.HF_HUB_CACHE}): download it once online, or unset HF_HUB_OFFLINE"
               if constants.is_offline_mode() else f"the Hub could not be reached and it is not cached ({e})")
        raise UsageError(f"--intermediate_checkpoint {spec!r} is not a local folder; as a Hub id: {why}") from None
    return path, {"repo_id": repo_id, "revision": revision or "main", "commit": Path(path).name}


def intermediate_checkpoint(spec: str, model_entry) -> tuple[str, dict]:
    """``--intermediate_checkpoint``: a local folder or a Hub id. Returns (the local folder to load, its meta).

    The checks are the same for both (``check_intermediate_checkpoint``: finished, same architecture, sizes and
    tokenizer as a local base model), plus one for a base model given as a Hub id: the meta must name the same
    base model. A Hub checkpoint's meta carries ``hub`` (repo, revision, commit), stored with every result."""
    base = model_entry.path_or_id if Path(model_entry.path_or_id).is_dir() else None
    path, hub = download_checkpoint(spec) if looks_like_hub_id(spec) else (spec, None)
    try:
        meta = check_intermediate_checkpoint(path, base)
    except UsageError as e:
        if hub is None:
            raise
        raise UsageError(f"--intermediate_checkpoint {spec!r} (Hub commit {hub['commit']}): {e}") from None
    trained_from = (meta.get("model") or {}).get("path_or_id")
    if base is None and trained_from and looks_like_hub_id(trained_from) and trained_from != model_entry.path_or_id:
        raise UsageError(f"intermediate checkpoint {spec!r} was trained from {trained_from!r}, but --model "
                         f"{model_entry.name!r} is {model_entry.path_or_id!r}: pass --model {trained_from}")
    return path, (dict(meta, hub=hub) if hub else meta)


# ----------------------------------------------------------------------------- command line
@exits_on_usage_error
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m xstilts.hub", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    p_push = sub.add_parser("push", help="push a finished phase-2 checkpoint (one commit); also retries a failed push")
    p_push.add_argument("checkpoint", help="the phase-2 output folder (run_intermediate.py --output_dir)")
    p_push.add_argument("repo_id", help="<user or org>/<name>")
    p_push.add_argument("--revision", default=None, help="branch to push to (created if missing; default main)")
    p_push.add_argument("--private", action="store_true", help="create the repo private (an existing repo keeps its setting)")
    p_stage = sub.add_parser("stage", help="write the folder a push would upload (files + generated README.md), offline")
    p_stage.add_argument("checkpoint")
    p_stage.add_argument("out_dir", help="a new folder")
    p_stage.add_argument("--repo_id", default=None, help="the repo id the card's usage lines name")
    args = p.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    if args.command == "stage":
        names = stage(args.checkpoint, args.out_dir, args.repo_id)
        print(f"{args.out_dir}: {', '.join(names)}")
        return 0
    repo_id = validate_repo_id(args.repo_id, "repo_id")
    request = PushRequest(repo_id, preflight(repo_id), args.private or None, args.revision)  # token: HF_TOKEN
    return push_finished(request, args.checkpoint)


if __name__ == "__main__":
    raise SystemExit(main())
