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


def equivalent_units(samples: dict, margin: float, metric: pm.CountMetric = MAE, alpha: float = 0.05) -> Verdict:
    """A sameness claim over several cells ``samples`` {cell: (zeros, a, b)}: in each, two one-sided
    paired t-tests (TOST) that a and b differ by less than ``margin``, and a one-sided test that they
    differ by more; each family corrected with Holm. ``not held`` when some cell differs by more than
    the margin after correction, ``held`` when every cell is equivalent, ``partly`` when some are,
    else ``inconclusive``. Effect and 90% interval: TOST on every cell's units together."""
    parts = [verdicts.equivalent(pm.pair(metric, s), margin, alpha) for s in samples.values()]
    same = multipletests([p.p_value for p in parts], alpha=alpha, method="holm")[0]
    beyond = multipletests([_beyond_p(p, margin) for p in parts], alpha=alpha, method="holm")[0]
    k, m = int(sum(same)), len(parts)
    verdict = (verdicts.NOT_HELD if any(beyond) else verdicts.HELD if k == m else verdicts.PARTLY if k
               else verdicts.INCONCLUSIVE)
    overall = verdicts.equivalent(pm.pair(metric, samples, "pooled"), margin, alpha)
    test = (f"{k} of {m} cells equivalent within ±{margin:g} after Holm's correction of {m} TOSTs "
            f"({int(sum(beyond))} differ by more after Holm); effect and interval: "
            + overall.test.replace("test responses", UNIT_WORDS))
    return Verdict(verdict, overall.effect, overall.ci_low, overall.ci_high, overall.n, test, overall.p_value,
                   n_text=f"{overall.n} units in {m} cells", held_each=tuple(bool(x) for x in same))


def _beyond_p(v: Verdict, margin: float, alpha: float = 0.05) -> float:
    """One-sided p-value that |difference| exceeds ``margin``, from a TOST verdict's (1 - 2 alpha) interval."""
    if v.ci_high == v.ci_low:
        return 0.0 if abs(v.effect) > margin else 1.0
    df = max(v.n - 1, 1)
    se = (v.ci_high - v.ci_low) / (2 * stats.t.ppf(1 - alpha, df))
    return float(stats.t.sf((abs(v.effect) - margin) / se, df))


def by_task(correct_a: np.ndarray, correct_b: np.ndarray, task: np.ndarray, names) -> dict:
    """{task name: (ones, a's 0/1 (k_t,), b's (k_t,))}: two models' correctness on the same test items,
    split by ``task`` (k,) indices into ``names``."""
    return {n: (np.ones(int((task == j).sum())), np.asarray(correct_a)[task == j], np.asarray(correct_b)[task == j])
            for j, n in enumerate(names) if (task == j).any()}


def compare_accuracy(samples: dict, direction: str, n_resamples: int, seed: int) -> Verdict:
    """A beats B in accuracy (all items: tasks pooled) on ``samples`` {task: (ones, a, b)}: paired
    bootstrap within tasks, McNemar beside it."""
    a = np.concatenate([s[1] for s in samples.values()])
    b = np.concatenate([s[2] for s in samples.values()])
    return verdicts.compare(pm.pair(pm.ACCURACY, samples, "pooled"), direction, n_resamples, seed, correct=(a, b))


def compare_many(comparisons: dict, overall: str, direction: str, n_resamples: int, seed: int) -> Verdict:
    """Several accuracy comparisons {name: samples} behind one claim, Holm over them; the effect and
    interval: the ``overall`` one's."""
    parts = {k: compare_accuracy(s, direction, n_resamples, seed) for k, s in comparisons.items()}
    return verdicts.compare_all(list(parts.values()), parts[overall])


def close_to_accuracy(samples: dict, margin: float, n_resamples: int, seed: int) -> Verdict:
    """"A comes close to B" as one-sided non-inferiority: A's accuracy minus B's has its 95% interval
    at or above ``-margin`` (paired bootstrap within tasks), McNemar beside it."""
    a = np.concatenate([s[1] for s in samples.values()])
    b = np.concatenate([s[2] for s in samples.values()])
    v = verdicts.difference_band(pm.pair(pm.ACCURACY, samples, "pooled"), at_least=-margin,
                                 n_resamples=n_resamples, seed=seed)
    return replace(v, test=f"{v.test}; McNemar exact p = {verdicts.mcnemar_p(a, b):.3g}")


def no_worse_units(a: np.ndarray, b: np.ndarray, margin: float, n_resamples: int, seed: int, n_text: str) -> Verdict:
    """A's mean per-unit error at most ``margin`` above B's: the 95% paired bootstrap interval of the
    difference at or below ``margin``."""
    v = verdicts.difference_band(pm.pair(MAE, (np.zeros(len(a)), a, b)), at_most=margin, n_resamples=n_resamples,
                                 seed=seed)
    return _in_units(v, n_text)
