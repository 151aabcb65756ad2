"""What a synthetic-world results tree shows, in words computed from its numbers (the demo report's note).

    python -m xstilts.synthetic.summary --results_dir results/demo-synthetic --data_root data/synthetic [--out F]
    python -m xstilts.synthetic.summary --results_dir results/demo-synthetic --data_root data/synthetic --timings

The note is written from the results, never from expectations: which languages are zero-shot above
chance, what the English intermediate task changes in English and in the other languages, and on the
part of the derived languages' test pairs that is not identical to the English pair (a language that
keeps most English words has many test pairs that *are* English pairs; a gain there is not transfer).
``--timings`` prints the recorded time of every step (pre-training, phase 2, every cell).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..run.layout import BASELINE
from ..run.results import RESULTS_FILE, read_results

PAIR_TASK, POS_TASK, RETRIEVAL_TASK, NLI_TASK = "synth_pair", "synth_pos", "synth_tatoeba", "synth_nli"
ABOVE_CHANCE, AT_CHANCE = 0.60, 0.55  # paraphrase accuracy (chance 0.50)
LEARNT = 0.80  # English dev accuracy from which the 3-way intermediate task counts as learnt (issue 20)


# ---------------------------------------------------------------------------- reading
def collect(results_dir: Path) -> list[dict]:
    out = []
    for path in sorted(results_dir.rglob(RESULTS_FILE)):
        d = read_results(path)
        d["_dir"] = str(path.parent)
        out.append(d)
    return out


def _target(d: dict) -> str:
    return d.get("target_task") or d.get("task")


def _intermediate(d: dict) -> str:
    return d.get("intermediate_task") or BASELINE


def per_model(results: list[dict]) -> list[tuple[str, int]]:
    sizes: dict[str, int] = {}
    for d in results:
        sizes[d["model"]["name"]] = max(sizes.get(d["model"]["name"], 0), int(d["model"]["n_params"]))
    return sorted(sizes.items(), key=lambda kv: kv[1])


def runs(results, model, target, inter) -> list[dict]:
    return sorted((d for d in results if d["model"]["name"] == model and _target(d) == target
                   and _intermediate(d) == inter), key=lambda d: d.get("seed") or 0)


def lang_value(d: dict, lang: str) -> float | None:
    m = d.get("per_language", {}).get(lang)
    if not m:
        return None
    metric = d.get("metric") or "accuracy"
    v = m.get(metric, m.get("accuracy"))
    return None if v is None else float(v)


def mean(xs) -> float | None:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def seed_mean(rs: list[dict], langs) -> float | None:
    """Mean over seeds of the mean over ``langs``."""
    return mean(mean(lang_value(d, l) for l in langs) for d in rs)


# ---------------------------------------------------------------------------- the world
def world_info(data_root: Path) -> dict:
    path = data_root / "world.json"
    if not path.exists():
        raise SystemExit(f"error: {path} not found (the synthetic world is written by `make synthetic-data`)")
    return json.loads(path.read_text(encoding="utf-8"))


def language_groups(world: dict) -> dict[str, list[str]]:
    """Derived languages by what they share with English (from their settings in world.json)."""
    groups = {"english_words": [], "cognates": [], "no_shared_function_words": [], "head_final": []}
    for lang in world["languages"][1:]:
        code = lang["code"]
        latin = lang.get("script", "latin") == "latin"
        if not lang["relex"]:
            groups["english_words"].append(code)
        elif latin and lang.get("shared_function_words"):
            groups["cognates"].append(code)
        else:
            groups["no_shared_function_words"].append(code)
        if lang.get("order") != "SVO":
            groups["head_final"].append(code)
    return groups


HEAD_FINAL = {"order=SOV", "adj=after", "det=after", "adp=post", "neg=final", "num=after"}


def compact_differences(lang: dict) -> list[str]:
    """A language's differences from English, with the six head-final settings said in two words."""
    diffs = list(lang.get("differences") or [])
    if HEAD_FINAL <= set(diffs):
        diffs = [d for d in diffs if d not in HEAD_FINAL] + ["head-final order"]
    if not lang.get("relex", True):
        diffs = ["English words"] + diffs
    return diffs


def identical_masks(data_root: Path) -> tuple[dict[str, list[bool]], dict[str, list[tuple]]] | None:
    """({language: for each test pair in file order, is it identical to the English pair?},
    {language: [(sentence1, sentence2, gold_label), ...]}), or None without the pair test data."""
    import pyarrow.parquet as pq

    files = sorted((data_root / "xstilts-synthetic" / "pair" / "pairs").glob("test-*.parquet"))
    if not files:
        return None
    rows: dict[str, list[tuple[str, str, str]]] = {}
    for f in files:
        t = pq.read_table(f).to_pydict()
        for lang, a, b, g in zip(t["language"], t["sentence1"], t["sentence2"], t["gold_label"]):
            rows.setdefault(lang, []).append((a, b, g))
    en = rows.get("en")
    if en is None:
        return None
    return {lang: [r[:2] == e[:2] for r, e in zip(rs, en)] for lang, rs in rows.items()}, rows


def subset_accuracy(d: dict, lang: str, gold: list[tuple[str, str, str]], keep: list[bool]) -> float | None:
    """Accuracy on the rows where ``keep`` is true, from the run's prediction file; None when the file is
    missing or does not reproduce the run's own accuracy (then nothing is claimed)."""
    pred_dir = Path(d.get("predictions_dir") or Path(d["_dir"]) / "predictions")
    files = sorted(pred_dir.rglob(f"*-{lang}.tsv")) if pred_dir.is_dir() else []
    files = [f for f in files if f.name.split("-", 1)[0] in ("test", d.get("eval_split", "test"))]
    if len(files) != 1:
        return None
    preds = files[0].read_text(encoding="utf-8").splitlines()
    if len(preds) != len(gold):
        return None
    correct = [p.strip() == g[2] for p, g in zip(preds, gold)]
    full = lang_value(d, lang)
    if full is None or abs(sum(correct) / len(correct) - full) > 1e-6:
        return None
    sub = [c for c, k in zip(correct, keep) if k]
    return sum(sub) / len(sub) if sub else None


# ---------------------------------------------------------------------------- the note
def pts(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def signed(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:+.1f}"


def span(values: list[float | None], fmt=signed) -> str:
    vs = [v for v in values if v is not None]
    if not vs:
        return "n/a"
    lo, hi = min(vs), max(vs)
    return fmt(lo) if abs(hi - lo) < 0.0005 else f"{fmt(lo)} to {fmt(hi)}"


def note(results: list[dict], world: dict, data_root: Path) -> str:
    models = per_model(results)
    if not models:
        return "No results yet."
    groups = language_groups(world)
    derived = [l["code"] for l in world["languages"][1:]]
    masks = identical_masks(data_root)
    sizes = ", ".join(f"{m} ({n / 1e6:.2f} M encoder parameters)" for m, n in models)
    seeds = sorted({d.get("seed") for d in results if _target(d) == PAIR_TASK})
    langs_desc = "; ".join(f"`{l['code']}`: {', '.join(compact_differences(l)) or 'English'}"
                           for l in world["languages"][1:])
    out = [
        "A small synthetic multilingual world (xstilts.synthetic, docs/synthetic.md; seed "
        f"{world.get('seed')}): an English grammar with known meanings and derived languages that differ in "
        f"controlled ways ({langs_desc}). Models: {sizes}, each pre-trained (MLM, no parallel text) on the "
        "world's corpus. Intermediate task `synth_nli` (English NLI between single clauses: restatement, "
        "negation or antonym, another entity, predicate or role); target `synth_pair` (paraphrase, "
        "English training, zero-shot in every language, chance 50 %)"
        + (", `synth_pos` (tagging)" if any(_target(d) == POS_TASK for d in results) else "")
        + f"; retrieval `synth_tatoeba`. Seeds {', '.join(str(s) for s in seeds)} vary only the target "
        "fine-tuning (one pre-training and one intermediate run per size), so the intervals understate the "
        "real variance.",
        "",
        "**What this run shows** (computed from the numbers below when the report was written):",
        "",
    ]
    # zero-shot transfer without intermediate training
    base = {m: runs(results, m, PAIR_TASK, BASELINE) for m, _ in models}
    inter = {m: runs(results, m, PAIR_TASK, NLI_TASK) for m, _ in models}
    per_lang = {l: mean(seed_mean(base[m], [l]) for m, _ in models) for l in ["en"] + derived}
    above = [l for l in derived if per_lang[l] is not None and per_lang[l] >= ABOVE_CHANCE]
    at = [l for l in derived if per_lang[l] is not None and per_lang[l] <= AT_CHANCE]
    if any(base.values()):
        out.append(
            f"* Zero-shot paraphrase accuracy without intermediate training (mean over sizes): English "
            f"{pts(per_lang['en'])}; " + ", ".join(f"`{l}` {pts(per_lang[l])}" for l in derived) + ". "
            + (f"Clearly above chance (>= {100 * ABOVE_CHANCE:.0f}): {', '.join(above)}. " if above else
               "No derived language is clearly above chance. ")
            + (f"At chance (<= {100 * AT_CHANCE:.0f}): {', '.join(at)}" if at else "None is at chance")
            + (" (no function-word token shared with English)"
               if at and set(at) <= set(groups["no_shared_function_words"]) else "") + ".")
        ranked = [(m, seed_mean(base[m], ["en"])) for m, _ in models]
        out.append("* Size: English paraphrase accuracy without intermediate training "
                   + ", ".join(f"{pts(v)} ({m})" for m, v in ranked) + "; mean over derived languages "
                   + ", ".join(f"{pts(seed_mean(base[m], derived))} ({m})" for m, _ in models) + ".")
    # the intermediate task
    gains_en, gains_sub, gains_hf, gains_all = [], [], [], []
    for m, _ in models:
        if not base[m] or not inter[m]:
            continue
        g_en = _diff(seed_mean(inter[m], ["en"]), seed_mean(base[m], ["en"]))
        g_all = _diff(seed_mean(inter[m], derived), seed_mean(base[m], derived))
        hf = groups["head_final"]
        g_hf = _diff(seed_mean(inter[m], hf), seed_mean(base[m], hf)) if hf else None
        g_sub = None
        if masks is not None:
            mask, gold = masks
            shared = [l for l in derived if l not in groups["no_shared_function_words"]]
            vals = []
            for l in shared:
                keep = [not x for x in mask.get(l, [])]
                if not any(keep):
                    continue
                b = mean(subset_accuracy(d, l, gold[l], keep) for d in base[m])
                i = mean(subset_accuracy(d, l, gold[l], keep) for d in inter[m])
                vals.append(_diff(i, b))
            g_sub = mean(vals) if vals and all(v is not None for v in vals) else None
        gains_en.append((m, g_en))
        gains_all.append((m, g_all))
        gains_hf.append((m, g_hf))
        gains_sub.append((m, g_sub))
    nli_dev = []
    for m, _ in models:
        meta = next((d.get("intermediate_meta") for d in inter[m] if d.get("intermediate_meta")), None) or {}
        dev = meta.get("dev_metric")
        nli_dev.append((m, dev.get("accuracy") if isinstance(dev, dict) else None))
    if any(v is not None for _, v in nli_dev):
        learnt = [m for m, v in nli_dev if v is not None and v >= LEARNT]
        not_learnt = [m for m, v in nli_dev if v is not None and v < LEARNT]
        out.append("* The intermediate task itself: `synth_nli` English dev accuracy "
                   + ", ".join(f"{pts(v)} ({m})" for m, v in nli_dev) + " (3 classes, chance 33.3): "
                   + (f"learnt (>= {100 * LEARNT:.0f}) by {', '.join(learnt)}" if learnt else
                      f"learnt (>= {100 * LEARNT:.0f}) by no size")
                   + (f"; not by {', '.join(not_learnt)}" if learnt and not_learnt else "")
                   + ". What it passes on can only be judged where it is learnt.")
    if gains_en:
        def by_size(pairs):
            return ", ".join(f"{signed(v)} ({m})" for m, v in pairs)

        out.append(f"* `synth_nli` before the target changes English paraphrase accuracy by {by_size(gains_en)} "
                   f"points; the mean over derived languages by {by_size(gains_all)}"
                   + (f"; head-final languages ({', '.join(groups['head_final'])}) by {by_size(gains_hf)}"
                      if groups["head_final"] else "") + ".")
        subs = [v for _, v in gains_sub if v is not None]
        if subs:
            out.append("* On the derived-language test pairs that are *not* identical to the English pair "
                       "(languages sharing function words with English; the part that is transfer rather "
                       f"than English), the change is {by_size(gains_sub)} points.")
        en_vals = [v for _, v in gains_en if v is not None]
        verdict = []
        if en_vals and min(en_vals) > 0.01:
            verdict.append("English NLI helps the English target at every size")
        elif en_vals:
            verdict.append("English NLI does not consistently help even the English target")
        if subs:
            if max(subs) < 0.01:
                verdict.append("the gain does not transfer to the other languages beyond the pairs they share "
                               "with English (≈ 0 or negative on the rest)")
            elif min(subs) > 0.01:
                verdict.append("part of the gain transfers to pairs that are not English")
            else:
                verdict.append("whether the gain transfers beyond shared pairs depends on the size "
                               f"({span(subs)} points)")
        hf_vals = [v for _, v in gains_hf if v is not None]
        if hf_vals and max(hf_vals) < -0.01:
            verdict.append("it hurts the head-final languages at every size (the encoder specialises to English "
                           "word order)")
        if len(en_vals) >= 2:
            verdict.append(f"the English gain is {signed(en_vals[0])} at the smallest and {signed(en_vals[-1])} at the "
                           "largest size (see the gain table for its interval)")
        if len(subs) >= 2 and len(subs) == len(gains_sub):
            verdict.append("the transfer part (the non-identical pairs) " + size_trend(gains_sub)
                           + f" (one phase-2 run per size, {len(seeds)} target seed(s): see the intervals below)")
        if verdict:
            out.append("* In short: " + "; ".join(verdict) + ".")
    # tagging
    pos_base = {m: runs(results, m, POS_TASK, BASELINE) for m, _ in models}
    if any(pos_base.values()):
        pos_inter = {m: runs(results, m, POS_TASK, NLI_TASK) for m, _ in models}
        metric = next(d.get("metric") for rs in pos_base.values() for d in rs)
        out.append(f"* `synth_pos` ({metric}) without intermediate training: English "
                   + ", ".join(f"{pts(seed_mean(pos_base[m], ['en']))} ({m})" for m, _ in models)
                   + "; mean over derived languages "
                   + ", ".join(f"{pts(seed_mean(pos_base[m], derived))} ({m})" for m, _ in models)
                   + "; change from `synth_nli` on the derived languages "
                   + ", ".join(f"{signed(_diff(seed_mean(pos_inter[m], derived), seed_mean(pos_base[m], derived)))}"
                               f" ({m})" for m, _ in models if pos_inter[m]) + ".")
        unshared = groups["no_shared_function_words"]
        if unshared:
            out.append(f"* `synth_pos` in the languages without shared function-word tokens ({', '.join(unshared)}), "
                       "without intermediate training, by size: " + "; ".join(
                           f"{m} " + ", ".join(pts(seed_mean(pos_base[m], [l])) for l in unshared) for m, _ in models)
                       + " (apart from names, digits and \".\" these languages share no token with English).")
    # retrieval
    ret = {m: runs(results, m, RETRIEVAL_TASK, BASELINE) for m, _ in models}
    if any(ret.values()):
        ret_i = {m: runs(results, m, RETRIEVAL_TASK, NLI_TASK) for m, _ in models}
        out.append("* `synth_tatoeba` (configured layer) without / with `synth_nli`, per language at the largest "
                   "size: " + ", ".join(
                       f"`{l}` {pts(seed_mean(ret[models[-1][0]], [l]))} / {pts(seed_mean(ret_i[models[-1][0]], [l]))}"
                       for l in derived) + ".")
    return "\n".join(out)


def size_trend(pairs: list[tuple[str, float]]) -> str:
    """How a quantity measured per size (smallest first) changes with size, in words."""
    values = [v for _, v in pairs]
    steps = list(zip(values, values[1:]))
    if all(b > a for a, b in steps):
        return "grows with size"
    if all(b < a for a, b in steps):
        return "shrinks with size"
    best = max(pairs, key=lambda mv: mv[1])[0]
    return f"does not grow with size (largest at {best})"


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


# ---------------------------------------------------------------------------- timings
def timings(results_dir: Path, results: list[dict]) -> str:
    """Recorded seconds per step (in-process time; each phase-script process also spends a few seconds
    importing before its clock starts)."""
    lines = ["step                                                   seconds"]
    models = per_model(results)
    seen_paths = set()
    for d in results:
        p = d["model"].get("path_or_id")
        if p:
            seen_paths.add(p)
    for m, _ in models:
        for p in sorted(seen_paths):
            info = Path(p) / "xstilts_tiny.json"
            if Path(p).name == m and info.exists():
                t = json.loads(info.read_text())
                w = t.get("mlm_warmup", {})
                lines.append(f"pre-train {m:<15} {w.get('steps', 0):>5} MLM steps, loss "
                             f"{w.get('first_loss', float('nan')):.2f} -> {w.get('final_loss_mean_last_50', float('nan')):.2f}"
                             f"   {t.get('build_seconds', float('nan')):7.1f}")
    ckpt_metas = []
    for d in results:
        ck = d.get("intermediate_checkpoint")
        if ck and ck not in ckpt_metas:
            ckpt_metas.append(ck)
    for ck in ckpt_metas:
        path = Path(ck) / "xstilts_meta.json"
        if path.exists():
            meta = json.loads(path.read_text())
            dev = meta.get("dev_metric")
            if isinstance(dev, dict):
                dev = next((v for k, v in dev.items() if isinstance(v, (int, float))), None)
            dev_text = f"{dev:.3f}" if isinstance(dev, (int, float)) else "n/a"
            wall = (meta.get("timing") or {}).get("wall_seconds", float("nan"))
            lines.append(f"phase 2 {meta['model']['name']:<15} {str(meta.get('task')):<12} dev {dev_text:<5}"
                         f"                {wall:7.1f}")
    total = 0.0
    for d in sorted(results, key=lambda d: (d["model"]["n_params"], _target(d), _intermediate(d), d.get("seed") or 0)):
        w = (d.get("timing") or {}).get("wall_seconds")
        total += w or 0.0
        lines.append(f"cell {d['model']['name']:<15} {_intermediate(d):<9} {_target(d):<13} seed {d.get('seed')}"
                     f"         {w if w is not None else float('nan'):7.1f}")
    lines.append(f"cells total (in-process)                               {total:7.1f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results_dir", required=True)
    ap.add_argument("--data_root", required=True, help="the synthetic world's directory (world.json, data)")
    ap.add_argument("--out", default=None, help="write the note here (default: stdout)")
    ap.add_argument("--timings", action="store_true", help="print the recorded time of every step instead")
    args = ap.parse_args(argv)
    results_dir, data_root = Path(args.results_dir), Path(args.data_root)
    if not results_dir.is_dir():
        print(f"error: --results_dir {results_dir} is not a directory", file=sys.stderr)
        return 2
    results = collect(results_dir)
    if args.timings:
        print(timings(results_dir, results))
        return 0
    text = note(results, world_info(data_root), data_root) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
