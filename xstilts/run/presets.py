"""Hyperparameter presets (``configs/presets/<name>.json``), resolved in one place for every kind of run.

A preset file holds ``defaults``, one entry per task (``tasks.<task>``), one block for multi-task training
(``multitask``) and per-model overrides (``by_model.<model>.<task>`` / ``by_model.<model>.multitask``). For one
task: defaults < the task's entry < the model's entry for that task; for a mix of tasks (``--tasks``): defaults <
the multi-task block < the model's multi-task entry. The command line overrides every value (``xstilts.run.start``).

Besides hyperparameter values, every level may hold what the preset says about its source (``INFO_KEYS``; not
values, merged in the same order, kept apart in ``Preset.info``; ``xstilts.run.protocol`` turns them into the
result's ``protocol`` block): ``cite`` (the file:line of the source each value comes from), ``reference`` (what
the source did where the preset deliberately differs or where a switch can differ: ``{"seed": 42, "precision":
"fp32", ...}``) and ``notes`` (named differences no switch removes: ``{"name": "what, and its expected
effect"}``; a note named after a protocol dimension explains that dimension's deviation and shows only while it
applies). A file's top level names its source: ``source`` (text) and ``commit``; ``by_model.<model>`` may hold
``notes`` for every task of that model (the XL/XXL values are the kit's extrapolation).

Two more blocks, read by their own resolvers: ``retrieval.<task>`` (settings of run_retrieval.py, e.g. BUCC's
``duplicates``; ``retrieval_settings``) and ``encoder_recipes.<name>`` (the fine-tuning that makes the encoder a
retrieval task embeds with, e.g. XTREME-R's SQuAD v1.1 model for Tatoeba; ``resolve_recipe``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..errors import UsageError, choices_error
from ..paths import PRESETS

MULTITASK_BLOCK = "multitask"
INFO_KEYS = ("cite", "reference", "notes")  # what a level says about its source, not hyperparameter values
RETRIEVAL_BLOCK = "retrieval"
RECIPES_BLOCK = "encoder_recipes"


@dataclass(frozen=True)
class Preset:
    name: str
    values: dict  # the resolved values (before the command line)
    header: dict  # the file's name, description, source and commit, recorded with every result
    block: str | None = None  # "multitask" for a mix of tasks
    info: dict = field(default_factory=dict)  # cite (a list, lowest level first), reference, notes: INFO_KEYS


def _merge(levels: list[dict]) -> tuple[dict, dict]:
    """(values, info) of preset levels, lowest first: values and ``reference`` / ``notes`` by key, the later
    level winning; ``cite`` collected in order."""
    values, info = {}, {"cite": [], "reference": {}, "notes": {}}
    for level in levels:
        for k, v in level.items():
            if k == "cite":
                info["cite"].append(v)
            elif k in INFO_KEYS:
                info[k].update(v)
            else:
                values[k] = v
    return values, info


def available_presets() -> list[str]:
    return sorted(p.stem for p in PRESETS.glob("*.json"))


def read_preset(name: str) -> dict:
    path = PRESETS / f"{name}.json"
    if not path.exists():
        raise choices_error("preset", name, available_presets())
    return json.loads(path.read_text())


def resolve_preset(name: str, task: str | None, model_name: str) -> Preset:
    """The preset's values for ``task`` (None: a multi-task run) on ``model_name`` (a registry name, or "" for a
    model outside the registry)."""
    data = read_preset(name)
    header = {k: data.get(k) for k in ("name", "description", "source", "commit")}
    top = {k: data[k] for k in INFO_KEYS if k in data}  # the file's own reference / notes, below its defaults
    block = None
    if task is None:
        if MULTITASK_BLOCK not in data:
            raise UsageError(f"preset {name!r} has no \"multitask\" block (the hyperparameters of a multi-task "
                             f"run); add one to {PRESETS / f'{name}.json'} or use another preset")
        key, entry, block = MULTITASK_BLOCK, data[MULTITASK_BLOCK], MULTITASK_BLOCK
    else:
        if task not in data.get("tasks", {}):
            raise UsageError(f"preset {name!r} has no settings for task {task!r}; it covers: "
                             f"{', '.join(sorted(data.get('tasks', {})))}")
        key, entry = task, data["tasks"][task]
    model_block = data.get("by_model", {}).get(model_name, {})
    model_info = {k: model_block[k] for k in INFO_KEYS if k in model_block}  # the model's notes, for every task
    values, info = _merge([top, data.get("defaults", {}), entry, model_info, model_block.get(key, {})])
    return Preset(name, values, header, block, info)


def retrieval_settings(name: str, task: str) -> tuple[dict, dict]:
    """(the preset's ``retrieval.<task>`` entry, or {}; the file's header) for run_retrieval.py."""
    data = read_preset(name)
    header = {k: data.get(k) for k in ("name", "description", "source", "commit")}
    return dict(data.get(RETRIEVAL_BLOCK, {}).get(task, {})), header


def resolve_recipe(name: str, recipe: str, model_name: str) -> Preset:
    """The training values of the encoder recipe ``recipe`` (``encoder_recipes.<recipe>.training``) for a phase-2
    style run of the recipe's ``task``: defaults < the recipe's training values < ``by_model.<model>.<recipe>``.
    The header records the recipe itself (its task, encoder name, sources)."""
    data = read_preset(name)
    recipes = data.get(RECIPES_BLOCK, {})
    if recipe not in recipes:
        raise UsageError(f"preset {name!r} has no encoder recipe {recipe!r} (block \"{RECIPES_BLOCK}\"); it has: "
                         f"{', '.join(sorted(recipes)) or '(none)'}. Add one to {PRESETS / f'{name}.json'} or use "
                         f"another preset")
    entry = recipes[recipe]
    header = {k: data.get(k) for k in ("name", "description", "source", "commit")}
    header["recipe"] = dict(entry, name=recipe)
    top = {k: data[k] for k in INFO_KEYS if k in data}
    values, info = _merge([top, data.get("defaults", {}), entry.get("training", {}),
                           data.get("by_model", {}).get(model_name, {}).get(recipe, {})])
    return Preset(name, values, header, recipe, info)
