"""The statistics behind the chapter's claims (issue 24), on per-response evidence (:mod:`.evidence`).

* "A beats B on Table 3's averages": a paired bootstrap per metric over the training tasks' test
  responses (resampled within each task; the figure is the plain mean over tasks, as the paper's
  average), the metrics corrected together with Holm (:func:`~scoring_lab.verdicts.compare_all`).
* "A beats B on every held-out task and metric": one paired bootstrap per task and metric, Holm.
* "A matches or exceeds B": per metric, equivalence within the profile's margin (two one-sided tests
  on the paired bootstrap) or superiority (paired bootstrap), all these tests corrected together
  with Holm; ``not held`` where B's lead is beyond the margin over the whole 95% interval.
* "Adaptation costs the old tasks a little": the drop's 95% paired interval inside [0, small_drop].
* "Tasks rely on experts with distinct preferences": the tasks' favourite experts are not all one
  (robustly: in at least 97.5% of resamples of the responses) and their usage distributions differ
  more than tasks drawing their gates from one common distribution would (a permutation test on the
  mean pairwise Jensen-Shannon distance); ``not held`` when every task favours the same expert.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import stats

from .. import verdicts
from ..paired_metrics import MULTILABEL, CountMetric, Paired, count_metric
from ..verdicts import GREATER, HELD, INCONCLUSIVE, NOT_HELD, PARTLY, Verdict
from .evidence import Evidence

NAMES = {"kappa": "kappa", "macro_f1": "macro-F1", "micro_f1": "micro-F1", "per_label_accuracy": "per-label accuracy",
         "exact_match": "exact match", "accuracy": "accuracy"}
HEADLINE = "kappa"                # the paper's headline metric: a several-metric claim's effect and interval
DISTINCT_SHARE = 0.975            # resamples whose favourites must not all be one expert (one-sided 2.5%)
ALPHA = 0.05


class Judge:
    """The verdicts of the chapter's claims on one :class:`~.evidence.Evidence`: the paired bootstrap's
    ``n_resamples`` and ``seed``, the ``margin`` of a sameness claim and the largest drop that is "a
    little" (``small_drop``), as the profile's ``claims`` section states them."""

    def __init__(self, ev: Evidence, n_resamples: int = 2000, seed: int = 0, margin: float = 0.02,
                 small_drop: float = 0.05):
        self.ev, self.n_resamples, self.seed, self.margin, self.small_drop = ev, n_resamples, seed, margin, small_drop
        self._counts = {}

    @classmethod
    def of(cls, ev: Evidence, settings) -> Judge:
        """From a profile's ``claims`` settings."""
        return cls(ev, settings.n_resamples, settings.seed, settings.equivalence_margin, settings.small_drop)

    def runs(self, model: str, task: str) -> np.ndarray:
        """(S, n, L) (or (S, n), a score's) ``model``'s test predictions on ``task``, one block per seed (S = 1
        for one model)."""
        p = np.asarray(self.ev.preds[model][task])
        return p if p.ndim == np.ndim(self.ev.labels[task]) + 1 else p[None]

    def metric(self, name: str, task: str) -> CountMetric:
        """The count form of table metric ``name`` on ``task``: the multi-label one, or for a score of K
        classes its multi-class one (``kappa``: quadratic weighted)."""
        if self.ev.kind == "multilabel":
            return MULTILABEL[name]
        return count_metric("multiclass", "qwk" if name == "kappa" else name, self.ev.classes[task])

    def counts(self, metric: str, model: str, task: str) -> np.ndarray:
        """(n, c) ``metric``'s per-response counts of ``model`` on ``task``'s test responses, summed over its
        seeds (the framework's pooling: the figure is the metric of every seed's predictions together)."""
        key = (metric, model, task)
        if key not in self._counts:
            y = self.ev.labels[task]
            self._counts[key] = sum(self.metric(metric, task).counts(y, run) for run in self.runs(model, task))
        return self._counts[key]

    def paired(self, metric: str, a: str, b: str, tasks) -> Paired:
        """Models ``a`` and ``b`` on the same test responses of ``tasks`` (strata), ``metric``'s plain mean
        over them (each model's seeds pooled)."""
        tasks = tuple(tasks)
        seeds = (len(self.runs(a, tasks[0])), len(self.runs(b, tasks[0])))
        forms = tuple(self.metric(metric, t) for t in tasks)
        return Paired(forms[0], tuple(self.counts(metric, a, t) for t in tasks),
                      tuple(self.counts(metric, b, t) for t in tasks), tasks, "mean", seeds,
                      forms if self.ev.kind != "multilabel" else ())

    def compare(self, paired: Paired, direction: str = GREATER) -> Verdict:
        return verdicts.compare(paired, direction, self.n_resamples, self.seed)

    def beats(self, a: str, b: str, tasks: list[str], metrics) -> Verdict:
        """``a`` above ``b`` on each of ``metrics`` (plain means over ``tasks``), Holm over the metrics;
        effect and interval: the headline metric's."""
        parts = [self.compare(self.paired(m, a, b, tasks)) for m in metrics]
        overall = parts[list(metrics).index(HEADLINE)] if HEADLINE in metrics else \
            self.compare(self.paired(HEADLINE, a, b, tasks))
        return verdicts.compare_all(parts, overall)

    def beats_each(self, a: str, rivals: list[str], tasks: list[str], metrics) -> tuple[Verdict, str]:
        """``a`` above every one of ``rivals`` on each of ``metrics``, Holm over all the comparisons;
        effect and interval: the headline metric against the strongest rival (returned beside)."""
        parts = [self.compare(self.paired(m, a, r, tasks)) for r in rivals for m in metrics]
        best = max(rivals, key=lambda r: self.paired(HEADLINE, r, r, tasks).values()[0])
        return verdicts.compare_all(parts, self.compare(self.paired(HEADLINE, a, best, tasks))), best

    def beats_per_task(self, a: str, b: str, tasks: list[str], metrics) -> Verdict:
        """``a`` above ``b`` on every task and metric, one comparison each, Holm over them all; effect
        and interval: the headline metric's mean over the tasks."""
        parts = [self.compare(self.paired(m, a, b, [t])) for t in tasks for m in metrics]
        return verdicts.compare_all(parts, self.compare(self.paired(HEADLINE, a, b, tasks)))

    def matches_or_exceeds(self, a: str, b: str, tasks: list[str], metrics) -> Verdict:
        """``a`` within ±margin of ``b`` (equivalence) or above it (superiority) on each metric, see the
        module's docstring; effect and interval: the headline metric's."""
        sup, eq = [], []
        for m in metrics:
            p = self.paired(m, a, b, tasks)
            sup.append(self.compare(p))
            eq.append(verdicts.equivalent(p, self.margin, n_resamples=self.n_resamples, seed=self.seed))
        rejected = verdicts.holm([v.p_value for v in (*sup, *eq)], ALPHA)[0]
        k = len(sup)
        held = [bool((rejected[i] and sup[i].verdict == HELD) or (rejected[k + i] and eq[i].verdict == HELD))
                for i in range(k)]
        against = [s.ci_high < -self.margin for s in sup]
        verdict = NOT_HELD if any(against) else HELD if all(held) else PARTLY if any(held) else INCONCLUSIVE
        head = sup[list(metrics).index(HEADLINE)] if HEADLINE in metrics else \
            self.compare(self.paired(HEADLINE, a, b, tasks))
        test = (f"{sum(held)} of {k} metrics held after Holm's correction of {2 * k} tests: per metric, equivalence "
                f"within ±{self.margin:g} (two one-sided tests on the paired bootstrap's 90% interval) or superiority "
                f"(95% paired bootstrap interval above 0); not held where the 95% interval lies wholly below "
                f"-{self.margin:g}; {self.n_resamples} resamples, seed {self.seed}; effect and interval: {head.test}")
        detectable = _detectable(head) if verdict == INCONCLUSIVE else None
        return Verdict(verdict, head.effect, head.ci_low, head.ci_high, head.n, test, head.p_value, detectable,
                       head.n_text, tuple(held))

    def small_cost(self, before: str, after: str, tasks: list[str], metric: str = HEADLINE
                   ) -> tuple[Verdict, str]:
        """The drop figure(before) - figure(after) on the same responses against the band (0, small_drop]
        (held: a cost is shown, its interval above 0, and it is small), with a note saying why."""
        v = verdicts.difference_band(self.paired(metric, before, after, tasks), at_least=0.0,
                                     at_most=self.small_drop, n_resamples=self.n_resamples, seed=self.seed)
        if v.verdict == HELD and v.ci_low <= 0:   # an interval touching 0 shows no cost
            v = replace(v, verdict=INCONCLUSIVE)
        return v, forgetting_note(v, self.small_drop)


def _detectable(v: Verdict) -> float:
    """The smallest effect a comparison's responses could detect (80% power, two-sided 5%), from its 95%
    interval's width, as :func:`~scoring_lab.verdicts.compare` states it for an inconclusive one."""
    z = stats.norm.ppf(0.975)
    return float((z + stats.norm.ppf(0.80)) * (v.ci_high - v.ci_low) / (2 * z))


def forgetting_note(v: Verdict, small_drop: float) -> str:
    """Why a drop's verdict against [0, ``small_drop``] is what it is."""
    if v.verdict == HELD:
        return f"a cost is shown (the interval excludes 0) and it is at most {small_drop:g}"
    if v.ci_high < 0:
        return "no forgetting: the old tasks scored higher after adaptation, so there is no cost at all"
    if v.ci_low > small_drop:
        return f"the cost is more than a little: the whole interval lies above {small_drop:g}"
    if v.ci_low <= 0 <= v.ci_high <= small_drop:
        return (f"no cost is shown: the interval holds 0, so 'no forgetting' fits these responses as well as 'a "
                f"little' (a drop within {small_drop:g}); the claim asserts a cost, hence inconclusive")
    return f"the interval reaches past {small_drop:g} (and may hold 0): how large the cost is stays open"


# ---- expert usage ------------------------------------------------------------------
def js_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Base-2 Jensen-Shannon distance between distributions (..., M) and (..., M) -> (...) (as scipy's
    ``jensenshannon`` for rows that sum to 1)."""
    m = (p + q) / 2

    def kl(x):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(x > 0, x * np.log2(np.where(x > 0, x, 1) / np.where(m > 0, m, 1)), 0.0).sum(-1)

    return np.sqrt(np.maximum(0.5 * kl(p) + 0.5 * kl(q), 0.0))


def mean_pairwise_js(rows: np.ndarray) -> np.ndarray:
    """(..., T, M) usage rows -> (...) the mean Jensen-Shannon distance over the T(T-1)/2 pairs of tasks."""
    i, j = np.triu_indices(rows.shape[-2], 1)
    return js_distance(rows[..., i, :], rows[..., j, :]).mean(-1)


def distinct_preferences(gates: dict, n_resamples: int = 2000, seed: int = 0) -> tuple[Verdict, dict]:
    """Whether tasks rely on experts with distinct preferences, from ``gates`` {task: (n, M) gate weights
    per test response} (at least two tasks and two experts): ``held`` when the tasks' favourite experts
    (the argmax of each task's mean usage) are not all one, in at least :data:`DISTINCT_SHARE` of
    bootstrap resamples of the responses (within tasks), and the mean pairwise Jensen-Shannon distance
    between the tasks' usage exceeds what permuting the responses across tasks gives (p < 0.05);
    ``not held`` when every task favours the same expert; else ``inconclusive``. The effect is that
    distance with its bootstrap 95% interval; beside it {favourites, distinct, distinct_share, null_95}."""
    tasks = list(gates)
    g = [np.asarray(gates[t], dtype=float) for t in tasks]
    sizes = np.array([len(x) for x in g])
    if len(tasks) < 2 or g[0].shape[1] < 2 or (sizes < 1).any():
        raise ValueError("distinct preferences need at least two tasks with responses and two experts")
    rows = np.stack([x.mean(0) for x in g])
    favourites = rows.argmax(1)
    observed = float(mean_pairwise_js(rows))
    rng = np.random.default_rng(seed)
    boot = np.stack([rng.multinomial(n, np.full(n, 1 / n), size=n_resamples) @ x / n for n, x in zip(sizes, g)], 1)
    lo, hi = (float(x) for x in np.percentile(mean_pairwise_js(boot), [2.5, 97.5]))
    distinct_share = float(np.mean([len(set(f)) > 1 for f in boot.argmax(-1)]))
    pooled, starts = np.concatenate(g), np.concatenate([[0], np.cumsum(sizes)[:-1]])
    null = []
    for c in range(0, n_resamples, 100):
        perm = np.argsort(rng.random((min(100, n_resamples - c), len(pooled))), axis=1)
        null.append(mean_pairwise_js(np.add.reduceat(pooled[perm], starts, axis=1) / sizes[:, None]))
    null = np.concatenate(null)
    p = float((np.sum(null >= observed - 1e-12) + 1) / (len(null) + 1))
    distinct = len(set(favourites.tolist()))
    verdict = NOT_HELD if distinct == 1 else HELD if (p < ALPHA and distinct_share >= DISTINCT_SHARE) else INCONCLUSIVE
    test = (f"favourite experts not all one in {distinct_share:.1%} of {n_resamples} bootstrap resamples of the "
            f"responses within tasks (needed: {DISTINCT_SHARE:.1%}); mean pairwise Jensen-Shannon distance of the "
            f"tasks' usage against {n_resamples} permutations of the responses across tasks (95th percentile "
            f"{np.percentile(null, 95):.3f}): p = {p:.3g}; seed {seed}")
    info = {"favourites": dict(zip(tasks, (favourites + 1).tolist())), "distinct": distinct,
            "distinct_share": distinct_share, "null_95": float(np.percentile(null, 95))}
    n = int(sizes.sum())
    return Verdict(verdict, observed, lo, hi, n, test, p, None, f"{n} responses in {len(tasks)} tasks"), info
