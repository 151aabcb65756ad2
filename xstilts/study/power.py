"""Seeds and power: how small a gain the seeds of a results tree can resolve, and how many seeds a chosen gain needs.

The question of the study is whether the gain from intermediate training changes with model size. Whether a
gain of 0.5 point at one size differs from 0.5 at another depends on the run-to-run (seed) variance at each
size, and that variance changes with size. This module measures it and turns it into two numbers per size and
target task (docs/study.md, "Seeds and power"):

Seed variance (per size and target, pooled across arms)
    y_ij = the task average of seed j of arm i (``none`` and every intermediate task at that size and target;
    diverged runs left out). Arms with at least 2 seeds contribute:

        s^2 = sum_i sum_j (y_ij - mean_i)^2 / df,        df = sum_i (n_i - 1)

    Pooling assumes the arms share one seed variance (intermediate training may change it; with 2-3 seeds per
    arm a per-arm estimate is too noisy to say). With one seed per arm nothing is measured: the row says so, and
    borrows the pooled variance of the same target at the other sizes where there is one, marked as borrowed.

Resolvable gain now (95 %, two-sided)
    The half-width of the t interval of a gain (intermediate mean - baseline mean, n_a and n_b seeds):

        h = t(0.975, df) * s * sqrt(1/n_a + 1/n_b)

    A measured gain larger than h has an interval that excludes 0.

Detectable gain now (80 % power)
    The gain that a two-sided 5 % two-sample t test on these seeds (df as above) detects with probability 0.8:
    the delta with power(delta) = 0.8, power from the noncentral t distribution (below).

Seeds needed for a chosen gain (``MIN_GAIN``, 80 % power)
    The smallest n (seeds per arm, both arms) with power >= 0.8 for a gain of MIN_GAIN, sigma = s, when the two
    arms are compared with a two-sample t test with df = 2n - 2 (variance estimated from the two arms compared):

        power = P(|T'| > t(0.975, df)),  T' ~ noncentral t(df, nc),  nc = MIN_GAIN / (s * sqrt(2 / n))

    It treats s as the true sigma: with few seeds s itself is uncertain (with df = 2 its 95 % interval spans
    0.52 s to 6.3 s), so the figure is a planning estimate that the next batch of seeds refines.

The noncentral t power is computed as E_W[Phi(nc - c W) + Phi(-nc - c W)], W = sqrt(V / df), V ~ chi^2(df), by
Simpson's rule over W; the t quantile by bisection on the t CDF (regularised incomplete beta). No SciPy: it is
not a direct dependency of the kit. tests/test_power.py checks both against tabulated values and against
simulated experiments with a known variance.

Two sources of variance, kept apart
    The seed variance above is run-to-run variation on one fixed test set: more seeds shrink it. The finite test
    set adds sampling variation of its own (what an example-level bootstrap or a binomial interval measures): it
    is shared by all seeds and arms evaluated on that test set, does not shrink with more seeds, and matters only
    when the claim is about the population the test set was drawn from. The power numbers here are about seeds,
    the decision a researcher can change; docs/study.md says how the two combine when both matter (their
    variances add for an unpaired comparison; pairing on the same examples removes most of the second).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

import numpy as np

from ..run.layout import BASELINE
from .markdown import format_params, md_table

ALPHA = 0.05  # two-sided
POWER = 0.80
MAX_SEEDS = 10_000  # "needs more than this" beyond it
BORROWED_MARK = "◊"


# ----------------------------------------------------------------------------- distributions
def _erfc(x: np.ndarray) -> np.ndarray:
    """Complementary error function, fractional error < 1.2e-7 everywhere (Numerical Recipes erfcc)."""
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = (-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
    ans = t * np.exp(poly)
    return np.where(x >= 0, ans, 2.0 - ans)


def normal_cdf(x):
    return 0.5 * _erfc(-np.asarray(x, dtype=float) / math.sqrt(2.0))


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(x: float, df: float) -> float:
    """CDF of Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + x * x))
    return 1.0 - tail if x > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t (bisection on :func:`t_cdf`)."""
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0 (got p={p}, df={df})")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def t_test_power(delta: float, sigma: float, n_a: int, n_b: int, df: float, alpha: float = ALPHA) -> float:
    """Power of the two-sided level-``alpha`` two-sample t test for a true difference ``delta``, per-seed standard
    deviation ``sigma``, ``n_a`` and ``n_b`` seeds and ``df`` degrees of freedom of the variance estimate."""
    nc = abs(delta) / (sigma * math.sqrt(1.0 / n_a + 1.0 / n_b))
    c = t_quantile(1.0 - alpha / 2.0, df)
    # W = sqrt(V / df), V ~ chi^2(df): density 2 df w f_V(df w^2), mass within ~1 +- 12 sd (sd ~ 1/sqrt(2 df))
    sd = math.sqrt(1.0 / (2.0 * df))
    lo, hi = max(0.0, 1.0 - 12.0 * sd), 1.0 + 12.0 * sd + (6.0 if df < 3 else 0.0)
    w = np.linspace(lo, hi, 4001)
    w[0] = max(w[0], 1e-12)
    v = df * w * w
    log_fv = (df / 2.0 - 1.0) * np.log(v) - v / 2.0 - (df / 2.0) * math.log(2.0) - math.lgamma(df / 2.0)
    dens = 2.0 * df * w * np.exp(log_fv)
    inner = normal_cdf(nc - c * w) + normal_cdf(-nc - c * w)
    step = w[1] - w[0]
    simpson = np.ones_like(w)
    simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
    return float(np.clip(np.sum(simpson * dens * inner) * step / 3.0, 0.0, 1.0))


# ----------------------------------------------------------------------------- the three numbers
def resolvable_gain(sigma: float, df: float, n_a: int, n_b: int, alpha: float = ALPHA) -> float:
    """Half-width of the (1 - alpha) t interval of a difference of two arm means."""
    return t_quantile(1.0 - alpha / 2.0, df) * sigma * math.sqrt(1.0 / n_a + 1.0 / n_b)


def detectable_gain(sigma: float, df: float, n_a: int, n_b: int, power: float = POWER,
                    alpha: float = ALPHA) -> float:
    """The true gain a two-sided level-alpha t test on these seeds detects with probability ``power``."""
    lo, hi = 0.0, sigma
    while t_test_power(hi, sigma, n_a, n_b, df, alpha) < power:
        hi *= 2.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if t_test_power(mid, sigma, n_a, n_b, df, alpha) < power:
            lo = mid
        else:
            hi = mid
    return hi


def seeds_needed(gain: float, sigma: float, power: float = POWER, alpha: float = ALPHA,
                 max_seeds: int = MAX_SEEDS) -> int | None:
    """Seeds per arm (both arms) for ``power`` at ``gain``: the smallest n >= 2 with t-test power (df = 2n - 2) at
    least ``power``; None when more than ``max_seeds`` would be needed."""
    if gain <= 0 or sigma < 0:
        raise ValueError(f"seeds_needed: gain must be > 0 and sigma >= 0 (got gain={gain}, sigma={sigma})")
    if sigma == 0:
        return 2
    z = float(_normal_quantile(1.0 - alpha / 2.0) + _normal_quantile(power))
    n = max(2, int(2.0 * (z * sigma / gain) ** 2))  # the normal approximation, never above the t answer
    if n > max_seeds:
        return None
    while t_test_power(gain, sigma, n, n, 2 * n - 2, alpha) < power:
        n += 1
        if n > max_seeds:
            return None
    while n > 2 and t_test_power(gain, sigma, n - 1, n - 1, 2 * n - 4, alpha) >= power:
        n -= 1
    return n


def _normal_quantile(p: float) -> float:
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if float(normal_cdf(mid)) < p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def pooled_variance(arms: dict[str, np.ndarray]) -> tuple[float, int]:
    """(sum of squared deviations from each arm's mean, degrees of freedom) over arms with >= 2 values."""
    ss, df = 0.0, 0
    for values in arms.values():
        values = np.asarray(values, dtype=float)
        if len(values) >= 2:
            ss += float(((values - values.mean()) ** 2).sum())
            df += len(values) - 1
    return ss, df


# ----------------------------------------------------------------------------- per size and target
@dataclass
class PowerRow:
    model: str
    n_params: int
    target: str
    seeds: dict[str, int]  # arm -> seeds kept (diverged runs left out)
    n_a: int  # seeds of the baseline arm (or the fewest of any arm without one)
    n_b: int  # the fewest seeds of an intermediate arm
    sd: float | None  # per-seed standard deviation (fraction), measured or borrowed
    df: int
    source: str  # "measured" | "borrowed" | "none"
    borrowed_from: list[str] = field(default_factory=list)
    resolvable: float | None = None
    detectable: float | None = None
    needed: int | None = None
    excluded: int = 0  # diverged runs left out at this size and target
    kind: str = "target"  # "retrieval": nothing is trained after phase 2, which runs once (seed 1)


def power_rows(groups, min_gain: float) -> list[PowerRow]:
    """One row per (model, target) of ``groups`` (objects with model, n_params, intermediate, target, averages()
    and diverged, as :class:`xstilts.study.report.Group`); ``min_gain`` is a fraction (0.005 = 0.5 point)."""
    cells: dict[tuple[str, int, str], dict[str, np.ndarray]] = {}
    excluded: dict[tuple[str, int, str], int] = {}
    kinds: dict[tuple[str, int, str], str] = {}
    for g in groups:
        key = (g.model, g.n_params, g.target)
        cells.setdefault(key, {})[g.intermediate] = g.averages()
        excluded[key] = excluded.get(key, 0) + len(getattr(g, "diverged", []) or [])
        kinds[key] = g.kind
    pooled = {key: pooled_variance(arms) for key, arms in cells.items()}
    rows = []
    for key, arms in cells.items():
        model, n_params, target = key
        ss, df = pooled[key]
        seeds = {arm: len(v) for arm, v in arms.items()}
        others = [n for arm, n in seeds.items() if arm != BASELINE]
        n_a = seeds.get(BASELINE, min(seeds.values()))
        n_b = min(others) if others else n_a
        row = PowerRow(model, n_params, target, seeds, n_a, n_b, None, df, "none", excluded=excluded[key],
                       kind=kinds[key])
        if df > 0:
            row.sd, row.source = math.sqrt(ss / df), "measured"
        else:
            donors = [(k, v) for k, v in pooled.items() if k[2] == target and k != key and v[1] > 0]
            if donors:
                ss_b, df_b = sum(v[0] for _, v in donors), sum(v[1] for _, v in donors)
                row.sd, row.df, row.source = math.sqrt(ss_b / df_b), df_b, "borrowed"
                row.borrowed_from = [k[0] for k, _ in sorted(donors, key=lambda kv: kv[0][1])]
        if row.sd is not None:
            row.resolvable = resolvable_gain(row.sd, row.df, n_a, n_b)
            row.detectable = detectable_gain(row.sd, row.df, n_a, n_b) if row.sd > 0 else 0.0
            row.needed = seeds_needed(min_gain, row.sd)
        rows.append(row)
    return sorted(rows, key=lambda r: (r.n_params, r.model, r.target))


# ----------------------------------------------------------------------------- rendering
def _pts(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f}"


def _needed(n: int | None) -> str:
    return f"> {MAX_SEEDS}" if n is None else str(n)


def power_table(rows: list[PowerRow], min_gain: float, mark=lambda n: "") -> str:
    """The report's section body; ``mark(n)`` is the divergence mark for n excluded runs."""
    if not rows:
        return "_No results._"
    body = []
    for r in rows:
        arms = ", ".join(f"{arm} {n}" for arm, n in r.seeds.items())
        sd = _pts(r.sd)
        if r.source == "borrowed":
            sd += f" {BORROWED_MARK}"
        elif r.source == "none":
            sd = "n/a (retrieval, 1 seed)" if r.kind == "retrieval" else "n/a (1 seed per arm)"
        body.append([r.model, format_params(r.n_params), r.target, arms + mark(r.excluded), sd,
                     str(r.df) if r.sd is not None else "–", _pts(r.resolvable), _pts(r.detectable),
                     _needed(r.needed) if r.sd is not None else "–"])
    header = ["model", "params", "target", "seeds per arm (kept)", "seed SD (points)", "df",
              "resolvable gain now (95 %, two-sided)", "detectable gain now (80 % power)",
              f"seeds per arm for {100 * min_gain:g} points (80 % power)"]
    notes = [
        "Seed SD: the standard deviation of a task average across seeds, pooled over the arms at that size and "
        "target that have ≥ 2 seeds (`df` = Σ (seeds − 1)); points ×100.",
        "Resolvable gain now: t(0.975, df) × SD × √(1/n_none + 1/n_intermediate) with the seeds in the table "
        "(fewest of any intermediate arm): a measured gain above it has a 95 % interval that excludes 0.",
        "Detectable gain now: the true gain a two-sided 5 % two-sample t test on these seeds finds with "
        "probability 0.8 (noncentral t).",
        f"Seeds per arm: the smallest n (both arms) that detects a gain of {100 * min_gain:g} points with "
        f"probability 0.8 (two-sided 5 % t test, df = 2n − 2), taking the SD as the true one "
        f"(`MIN_GAIN={100 * min_gain:g}`; `make plan MIN_GAIN=...` prices it).",
        "These are about run-to-run (seed) variance on a fixed test set; the example-level sampling variance of "
        "the test set is another source, not reduced by seeds (docs/study.md).",
        "An intermediate arm's seeds all start from one phase-2 encoder (phase 2 runs once per size and "
        "intermediate task, seed 1): its seed SD is the variation of target-task training only; the variation of "
        "phase-2 training is not sampled, so every interval here is conditional on that one encoder.",
    ]
    lone = [f"{r.model} / {r.target}" for r in rows if r.kind != "retrieval" and set(r.seeds) == {BASELINE}]
    if lone:
        notes.append(f"No intermediate arm with a kept run ({'; '.join(lone)}): the gain figures assume an "
                     f"intermediate arm with as many seeds as `{BASELINE}`.")
    if any(r.kind == "retrieval" for r in rows):
        notes.append("Retrieval targets train nothing after phase 2, and phase 2 runs once per size and intermediate "
                     "task (seed 1): their seeds repeat the same computation, so seeds cannot resolve anything there.")
    if any(r.source == "none" and r.kind != "retrieval" for r in rows):
        notes.append("n/a: one seed per arm and no other size with ≥ 2 seeds on this target: no seed variance is "
                     "measured. Run a second seed (`SEEDS=\"1 2\"`) to measure it.")
    if any(r.source == "borrowed" for r in rows):
        froms = "; ".join(f"{r.model} / {r.target} from {', '.join(r.borrowed_from)}" for r in rows
                          if r.source == "borrowed")
        notes.append(f"{BORROWED_MARK} borrowed: one seed per arm at this size, so the SD is the pooled SD of the same "
                     f"target at the other sizes ({froms}). Seed variance changes with size: treat these as "
                     f"rough until this size has 2 seeds.")
    return md_table(header, body, right=3) + "\n\n" + "\n".join(f"- {n}" for n in notes)


def plan_power_lines(rows: list[PowerRow], planned_seeds: int, min_gain: float, results: str,
                     models: list[str], targets: list[str], retrieval: set[str] = frozenset()) -> list[str]:
    """``make plan``'s section: per planned (model, target), what the planned seeds resolve and what MIN_GAIN
    needs, from the seed variance measured in ``results`` (rows of :func:`power_rows` on that tree);
    ``retrieval``: the planned targets that train nothing after phase 2."""
    by_key = {(r.model, r.target): r for r in rows}
    donors: dict[str, list[PowerRow]] = {}
    for r in rows:
        if r.source == "measured":
            donors.setdefault(r.target, []).append(r)
    lines = [f"Seeds and power (seed variance from {results}; MIN_GAIN={100 * min_gain:g} points, 80 % power, "
             f"two-sided 5 %; docs/study.md):"]
    n = planned_seeds
    for model in models:
        for target in targets:
            if target in retrieval:
                lines.append(f"  {model} / {target}: retrieval trains nothing after phase 2 (which runs once, seed "
                             f"1): every seed repeats the same computation, one is enough")
                continue
            r = by_key.get((model, target))
            sd, df, how = None, 0, ""
            if r is not None and r.sd is not None:
                sd, df = r.sd, r.df
                how = "measured" if r.source == "measured" else f"borrowed from {', '.join(r.borrowed_from)}"
            elif donors.get(target):
                ss = sum(d.sd ** 2 * d.df for d in donors[target])
                df = sum(d.df for d in donors[target])
                sd, how = math.sqrt(ss / df), f"borrowed from {', '.join(d.model for d in donors[target])}"
            if sd is None:
                lines.append(f"  {model} / {target}: no seed variance measured yet (no result with >= 2 seeds of "
                             f"this target): run a pilot with SEEDS=\"1 2\" first")
                continue
            resolvable = resolvable_gain(sd, 2 * n - 2, n, n) if n >= 2 else None
            needed = seeds_needed(min_gain, sd)
            lines.append(
                f"  {model} / {target}: seed SD {100 * sd:.2f} points ({how}, df {df}); "
                + (f"{n} seeds per arm resolve {100 * resolvable:.2f} points" if resolvable is not None
                   else "1 seed per arm resolves nothing (no variance within an arm)")
                + f"; {100 * min_gain:g} points needs {_needed(needed)} seeds per arm"
                + (" (planned: enough)" if needed is not None and n >= needed else f" (planned: {n})"))
    return lines


POWER_COLUMNS = ["model", "n_params", "target", "seeds", "n_baseline", "n_intermediate", "seed_sd", "df",
                 "sd_source", "borrowed_from", "resolvable_gain", "detectable_gain_80", "min_gain",
                 "seeds_needed_80", "n_excluded"]


def to_csv(rows: list[PowerRow], min_gain: float) -> str:
    """power.csv: the table in fractions (seeds_needed_80 empty when more than MAX_SEEDS or no variance)."""
    def num(x) -> str:
        return "" if x is None else f"{x:.12g}"

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(POWER_COLUMNS)
    for r in rows:
        w.writerow([r.model, r.n_params, r.target, " ".join(f"{a}:{n}" for a, n in r.seeds.items()), r.n_a, r.n_b,
                    num(r.sd), r.df if r.sd is not None else "", r.source, " ".join(r.borrowed_from),
                    num(r.resolvable), num(r.detectable), num(min_gain), "" if r.needed is None else r.needed,
                    r.excluded])
    return buf.getvalue()
