"""Ordinal decoding of holistic scores: expected score and cut points tuned on validation for QWK.

A multi-class scorer trained with cross-entropy treats the scores 0..K-1 as
unordered names, and argmax decoding throws away what its probabilities say
about order (a response split between 1 and 3 is probably a 2). Ordinal
decoding keeps the trained model and changes the decision:

1. the expected score ``E[s] = sum_k k p_k`` of each response, a real number in [0, K-1];
2. K-1 increasing cut points ``c_1 < ... < c_{K-1}``: the predicted score is the
   number of cut points at or below ``E[s]``;
3. the cut points are tuned on the **validation** split to maximise quadratic
   weighted kappa (the ASAP metric), by coordinate ascent: each cut point in turn
   moves to the candidate (midpoints between sorted validation values, kept
   between its neighbours) that maximises QWK, until no move helps. Start: the
   plain rounding points 0.5, 1.5, ...

Cut points tuned per task rest on that task's validation split alone (60 to 110
responses on the benchmark) and can fit its noise. **Shared** cut points are
tuned once on the pooled validation responses of every task with the same score
range (the expected scores of different tasks live on the same 0..K-1 scale):
fewer free numbers for far more responses. Which decoding a model uses, argmax,
ordinal per task or ordinal shared, is chosen by k-fold cross-validation on the
validation split (:func:`cross_validated_qwk`), never on test.

Nothing here needs training, so the ordinal treatment costs seconds on top
of the scorer. scipy's general minimisers are not used because QWK is a step
function of the cut points (zero gradient almost everywhere); an exhaustive
search over candidates per coordinate is exact for one coordinate at a time.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..metrics import multiclass_report, quadratic_weighted_kappa


def expected_score(proba: np.ndarray) -> np.ndarray:
    """(n,) expected class ``sum_k k p_k`` of (n, K) class probabilities."""
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2:
        raise ValueError(f"class probabilities must have shape (n, K), got {proba.shape}")
    return proba @ np.arange(proba.shape[1], dtype=float)


def apply_cut_points(values: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """(n,) classes: how many of the increasing ``cuts`` (K-1,) lie at or below each value."""
    return np.searchsorted(np.asarray(cuts, dtype=float), np.asarray(values, dtype=float), side="right")


def _qwk_counts(y: np.ndarray, pred: np.ndarray, k: int) -> float:
    """QWK of classes in 0..k-1 from the confusion matrix in numpy: the same number as
    :func:`scoring_lab.metrics.quadratic_weighted_kappa` (1.0 when nothing can disagree), about
    50 times faster, for the tens of thousands of trials of :func:`tune_cut_points`."""
    observed = np.bincount(y * k + pred, minlength=k * k).reshape(k, k).astype(float)
    weights = (np.arange(k)[:, None] - np.arange(k)[None, :]) ** 2
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / len(y)
    chance = float((weights * expected).sum())
    return 1.0 if chance == 0 else 1.0 - float((weights * observed).sum()) / chance


def tune_cut_points(values: np.ndarray, y: np.ndarray, n_classes: int, max_rounds: int = 20) -> np.ndarray:
    """(K-1,) increasing cut points maximising QWK of ``apply_cut_points(values, cuts)`` against ``y``.

    values: (n,) real-valued scores on the 0..K-1 scale (e.g. :func:`expected_score`) of validation responses
    y:      (n,) their true classes
    Deterministic; ties keep the current cut point.
    """
    values, y = np.asarray(values, dtype=float), np.asarray(y)
    if len(values) != len(y) or len(y) == 0:
        raise ValueError(f"need as many values as classes, and some: got {len(values)} and {len(y)}")
    y = y.astype(int)
    k = max(n_classes, int(y.max()) + 1)

    def qwk(c):
        return _qwk_counts(y, apply_cut_points(values, c), k)

    cuts = np.arange(n_classes - 1, dtype=float) + 0.5
    u = np.unique(values)
    candidates = np.unique(np.concatenate([(u[1:] + u[:-1]) / 2, [u[0] - 1e-6, u[-1] + 1e-6], cuts]))
    best = qwk(cuts)
    for _ in range(max_rounds):
        improved = False
        for j in range(len(cuts)):
            low = cuts[j - 1] if j > 0 else -np.inf
            high = cuts[j + 1] if j + 1 < len(cuts) else np.inf
            for c in candidates[(candidates > low) & (candidates < high)]:
                trial = cuts.copy()
                trial[j] = c
                q = qwk(trial)
                if q > best + 1e-12:
                    best, cuts, improved = q, trial, True
        if not improved:
            break
    return cuts


@dataclass
class OrdinalDecoder:
    """Expected-score decoding with cut points tuned on validation (see the module doc).

    cuts:    (K-1,) increasing cut points on the expected-score scale
    val_qwk: QWK on the validation split with these cut points
    """

    cuts: np.ndarray
    val_qwk: float

    @classmethod
    def fit(cls, val_proba: np.ndarray, val_y: np.ndarray) -> "OrdinalDecoder":
        """Tune the cut points on validation probabilities (n, K) and true classes (n,)."""
        values = expected_score(val_proba)
        cuts = tune_cut_points(values, val_y, val_proba.shape[1])
        return cls(cuts, quadratic_weighted_kappa(val_y, apply_cut_points(values, cuts)))

    def predict(self, proba: np.ndarray) -> np.ndarray:
        """(n,) classes of (n, K) class probabilities."""
        return apply_cut_points(expected_score(proba), self.cuts)


ARGMAX, PER_TASK, SHARED = "argmax", "ordinal, per task", "ordinal, shared"
DECODINGS = (ARGMAX, PER_TASK, SHARED)  # in this order of preference on ties: the simpler first
SCOPES = {PER_TASK: "task", SHARED: "shared"}


def fit_decoders(val_proba: dict[str, np.ndarray], val_y: dict[str, np.ndarray],
                 scope: str = "task") -> dict[str, OrdinalDecoder]:
    """One decoder per task, from validation probabilities {task: (n, K)} and classes {task: (n,)}.

    scope "task": each task's cut points tuned on its own responses; "shared": one set of cut
    points per score range K, tuned on the pooled responses of all tasks with that K.
    ``val_qwk`` is always the task's own validation QWK.
    """
    if scope not in ("task", "shared"):
        raise ValueError(f"scope must be 'task' or 'shared', got {scope!r}")
    for name, p in val_proba.items():
        if len(p) == 0:
            raise ValueError(f"task {name!r} has no validation responses to tune the cut points on")
    if scope == "task":
        return {n: OrdinalDecoder.fit(val_proba[n], val_y[n]) for n in val_proba}
    out = {}
    for k in sorted({p.shape[1] for p in val_proba.values()}):
        group = [n for n, p in val_proba.items() if p.shape[1] == k]
        cuts = tune_cut_points(np.concatenate([expected_score(val_proba[n]) for n in group]),
                               np.concatenate([val_y[n] for n in group]), k)
        for n in group:
            out[n] = OrdinalDecoder(cuts, quadratic_weighted_kappa(
                val_y[n], apply_cut_points(expected_score(val_proba[n]), cuts)))
    return {n: out[n] for n in val_proba}


def _folds(y: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) fold of each response: shuffled, then dealt out class by class (stratified)."""
    fold = np.empty(len(y), dtype=int)
    start = 0
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        fold[idx] = (start + np.arange(len(idx))) % k
        start += len(idx)
    return fold


def cross_validated_qwk(val_proba: dict[str, np.ndarray], val_y: dict[str, np.ndarray], folds: int = 5,
                        seed: int = 0) -> pd.DataFrame:
    """How well each decoding generalises, estimated on validation data only.

    Each task's validation responses are split into ``folds`` stratified folds; for each fold the
    cut points are tuned (per task, or shared) on the other folds and decide the held-out one.
    Returns one row per decoding: decoding, val_cv_qwk (the QWK of the out-of-fold decisions per
    task, weighted by validation size), chosen (the highest; on ties the simpler decoding).
    """
    rng = np.random.default_rng(seed)
    fold = {n: _folds(y, folds, rng) for n, y in val_y.items()}
    decided = {d: {n: np.empty(len(y), dtype=int) for n, y in val_y.items()} for d in DECODINGS}
    for n, p in val_proba.items():
        decided[ARGMAX][n] = p.argmax(axis=1)
    for f in range(folds):
        train = {n: fold[n] != f for n in val_y}
        for decoding, scope in SCOPES.items():
            decoders = fit_decoders({n: val_proba[n][m] for n, m in train.items() if m.any()},
                                    {n: val_y[n][m] for n, m in train.items() if m.any()}, scope)
            for n, decoder in decoders.items():
                held = ~train[n]
                if held.any():
                    decided[decoding][n][held] = decoder.predict(val_proba[n][held])
    weight = np.array([len(y) for y in val_y.values()], dtype=float)
    rows = [{"decoding": d, "val_cv_qwk": float(np.dot(weight, [quadratic_weighted_kappa(y, decided[d][n])
                                                               for n, y in val_y.items()]) / weight.sum())}
            for d in DECODINGS]
    table = pd.DataFrame(rows)
    table["chosen"] = False
    table.loc[int(np.argmax(table["val_cv_qwk"].round(12).to_numpy())), "chosen"] = True  # first maximum
    return table


def decisions_on_test(models: dict[str, dict], tasks: dict) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """Every model's test decisions under every decoding, cut points tuned on its validation split.

    models: model name -> {task name -> a model with ``predict_proba(split)`` giving (n, K)}
    tasks:  the multi-class tasks, task name -> Task
    Returns {(model, decoding): {task: (n_test,) classes}} and, under the key ``("cuts", model)``,
    {(decoding, task): (K-1,) cut points}.
    """
    out: dict = {}
    for model_name, per_task in models.items():
        for name in per_task:
            task = tasks[name]
            if task.kind != "multiclass":
                raise ValueError(f"ordinal decoding needs multi-class tasks; {name!r} is {task.kind}")
            if len(task.val) == 0:
                raise ValueError(f"task {name!r} has no validation responses to tune the cut points on")
        val_proba = {n: m.predict_proba(tasks[n].val) for n, m in per_task.items()}
        val_y = {n: tasks[n].val.scores for n in per_task}
        decoders = {d: fit_decoders(val_proba, val_y, scope) for d, scope in SCOPES.items()}
        test_proba = {n: m.predict_proba(tasks[n].test) for n, m in per_task.items()}
        out[(model_name, ARGMAX)] = {n: p.argmax(axis=1) for n, p in test_proba.items()}
        for decoding in SCOPES:
            out[(model_name, decoding)] = {n: decoders[decoding][n].predict(p) for n, p in test_proba.items()}
        out[("cuts", model_name)] = {(d, n): decoders[d][n].cuts for d in SCOPES for n in per_task}
    return out


def decoding_comparison(models: dict[str, dict], tasks: dict, folds: int = 5, seed: int = 0) -> pd.DataFrame:
    """Test metrics of argmax and of both ordinal decodings, per task and model, with the choice
    made on validation.

    models: model name -> {task name -> a model with ``predict_proba(split)`` giving (n, K)}
    tasks:  the multi-class tasks, task name -> Task
    Returns a long table: task, model, decoding, accuracy, macro_f1, qwk, n_test, cut_points
    (tuned on each model's own validation probabilities), val_cv_qwk and chosen (from
    :func:`cross_validated_qwk`, the same for every task of a model).
    """
    decided = decisions_on_test(models, tasks)
    rows = []
    for model_name, per_task in models.items():
        val_proba = {n: m.predict_proba(tasks[n].val) for n, m in per_task.items()}
        cv = cross_validated_qwk(val_proba, {n: tasks[n].val.scores for n in per_task}, folds,
                                 seed).set_index("decoding")
        cuts = decided[("cuts", model_name)]
        for name in per_task:
            task = tasks[name]
            for decoding in DECODINGS:
                pred = decided[(model_name, decoding)][name]
                rows.append({"task": name, "model": model_name, "decoding": decoding,
                             **multiclass_report(task.test.scores, pred, task.n_classes),
                             "cut_points": "" if decoding == ARGMAX else " ".join(f"{c:.2f}" for c in
                                                                                 cuts[(decoding, name)]),
                             "val_cv_qwk": cv.loc[decoding, "val_cv_qwk"], "chosen": bool(cv.loc[decoding, "chosen"])})
    return pd.DataFrame(rows)


def qwk_difference(decided: dict, tasks: dict, a: tuple[str, str], b: tuple[str, str], n_boot: int = 2000,
                   seed: int = 0, level: float = 0.95) -> dict:
    """Test QWK of treatment ``a`` minus that of ``b`` (each weighted over tasks by test size), with a
    paired bootstrap interval.

    decided: :func:`decisions_on_test`; a, b: (model, decoding) keys of it.
    Each replicate resamples every task's test responses with replacement (within the task, the same
    rows for both treatments, so the comparison is paired) and recomputes both weighted QWKs. A
    hand-written resampler rather than ``scipy.stats.bootstrap``: that one resamples samples of equal
    length jointly and cannot stratify by task. Returns difference, low, high, share_above_zero.
    """
    rng = np.random.default_rng(seed)
    names = list(decided[a])
    y = {n: tasks[n].test.scores.astype(int) for n in names}
    k = {n: int(tasks[n].n_classes) for n in names}
    weight = np.array([len(y[n]) for n in names], dtype=float)

    def weighted(rows):
        qa = [_qwk_counts(y[n][r], decided[a][n][r].astype(int), k[n]) for n, r in zip(names, rows)]
        qb = [_qwk_counts(y[n][r], decided[b][n][r].astype(int), k[n]) for n, r in zip(names, rows)]
        return float(np.dot(weight, np.subtract(qa, qb)) / weight.sum())

    point = weighted([np.arange(len(y[n])) for n in names])
    draws = np.array([weighted([rng.integers(0, len(y[n]), len(y[n])) for n in names]) for _ in range(n_boot)])
    tail = (1 - level) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return {"difference": point, "low": float(low), "high": float(high),
            "share_above_zero": float((draws > 0).mean())}


def decoding_summary(long: pd.DataFrame, metric: str = "qwk") -> pd.DataFrame:
    """Per model and decoding: the validation estimate that made the choice, ``metric`` on test
    (weighted by test size) and whether it was chosen. One row per model and decoding."""
    def test_mean(g):
        return float(np.average(g[metric], weights=g["n_test"]))
    out = (long.groupby(["model", "decoding"], sort=False)
           .apply(lambda g: pd.Series({"val_cv_qwk": g["val_cv_qwk"].iloc[0], f"test_{metric}": test_mean(g),
                                       "chosen": bool(g["chosen"].iloc[0])}), include_groups=False)
           .reset_index())
    return out


def decoding_table(long: pd.DataFrame, metric: str = "qwk") -> pd.DataFrame:
    """Wide view of :func:`decoding_comparison`: one row per task plus ``weighted mean`` (by test size),
    one column ``<model>, <decoding>`` per model and decoding, holding ``metric``."""
    long = long.assign(column=long["model"] + ", " + long["decoding"])
    order = list(dict.fromkeys(long["column"]))
    wide = long.pivot(index="task", columns="column", values=metric)[order]
    wide = wide.reindex(list(dict.fromkeys(long["task"])))
    n = long.drop_duplicates("task").set_index("task")["n_test"].reindex(wide.index)
    wide.loc["weighted mean"] = (wide.mul(n, axis=0).sum() / n.sum()).to_numpy()
    wide.columns.name = None
    return wide.reset_index()


def verdict(summary: pd.DataFrame, plain: str, ordinal_heads: tuple[str, ...], baseline: str) -> dict:
    """The ordinal treatment chosen on validation, and how it fares on test.

    summary:       a :func:`decoding_summary`
    plain:         the model whose argmax is the plain treatment (a softmax head)
    ordinal_heads: models whose head is itself ordinal: every decoding of theirs is an ordinal treatment,
                   as are the ordinal decodings of ``plain``
    baseline:      compared through the decoding chosen for it on validation
    Returns the treatment (model, decoding) with the highest validation estimate, its test QWK, the plain
    argmax's and the baseline's, whether it is ahead of each, and the best candidate on test.
    """
    rows = summary.set_index(["model", "decoding"])
    candidates = [(m, d) for m, d in rows.index
                  if (m == plain and d != ARGMAX) or m in ordinal_heads]
    if not candidates:
        raise ValueError(f"no ordinal treatment in the summary: models {sorted(set(summary['model']))}")
    val = rows.loc[candidates, "val_cv_qwk"].round(12)
    chosen = val.index[int(np.argmax(val.to_numpy()))]
    best = rows.loc[candidates, "test_qwk"].idxmax()
    base = summary[(summary["model"] == baseline) & summary["chosen"]].iloc[0]
    out = {"model": chosen[0], "decoding": chosen[1], "val_cv_qwk": float(rows.loc[chosen, "val_cv_qwk"]),
           "qwk": float(rows.loc[chosen, "test_qwk"]), "argmax_qwk": float(rows.loc[(plain, ARGMAX), "test_qwk"]),
           "baseline_decoding": str(base["decoding"]), "baseline_qwk": float(base["test_qwk"]),
           "best_on_test": f"{best[0]}, {best[1]}", "best_on_test_qwk": float(rows.loc[best, "test_qwk"])}
    out["ahead_of_argmax"] = out["qwk"] > out["argmax_qwk"]
    out["ahead_of_baseline"] = out["qwk"] > out["baseline_qwk"]
    return out


def verdict_margins(decided: dict, tasks: dict, v: dict, plain: str, baseline: str, n_boot: int = 2000,
                    seed: int = 0) -> pd.DataFrame:
    """The test margins behind a :func:`verdict` ``v``, each with its paired bootstrap interval
    (:func:`qwk_difference`): the chosen ordinal treatment against ``plain`` with argmax, and against
    ``baseline`` with the decoding chosen for it. Columns: comparison, difference, low, high,
    share_above_zero, clear (the interval excludes 0)."""
    chosen = (v["model"], v["decoding"])
    rows = []
    for label, other in ((f"{chosen[0]}, {chosen[1]} − {plain}, argmax", (plain, ARGMAX)),
                         (f"{chosen[0]}, {chosen[1]} − {baseline}, {v['baseline_decoding']}",
                          (baseline, v["baseline_decoding"]))):
        d = qwk_difference(decided, tasks, chosen, other, n_boot=n_boot, seed=seed)
        rows.append({"comparison": label, **d, "clear": bool(d["low"] > 0 or d["high"] < 0)})
    return pd.DataFrame(rows)
