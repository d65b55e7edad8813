"""The tests behind the KD chapter's claims (issue 24): every model's test predictions paired per set,
seeds pooled per response (:mod:`scoring_lab.paired_metrics`), and judged by :mod:`scoring_lab.verdicts`.

* :func:`by_set`: two models' predictions on each set's test responses, the samples of a paired test;
* :func:`beats`: "A is more accurate than B", one paired bootstrap of accuracy per set (McNemar beside
  where each model has one prediction per response) and one over all sets together (stratified by
  set, the sets' accuracies averaged as the paper averages them), for :func:`~scoring_lab.verdicts.compare_all`;
* :func:`every_set`: several such claims corrected together (Holm), "k of m held after correction";
* :func:`gain_by_set`: one model against another on each set apart, Holm over the sets, as a table;
* :func:`gap_at_most`: the teacher's lead over the KD student against the paper's, one-sided;
* :func:`speedup_band`: a wall-clock speed-up against the paper's, its interval over timed responses.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from .. import verdicts
from ..paired_metrics import ACCURACY, pair
from ..verdicts import GREATER, Verdict


def seeds_of(predictions: dict, name: str, model: str) -> list[np.ndarray]:
    """Model ``model``'s (n_test,) predicted classes on set ``name``, one per seed in seed order."""
    return [p for (s, m, _), p in sorted(predictions.items(), key=lambda kv: kv[0][2]) if s == name and m == model]


def by_set(predictions: dict, truth: dict[str, np.ndarray], a: str, b: str) -> dict[str, tuple]:
    """{set: (y (n,), [A's (n,) per seed], [B's (n,) per seed])} over the sets of ``truth`` (set -> test
    labels, in order) where both models have predictions; ``predictions``: {(set, model, seed): (n,)}."""
    out = {}
    for name, y in truth.items():
        pa, pb = seeds_of(predictions, name, a), seeds_of(predictions, name, b)
        if pa and pb:
            out[name] = (np.asarray(y), pa, pb)
    return out


def _correct(y, pa: list, pb: list) -> tuple | None:
    """Per-response correctness (n,) of A and B for McNemar's test, where each has one prediction."""
    return (pa[0] == y, pb[0] == y) if len(pa) == len(pb) == 1 else None


def beats(samples: dict[str, tuple], n_resamples: int, seed: int, direction: str = GREATER
          ) -> tuple[dict[str, Verdict], Verdict]:
    """A against B on each set of ``samples`` (:func:`by_set`): ({set: paired bootstrap of accuracy}, the
    same over all sets at once, resampled within each set, the sets' accuracies averaged)."""
    if not samples:
        raise ValueError("a comparison needs at least one set with both models' predictions")
    parts = {name: verdicts.compare(pair(ACCURACY, s), direction, n_resamples, seed, correct=_correct(*s))
             for name, s in samples.items()}
    overall = verdicts.compare(pair(ACCURACY, samples, "mean"), direction, n_resamples, seed)
    return parts, overall


def which_held(parts: dict, held_each: tuple, against_each: tuple) -> str:
    """``held after correction on a, b; significantly the other way on c; not on d`` from
    :func:`~scoring_lab.verdicts.compare_all`'s flags (one comparison the other way makes the claim ``not held``
    however many held, so the note names it)."""
    names = list(parts)
    yes = [n for n, h in zip(names, held_each) if h]
    other_way = [n for n, a in zip(names, against_each) if a]
    no = [n for n, h, a in zip(names, held_each, against_each) if not h and not a]
    return "; ".join(x for x in (f"held after Holm's correction on {', '.join(yes)}" if yes else "",
                                 f"significantly the other way on {', '.join(other_way)}" if other_way else "",
                                 f"not on {', '.join(no)}" if no else "") if x)


def every_set(parts: dict[str, Verdict], n_seeds: str = "") -> Verdict:
    """Several comparisons (``parts``, named) corrected together with Holm's method, as one claim: its
    n says how many comparisons over how many test responses (each counted once per comparison)."""
    v = verdicts.compare_all(list(parts.values()))
    n = sum(p.n for p in parts.values())
    return dataclasses.replace(v, n=n, n_text=f"{len(parts)} comparisons over {n} test responses{n_seeds}")


GAIN_COLUMNS = ["set", "effect", "ci_low", "ci_high", "n", "p", "p_holm", "verdict", "test"]


def gain_by_set(samples: dict[str, tuple], n_resamples: int, seed: int) -> pd.DataFrame:
    """Per set of ``samples`` (:func:`by_set`), whether A's accuracy against the set's reference classes is
    above B's on the same test responses: the difference (seeds pooled per response), its 95% paired
    bootstrap interval, n, the one-sided p and Holm's over the sets, and the verdict after Holm (``held``
    where the corrected p is below 0.05 and the interval above 0, ``not held`` where the bootstrap's own
    verdict is, else ``inconclusive``): :data:`GAIN_COLUMNS`."""
    rows = []
    for name, s in samples.items():
        v = verdicts.compare(pair(ACCURACY, s), GREATER, n_resamples, seed)
        rows.append({"set": name, "effect": v.effect, "ci_low": v.ci_low, "ci_high": v.ci_high, "n": v.n_text,
                     "p": v.p_value, "verdict": v.verdict, "test": v.test})
    out = pd.DataFrame(rows, columns=[c for c in GAIN_COLUMNS if c != "p_holm"])
    if out.empty:
        return out.assign(p_holm=pd.Series(dtype=float))[GAIN_COLUMNS]
    _, corrected = verdicts.holm(out["p"].tolist())
    out["p_holm"] = corrected
    out["verdict"] = [verdicts.HELD if v == verdicts.HELD and ph < 0.05 else
                      v if v == verdicts.NOT_HELD else verdicts.INCONCLUSIVE
                      for v, ph in zip(out["verdict"], out["p_holm"])]
    return out[GAIN_COLUMNS]


def gap_at_most(samples: dict[str, tuple], paper_gap: float, n_resamples: int, seed: int) -> Verdict:
    """The teacher's accuracy minus the KD student's (``samples``: :func:`by_set` of teacher, KD student),
    averaged over sets, against "at most ``paper_gap``": its 95% paired bootstrap interval, within sets."""
    return verdicts.difference_band(pair(ACCURACY, samples, "mean"), at_most=paper_gap, n_resamples=n_resamples,
                                    seed=seed)


def speedup_band(slow: np.ndarray, fast: np.ndarray, at_least: float, n_resamples: int, seed: int) -> Verdict:
    """How many times faster ``fast`` is than ``slow`` (each (n,) seconds of the same n responses, timed
    one at a time): the ratio of their medians, its 95% interval from resampling the timed responses
    (paired), against "at least ``at_least``" (:func:`~scoring_lab.verdicts.band`)."""
    slow, fast = np.asarray(slow, dtype=float), np.asarray(fast, dtype=float)
    if slow.shape != fast.shape or len(slow) < 2:
        raise ValueError(f"a speed-up needs the same responses timed for both, at least 2; got {slow.shape}, "
                         f"{fast.shape}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(slow), size=(n_resamples, len(slow)))
    ratios = np.median(slow[idx], axis=1) / np.median(fast[idx], axis=1)
    lo, hi = (float(x) for x in np.percentile(ratios, [2.5, 97.5]))
    test = (f"ratio of median seconds per response; 95% bootstrap interval over the timed responses "
            f"({n_resamples} resamples, seed {seed}) against the band >= {at_least:g}")
    return verdicts.band(float(np.median(slow) / np.median(fast)), lo, hi, len(slow), test, at_least=at_least,
                         n_text=f"{len(slow)} test responses, each timed once per model at batch 1")
