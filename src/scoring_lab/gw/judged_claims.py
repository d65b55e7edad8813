"""The GW paper's claims judged on test responses (issue 24): every comparison of two plans is a paired
bootstrap over the same test responses, stratified by task and combined as the paper's Table 3 does
(means weighted by test size); sameness is an equivalence test; figures that follow from the settings
are marked by construction.

:class:`Responses` holds each task's test truth and every method's test predictions ({method: {task:
(n_t, L) 0/1 or (n_t,) classes}}, as :meth:`scoring_lab.gw.evaluation.Evaluation.methods` gives them);
the builders below turn them into :class:`scoring_lab.claims.Claim` rows and can be fed constructed
predictions.
"""
from __future__ import annotations


import numpy as np

from .. import claims, verdicts
from ..paired_metrics import CountMetric, Paired, count_metric, pair
from ..verdicts import GREATER, HELD, INCONCLUSIVE, LESS, NOT_HELD, Verdict

NAMES = {"micro_f1": "micro-F1", "macro_f1": "macro-F1", "exact_match": "exact match",
         "per_label_accuracy": "per-label accuracy", "qwk": "QWK", "accuracy": "accuracy", "kappa": "kappa"}
# "Roughly halves the storage": held from a saving of 1.75x, partly from 1.4x (nine models into five,
# stored whole, save 9/5 = 1.8x: the claim is about that ratio, so the band sits just under it).
HALVES_HELD, HALVES_PARTLY = 1.75, 1.4


class Responses:
    """Test ``truth`` {task: (n_t, L) 0/1 labels or (n_t,) classes} and ``preds`` {method: {task: the
    same shape}} of one run; ``kind`` multilabel or multiclass (``n_classes``: K, shared by every task);
    the bootstrap's ``n_resamples`` and ``seed`` (the profile's ``claims``). Comparisons are memoised."""

    def __init__(self, truth: dict, preds: dict, kind: str = "multilabel", n_classes: int | None = None,
                 n_resamples: int = verdicts.N_RESAMPLES, seed: int = 0):
        self.truth, self.preds, self.kind, self.n_classes = truth, preds, kind, n_classes
        self.n_resamples, self.seed = int(n_resamples), int(seed)
        self._memo: dict = {}

    def metric(self, name: str) -> CountMetric:
        """The count form of a table metric (``micro_f1``, ``qwk``, ...) for this kind."""
        if self.kind != "multilabel" and not self.n_classes:
            raise ValueError("multi-class tasks need one shared number of classes for a paired bootstrap")
        return count_metric(self.kind, name, self.n_classes)

    def paired(self, a: str, b: str, metric: str) -> Paired:
        """Methods ``a`` and ``b`` on every task's test responses, tasks as strata, weighted by test size."""
        samples = {t: (y, self.preds[a][t], self.preds[b][t]) for t, y in self.truth.items()}
        return pair(self.metric(metric), samples, "weighted")

    def identical(self, a: str, b: str) -> bool:
        """Whether ``a`` and ``b`` predict the same on every test response (a difference of zero by
        construction: nothing for a test to find)."""
        return all(np.array_equal(self.preds[a][t], self.preds[b][t]) for t in self.truth)

    def compare(self, a: str, b: str, metric: str, direction: str = GREATER) -> Verdict:
        """:func:`scoring_lab.verdicts.compare` of ``a`` against ``b`` on ``metric`` (memoised)."""
        key = ("compare", a, b, metric, direction)
        if key not in self._memo:
            self._memo[key] = verdicts.compare(self.paired(a, b, metric), direction, self.n_resamples, self.seed)
        return self._memo[key]

    def equivalent(self, a: str, b: str, metric: str, margin: float) -> Verdict:
        """:func:`scoring_lab.verdicts.equivalent` of ``a`` and ``b`` on ``metric`` within ``margin``."""
        return verdicts.equivalent(self.paired(a, b, metric), margin, n_resamples=self.n_resamples, seed=self.seed)

    @property
    def n_tasks(self) -> int:
        return len(self.truth)


def _effects(parts: dict[str, Verdict]) -> str:
    return ", ".join(f"{NAMES.get(m, m)} {claims.interval_text(v)}" for m, v in parts.items())


def above_on_all(r: Responses, a: str, b: str, metrics, claim: str, base: str, paper_value: str = "4 of 4") -> claims.Claim:
    """"``a`` scores above ``b`` on every one of ``metrics``": a paired bootstrap per metric, Holm over
    them; the effect and interval are the first metric's."""
    if r.identical(a, b):
        return claims.not_tested("gw", claim, paper_value, f"{base}; the two plans predict the same on every test "
                                 "response here: a difference of zero by construction")
    parts = {m: r.compare(a, b, m, GREATER) for m in metrics}
    v = verdicts.compare_all(list(parts.values()), overall=parts[metrics[0]])
    first = NAMES.get(metrics[0], metrics[0])
    return claims.judged("gw", claim, paper_value, v,
                         f"{base}; {a} minus {b}, test-size-weighted over {r.n_tasks} tasks: {_effects(parts)}",
                         our_value=f"{sum(v.held_each)} of {len(parts)} after Holm; {first} "
                                   f"{claims.interval_text(parts[metrics[0]])}")


def beats(r: Responses, a: str, b: str, metric: str, claim: str, paper_value: str, note: str) -> claims.Claim:
    """"``a`` beats ``b`` significantly on ``metric``": one paired bootstrap, direction greater."""
    if r.identical(a, b):
        return claims.not_tested("gw", claim, paper_value, f"{note}; the two plans predict the same on every test "
                                 "response here")
    return claims.judged("gw", claim, paper_value, r.compare(a, b, metric, GREATER), note)


def all_equivalent(parts: dict[str, Verdict], margin: float) -> Verdict:
    """One sameness claim over several metrics: ``held`` only when every one is shown equivalent (an
    intersection-union test: each at 5%, no correction needed), ``not held`` when one is shown to
    differ by more than the margin, else ``inconclusive``; effect and interval are the first metric's."""
    vs = list(parts.values())
    k = sum(v.verdict == HELD for v in vs)
    verdict = NOT_HELD if any(v.verdict == NOT_HELD for v in vs) else HELD if k == len(vs) else INCONCLUSIVE
    first = vs[0]
    test = (f"{k} of {len(vs)} metrics shown equivalent within ±{margin:g} (all needed: an intersection-union "
            f"test, no correction); {NAMES.get(next(iter(parts)), '')}: {first.test}")
    return Verdict(verdict, first.effect, first.ci_low, first.ci_high, first.n, test, None, None, first.n_text)


def no_difference(r: Responses, a: str, b: str, metrics, margin: float, claim: str, base: str,
                  paper_value: str = "p > 0.05 on 4 of 4") -> claims.Claim:
    """"``a`` and ``b`` do not differ on any of ``metrics``": an equivalence test per metric against
    ``margin`` (:func:`all_equivalent`); a non-significant difference is never ``held``."""
    if r.identical(a, b):
        return claims.not_tested("gw", claim, paper_value, f"{base}; the two plans predict the same on every test "
                                 "response here: sameness would hold by construction")
    parts = {m: r.equivalent(a, b, m, margin) for m in metrics}
    v = all_equivalent(parts, margin)
    k = sum(p.verdict == HELD for p in parts.values())
    reach = max(max(abs(p.ci_low), abs(p.ci_high)) for p in parts.values())
    return claims.judged("gw", claim, paper_value, v,
                         f"{base}; margin ±{margin:g} (the profile's claims.equivalence_margin); {a} minus {b}, "
                         f"90% intervals: {_effects(parts)}; these responses would show equivalence on all "
                         f"{len(parts)} at a margin of about ±{reach:.3f}",
                         our_value=f"equivalent on {k} of {len(parts)}; {NAMES.get(metrics[0], metrics[0])} "
                                   f"{claims.interval_text(parts[metrics[0]])}")


def gap_band(r: Responses, merged: str, premerge: str, metric: str, paper_gap: float, claim: str, base: str,
             within: float = claims.HELD_WITHIN) -> claims.Claim:
    """The pre-merge models' lead over ``merged`` on ``metric`` against the paper's gap ± ``within``,
    judged on its 95% paired interval (:func:`scoring_lab.verdicts.difference_band`)."""
    v = verdicts.difference_band(r.paired(premerge, merged, metric), paper_gap - within, paper_gap + within,
                                 r.n_resamples, r.seed)
    return claims.judged("gw", claim, f"gap {paper_gap:.3f}", v,
                         f"{base}; {premerge} minus {merged}, test-size-weighted over {r.n_tasks} tasks; held when "
                         f"the interval lies within the paper's gap ± {within:g}")


def narrows_gap(r: Responses, fitted: str, merged: str, premerge: str, metric: str, claim: str,
                base: str) -> claims.Claim:
    """``fitted`` (layer-wise coefficients) above ``merged`` (TIES) on ``metric``: a paired bootstrap,
    direction greater; ``not tested`` unless ``merged`` is shown below ``premerge`` on ``metric`` (the
    same paired bootstrap, direction less): without a gap there is nothing to narrow."""
    gap = r.compare(merged, premerge, metric, LESS)
    if gap.verdict != HELD:
        return claims.not_tested("gw", claim, "-", f"{base}; the merged models are not shown below the pre-merge "
                                 f"ones here ({NAMES.get(metric, metric)} {claims.interval_text(gap)}): no gap to "
                                 "narrow")
    v = r.compare(fitted, merged, metric, GREATER)
    a, b = r.paired(fitted, merged, metric).values()
    pre = r.paired(premerge, merged, metric).values()[0]
    return claims.judged("gw", claim, "-", v, f"{base}; {fitted} minus {merged} ({NAMES.get(metric, metric)}, "
                         f"test-size-weighted); {(a - b) / (pre - b):+.0%} of the gap of {pre - b:.3f} closed "
                         "(point estimates)")


def storage_claim(claim: str, saving: float, n_models: int, n_tasks: int, model_mb: float) -> claims.Claim:
    """"Merging nine models into five roughly halves the storage": by construction, since every model is
    stored whole, the saving is (T W + H) / (T' W + H) ~ T / T' whatever was learned."""
    verdict = "held" if saving >= HALVES_HELD else "partly" if saving >= HALVES_PARTLY else "not held"
    return claims.by_construction(
        "gw", claim, "about 2x", f"{saving:.2f}x ({n_models} models)", verdict,
        f"the measured bytes of each model written as a safetensors file, every model stored whole as the paper "
        f"counts (its {model_mb} MB per BERT): {n_tasks} models into "
        f"{n_models} save (T W + H) / (T' W + H) ~ {n_tasks}/{n_models} = {n_tasks / n_models:.2f}x whatever is "
        f"learned (W a model, H the heads); held from {HALVES_HELD}x, partly from {HALVES_PARTLY}x", saving,
        "none: the ratio of models stored, from the profile's number of models")


def group_size_claim(claim: str, plan, n_tasks: int, n_models: int, described: str, base: str) -> claims.Claim:
    """"The GW objective merges models in pairs or trios": by construction. The objective sums the
    similarities (each in [0, 1], never negative) of the pairs inside each group, and a group of k holds
    k(k-1)/2 pairs, so left uncapped it favours one group as large as the plan allows (T - T' + 1) unless
    the similarities are sharply clustered; the uncapped ``plan``'s largest group is shown beside that."""
    largest = max(len(g) for g in plan)
    most = n_tasks - n_models + 1
    where = ("the largest a plan allows, as with every pair equally similar" if largest == most else
             f"below the {most} a plan allows: the similarities are clustered enough to outweigh the pair count")
    return claims.by_construction(
        "gw", claim, "groups of 2-3", f"largest group {largest}", "held" if largest <= 3 else "not held",
        f"{base}; the objective sums non-negative similarities over the pairs inside each group, so the uncapped "
        f"plan into {n_models} groups favours one group of {most} (largest here {largest}: {where}); the plan "
        f"without the book's cap: {described}", float(largest),
        "none: exhaustive search of the objective, whose pair count favours large groups")


def below_all(r: Responses, merged: str, premerge: str, metrics, claim: str, paper_value: str,
              base: str) -> claims.Claim:
    """"Merged models stay below the pre-merge models": a paired bootstrap per metric (direction less),
    Holm over them; effect and interval of the first (headline) metric."""
    parts = {m: r.compare(merged, premerge, m, LESS) for m in metrics}
    v = verdicts.compare_all(list(parts.values()), overall=parts[metrics[0]])
    return claims.judged("gw", claim, paper_value, v,
                         f"{base}; {merged} minus {premerge}, test-size-weighted over {r.n_tasks} tasks: "
                         f"{_effects(parts)}",
                         our_value=f"below on {sum(v.held_each)} of {len(parts)} after Holm; "
                                   f"{NAMES.get(metrics[0], metrics[0])} {claims.interval_text(parts[metrics[0]])}")
