"""Verdicts that can fail: the statistics behind a claim (issue 24, section 1).

Each helper returns a :class:`Verdict`: the verdict, the effect with its 95% interval, the number
of test responses it rests on and the test, so a claims row can say how sure it is.

* :func:`compare`: "A beats B" on the same test responses. A paired bootstrap resamples responses
  (within strata, e.g. tasks, when given) and recomputes the claim's own metric for A and B on each
  resample; the effect is metric(A) - metric(B) on all responses and its percentile interval comes
  from the resamples. ``held`` when the interval excludes zero in the claimed direction, ``not held``
  when it excludes the claimed direction, else ``inconclusive`` with the smallest effect the data
  could have detected (80% power, two-sided 5%: 2.8 standard errors). For accuracies
  (``correct_a`` / ``correct_b``) McNemar's exact test (statsmodels) is reported beside it.
* :func:`compare_all`: one claim over several sets or sizes: each comparison's bootstrap p-value,
  corrected together with Holm's method (statsmodels), ``held`` when every one holds after
  correction, ``partly`` when some do, ``not held`` when one goes the other way significantly, else
  ``inconclusive``.
* :func:`equivalent`: a sameness claim ("does not differ", "small forgetting"): two one-sided tests
  (statsmodels' ``ttost_paired``) on per-response scores against a margin the profile states.
  ``held`` when equivalence is shown, ``not held`` when the whole interval lies outside the
  margin, else ``inconclusive``. A non-significant difference is never ``held``.
* :func:`at_least` / :func:`at_most`: one-sided closeness to a paper's figure (a saving "at
  least", a gap "at most"), judged on the interval's far end, not on the point.
* :func:`reachable`: a band the settings cannot reach is ``not tested`` with the reason, before
  any run.

The helpers only judge; where a figure follows from settings or arithmetic the claim's basis is
:data:`BY_CONSTRUCTION` and it is shown but never counted as evidence.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

HELD, NOT_HELD, PARTLY, INCONCLUSIVE, NOT_TESTED = "held", "not held", "partly", "inconclusive", "not tested"
MEASURED, BY_CONSTRUCTION = "measured", "by construction"
GREATER, LESS = "greater", "less"
N_RESAMPLES = 2000
_MDE_Z = stats.norm.ppf(0.975) + stats.norm.ppf(0.80)   # 1.96 + 0.84: 80% power at two-sided 5%


@dataclass(frozen=True)
class Verdict:
    """A verdict with what it rests on: ``effect`` and its 95% interval [``ci_low``, ``ci_high``],
    ``n`` test responses, the ``test`` in words, its p-value and, for ``inconclusive``, the smallest
    effect the data could have detected."""

    verdict: str
    effect: float
    ci_low: float
    ci_high: float
    n: int
    test: str
    p_value: float | None = None
    detectable: float | None = None


def _resample_indices(strata: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One bootstrap resample of row indices, drawn with replacement within each stratum."""
    parts = []
    for s in np.unique(strata):
        rows = np.flatnonzero(strata == s)
        parts.append(rows[rng.integers(0, len(rows), len(rows))])
    return np.concatenate(parts)


def paired_bootstrap(metric: Callable, y_true, pred_a, pred_b, strata=None, n_resamples: int = N_RESAMPLES,
                     seed: int = 0) -> tuple[float, np.ndarray]:
    """(metric(y, a) - metric(y, b) on every response, the same difference on ``n_resamples`` paired
    resamples of the responses (``n_resamples``,)). ``y_true``, ``pred_a``, ``pred_b``: (n, ...)
    arrays aligned by response; ``strata`` (n,): resample within each (e.g. a task), None: one."""
    y, a, b = np.asarray(y_true), np.asarray(pred_a), np.asarray(pred_b)
    if not len(y) == len(a) == len(b):
        raise ValueError(f"paired predictions must cover the same responses: {len(y)}, {len(a)}, {len(b)} rows")
    if len(y) == 0:
        raise ValueError("a paired comparison needs at least one response")
    strata = np.zeros(len(y), dtype=int) if strata is None else np.asarray(strata)
    if len(strata) != len(y):
        raise ValueError(f"strata has {len(strata)} rows for {len(y)} responses")
    rng = np.random.default_rng(seed)
    effect = float(metric(y, a) - metric(y, b))
    diffs = np.empty(n_resamples)
    for i in range(n_resamples):
        idx = _resample_indices(strata, rng)
        diffs[i] = metric(y[idx], a[idx]) - metric(y[idx], b[idx])
    return effect, diffs


def _bootstrap_p(diffs: np.ndarray) -> float:
    """Two-sided bootstrap p-value of a zero difference: twice the smaller tail share (at most 1)."""
    tail = min(np.mean(diffs <= 0), np.mean(diffs >= 0))
    return float(min(1.0, 2 * tail))


def mcnemar_p(correct_a, correct_b) -> float:
    """McNemar's exact test (statsmodels) on two models' per-response correctness (n,) bools."""
    from statsmodels.stats.contingency_tables import mcnemar

    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    table = [[int(np.sum(a & b)), int(np.sum(a & ~b))], [int(np.sum(~a & b)), int(np.sum(~a & ~b))]]
    return float(mcnemar(table, exact=True).pvalue)


def _directional(effect: float, lo: float, hi: float, direction: str) -> str:
    if direction not in (GREATER, LESS):
        raise ValueError(f"direction must be {GREATER!r} or {LESS!r}, got {direction!r}")
    sign = 1 if direction == GREATER else -1
    lo_s, hi_s = sorted((sign * lo, sign * hi))
    if lo_s > 0:
        return HELD
    if hi_s < 0:
        return NOT_HELD
    return INCONCLUSIVE


def compare(metric: Callable, y_true, pred_a, pred_b, direction: str = GREATER, strata=None,
            n_resamples: int = N_RESAMPLES, seed: int = 0, metric_name: str = "metric",
            correct: tuple | None = None) -> Verdict:
    """Whether A's ``metric`` is ``direction`` (greater or less) than B's on the same responses, by a
    paired bootstrap (see the module's docstring); ``correct`` = (correct_a, correct_b) adds McNemar."""
    effect, diffs = paired_bootstrap(metric, y_true, pred_a, pred_b, strata, n_resamples, seed)
    lo, hi = (float(x) for x in np.percentile(diffs, [2.5, 97.5]))
    verdict = _directional(effect, lo, hi, direction)
    test = f"paired bootstrap of {metric_name} difference ({n_resamples} resamples, seed {seed}" + \
        (", stratified" if strata is not None else "") + ")"
    p = _bootstrap_p(diffs)
    if correct is not None:
        p = mcnemar_p(*correct)
        test += f"; McNemar exact p = {p:.3g}"
    detectable = float(_MDE_Z * (hi - lo) / (2 * stats.norm.ppf(0.975))) if verdict == INCONCLUSIVE else None
    return Verdict(verdict, effect, lo, hi, len(np.asarray(y_true)), test, p, detectable)


def compare_all(verdicts: Sequence[Verdict], alpha: float = 0.05) -> tuple[str, list[bool], str]:
    """One claim over several comparisons (each from :func:`compare`): (verdict, held after Holm's
    correction per comparison, a note "k of m held after Holm"). A comparison holds after correction
    when Holm rejects its null and its verdict was ``held``."""
    from statsmodels.stats.multitest import multipletests

    if not verdicts:
        raise ValueError("compare_all needs at least one comparison")
    p = [1.0 if v.p_value is None else v.p_value for v in verdicts]
    rejected = multipletests(p, alpha=alpha, method="holm")[0]
    held = [bool(r and v.verdict == HELD) for r, v in zip(rejected, verdicts)]
    against = [bool(r and v.verdict == NOT_HELD) for r, v in zip(rejected, verdicts)]
    k, m = sum(held), len(verdicts)
    if any(against):
        verdict = NOT_HELD
    elif k == m:
        verdict = HELD
    elif k > 0:
        verdict = PARTLY
    else:
        verdict = INCONCLUSIVE
    return verdict, held, f"{k} of {m} held after Holm's correction"


def equivalent(scores_a, scores_b, margin: float, alpha: float = 0.05) -> Verdict:
    """Whether A and B do not differ by more than ``margin``, from paired per-response scores (n,)
    (e.g. correctness as 0/1), by two one-sided paired t-tests (statsmodels' ``ttost_paired``); the
    interval is the 90% one that TOST at 5% corresponds to."""
    from statsmodels.stats.weightstats import ttost_paired

    if margin <= 0:
        raise ValueError(f"an equivalence margin must be positive, got {margin}")
    a, b = np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float)
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"equivalence needs paired scores of at least 2 responses, got {len(a)} and {len(b)}")
    d = a - b
    effect = float(d.mean())
    se = float(d.std(ddof=1) / np.sqrt(len(d)))
    if se == 0:   # every pair differs by the same amount: the difference is known exactly
        lo = hi = effect
        p = 0.0 if abs(effect) < margin else 1.0
    else:
        half = float(stats.t.ppf(1 - alpha, len(d) - 1) * se)
        lo, hi = effect - half, effect + half
        p = float(ttost_paired(a, b, -margin, margin)[0])
    if p < alpha:
        verdict = HELD
    elif lo > margin or hi < -margin:
        verdict = NOT_HELD
    else:
        verdict = INCONCLUSIVE
    return Verdict(verdict, effect, lo, hi, len(d), f"TOST (two one-sided paired t-tests), margin {margin:g}", p)


def at_least(effect: float, ci_low: float, ci_high: float, threshold: float, n: int, test: str) -> Verdict:
    """A one-sided figure "at least ``threshold``": ``held`` when the whole interval is at or above it,
    ``not held`` when the whole interval is below, else ``inconclusive``."""
    verdict = HELD if ci_low >= threshold else NOT_HELD if ci_high < threshold else INCONCLUSIVE
    return Verdict(verdict, effect, ci_low, ci_high, n, test)


def at_most(effect: float, ci_low: float, ci_high: float, threshold: float, n: int, test: str) -> Verdict:
    """A one-sided figure "at most ``threshold``" (e.g. a gap): the mirror of :func:`at_least`."""
    verdict = HELD if ci_high <= threshold else NOT_HELD if ci_low > threshold else INCONCLUSIVE
    return Verdict(verdict, effect, ci_low, ci_high, n, test)


def reachable(needed: float, ceiling: float, what: str) -> str | None:
    """None when a claim's band ``needed`` can be reached under a ``ceiling`` the settings impose; else
    the reason it is ``not tested`` (e.g. a 40x saving against an item ratio that caps it at 9.7x)."""
    if needed > ceiling:
        return f"not reachable here: the claim needs {needed:g} but {what} caps it at {ceiling:g}"
    return None
