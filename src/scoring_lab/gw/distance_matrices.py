"""GW distance matrices between the tasks' feature clouds (:mod:`scoring_lab.gw.gromov`) with the
profile's solver settings, each cached by the clouds' content, and the seconds each solve took."""
from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np
import pandas as pd

from ..models.cache import array_digest, code_version
from ..study_steps import TimedSteps
from . import gromov
from .features import FeatureClouds
from .protocol import StudySetup

DISTANCE_KIND = "gw-distances"


def _features_digest(arrays: dict[str, np.ndarray]) -> str:
    """A hash of {name: (n, H) features}: the names, then each cloud as float32 with its shape, in order."""
    return array_digest(np.array(list(arrays), dtype=str), *(np.asarray(a, dtype=np.float32) for a in arrays.values()))


class GWDistances(TimedSteps):
    """(T, T) GW distances and similarities between the tasks' clouds; ``solver_seconds`` holds, for
    each matrix asked for: step, method, responses, workers, seconds the solver took when it ran, pairs,
    and pairs_warned (the pairs whose solve gave a warning the checks let pass: an inner Sinkhorn loop at
    its limit while the coupling met its marginals)."""

    def __init__(self, setup: StudySetup, clouds: FeatureClouds):
        self.setup, self.clouds = setup, clouds
        self.timing, self._memo = setup.timing, {}
        self.solver_seconds: list[dict] = []

    def solver_settings(self, method: str | None = None, max_points: int | None = None) -> gromov.GWSettings:
        """The profile's GW solver settings, with ``method`` (default: the profile's) and ``max_points``."""
        s = self.setup.settings
        return gromov.GWSettings(method=method or s.method, epsilon=s.epsilon, max_iter=s.max_iter, tol=s.tol,
                                 sinkhorn_iter=s.sinkhorn_iter, max_points=max_points)

    def matrix(self, features: dict[str, np.ndarray], settings: gromov.GWSettings, step: str) -> pd.DataFrame:
        """(T, T) GW distances between ``features``' clouds, cached by their content and the settings; the
        seconds the solver took when it ran go to ``solver_seconds``."""
        workers = self.setup.settings.workers
        inputs = {"features": _features_digest(features), "settings": asdict(settings), "seed": self.setup.seed,
                  "code": code_version(gromov)}

        def produce(folder):
            t0 = time.perf_counter()
            result = gromov.pairwise_gw(features, settings, self.setup.seed, self.setup.progress, workers)
            result.distance.to_csv(folder / "distance.csv")
            result.warnings.to_csv(folder / "warnings.csv", index=False)
            (folder / "seconds.txt").write_text(f"{time.perf_counter() - t0:.3f}\n")

        def load(art):
            return (gromov.PairwiseGW(pd.read_csv(art.file("distance.csv"), index_col=0),
                                      pd.read_csv(art.file("warnings.csv"), dtype=str)),
                    float(art.file("seconds.txt").read_text()))

        (value, seconds), _ = self._timed(step, lambda: self.setup.cache.get_or_compute(DISTANCE_KIND, inputs,
                                                                                        produce, load))
        n = len(features)
        self.solver_seconds.append({"step": step, "method": settings.method,
                                    "responses": max(len(f) if settings.max_points is None else
                                                     min(len(f), settings.max_points) for f in features.values()),
                                    "workers": workers, "seconds": seconds, "pairs": n * (n - 1) // 2,
                                    "pairs_warned": value.pairs_warned})
        return value.distance

    def distances(self, method: str | None = None) -> pd.DataFrame:
        """(T, T) GW distances with the profile's solver (or ``method``), on the features."""
        method = method or self.setup.settings.method
        return self._once(("distances", method), lambda: self.matrix(
            self.clouds.features(), self.solver_settings(method), f"GW distances ({method})"))

    def similarity(self, method: str | None = None) -> pd.DataFrame:
        """(T, T) the paper's similarity S of :meth:`distances` (1 on the diagonal)."""
        return gromov.similarity(self.distances(method))

    def solver_table(self) -> pd.DataFrame:
        """Each distinct GW matrix solved: step, method, responses, workers, seconds (when it was solved),
        pairs, pairs_warned (summed over the matrices of a step, e.g. the bootstrap's)."""
        t = pd.DataFrame(self.solver_seconds)
        return t.groupby(["step", "method", "responses", "workers"], sort=False, as_index=False)[
            ["seconds", "pairs", "pairs_warned"]].sum() if len(t) else t
