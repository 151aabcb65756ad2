"""The report's "Learning rates" table: per size, arm and task, the learning rate each phase used and where it came
from (a preset, a calibration overlay, the command line).

One learning rate for every size is a confound of the size question: larger models usually need smaller rates, a
badly tuned baseline inflates the gain and a badly tuned intermediate arm hides it (issue 20; ``make calibrate``,
docs/study.md). Every result records its rate (``hyperparameters.learning_rate``) and its source
(``hyperparameters.learning_rate_source``: ``{"kind": "preset" | "calibration" | "command_line", "file",
"calibration": {entry, created, commit, metric, seeds, schedule, grid, ...}}``, written by xstilts.run.overlay; a
preset source may carry ``calibration_missing`` (the overlay had no entry for the run, CALIBRATION_MISSING=preset)
and a ``note``); phase 2's is in ``intermediate_meta``. Results written before the source was recorded are labelled
from their preset record, marked "inferred".
"""

from __future__ import annotations

from ..run.layout import BASELINE
from .divergence import is_diverged
from .markdown import format_params, md_table

# the overlay's fields, shared by all its entries: (key in the record, label in the report); "date" is accepted
# for "created". Per entry (shown in the table's cell): the grid of candidate rates and the selection metric.
CALIBRATION_FIELDS = (("seeds", "seeds"), ("schedule", "schedule"), ("created", "date"), ("date", "date"),
                      ("commit", "commit"))
PHASE2, PHASE3 = "2 (intermediate)", "3 (target)"


def _rate(x) -> str:
    return "–" if x is None else f"{x:g}"


def _calibration_text(cal: dict) -> str:
    parts = []
    for key, label in CALIBRATION_FIELDS:
        value = cal.get(key)
        if value in (None, "", [], {}):
            continue
        if isinstance(value, (list, tuple)):
            value = ", ".join(_rate(v) if isinstance(v, float) else str(v) for v in value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        elif key == "commit":
            value = str(value)[:10]
        parts.append(f"{label} {value}")
    return "; ".join(parts)


def _entry_text(cal: dict) -> str:
    """What one overlay entry chose from: its grid of rates and the English dev metric."""
    grid = cal.get("grid") or []
    text = f"of {' '.join(_rate(r) for r in grid)}" if grid else ""
    if cal.get("metric"):
        text += f" on English dev {cal['metric']}"
    return text.strip()


def source_text(hp: dict, preset: dict | None) -> tuple[str, str, str]:
    """(kind, text, entry) of where a run's learning rate came from: ``text`` names the source (shared by the
    runs of one overlay or preset), ``entry`` what a calibrated rate was chosen from (its grid and metric)."""
    src = hp.get("learning_rate_source")
    entry = ""
    if isinstance(src, dict):
        kind, file = src.get("kind") or "unknown", src.get("file")
        text = kind.replace("_", " ") + (f" `{file}`" if file else "")
        if kind == "calibration" and isinstance(src.get("calibration"), dict):
            detail = _calibration_text(src["calibration"])
            text += f" ({detail})" if detail else ""
            entry = _entry_text(src["calibration"])
        missing = src.get("calibration_missing")
        if isinstance(missing, dict):  # CALIBRATION_MISSING=preset: the overlay had no rate for this run
            kind = "calibration_missing"
            text += (f" - NOT calibrated: the overlay `{missing.get('file', '?')}` has no rate for "
                     f"{missing.get('entry', 'this run')} (CALIBRATION_MISSING=preset)")
        if src.get("note") and not isinstance(missing, dict):
            text += f" - {src['note']}"
        return kind, text, entry
    preset = preset or {}
    if "learning_rate" in (preset.get("cli_overrides") or []):
        return "command_line", "command line (inferred: no learning_rate_source recorded)", entry
    values = preset.get("values") or {}
    if preset.get("name") and values.get("learning_rate") == hp.get("learning_rate"):
        return "preset", f"preset {preset['name']} (inferred: no learning_rate_source recorded)", entry
    return "unknown", "unknown (no learning_rate_source recorded)", entry


def rate_rows(results: list[dict], n_params: dict[str, int]) -> list[dict]:
    """One row per (model, arm, phase, task): the distinct (rate, source) pairs over the runs (diverged runs
    included: they used a rate too). ``results``: the tabulated results (kind target or retrieval); retrieval
    cells train nothing in phase 3, so only their phase-2 encoder appears."""
    rows: dict[tuple, dict] = {}
    for r in results:
        model, target = r["model"]["name"], r["target_task"]
        inter = r.get("intermediate_task") or BASELINE
        entries = []
        meta = r.get("intermediate_meta")
        if inter != BASELINE and isinstance(meta, dict) and isinstance(meta.get("hyperparameters"), dict):
            entries.append((PHASE2, meta.get("task") or inter, meta["hyperparameters"], meta.get("preset")))
        if r["kind"] != "retrieval":
            entries.append((PHASE3, target, r.get("hyperparameters") or {}, r.get("preset")))
        for phase, task, hp, preset in entries:
            row = rows.setdefault((model, inter, phase, task), {"model": model, "n_params": n_params[model],
                                                                "intermediate": inter, "phase": phase, "task": task,
                                                                "values": {}, "kept": set()})
            row["values"].setdefault((hp.get("learning_rate"), *source_text(hp, preset)), []).append(r.get("seed"))
            if not is_diverged(r):
                row["kept"].add((hp.get("learning_rate"), *source_text(hp, preset)))
    return sorted(rows.values(), key=lambda x: (x["n_params"], x["model"], x["intermediate"] != BASELINE,
                                                x["intermediate"], x["phase"], x["task"]))


def section(results: list[dict], n_params: dict[str, int]) -> str:
    """Rows: arm, phase, task; columns: sizes (smallest first); each cell the rate and a letter naming its source
    (listed below the table)."""
    rows = rate_rows(results, n_params)
    if not rows:
        return "_No results._"
    models = list(dict.fromkeys(r["model"] for r in rows))
    sizes = {r["model"]: r["n_params"] for r in rows}
    letters: dict[str, str] = {}
    cells: dict[tuple, dict[str, str]] = {}
    notes = []
    for row in rows:
        values = row["values"]
        parts = []
        for (rate, _, text, entry), seeds in values.items():
            letter = letters.setdefault(text, _letter(len(letters)))
            which = f" seed {', '.join(str(s) for s in sorted(set(seeds)))}" if len(values) > 1 else ""
            parts.append(f"{_rate(rate)} ({letter}{which}{'; ' + entry if entry else ''})")
        if len(row["kept"]) > 1:
            notes.append(f"{row['model']} / {row['intermediate']} / {row['task']}: seeds used different rates or "
                         f"sources; their mean mixes them.")
        elif len(values) > 1:
            notes.append(f"{row['model']} / {row['intermediate']} / {row['task']}: seeds used different rates or "
                         f"sources; only the runs of one of them are kept (the others diverged).")
        cells.setdefault((row["intermediate"], row["phase"], row["task"]), {})[row["model"]] = "; ".join(parts)
    body = [[inter, phase, task, *[by_model.get(m, "–") for m in models]]
            for (inter, phase, task), by_model in sorted(cells.items(), key=lambda kv: (kv[0][0] != BASELINE, kv[0]))]
    # one rate from a preset for every size of the same (arm, phase, task): the confound is not controlled
    uncalibrated = []
    for (inter, phase, task) in sorted(cells):
        same = [r for r in rows if (r["intermediate"], r["phase"], r["task"]) == (inter, phase, task)]
        kinds = {k for r in same for (_, k, _, _) in r["values"]}
        rates_used = {rate for r in same for (rate, _, _, _) in r["values"]}
        if len(same) > 1 and len(rates_used) == 1 and kinds <= {"preset", "calibration_missing"}:
            uncalibrated.append(f"{inter} / phase {phase.split()[0]} / {task} ({_rate(next(iter(rates_used)))})")
    missing = [f"{r['model']} / {r['intermediate']} / phase {r['phase'].split()[0]} / {r['task']}" for r in rows
               if any(k == "calibration_missing" for (_, k, _, _) in r["values"])]
    if missing:
        notes.append(f"Calibration overlay given but without a rate for (the preset's rate was used, "
                     f"CALIBRATION_MISSING=preset; calibrated and uncalibrated arms are compared): {'; '.join(missing)}.")
    if uncalibrated:
        notes.append(f"One rate from a preset for every size, not calibrated per size (`make calibrate`, "
                     f"docs/study.md): {'; '.join(uncalibrated)}.")
    header = ["intermediate", "phase", "task", *[f"{m} ({format_params(sizes[m])})" for m in models]]
    out = md_table(header, body)
    out += ("\n\nThe learning rate of each training phase of each arm and size: phase 2 trains the intermediate task "
            "(its encoder is shared by every target of the arm), phase 3 the target task (`" + BASELINE + "`: from "
            "the pretrained model). Sources:\n\n" + "\n".join(f"- ({letter}) {text}" for text, letter in letters.items()))
    if notes:
        out += "\n\n" + "\n".join(f"- {n}" for n in notes)
    return out


def _letter(i: int) -> str:
    return "abcdefghijklmnopqrstuvwxyz"[i] if i < 26 else f"s{i + 1}"
