"""Distances between tasks' feature clouds that, unlike GW, see where the clouds lie: plain Wasserstein
(``ot.emd2``) and fused GW (``ot.gromov.fused_gromov_wasserstein2``).

GW compares the shapes of two clouds (each cloud's own distances between its points) and ignores where
they lie, so it can compare clouds in different spaces. When every scorer shares the frozen lower layers
and its top layers start from the same weights (the ``default`` profile), the clouds live in a comparable
space, and what GW gives up by being isometry-invariant can be measured beside it:

* ``wasserstein``: the squared 2-Wasserstein distance between the two clouds (uniform weights, squared
  Euclidean cost between their points): location and shape together;
* ``fused GW``: fused GW with ``alpha`` on the structure (each cloud's cost matrix scaled to its largest
  entry, as :func:`scoring_lab.gw.gromov.cost_matrix`) and ``1 - alpha`` on the features (Euclidean
  distances between the clouds' points, divided by one scale shared by every pair: the largest distance
  within any cloud, so that where a cloud lies still counts).

Both use the same seeded subsample of each cloud as GW (``max_points``).
"""
from __future__ import annotations

import itertools

import numpy as np
import ot
import pandas as pd
from scipy.spatial.distance import cdist

from .gromov import GWError, cg_converged, check_features, cost_matrix, subsample

WASSERSTEIN, FUSED_GW = "wasserstein", "fused-gw"


def _clouds(features: dict[str, np.ndarray], max_points: int | None, seed: int) -> dict[str, np.ndarray]:
    return {t: subsample(check_features(f, t), max_points, seed) for t, f in features.items()}


def _matrix(names: list[str], values: dict[tuple[str, str], float]) -> pd.DataFrame:
    d = pd.DataFrame(0.0, index=names, columns=names)
    for (a, b), v in values.items():
        d.loc[a, b] = d.loc[b, a] = v
    return d


def pairwise_wasserstein(features: dict[str, np.ndarray], max_points: int | None = None,
                         seed: int = 0) -> pd.DataFrame:
    """(T, T) squared 2-Wasserstein distances between the tasks' (n_t, H) clouds (exact network-simplex
    transport, ``ot.emd2``), 0 on the diagonal."""
    clouds = _clouds(features, max_points, seed)
    values = {}
    for a, b in itertools.combinations(clouds, 2):
        x, y = clouds[a], clouds[b]
        cost = ot.dist(x, y)   # squared Euclidean
        value, log = ot.emd2(np.full(len(x), 1 / len(x)), np.full(len(y), 1 / len(y)), cost, log=True)
        if log.get("warning"):
            raise GWError(f"Wasserstein ({a} vs {b}): the transport solver stopped early ({log['warning']})")
        values[(a, b)] = float(value)
    return _matrix(list(clouds), values)


def pairwise_fused_gw(features: dict[str, np.ndarray], alpha: float = 0.5, max_points: int | None = None,
                      seed: int = 0, max_iter: int = 1000) -> pd.DataFrame:
    """(T, T) fused GW between the tasks' (n_t, H) clouds (conditional gradient, POT), ``alpha`` on the
    structure and ``1 - alpha`` on the features; 0 on the diagonal. A solve stopped at ``max_iter`` without
    converging is an error."""
    if not 0 <= alpha <= 1:
        raise ValueError(f"fused GW: alpha must be in [0, 1], got {alpha}")
    clouds = _clouds(features, max_points, seed)
    costs = {t: cost_matrix(x, t) for t, x in clouds.items()}
    scale = max(float(cdist(x, x).max()) for x in clouds.values()) or 1.0
    values = {}
    for a, b in itertools.combinations(clouds, 2):
        x, y = clouds[a], clouds[b]
        m = cdist(x, y) / scale
        value, log = ot.gromov.fused_gromov_wasserstein2(
            m, costs[a], costs[b], np.full(len(x), 1 / len(x)), np.full(len(y), 1 / len(y)), "square_loss",
            alpha=alpha, max_iter=max_iter, log=True)
        losses = [float(v) for v in log.get("loss", [])]
        if len(losses) - 1 >= max_iter and not cg_converged(losses):
            raise GWError(f"fused GW ({a} vs {b}) did not converge in {max_iter} iterations; raise max_iter")
        if not np.isfinite(value):
            raise GWError(f"fused GW ({a} vs {b}) gave a non-finite value")
        values[(a, b)] = max(float(value), 0.0)
    return _matrix(list(clouds), values)
