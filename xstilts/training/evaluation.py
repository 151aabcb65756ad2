"""Zero-shot evaluation: every language of a task in one length-sorted pass with the selected model, scored per
language by the format (the task's metric among its scores), and written in the leaderboard layout."""

from __future__ import annotations


def indices_by_language(examples, languages) -> dict[str, list[int]]:
    langs = examples["lang"][:]  # a plain list (iterating a datasets Column is slow)
    out: dict[str, list[int]] = {lang: [] for lang in languages}
    for i, lang in enumerate(langs):
        if lang in out:
            out[lang].append(i)
    return out


def evaluate_languages(fmt, trainer, task, examples, features, languages, *, split: str,
                       prediction_dirs=(), label_dirs=(), write: bool = True):
    """Predict every language in one length-sorted pass, score each language, write leaderboard files.

    Returns (per_language metrics, timing)."""
    preds, timing = fmt.predict(trainer, task, examples, features)
    golds = fmt.gold(task, examples)
    per_language = {}
    for lang, idx in indices_by_language(examples, languages).items():
        sub = examples.select(idx)
        p = [preds[i] for i in idx]
        g = [golds[i] for i in idx]
        per_language[lang] = fmt.score(task, p, g, lang)
        for root in prediction_dirs if write else ():
            if root:
                fmt.write(root, task, lang, p, sub, split)
        for root in label_dirs if write else ():
            if root:
                fmt.write(root, task, lang, g, sub, split)
    return per_language, timing
