"""Gromov-Wasserstein distances between tasks' feature clouds and their similarities (GW-SMM).

The GW-SMM paper (section 2) compares two tasks by the geometry of their responses'
features, each under its own fine-tuned model: for clouds X (n, d) and Y (m, d'),
intra-cloud Euclidean distance matrices C_X (n, n) and C_Y (m, m) and uniform weights,

    GW(X, Y) = min over couplings pi of  sum_{i,j,k,l} (C_X[i,k] - C_Y[j,l])^2 pi[i,j] pi[k,l]

solved with POT (``ot.gromov``): entropic GW (Sinkhorn projections, the paper's
solver, :data:`ENTROPIC`) or non-entropic GW by conditional gradient
(:data:`CONDITIONAL_GRADIENT`, POT's ``gromov_wasserstein2``). GW is a non-convex quadratic
problem: the conditional-gradient solver is a local method, started from the independent
coupling p q^T, so its value is the loss at a stationary point near that start, an upper bound
on the GW distance, not its exact minimum; neither solver is exact.
Each cost matrix is divided by its largest entry (:func:`cost_matrix`), so a cloud's
overall scale (which differs from model to model) does not count, only its shape.
A result whose coupling misses its marginals, is not finite, or whose solver stopped
at its iteration limit without converging is an error (:class:`GWError`), never a number; an
entropic solve whose inner Sinkhorn loop hit its limit while the coupling still met its
marginals is kept, and its warning counted (:class:`PairwiseGW`).

Similarity (the paper's section 2.2): S = 1 - (d - d_min) / (d_max - d_min) over the
off-diagonal distances (:func:`similarity`); merge plans over it are in :mod:`scoring_lab.gw.merge_plans`.
"""
from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field


import numpy as np
import ot
import pandas as pd
from scipy.spatial.distance import cdist
from tqdm.auto import tqdm

ENTROPIC, CONDITIONAL_GRADIENT = "entropic", "conditional-gradient"
METHODS = (ENTROPIC, CONDITIONAL_GRADIENT)
LABELS = {ENTROPIC: "entropic GW (Sinkhorn projections)",
          CONDITIONAL_GRADIENT: "non-entropic GW (conditional gradient, local)"}
CG_TOL = 1e-9   # the conditional-gradient solver's relative and absolute tolerance on the change of its loss


class GWError(ValueError):
    """A GW computation that cannot give a trustworthy number (bad input, no convergence, broken coupling)."""


@dataclass(frozen=True)
class GWSettings:
    """How GW distances are computed.

    method:       "entropic" (the paper's) or "conditional-gradient" (non-entropic, local)
    epsilon:      entropic regularisation, on costs scaled to [0, 1]
    max_iter:     outer iterations of either solver
    tol:          the entropic solver's stopping tolerance on the change of the coupling
    sinkhorn_iter: the entropic solver's inner Sinkhorn iterations per projection (POT's numItermax)
    marginal_tol: the largest allowed |row or column sum of the coupling - its weight|, relative to the weight
    max_points:   responses per task (a seeded subsample when a task has more); None: all
    """

    method: str = ENTROPIC
    epsilon: float = 5e-3
    max_iter: int = 1000
    tol: float = 1e-9
    sinkhorn_iter: int = 5000
    marginal_tol: float = 1e-3
    max_points: int | None = None

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"GW method must be one of {METHODS}, got {self.method!r}")
        if self.epsilon <= 0 or self.max_iter < 1 or self.sinkhorn_iter < 1 or self.tol <= 0 or self.marginal_tol <= 0:
            raise ValueError("GW settings: epsilon, tol and marginal_tol must be > 0, max_iter and sinkhorn_iter >= 1")
        if self.max_points is not None and self.max_points < 2:
            raise ValueError(f"GW settings: max_points must be >= 2 or None, got {self.max_points}")


@dataclass
class GWResult:
    """distance: the GW value; coupling: (n, m); iterations: outer iterations run; marginal_error: the
    largest relative deviation of the coupling's row and column sums from the uniform weights;
    solver_warnings: what POT warned of that the marginal check let pass (an inner Sinkhorn loop that
    hit its limit while the coupling still met its marginals)."""

    distance: float
    coupling: np.ndarray
    iterations: int
    marginal_error: float
    solver_warnings: list[str] = field(default_factory=list)   # e.g. inner Sinkhorn loops that hit their limit


def check_features(features: np.ndarray, name: str = "features") -> np.ndarray:
    """(n, d) finite float features with n >= 2; an error names the task and the first bad rows."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise GWError(f"{name}: features must be an (n, d) array, got shape {x.shape}")
    if x.shape[0] < 2:
        raise GWError(f"{name}: GW needs at least 2 responses, got {x.shape[0]}")
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if len(bad):
        raise GWError(f"{name}: {len(bad)} response(s) have NaN or infinite features, rows {bad[:10].tolist()}")
    return x


def subsample_rows(n: int, max_points: int | None, seed: int = 0) -> np.ndarray:
    """Positions of at most ``max_points`` of ``n`` rows, drawn without replacement (seeded), in order: the
    first ``max_points`` of one seeded permutation of the ``n``, so with the same seed a smaller subsample
    lies inside every larger one (nested)."""
    if max_points is None or n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:max_points])


def subsample(features: np.ndarray, max_points: int | None, seed: int = 0) -> np.ndarray:
    """At most ``max_points`` rows of (n, d) ``features`` (:func:`subsample_rows`)."""
    return features[subsample_rows(len(features), max_points, seed)]


def cost_matrix(features: np.ndarray, name: str = "features") -> np.ndarray:
    """(n, n) Euclidean distances between the rows of (n, d) ``features``, divided by the largest.

    A cloud of identical points has no largest distance: its matrix is all zeros (GW to it then
    measures how spread out the other cloud is)."""
    x = check_features(features, name)
    c = cdist(x, x)
    top = c.max()
    return c / top if top > 0 else c


def gw_distance(c1: np.ndarray, c2: np.ndarray, settings: GWSettings = GWSettings(), pair: str = "") -> GWResult:
    """GW between two clouds given their (n, n) and (m, m) cost matrices, with uniform weights."""
    n, m = len(c1), len(c2)
    p, q = np.full(n, 1 / n), np.full(m, 1 / m)
    where = f" ({pair})" if pair else ""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value, log, iterations = _solve(c1, c2, p, q, settings, where)
    said = sorted({str(w.message).split(".")[0] for w in caught})
    if any("numerical errors" in m or "failed" in m for m in said):
        raise GWError(f"GW{where}: POT reports {'; '.join(said)}; with entropic GW, raise epsilon")
    coupling = np.asarray(log["T"], dtype=np.float64)
    value = float(value)
    if not np.isfinite(value) or not np.isfinite(coupling).all():
        raise GWError(f"GW{where} gave a non-finite result (distance {value}); with entropic GW, raise epsilon")
    marginal_error = float(max(np.abs(coupling.sum(axis=1) - p).max() * n, np.abs(coupling.sum(axis=0) - q).max() * m))
    if marginal_error > settings.marginal_tol:
        raise GWError(f"GW{where}: the coupling misses its marginals by {marginal_error:.2e} (relative) > "
                      f"{settings.marginal_tol:.0e}; the solver did not reach a transport plan")
    return GWResult(max(value, 0.0), coupling, int(iterations), marginal_error, said)


def _solve(c1, c2, p, q, settings: GWSettings, where: str):
    """(value, POT's log with the coupling under "T", outer iterations); raises when the outer loop
    stopped at its limit."""
    if settings.method == ENTROPIC:
        value, log = ot.gromov.entropic_gromov_wasserstein2(c1, c2, p, q, "square_loss", epsilon=settings.epsilon,
                                                            max_iter=settings.max_iter, tol=settings.tol, log=True,
                                                            numItermax=settings.sinkhorn_iter)
        err = log.get("err", [])
        iterations = 10 * len(err)   # POT records the error every 10 iterations
        if iterations >= settings.max_iter and (not err or err[-1] > settings.tol):
            raise GWError(f"entropic GW{where} did not converge in {settings.max_iter} iterations (last change "
                          f"{err[-1] if err else float('nan'):.2e} > tol {settings.tol:.0e}); raise max_iter or epsilon")
    else:
        value, log = ot.gromov.gromov_wasserstein2(c1, c2, p, q, "square_loss", max_iter=settings.max_iter,
                                                   tol_rel=CG_TOL, tol_abs=CG_TOL, log=True)
        if log.get("warning"):
            raise GWError(f"conditional-gradient GW{where}: the inner transport problem stopped early "
                          f"({log['warning']})")
        losses = [float(x) for x in log.get("loss", [])]
        iterations = len(losses) - 1
        if iterations >= settings.max_iter and not cg_converged(losses):
            raise GWError(f"conditional-gradient GW{where} did not converge in {settings.max_iter} iterations (last "
                          f"change {abs(losses[-1] - losses[-2]):.2e}); raise max_iter")
    return value, log, iterations


def cg_converged(losses: list[float]) -> bool:
    """Whether the conditional-gradient solver's last step met its stopping rule (POT's: a relative or
    absolute change of the loss below :data:`CG_TOL`), given its loss after each iteration."""
    if len(losses) < 2:
        return True
    delta = abs(losses[-1] - losses[-2])
    return delta < CG_TOL or (losses[-1] != 0 and delta / abs(losses[-1]) < CG_TOL)


@dataclass
class PairwiseGW:
    """GW between every pair of tasks: ``distance`` (T, T), symmetric, 0 on the diagonal; ``warnings``, one
    row per pair and distinct warning its solve gave that the checks let pass (task_a, task_b, warning)."""

    distance: pd.DataFrame
    warnings: pd.DataFrame

    @property
    def pairs_warned(self) -> int:
        """How many task pairs' solves warned."""
        return int(len(self.warnings.drop_duplicates(["task_a", "task_b"])))


WARNING_COLUMNS = ["task_a", "task_b", "warning"]


def pairwise_distances(features: dict[str, np.ndarray], settings: GWSettings = GWSettings(), seed: int = 0,
                       progress: bool = True, workers: int = 1) -> pd.DataFrame:
    """(T, T) symmetric GW distances between the tasks' clouds (task names as index and columns), the
    diagonal 0 by definition (:func:`pairwise_gw`'s distances)."""
    return pairwise_gw(features, settings, seed, progress, workers).distance


def pairwise_gw(features: dict[str, np.ndarray], settings: GWSettings = GWSettings(), seed: int = 0,
                progress: bool = True, workers: int = 1) -> PairwiseGW:
    """GW between every pair of the tasks' clouds, with the warnings each solve gave. Each task's cloud is
    subsampled to ``settings.max_points`` first; ``workers`` > 1 solves the pairs in that many processes
    (same numbers)."""
    names = list(features)
    costs = {t: cost_matrix(subsample(check_features(features[t], t), settings.max_points, seed), t) for t in names}
    pairs = list(itertools.combinations(names, 2))
    bar = tqdm(total=len(pairs), desc=f"GW ({settings.method})", unit="pair", disable=not progress)
    if workers > 1 and len(pairs) > 1:
        from joblib import Parallel, delayed

        jobs = (delayed(_pair_distance)(costs[a], costs[b], settings, f"{a} vs {b}") for a, b in pairs)
        values = []
        for v in Parallel(n_jobs=workers, return_as="generator")(jobs):
            values.append(v)
            bar.update()
    else:
        values = []
        for a, b in pairs:
            values.append(_pair_distance(costs[a], costs[b], settings, f"{a} vs {b}"))
            bar.update()
    bar.close()
    d = pd.DataFrame(0.0, index=names, columns=names)
    said = []
    for (a, b), (v, warned) in zip(pairs, values):
        d.loc[a, b] = d.loc[b, a] = v
        said += [{"task_a": a, "task_b": b, "warning": w} for w in warned]
    return PairwiseGW(d, pd.DataFrame(said, columns=WARNING_COLUMNS))


def _pair_distance(c1: np.ndarray, c2: np.ndarray, settings: GWSettings, pair: str) -> tuple[float, list[str]]:
    r = gw_distance(c1, c2, settings, pair)
    return r.distance, r.solver_warnings


def similarity(distance: pd.DataFrame) -> pd.DataFrame:
    """The paper's S = 1 - (d - d_min) / (d_max - d_min) over the off-diagonal entries; the diagonal is 1.

    When every pair is at the same distance (two tasks have one pair only), no pair is less similar
    than another: every similarity is 1."""
    d = distance.to_numpy(dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1] or d.shape[0] < 2:
        raise ValueError(f"similarity needs a square matrix of at least 2 tasks, got {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError("the distance matrix has NaN or infinite entries")
    off = ~np.eye(len(d), dtype=bool)
    lo, hi = d[off].min(), d[off].max()
    s = np.ones_like(d) if hi == lo else 1 - (d - lo) / (hi - lo)
    np.fill_diagonal(s, 1.0)
    return pd.DataFrame(s, index=distance.index, columns=distance.columns)
