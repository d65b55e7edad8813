"""The scoring metrics as sums of per-response counts, so a paired bootstrap can resample responses fast.

A claim's verdict (:mod:`scoring_lab.verdicts`) recomputes its metric for two models on thousands of
resamples of the same test responses. Every metric the papers use is a function of counts summed over
responses (TP/FP/FN per label, a confusion matrix, a number right): :class:`CountMetric` splits it
into ``counts(y, pred) -> (n, c)`` per response and ``value(sums (..., c)) -> (...)``, and a resample is
then one matrix product of multinomial weights (R, n) with the counts (n, c). Calling scikit-learn's
metrics 2,000 times per claim would cost seconds each; the values here equal :mod:`scoring_lab.metrics`
(the same degenerate cases included), which the tests check on random inputs.

:class:`Paired` holds two models' counts on the same responses, in strata (tasks, data sets), with
several seeds pooled (their counts summed per response), and how strata combine into the claim's
figure: their plain mean, their mean weighted by test size (the GW paper's weighted means), or one
pooled figure (counts summed over strata).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

COMBINE = ("mean", "weighted", "pooled")


@dataclass(frozen=True)
class CountMetric:
    """A metric as ``value(sum over responses of counts(y, pred))``: ``counts`` (n,) or (n, ...) truth
    and prediction -> (n, c) floats; ``value`` (..., c) sums -> (...) metric values."""

    name: str
    counts: Callable[[np.ndarray, np.ndarray], np.ndarray]
    value: Callable[[np.ndarray], np.ndarray]

    def __call__(self, y_true, y_pred) -> float:
        return float(self.value(self.counts(np.asarray(y_true), np.asarray(y_pred)).sum(axis=0)))


def _ratio(num, den, empty: float):
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), empty)


def _f1(tp, fp, fn, empty: float):
    return _ratio(2 * tp, 2 * tp + fp + fn, empty)


def _two_d(a) -> np.ndarray:
    a = np.asarray(a)
    return (a[:, None] if a.ndim == 1 else a).astype(np.int64)


def _label_tp_fp_fn(y, p) -> np.ndarray:
    t, q = _two_d(y), _two_d(p)
    return np.concatenate([t & q, (1 - t) & q, t & (1 - q)], axis=1).astype(float)   # (n, 3L)


def _micro_f1_counts(y, p):
    c = _label_tp_fp_fn(y, p)
    L = c.shape[1] // 3
    return np.stack([c[:, :L].sum(1), c[:, L:2 * L].sum(1), c[:, 2 * L:].sum(1)], axis=1)


def _mean_label_f1(s):
    L = s.shape[-1] // 3
    return _f1(s[..., :L], s[..., L:2 * L], s[..., 2 * L:], 1.0).mean(axis=-1)


def _confusion_counts(y, p, k: int) -> np.ndarray:
    """(n, k*k) one-hot of each response's cell (truth, prediction) in a k x k confusion matrix."""
    t, q = np.asarray(y, dtype=np.int64).ravel(), np.asarray(p, dtype=np.int64).ravel()
    if t.size and (min(t.min(), q.min()) < 0 or max(t.max(), q.max()) >= k):
        raise ValueError(f"class labels must lie in 0..{k - 1}")
    out = np.zeros((len(t), k * k))
    out[np.arange(len(t)), t * k + q] = 1.0
    return out


def _kappa_from_confusion(s: np.ndarray, k: int, weights: str | None) -> np.ndarray:
    """Cohen's kappa of (..., k*k) confusion sums, as :func:`scoring_lab.metrics.cohen_kappa` defines
    it: 1.0 when truth and prediction hold one same class throughout, 0.0 where sklearn gives NaN."""
    m = s.reshape(*s.shape[:-1], k, k)
    n = m.sum(axis=(-2, -1))
    i, j = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    w = np.ones((k, k)) - np.eye(k) if weights is None else (i - j) ** 2 / max((k - 1) ** 2, 1)
    rows, cols = m.sum(-1), m.sum(-2)
    expected = rows[..., :, None] * cols[..., None, :] / np.where(n > 0, n, 1)[..., None, None]
    observed_d, expected_d = (w * m).sum((-2, -1)), (w * expected).sum((-2, -1))
    kappa = 1 - _ratio(observed_d, expected_d, np.nan)
    used = ((rows + cols) > 0).sum(-1)
    return np.where(used == 1, 1.0, np.where(np.isnan(kappa), 0.0, kappa))


def _mean_label_kappa(s):
    L = s.shape[-1] // 4
    return np.mean([_kappa_from_confusion(s[..., 4 * j:4 * j + 4], 2, None) for j in range(L)], axis=0)


def _label_confusions(y, p):
    t, q = _two_d(y), _two_d(p)
    return np.concatenate([_confusion_counts(t[:, j], q[:, j], 2) for j in range(t.shape[1])], axis=1)


def _correct_and_one(right: np.ndarray) -> np.ndarray:
    return np.stack([right.astype(float), np.ones(len(right))], axis=1)


def _share(s):
    return _ratio(s[..., 0], s[..., 1], np.nan)


# Multi-label metrics: (n, L) 0/1 truth and prediction, as in scoring_lab.metrics.
MICRO_F1 = CountMetric("micro-F1", _micro_f1_counts, lambda s: _f1(s[..., 0], s[..., 1], s[..., 2], 1.0))
MACRO_F1 = CountMetric("macro-F1", _label_tp_fp_fn, _mean_label_f1)
EXACT_MATCH = CountMetric("exact match", lambda y, p: _correct_and_one((_two_d(y) == _two_d(p)).all(1)), _share)
PER_LABEL_ACCURACY = CountMetric(
    "per-label accuracy", lambda y, p: np.stack([(_two_d(y) == _two_d(p)).mean(1), np.ones(len(y))], 1), _share)
KAPPA = CountMetric("kappa", _label_confusions, _mean_label_kappa)
MULTILABEL = {"micro_f1": MICRO_F1, "macro_f1": MACRO_F1, "exact_match": EXACT_MATCH,
              "per_label_accuracy": PER_LABEL_ACCURACY, "kappa": KAPPA}

# Multi-class (and any per-unit score): (n,) class labels, or (n,) scores for MEAN.
ACCURACY = CountMetric("accuracy", lambda y, p: _correct_and_one(np.asarray(y).ravel() == np.asarray(p).ravel()),
                       _share)
MEAN = CountMetric("mean", lambda y, p: _correct_and_one(np.asarray(p, dtype=float).ravel()), _share)


def multiclass_macro_f1(k: int) -> CountMetric:
    """Mean F1 over classes 0..k-1 (zero_division 0, as :func:`scoring_lab.metrics.multiclass_macro_f1`
    with ``n_classes=k``)."""
    def counts(y, p):
        t, q = np.asarray(y, dtype=np.int64).ravel(), np.asarray(p, dtype=np.int64).ravel()
        eye = np.eye(k)
        return np.concatenate([eye[t] * eye[q], (1 - eye[t]) * eye[q], eye[t] * (1 - eye[q])], axis=1)
    return CountMetric("macro-F1", counts, lambda s: _f1(s[..., :k], s[..., k:2 * k], s[..., 2 * k:], 0.0).mean(-1))


def quadratic_kappa(k: int) -> CountMetric:
    """Quadratic weighted kappa over classes 0..k-1 (:func:`scoring_lab.metrics.quadratic_weighted_kappa`)."""
    return CountMetric("QWK", lambda y, p: _confusion_counts(y, p, k), lambda s: _kappa_from_confusion(s, k, "quadratic"))


def count_metric(kind: str, name: str, n_classes: int | None = None) -> CountMetric:
    """The count form of a table metric (``micro_f1``, ``qwk``, ...) for ``kind`` (multilabel or multiclass,
    whose metrics need the number of classes ``n_classes``)."""
    if kind == "multilabel":
        return MULTILABEL[name]
    if not n_classes:
        raise ValueError("multi-class metrics need the task's number of classes")
    k = int(n_classes)
    return {"accuracy": ACCURACY, "macro_f1": multiclass_macro_f1(k), "qwk": quadratic_kappa(k)}[name]


def task_metrics(kind: str, y_true, y_pred, names: Sequence[str], n_classes: int | None = None) -> dict[str, float]:
    """{name: value} of the table metrics ``names`` (``micro_f1``, ``qwk``, ...) for one task's responses,
    through their count forms (the same values as :mod:`scoring_lab.metrics`, without scikit-learn's
    per-call checks: for tables over many plans), plus n_test."""
    return {**{n: count_metric(kind, n, n_classes)(y_true, y_pred) for n in names}, "n_test": int(len(y_true))}


@dataclass(frozen=True)
class Paired:
    """Two models' per-response counts of ``metric`` on the same responses, in strata.

    ``counts_a[s]``, ``counts_b[s]``: (n_s, c) for stratum ``s`` (seeds already summed per response);
    ``combine``: the claim's figure from the strata's values: ``mean`` (plain), ``weighted`` (by n_s)
    or ``pooled`` (one value of the counts summed over strata); ``seeds``: how many seeds were summed
    for A and for B (every metric here is a ratio of counts, so A and B may have different numbers);
    ``stratum_metrics``: one metric per stratum where the strata need their own forms of ``metric`` (the
    multi-class metrics of tasks with different numbers of classes), else empty (``metric`` throughout)."""

    metric: CountMetric
    counts_a: tuple
    counts_b: tuple
    strata: tuple
    combine: str = "mean"
    seeds: tuple = (1, 1)
    stratum_metrics: tuple = ()

    def __post_init__(self):
        if self.combine not in COMBINE:
            raise ValueError(f"combine must be one of {', '.join(COMBINE)}, got {self.combine!r}")
        if not self.counts_a or len(self.counts_a) != len(self.counts_b) or len(self.counts_a) != len(self.strata):
            raise ValueError("a paired comparison needs the same strata, at least one, for A and B")
        for s, a, b in zip(self.strata, self.counts_a, self.counts_b):
            if a.shape != b.shape or len(a) == 0:
                raise ValueError(f"paired predictions must cover the same responses (stratum {s!r}: "
                                 f"{len(a)} and {len(b)} rows)")
        if self.stratum_metrics and (len(self.stratum_metrics) != len(self.strata) or self.combine == "pooled"):
            raise ValueError("per-stratum metrics need one metric per stratum, and strata whose values are "
                             "combined (mean or weighted), not pooled")

    @property
    def n(self) -> int:
        """Test responses the comparison rests on (each counted once, whatever the seeds)."""
        return int(sum(len(a) for a in self.counts_a))

    def figure(self, sums: Sequence[np.ndarray]) -> np.ndarray:
        """The claim's figure from per-stratum count sums [(..., c)] -> (...)."""
        if self.combine == "pooled":
            return self.metric.value(sum(sums))
        metrics = self.stratum_metrics or (self.metric,) * len(sums)
        values = np.stack([m.value(s) for m, s in zip(metrics, sums)], axis=-1)
        w = np.array([len(a) for a in self.counts_a], dtype=float) if self.combine == "weighted" else \
            np.ones(len(sums))
        return values @ (w / w.sum())

    def values(self) -> tuple[float, float]:
        """(A's figure, B's figure) on every response."""
        return (float(self.figure([a.sum(0) for a in self.counts_a])),
                float(self.figure([b.sum(0) for b in self.counts_b])))

    def resampled(self, n_resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(A's figures, B's figures), each (n_resamples,), on the same paired resamples of the responses,
        drawn with replacement within each stratum (seeded; the draws depend only on the strata's sizes,
        ``n_resamples`` and ``seed``, so every comparison over the same responses shares them)."""
        draws = _draws(tuple(len(a) for a in self.counts_a), int(n_resamples), int(seed))
        sums = [(w @ np.hstack([a, b]), a.shape[1]) for w, a, b in zip(draws, self.counts_a, self.counts_b)]
        return self.figure([x[:, :c] for x, c in sums]), self.figure([x[:, c:] for x, c in sums])

    def resampled_differences(self, n_resamples: int, seed: int) -> np.ndarray:
        """(n_resamples,) figure(A) - figure(B) on paired resamples (see :meth:`resampled`)."""
        a, b = self.resampled(n_resamples, seed)
        return a - b

    def per_response(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-response scores (n,) of A and B for a mean-type metric (counts ``[score, weight]``): the
        input of an equivalence test; refused for a metric that is not a mean of per-response scores."""
        if self.metric.value not in (_share,):
            raise ValueError(f"{self.metric.name} is not a mean of per-response scores; use a bootstrap interval")
        a, b = np.concatenate(self.counts_a), np.concatenate(self.counts_b)
        return a[:, 0] / a[:, 1], b[:, 0] / b[:, 1]


_DRAWS: OrderedDict = OrderedDict()
_KEEP_DRAWS = 8


def _draws(sizes: tuple[int, ...], n_resamples: int, seed: int) -> list[np.ndarray]:
    """Multinomial resampling weights (n_resamples, n_s) per stratum, drawn in order from one generator
    seeded with ``seed``; the last few kept, since a chapter compares many pairs of models on the same
    responses (drawing them is most of a comparison's cost)."""
    key = (sizes, n_resamples, seed)
    if key not in _DRAWS:
        rng = np.random.default_rng(seed)
        _DRAWS[key] = [rng.multinomial(n, np.full(n, 1 / n), size=n_resamples).astype(float) for n in sizes]
        while len(_DRAWS) > _KEEP_DRAWS:
            _DRAWS.popitem(last=False)
    _DRAWS.move_to_end(key)
    return _DRAWS[key]


def _seed_counts(metric: CountMetric, y, preds) -> np.ndarray:
    """Counts (n, c) summed over seeds: ``preds`` one (n, ...) prediction or a list of them, one a seed."""
    preds = preds if isinstance(preds, (list, tuple)) else [preds]
    y = np.asarray(y)
    for p in preds:
        if len(np.asarray(p)) != len(y):
            raise ValueError(f"paired predictions must cover the same responses: {len(y)} labels, "
                             f"{len(np.asarray(p))} predictions")
    return sum(metric.counts(y, np.asarray(p)) for p in preds)


def pair(metric: CountMetric, samples, combine: str = "mean") -> Paired:
    """Two models' predictions on the same responses, as :class:`Paired`.

    ``samples``: one ``(y, preds_a, preds_b)`` or a dict ``stratum -> (y, preds_a, preds_b)``; ``y``
    (n, ...) truth, ``preds_x`` an (n, ...) prediction or a list of them, one per seed (pooled: counts
    summed per response). Every stratum needs the same numbers of seeds."""
    if not isinstance(samples, dict):
        samples = {"all": samples}
    counts_a, counts_b, seeds = [], [], set()
    for y, a, b in samples.values():
        seeds.add(tuple(len(x) if isinstance(x, (list, tuple)) else 1 for x in (a, b)))
        counts_a.append(_seed_counts(metric, y, a))
        counts_b.append(_seed_counts(metric, y, b))
    if len(seeds) > 1:
        raise ValueError(f"every stratum needs the same number of seeds, got {sorted(seeds)}")
    return Paired(metric, tuple(counts_a), tuple(counts_b), tuple(samples), combine, seeds.pop())
