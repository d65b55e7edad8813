"""Verdicts that can fail: the statistics behind a claim (issue 24, section 1).

Each helper returns a :class:`Verdict`: the verdict, the effect with its 95% interval, the number of
test responses it rests on and the test, so a claims row (:func:`scoring_lab.claims.judged`) can say
how sure it is. Comparisons take a :class:`~scoring_lab.paired_metrics.Paired`: two models' predictions
on the same test responses, in strata (tasks, sets), seeds pooled.

* :func:`compare`: "A beats B". A paired bootstrap resamples responses (within strata) and
  recomputes the claim's own metric for A and B on each resample; the effect is figure(A) - figure(B)
  on all responses and its percentile interval comes from the resamples. ``held`` when the interval
  excludes zero in the claimed direction, ``not held`` when it excludes the claimed direction, else
  ``inconclusive`` with the smallest effect the data could have detected (80% power, two-sided 5%:
  2.8 standard errors). For accuracies McNemar's exact test (statsmodels) is reported beside it.
* :func:`compare_all`: one claim over several sets or sizes, the comparisons' bootstrap p-values
  corrected together with Holm's method (statsmodels): ``held`` when every one holds after
  correction, ``partly`` when some do, ``not held`` when one goes the other way significantly, else
  ``inconclusive``.
* :func:`equivalent`: a sameness claim ("does not differ", "small forgetting"): two one-sided tests
  against a margin the profile states (statsmodels' ``ttost_paired`` for per-response scores, the
  bootstrap's 90% interval for F1 and kappa). A non-significant difference is never ``held``.
* :func:`band`, :func:`difference_band`, :func:`figure_band`: closeness to a paper's figure, one-sided
  where the claim is (a saving "at least", a gap "at most"), judged on the interval, not the point.
* :func:`reachable`: a band the settings cannot reach is ``not tested`` with the reason, before any run.

The helpers only judge; where a figure follows from settings or arithmetic the claim's basis is
:data:`BY_CONSTRUCTION` and it is shown but never counted as evidence.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .paired_metrics import Paired

HELD, NOT_HELD, PARTLY, INCONCLUSIVE, NOT_TESTED = "held", "not held", "partly", "inconclusive", "not tested"
MEASURED, BY_CONSTRUCTION = "measured", "by construction"
GREATER, LESS = "greater", "less"
N_RESAMPLES = 2000
_MDE_Z = stats.norm.ppf(0.975) + stats.norm.ppf(0.80)   # 1.96 + 0.84: 80% power at two-sided 5%


@dataclass(frozen=True)
class Verdict:
    """A verdict with what it rests on: ``effect`` and its 95% interval [``ci_low``, ``ci_high``],
    ``n`` test responses (``n_text``: the same in words, with seeds), the ``test`` in words, its p-value
    and, for ``inconclusive``, the smallest effect the data could have detected; after Holm
    (:func:`compare_all`), ``held_each`` says which comparisons held and ``against_each`` which went
    significantly the other way."""

    verdict: str
    effect: float
    ci_low: float
    ci_high: float
    n: int
    test: str
    p_value: float | None = None
    detectable: float | None = None
    n_text: str = ""
    held_each: tuple = ()
    against_each: tuple = ()

    def __post_init__(self):
        if self.verdict not in (HELD, NOT_HELD, PARTLY, INCONCLUSIVE, NOT_TESTED):
            raise ValueError(f"unknown verdict {self.verdict!r}")
        if not self.n_text:
            object.__setattr__(self, "n_text", f"{self.n}")


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


def _directional(lo: float, hi: float, direction: str) -> str:
    if direction not in (GREATER, LESS):
        raise ValueError(f"direction must be {GREATER!r} or {LESS!r}, got {direction!r}")
    sign = 1 if direction == GREATER else -1
    lo_s, hi_s = sorted((sign * lo, sign * hi))
    if lo_s > 0:
        return HELD
    if hi_s < 0:
        return NOT_HELD
    return INCONCLUSIVE


def describe_n(paired: Paired) -> str:
    """How many test responses (and seeds) a comparison rests on, in words."""
    a, b = paired.seeds
    seeds = "" if a == b == 1 else f", {a} seeds" if a == b else f", {a} and {b} seeds"
    return f"{paired.n} responses{seeds}"


def compare(paired: Paired, direction: str = GREATER, n_resamples: int = N_RESAMPLES, seed: int = 0,
            correct: tuple | None = None) -> Verdict:
    """Whether A's figure is ``direction`` (greater or less) than B's on the same responses, by a paired
    bootstrap over them (see the module's docstring). ``correct`` = (correct_a, correct_b), two (n,)
    bools of one prediction per response, adds McNemar's exact test beside it (for accuracies)."""
    a, b = paired.values()
    effect = a - b
    diffs = paired.resampled_differences(n_resamples, seed)
    lo, hi = (float(x) for x in np.percentile(diffs, [2.5, 97.5]))
    verdict = _directional(lo, hi, direction)
    strata = len(paired.strata)
    test = (f"paired bootstrap of the {paired.metric.name} difference over test responses ({n_resamples} "
            f"resamples, seed {seed}" + (f", within {strata} strata, {paired.combine} over them" if strata > 1
                                         else "") + (", seeds pooled" if max(paired.seeds) > 1 else "") + ")")
    if correct is not None:
        test += f"; McNemar exact p = {mcnemar_p(*correct):.3g}"
    detectable = float(_MDE_Z * (hi - lo) / (2 * stats.norm.ppf(0.975))) if verdict == INCONCLUSIVE else None
    return Verdict(verdict, effect, lo, hi, paired.n, test, _bootstrap_p(diffs), detectable, describe_n(paired))


def holm(p_values: Sequence[float], alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """(rejected (m,) bools, Holm-adjusted p-values (m,)): Holm's step-down correction, equal to
    ``statsmodels.stats.multitest.multipletests(p, alpha, "holm")[:2]`` (tested). Written out because
    statsmodels' Holm calls ``gc.collect()`` on every call, 0.3-0.5 s in a chapter's loaded kernel, and a
    chapter corrects a dozen claims."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    return adjusted <= alpha, adjusted


def compare_all(parts: Sequence[Verdict], overall: Verdict | None = None, alpha: float = 0.05) -> Verdict:
    """One claim over several comparisons (each from :func:`compare`: "on every data set", "at every
    size"), their bootstrap p-values corrected together with Holm's method (statsmodels). ``held`` when
    every one holds after correction, ``partly`` when some do, ``not held`` when one goes the other way
    significantly, else ``inconclusive``. The effect and interval are ``overall``'s (one comparison over
    all the strata together) when given; ``held_each`` says which held after correction."""
    if not parts:
        raise ValueError("compare_all needs at least one comparison")
    p = [1.0 if v.p_value is None else v.p_value for v in parts]
    rejected, corrected = holm(p, alpha)
    held = tuple(bool(r and v.verdict == HELD) for r, v in zip(rejected, parts))
    against = tuple(bool(r and v.verdict == NOT_HELD) for r, v in zip(rejected, parts))
    k, m = sum(held), len(parts)
    verdict = NOT_HELD if any(against) else HELD if k == m else PARTLY if k > 0 else INCONCLUSIVE
    test = f"{k} of {m} held after Holm's correction of {m} paired bootstraps"
    if overall is None:
        effect, lo, hi = float(np.mean([v.effect for v in parts])), float("nan"), float("nan")
        n, n_text = sum(v.n for v in parts), f"{sum(v.n for v in parts)} responses"
    else:
        effect, lo, hi, n, n_text = overall.effect, overall.ci_low, overall.ci_high, overall.n, overall.n_text
        test += f"; effect and interval: {overall.test}"
    detectable = overall.detectable if overall is not None and verdict == INCONCLUSIVE else None
    return Verdict(verdict, effect, lo, hi, n, test, float(min(corrected)), detectable, n_text, held, against)


def _equivalence_verdict(lo: float, hi: float, margin: float) -> str:
    if -margin < lo and hi < margin:
        return HELD
    if lo > margin or hi < -margin:
        return NOT_HELD
    return INCONCLUSIVE


def equivalent(paired: Paired, margin: float, alpha: float = 0.05, n_resamples: int = N_RESAMPLES,
               seed: int = 0) -> Verdict:
    """Whether A and B do not differ by more than ``margin`` (a sameness claim: "does not differ",
    "small forgetting"). For a mean of per-response scores (accuracy, exact match): two one-sided paired
    t-tests (statsmodels' ``ttost_paired``) and their 90% interval. For other metrics (F1, kappa), whose
    value is not a mean over responses: the same two one-sided tests read off the paired bootstrap, the
    90% percentile interval lying inside (-margin, margin). ``held`` when equivalence is shown,
    ``not held`` when the whole interval lies outside the margin, else ``inconclusive``: a
    non-significant difference is never ``held``."""
    if margin <= 0:
        raise ValueError(f"an equivalence margin must be positive, got {margin}")
    try:
        a, b = paired.per_response()
    except ValueError:
        a = b = None
    if a is not None and max(paired.seeds) == 1:
        return _tost(a, b, margin, alpha, describe_n(paired))
    effect = float(np.subtract(*paired.values()))
    diffs = paired.resampled_differences(n_resamples, seed)
    lo, hi = (float(x) for x in np.percentile(diffs, [100 * alpha, 100 * (1 - alpha)]))
    p = float(max(np.mean(diffs <= -margin), np.mean(diffs >= margin)))
    test = (f"equivalence within ±{margin:g}: two one-sided tests on the paired bootstrap of the "
            f"{paired.metric.name} difference ({n_resamples} resamples, seed {seed}; {100 * (1 - 2 * alpha):.0f}% "
            "interval)")
    return Verdict(_equivalence_verdict(lo, hi, margin), effect, lo, hi, paired.n, test, p, None, describe_n(paired))


def _tost(a: np.ndarray, b: np.ndarray, margin: float, alpha: float, n_text: str) -> Verdict:
    from statsmodels.stats.weightstats import ttost_paired

    d = a - b
    if len(d) < 2:
        raise ValueError(f"equivalence needs paired scores of at least 2 responses, got {len(d)}")
    effect = float(d.mean())
    se = float(d.std(ddof=1) / np.sqrt(len(d)))
    if se == 0:   # every pair differs by the same amount: the difference is known exactly
        lo = hi = effect
        p = 0.0 if abs(effect) < margin else 1.0
    else:
        half = float(stats.t.ppf(1 - alpha, len(d) - 1) * se)
        lo, hi = effect - half, effect + half
        p = float(ttost_paired(a, b, -margin, margin)[0])
    verdict = HELD if p < alpha else NOT_HELD if lo > margin or hi < -margin else INCONCLUSIVE
    return Verdict(verdict, effect, lo, hi, len(d), f"equivalence within ±{margin:g}: TOST, two one-sided paired "
                   f"t-tests over test responses (statsmodels; {100 * (1 - 2 * alpha):.0f}% interval)", p, None, n_text)


def band(effect: float, ci_low: float, ci_high: float, n: int, test: str, at_least: float | None = None,
         at_most: float | None = None, n_text: str = "") -> Verdict:
    """A figure against a band "at least ``at_least``" and/or "at most ``at_most``" (one-sided where the
    claim is one-sided: a gap "at most", a saving "at least"), judged on its interval, not its point:
    ``held`` when the whole interval lies in the band, ``not held`` when the whole interval lies
    outside it, else ``inconclusive``."""
    if at_least is None and at_most is None:
        raise ValueError("a band needs at_least, at_most or both")
    lo_ok = at_least is None or ci_low >= at_least
    hi_ok = at_most is None or ci_high <= at_most
    outside = (at_least is not None and ci_high < at_least) or (at_most is not None and ci_low > at_most)
    verdict = HELD if lo_ok and hi_ok else NOT_HELD if outside else INCONCLUSIVE
    return Verdict(verdict, effect, ci_low, ci_high, n, test, n_text=n_text)


def at_least(effect: float, ci_low: float, ci_high: float, threshold: float, n: int, test: str) -> Verdict:
    """A one-sided figure "at least ``threshold``" (see :func:`band`)."""
    return band(effect, ci_low, ci_high, n, test, at_least=threshold)


def at_most(effect: float, ci_low: float, ci_high: float, threshold: float, n: int, test: str) -> Verdict:
    """A one-sided figure "at most ``threshold``" (e.g. a gap): the mirror of :func:`at_least`."""
    return band(effect, ci_low, ci_high, n, test, at_most=threshold)


def difference_band(paired: Paired, at_least: float | None = None, at_most: float | None = None,
                    n_resamples: int = N_RESAMPLES, seed: int = 0) -> Verdict:
    """A difference figure(A) - figure(B) (e.g. the teacher's lead over a student) against a band, its
    95% interval from the paired bootstrap (see :func:`band`)."""
    effect = float(np.subtract(*paired.values()))
    lo, hi = (float(x) for x in np.percentile(paired.resampled_differences(n_resamples, seed), [2.5, 97.5]))
    test = (f"95% paired bootstrap interval of the {paired.metric.name} difference ({n_resamples} resamples, "
            f"seed {seed}) against the band {_band_words(at_least, at_most)}")
    return band(effect, lo, hi, paired.n, test, at_least, at_most, describe_n(paired))


def figure_band(paired: Paired, at_least: float | None = None, at_most: float | None = None,
                n_resamples: int = N_RESAMPLES, seed: int = 0) -> Verdict:
    """Model A's figure alone (e.g. a weighted micro-F1 against a paper's 0.829 ± a band), its 95%
    interval from a bootstrap over its test responses (see :func:`band`); B is ignored."""
    effect = paired.values()[0]
    lo, hi = (float(x) for x in np.percentile(paired.resampled(n_resamples, seed)[0], [2.5, 97.5]))
    test = (f"95% bootstrap interval of the {paired.metric.name} over test responses ({n_resamples} resamples, "
            f"seed {seed}) against the band {_band_words(at_least, at_most)}")
    return band(effect, lo, hi, paired.n, test, at_least, at_most, describe_n(paired))


def _band_words(at_least: float | None, at_most: float | None) -> str:
    if at_least is not None and at_most is not None:
        return f"[{at_least:.3g}, {at_most:.3g}]"
    return f">= {at_least:.3g}" if at_least is not None else f"<= {at_most:.3g}"


def reachable(needed: float, ceiling: float, what: str) -> str | None:
    """None when a claim's band ``needed`` can be reached under a ``ceiling`` the settings impose; else
    the reason it is ``not tested`` (e.g. a 40x saving against an item ratio that caps it at 9.7x)."""
    if needed > ceiling:
        return f"not reachable here: the claim needs {needed:g} but {what} caps it at {ceiling:g}"
    return None
