"""Seeds and power (xstilts.study.power): the t quantile and the noncentral-t power against tabulated values, the
three numbers against simulated experiments with a known seed variance, and the report / `make plan` sections on
constructed results trees. Deterministic (numpy default_rng with fixed seeds); a few seconds in all."""

import math
from pathlib import Path

import numpy as np
import pytest

from test_report import LARGE, SMALL, make_result, table_after
from xstilts.run.results import write_results
from xstilts.study import plan, power
from xstilts.study.report import build_report, collect, group_results, main as report_main


# ----------------------------------------------------------------------------- the distributions
@pytest.mark.parametrize("df, expected", [(1, 12.7062), (2, 4.3027), (3, 3.1824), (10, 2.2281), (30, 2.0423),
                                          (120, 1.9799)])
def test_t_quantile_matches_tables(df, expected):
    assert power.t_quantile(0.975, df) == pytest.approx(expected, abs=1e-4)
    assert power.t_quantile(0.025, df) == pytest.approx(-expected, abs=1e-4)
    assert power.t_cdf(expected, df) == pytest.approx(0.975, abs=1e-5)


@pytest.mark.parametrize("effect, n", [(0.5, 64), (0.8, 26), (1.0, 17)])
def test_seeds_needed_matches_cohens_tables(effect, n):
    """Two-sided 5 %, 80 % power, two-sample t test: the classic per-group sizes (Cohen 1988, Table 2.4.1)."""
    assert power.seeds_needed(effect, 1.0) == n
    assert power.t_test_power(effect, 1.0, n, n, 2 * n - 2) >= 0.8 > power.t_test_power(effect, 1.0, n - 1, n - 1,
                                                                                          2 * n - 4)


def test_t_test_power_known_value():
    assert power.t_test_power(0.5, 1.0, 64, 64, 126) == pytest.approx(0.8015, abs=5e-4)  # G*Power: 0.8015
    assert power.t_test_power(0.0, 1.0, 5, 5, 8) == pytest.approx(0.05, abs=1e-6)  # no effect: the level


# ----------------------------------------------------------------------------- simulation with a known variance
def _simulate(rng, n: int, delta: float, sigma: float, reps: int):
    """Per simulated experiment: the two arms' means and the pooled SD (df = 2n - 2)."""
    base = rng.normal(0.70, sigma, size=(reps, n))
    inter = rng.normal(0.70 + delta, sigma, size=(reps, n))
    ss = ((base - base.mean(1, keepdims=True)) ** 2).sum(1) + ((inter - inter.mean(1, keepdims=True)) ** 2).sum(1)
    return inter.mean(1) - base.mean(1), np.sqrt(ss / (2 * n - 2))


def test_required_seeds_give_the_promised_power_in_simulation():
    rng = np.random.default_rng(20)
    sigma, gain = 0.008, 0.005  # 0.8 points of seed SD, a 0.5-point gain
    n = power.seeds_needed(gain, sigma)
    z = 1.959964 + 0.841621
    assert n == pytest.approx(2 * (z * sigma / gain) ** 2, abs=2)  # the normal approximation, plus a seed or two
    reps = 6000
    crit = power.t_quantile(0.975, 2 * n - 2)
    for seeds, promised in ((n, power.t_test_power(gain, sigma, n, n, 2 * n - 2)),
                            (max(2, n // 2), power.t_test_power(gain, sigma, n // 2, n // 2, 2 * (n // 2) - 2))):
        diff, sd = _simulate(rng, seeds, gain, sigma, reps)
        t = diff / (sd * math.sqrt(2.0 / seeds))
        c = power.t_quantile(0.975, 2 * seeds - 2)
        empirical = float(np.mean(np.abs(t) > c))
        assert empirical == pytest.approx(promised, abs=4 * math.sqrt(promised * (1 - promised) / reps))
    assert crit > 1.96
    # with no gain the test rejects at its level
    diff, sd = _simulate(rng, n, 0.0, sigma, reps)
    assert float(np.mean(np.abs(diff / (sd * math.sqrt(2.0 / n))) > crit)) == pytest.approx(0.05, abs=0.012)


def test_resolvable_gain_is_a_95_percent_interval_in_simulation():
    rng = np.random.default_rng(21)
    sigma, delta, n, reps = 0.01, 0.003, 3, 8000
    diff, sd = _simulate(rng, n, delta, sigma, reps)
    half = np.array([power.resolvable_gain(s, 2 * n - 2, n, n) for s in sd[:1]])  # the formula, once
    assert half[0] == pytest.approx(power.t_quantile(0.975, 4) * sd[0] * math.sqrt(2 / 3))
    halves = power.t_quantile(0.975, 2 * n - 2) * sd * math.sqrt(2.0 / n)
    coverage = float(np.mean(np.abs(diff - delta) <= halves))
    assert coverage == pytest.approx(0.95, abs=0.01)


def test_detectable_gain_has_80_percent_power():
    for sigma, df, n in ((0.01, 2, 2), (0.004, 12, 4)):
        d = power.detectable_gain(sigma, df, n, n)
        assert power.t_test_power(d, sigma, n, n, df) == pytest.approx(0.8, abs=1e-6)
        assert d > power.resolvable_gain(sigma, df, n, n)  # 80 % power asks for more than a 95 % interval's width


# ----------------------------------------------------------------------------- the report and make plan
def _tree(root: Path, seeds_per_size: list[tuple[dict, int]], sigma: float, rng, *, target: str = "xnli") -> Path:
    """Per size, arms none / mnli with the given number of seeds; each seed's per-language values shifted by one
    N(0, sigma) draw (so the task average has seed SD sigma); mnli +2 points."""
    for model, n in seeds_per_size:
        for inter in (None, "mnli"):
            for seed in range(1, n + 1):
                shift = float(rng.normal(0.0, sigma)) + (0.02 if inter else 0.0)
                vals = {"en": 0.80 + shift, "de": 0.70 + shift, "ar": 0.60 + shift}
                write_results(root / model["name"] / (inter or "none") / target / f"seed{seed}" / "results.json",
                              make_result(model, inter, target, seed, vals))
    return root


def test_power_rows_recover_a_known_seed_variance(tmp_path):
    rng = np.random.default_rng(22)
    sigma = 0.01
    root = _tree(tmp_path / "r", [(SMALL, 40)], sigma, rng)
    rows = power.power_rows(group_results(collect(root)), 0.005)
    (row,) = rows
    assert row.source == "measured" and row.df == 78 and row.seeds == {"none": 40, "mnli": 40}
    assert row.sd == pytest.approx(sigma, rel=0.25)  # SE of s at df 78 is about 8 %
    assert row.resolvable == pytest.approx(power.t_quantile(0.975, 78) * row.sd * math.sqrt(2 / 40))
    assert row.needed == power.seeds_needed(0.005, row.sd)
    assert power.t_test_power(row.detectable, row.sd, 40, 40, 78) == pytest.approx(0.8, abs=1e-6)


def _write(root, model, seeds, values_by_seed, inter=None, target="xnli"):
    for seed, v in zip(seeds, values_by_seed):
        write_results(root / model["name"] / (inter or "none") / target / f"seed{seed}" / "results.json",
                      make_result(model, inter, target, seed, {"en": v + 0.1, "de": v, "ar": v - 0.1}))


def test_pooled_sd_borrowing_and_one_seed(tmp_path):
    root = tmp_path / "r"
    # small: 3 seeds per arm, averages known -> pooled SS = 2 * 0.0002 = 0.0004 over df 4: SD 0.01
    _write(root, SMALL, [1, 2, 3], [0.50, 0.51, 0.52])
    _write(root, SMALL, [1, 2, 3], [0.55, 0.56, 0.57], inter="mnli")
    _write(root, LARGE, [1], [0.60])  # one seed per arm: borrows from small
    _write(root, LARGE, [1], [0.62], inter="mnli")
    _write(root, SMALL, [1], [0.3], target="pawsx")  # one seed, no other size: nothing measured
    _write(root, SMALL, [1], [0.4], inter="mnli", target="pawsx")
    rows = {(r.model, r.target): r for r in power.power_rows(group_results(collect(root)), 0.005)}
    small, large, pawsx = rows[("tiny-2l-h64", "xnli")], rows[("tiny-4l-h128", "xnli")], rows[("tiny-2l-h64", "pawsx")]
    assert small.sd == pytest.approx(0.01) and small.df == 4 and small.source == "measured"
    assert small.resolvable == pytest.approx(2.776445 * 0.01 * math.sqrt(2 / 3), rel=1e-5)
    assert large.source == "borrowed" and large.borrowed_from == ["tiny-2l-h64"] and large.sd == pytest.approx(0.01)
    assert large.resolvable == pytest.approx(power.t_quantile(0.975, 4) * 0.01 * math.sqrt(2.0))
    assert pawsx.source == "none" and pawsx.sd is None and pawsx.needed is None
    md = Path(build_report(root, tmp_path / "out", published=None)["report_md"]).read_text(encoding="utf-8")
    table = {(r["model"], r["target"]): r for r in table_after(md, "## Seeds and power")}
    assert table[("tiny-2l-h64", "xnli")]["seed SD (points)"] == "1.00"
    assert table[("tiny-2l-h64", "xnli")]["resolvable gain now (95 %, two-sided)"] == "2.27"
    assert table[("tiny-4l-h128", "xnli")]["seed SD (points)"] == f"1.00 {power.BORROWED_MARK}"
    assert table[("tiny-2l-h64", "pawsx")]["seed SD (points)"] == "n/a (1 seed per arm)"
    n = power.seeds_needed(0.005, 0.01)
    assert table[("tiny-2l-h64", "xnli")]["seeds per arm for 0.5 points (80 % power)"] == str(n)
    assert f"{power.BORROWED_MARK} borrowed" in md and "tiny-4l-h128 / xnli from tiny-2l-h64" in md
    # MIN_GAIN changes the seeds needed; the CSV has the same numbers as fractions
    paths = build_report(root, tmp_path / "out2", published=None, min_gain=1.0)
    md2 = Path(paths["report_md"]).read_text(encoding="utf-8")
    table2 = {(r["model"], r["target"]): r for r in table_after(md2, "## Seeds and power")}
    assert table2[("tiny-2l-h64", "xnli")]["seeds per arm for 1 points (80 % power)"] == \
        str(power.seeds_needed(0.01, 0.01))
    csv_text = Path(paths["power_csv"]).read_text(encoding="utf-8").splitlines()
    assert csv_text[0].startswith("model,n_params,target,seeds,")
    assert any(l.startswith("tiny-2l-h64,") and ",measured," in l and ",0.01," in l for l in csv_text)


def test_min_gain_must_be_positive(tmp_path, capsys):
    root = tmp_path / "r"
    _write(root, SMALL, [1, 2], [0.5, 0.51])
    assert report_main(["--results_dir", str(root), "--min_gain", "0"]) == 2
    assert "--min_gain 0.0" in capsys.readouterr().err
    assert plan.main(["plan", "--models", "tiny-2l-h64", "--intermediate", "none", "--targets", "xnli",
                      "--min_gain", "-1", "--preset", "tiny", "--results", str(root)]) == 2
    assert "--min_gain -1.0" in capsys.readouterr().err


def test_make_plan_prices_seeds_from_the_results_tree(tmp_path, capsys):
    root = tmp_path / "r"
    _write(root, SMALL, [1, 2, 3], [0.50, 0.51, 0.52])
    _write(root, SMALL, [1, 2, 3], [0.55, 0.56, 0.57], inter="mnli")
    args = ["plan", "--models", "tiny-2l-h64 tiny-4l-h128", "--intermediate", "none mnli", "--targets",
            "xnli pawsx tatoeba", "--seeds", "1 2 3 4", "--preset", "tiny", "--results", str(root), "--min_gain", "0.5"]
    assert plan.main(args) == 0
    out = capsys.readouterr().out
    n = power.seeds_needed(0.005, 0.01)
    four = power.resolvable_gain(0.01, 6, 4, 4)
    assert (f"tiny-2l-h64 / xnli: seed SD 1.00 points (measured, df 4); 4 seeds per arm resolve "
            f"{100 * four:.2f} points; 0.5 points needs {n} seeds per arm (planned: 4)") in out
    assert "tiny-4l-h128 / xnli: seed SD 1.00 points (borrowed from tiny-2l-h64, df 4)" in out
    assert "tiny-2l-h64 / pawsx: no seed variance measured yet" in out
    assert "tiny-4l-h128 / tatoeba: retrieval trains nothing after phase 2" in out
    # without a results tree: says what to do
    assert plan.main(args[:-4] + ["--results", str(tmp_path / "none"), "--min_gain", "0.5"]) == 0
    assert "Seeds and power: no seed variance measured yet" in capsys.readouterr().out
