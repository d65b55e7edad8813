"""The statistics behind the IRT chapter's claims, on the framework of :mod:`scoring_lab.verdicts`.

Two kinds of unit:

* **estimator errors** (Figs. 3-4, appendix C.1, the population's size) are paired over the held-out
  merged models and the random subsets drawn for them: one unit is (model, repetition), its score an
  absolute error, a distance or a cosine; a claim over several subset sizes is stratified by size and
  its comparisons corrected together (Holm);
* **accuracies of merged models** (the searches' chosen models against each other, the standard merges,
  the endpoints) are paired over the test items (responses): each model's 0/1 correctness on the same
  items, resampled within tasks, with McNemar's test beside the bootstrap.

When a g- estimator's chosen c is 0 it *is* the plain one (gp-IRT is p-IRT, gmp-IRT is mp-IRT):
:func:`distinct_pairs` drops such a comparison instead of counting it twice.

Shapes: u units, k test items.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from .. import paired_metrics as pm
from .. import verdicts
from ..verdicts import Verdict
from .estimators import GMP_IRT, GP_IRT, MP_IRT, P_IRT

PLAIN = {GP_IRT: P_IRT, GMP_IRT: MP_IRT}
UNIT_WORDS = "(held-out model, subset) units"
# A per-unit score as a mean (the bootstrap's metric), named for the tests' text.
MAE = pm.CountMetric("mean absolute error", pm.MEAN.counts, pm.MEAN.value)
MEAN_DISTANCE = pm.CountMetric("mean distance to the full-data ability", pm.MEAN.counts, pm.MEAN.value)
MEAN_COSINE = pm.CountMetric("mean cosine with the full-data ability", pm.MEAN.counts, pm.MEAN.value)


def canonical(estimator: str, chosen: dict[str, float]) -> str:
    """The estimator a label stands for: a g- estimator whose chosen c is 0 is the plain one."""
    return PLAIN[estimator] if estimator in PLAIN and chosen.get(estimator) == 0 else estimator


def distinct_pairs(pairs, chosen: dict[str, float]) -> tuple[list[tuple[str, str]], list[str]]:
    """(the comparisons (a, b) that differ, in order, each named by the estimators they stand for; a
    sentence per comparison dropped because it coincides with another or compares an estimator with
    itself)."""
    out, dropped = [], []
    for a, b in pairs:
        pa, pb = canonical(a, chosen), canonical(b, chosen)
        if pa == pb or (pa, pb) in out:
            dropped.append(f"{a} against {b} is {pa} against {pb} here (c = 0), not counted again")
        else:
            out.append((pa, pb))
    return out, dropped


def unit_scores(table: pd.DataFrame, a: str, b: str, value: str, by: str = "subset_size") -> dict:
    """{``by`` value: (zeros (u,), a's scores (u,), b's scores (u,))}: the ``value`` of estimators (or
    extractors) ``a`` and ``b`` on the same (repetition, model) units, in the ``estimator`` column,
    units where either is NaN left out."""
    t = table[table["estimator"].isin([a, b])]
    wide = t.pivot_table(index=[by, "repetition", "model"], columns="estimator", values=value, dropna=False)
    wide = wide.dropna(subset=[a, b])
    return {k: (np.zeros(len(g)), g[a].to_numpy(float), g[b].to_numpy(float)) for k, g in wide.groupby(level=0)}


def _in_units(v: Verdict, n_text: str) -> Verdict:
    """``v`` with its test and n in units, not test responses."""
    test = v.test.replace("test responses", UNIT_WORDS) if "test responses" in v.test else \
        f"{v.test}; paired over {UNIT_WORDS}"
    return replace(v, test=test, n_text=n_text)


def compare_units(table: pd.DataFrame, pairs, value: str, direction: str, metric: pm.CountMetric,
                  n_resamples: int, seed: int) -> Verdict:
    """Each comparison (a, b) of ``pairs`` at every subset size: a paired bootstrap of the ``metric``
    over units (:func:`unit_scores`), ``direction`` the claim's (LESS: a's error is lower); Holm over
    all of them; the effect and interval: every (pair, size) stratum together, their plain mean."""
    parts, strata = [], {}
    for a, b in pairs:
        for size, sample in unit_scores(table, a, b, value).items():
            parts.append(verdicts.compare(pm.pair(metric, sample), direction, n_resamples, seed))
            strata[(a, b, size)] = sample
    overall = verdicts.compare(pm.pair(metric, strata, "mean"), direction, n_resamples, seed)
    v = verdicts.compare_all(parts, overall)
    sizes = sorted({k[2] for k in strata})
    units = len(next(iter(strata.values()))[0])
    n_text = (f"{units} units per size ({table['model'].nunique()} held-out models x "
              f"{table['repetition'].nunique()} subsets) at {len(sizes)} size(s), {len(parts)} comparisons")
    return _in_units(v, n_text)


def equivalent_units(samples: dict, margin, metric: pm.CountMetric = MAE, alpha: float = 0.05) -> Verdict:
    """A sameness claim over several cells ``samples`` {cell: (zeros, a, b)}: in each, two one-sided
    paired t-tests (TOST) that a and b differ by less than the cell's margin (``margin``: one for all, or
    {cell: margin}), and a one-sided test that they differ by more; each family corrected with Holm. ``not
    held`` when some cell differs by more than its margin after correction, ``held`` when every cell is
    equivalent, ``partly`` when some are, else ``inconclusive``. Effect and 90% interval: TOST on every
    cell's units together, against the cells' mean margin."""
    margins = {c: float(margin[c] if isinstance(margin, dict) else margin) for c in samples}
    parts = [verdicts.equivalent(pm.pair(metric, s), margins[c], alpha) for c, s in samples.items()]
    same = multipletests([p.p_value for p in parts], alpha=alpha, method="holm")[0]
    beyond = multipletests([_beyond_p(p, margins[c]) for p, c in zip(parts, samples)], alpha=alpha,
                           method="holm")[0]
    k, m = int(sum(same)), len(parts)
    verdict = (verdicts.NOT_HELD if any(beyond) else verdicts.HELD if k == m else verdicts.PARTLY if k
               else verdicts.INCONCLUSIVE)
    mean_margin = float(np.mean(list(margins.values())))
    overall = verdicts.equivalent(pm.pair(metric, samples, "pooled"), mean_margin, alpha)
    within = f"±{mean_margin:g}" if len(set(margins.values())) == 1 else \
        f"their margins (±{min(margins.values()):.3f} to ±{max(margins.values()):.3f})"
    test = (f"{k} of {m} cells equivalent within {within} after Holm's correction of {m} TOSTs "
            f"({int(sum(beyond))} differ by more after Holm); effect and interval: "
            + overall.test.replace("test responses", UNIT_WORDS))
    return Verdict(verdict, overall.effect, overall.ci_low, overall.ci_high, overall.n, test, overall.p_value,
                   n_text=f"{overall.n} units in {m} cells", held_each=tuple(bool(x) for x in same))


def no_worse_units(samples: dict, margins: dict, alpha: float = 0.05) -> Verdict:
    """A non-inferiority claim over several cells ``samples`` {cell: (zeros, a, b)}, ``a`` the per-unit error
    of the claimed alternative (lower is better): in each cell, a one-sided paired t-test (scipy) that a's mean
    exceeds b's by less than the cell's margin (``margins`` {cell: margin}), and one that it exceeds it by
    more; each family corrected with Holm. ``held`` when every cell is no worse, ``not held`` when some cell
    is worse by more than its margin, ``partly`` when some cells are no worse, else ``inconclusive``. Effect
    and 90% interval (the two one-sided 5% bounds): every cell's units together."""
    diffs = {c: np.asarray(s[1], dtype=float) - np.asarray(s[2], dtype=float) for c, s in samples.items()}
    below = [stats.ttest_1samp(d - margins[c], 0.0, alternative="less").pvalue if d.std() else
             float(d.mean() >= margins[c]) for c, d in diffs.items()]
    above = [stats.ttest_1samp(d - margins[c], 0.0, alternative="greater").pvalue if d.std() else
             float(d.mean() <= margins[c]) for c, d in diffs.items()]
    ok = multipletests(below, alpha=alpha, method="holm")[0]
    worse = multipletests(above, alpha=alpha, method="holm")[0]
    k, m = int(sum(ok)), len(diffs)
    verdict = (verdicts.NOT_HELD if any(worse) else verdicts.HELD if k == m else verdicts.PARTLY if k
               else verdicts.INCONCLUSIVE)
    d = np.concatenate(list(diffs.values()))
    half = float(stats.t.ppf(1 - alpha, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    low, high = min(margins.values()), max(margins.values())
    test = (f"{k} of {m} cells no worse than their margins (±{low:.3f} to ±{high:.3f}) after Holm's correction of "
            f"{m} one-sided paired t-tests ({int(sum(worse))} worse by more after Holm); effect and 90% interval: "
            f"the mean difference over every cell's {UNIT_WORDS}")
    return Verdict(verdict, float(d.mean()), float(d.mean() - half), float(d.mean() + half), len(d), test,
                   n_text=f"{len(d)} units in {m} cells", held_each=tuple(bool(x) for x in ok))


def _beyond_p(v: Verdict, margin: float, alpha: float = 0.05) -> float:
    """One-sided p-value that |difference| exceeds ``margin``, from a TOST verdict's (1 - 2 alpha) interval."""
    if v.ci_high == v.ci_low:
        return 0.0 if abs(v.effect) > margin else 1.0
    df = max(v.n - 1, 1)
    se = (v.ci_high - v.ci_low) / (2 * stats.t.ppf(1 - alpha, df))
    return float(stats.t.sf((abs(v.effect) - margin) / se, df))


def _split(correct, keep: np.ndarray):
    """One model's 0/1 (k,) on ``keep``, or each replicate's of a list of them (pooled by :func:`paired_metrics.pair`)."""
    if isinstance(correct, (list, tuple)):
        return [np.asarray(c)[keep] for c in correct]
    return np.asarray(correct)[keep]


def by_task(correct_a, correct_b, task: np.ndarray, names) -> dict:
    """{task name: (ones, a's 0/1 (k_t,), b's (k_t,))}: two models' correctness on the same test items,
    split by ``task`` (k,) indices into ``names``; a model given as a list of (k,), one per replicate (a
    search's seeds and subsets), keeps the list, and the comparison pools the replicates per item."""
    return {n: (np.ones(int((task == j).sum())), _split(correct_a, task == j), _split(correct_b, task == j))
            for j, n in enumerate(names) if (task == j).any()}


def _mean_correct(samples: dict, side: int) -> np.ndarray:
    """(k,) one side's correctness over every task's items, its replicates averaged per item."""
    parts = [s[side] for s in samples.values()]
    return np.concatenate([np.mean(p, axis=0) if isinstance(p, list) else p for p in parts])


def compare_accuracy(samples: dict, direction: str, n_resamples: int, seed: int) -> Verdict:
    """A beats B in accuracy (all items: tasks pooled) on ``samples`` {task: (ones, a, b)}: paired
    bootstrap within tasks (replicates pooled per item), McNemar beside it when each side is one model."""
    a, b = _mean_correct(samples, 1), _mean_correct(samples, 2)
    single = np.isin(a, (0, 1)).all() and np.isin(b, (0, 1)).all()
    return verdicts.compare(pm.pair(pm.ACCURACY, samples, "pooled"), direction, n_resamples, seed,
                            correct=(a, b) if single else None)


def compare_many(comparisons: dict, overall: str, direction: str, n_resamples: int, seed: int) -> Verdict:
    """Several accuracy comparisons {name: samples} behind one claim, Holm over them; the effect and
    interval: the ``overall`` one's."""
    parts = {k: compare_accuracy(s, direction, n_resamples, seed) for k, s in comparisons.items()}
    return verdicts.compare_all(list(parts.values()), parts[overall])


def close_to_accuracy(samples: dict, margin: float, n_resamples: int, seed: int) -> Verdict:
    """"A comes close to B" as one-sided non-inferiority: A's accuracy minus B's has its 95% interval
    at or above ``-margin`` (paired bootstrap within tasks), McNemar beside it."""
    a, b = _mean_correct(samples, 1), _mean_correct(samples, 2)
    v = verdicts.difference_band(pm.pair(pm.ACCURACY, samples, "pooled"), at_least=-margin,
                                 n_resamples=n_resamples, seed=seed)
    if not (np.isin(a, (0, 1)).all() and np.isin(b, (0, 1)).all()):
        return v
    return replace(v, test=f"{v.test}; McNemar exact p = {verdicts.mcnemar_p(a, b):.3g}")
