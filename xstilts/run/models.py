"""Model registry (configs/models.json): names for each size, resolved to a Hub id or a local path."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import UsageError, choices_error
from ..paths import CONFIGS, KIT_ROOT


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path_or_id: str  # what from_pretrained receives
    num_layers: int | None
    retrieval_layer: int | None
    per_device_train_batch_size: int | None
    deepspeed: str | None
    tiny: bool
    registered: bool  # False for an ad-hoc path / Hub id given by the user


@lru_cache(maxsize=1)
def registry() -> dict:
    data = json.loads((CONFIGS / "models.json").read_text())
    return {k: v for k, v in data.items() if not k.startswith("_")}


def resolve_model(spec: str) -> ModelEntry:
    """A registry name, an existing local directory, or a Hub id ``org/name``.

    Unknown bare names (no slash, not a directory) are errors that list the registry.
    """
    reg = registry()
    if spec in reg:
        e = reg[spec]
        if "path" in e:
            p = KIT_ROOT / e["path"]
            if not (p / "config.json").exists():
                raise UsageError(f"model {spec!r} is not built yet: {p} has no config.json. Run `make tiny-models` (synth-*: the demo models) or `make fixture-models` (tiny-*: the test models).")
            path_or_id = str(p)
        else:
            path_or_id = e["hub_id"]
        return ModelEntry(spec, path_or_id, e.get("num_layers"), e.get("retrieval_layer"),
                          e.get("per_device_train_batch_size"), e.get("deepspeed"), bool(e.get("tiny")), True)
    p = Path(spec)
    if p.is_dir():
        if not (p / "config.json").exists():
            raise UsageError(f"model directory {spec!r} has no config.json (not a Hugging Face model directory)")
        return ModelEntry(p.name, str(p), None, None, None, None, False, False)
    if "/" in spec and not spec.startswith((".", "/")):
        return ModelEntry(spec.split("/")[-1], spec, None, None, None, None, False, False)
    raise choices_error("model", spec, list(reg),
                        "Or pass an existing model directory or a Hub id of the form org/name.")
