"""The premise of GW-SMM, measured: does GW similarity between two tasks' feature clouds predict how much
merging their two scorers loses?

Every pair's merge loss on validation (:mod:`.pairwise`) is set beside what might predict it: the paper's
GW similarity, and as controls GW on the pre-trained encoder's features (what the clouds look like before
fine-tuning), the task descriptions' similarity, the cosine of the two task vectors, the planted families,
and two distances that see where the clouds lie (plain Wasserstein and fused GW, :mod:`.placed_distances`).
Each predictor is a closeness (a similarity; a distance d enters as the paper's S of d), so the premise
says its Spearman correlation with the loss is negative: the closer two tasks, the less merging loses.

The pairs share tasks (36 pairs of 9 tasks), so they are not independent: the interval of each Spearman
correlation comes from resampling tasks (a task drawn twice brings its pairs twice; pairs of a task with
itself are left out), not pairs. scipy's ``bootstrap`` resamples independent observations, so the few
lines of this resampling are written here.
"""
from __future__ import annotations

import itertools
import numpy as np
import pandas as pd
import torch
from scipy import stats

from .. import verdicts
from ..models.cache import code_version
from ..study_steps import TimedSteps
from . import gromov, placed_distances
from .compared_plans import Planner
from .distance_matrices import GWDistances, _features_digest
from .features import FeatureClouds
from .pairwise import PairwiseMerges
from .protocol import DESCRIPTIONS, StudySetup

PLACED_KIND = "placed-distances"
GW_OWN = "GW (the paper's: own scorers)"
GW_CG_OWN = "GW, conditional gradient (own scorers)"
GW_CG_PRETRAINED = "GW, conditional gradient (pre-trained encoder)"
WASSERSTEIN = "Wasserstein, ot.emd2 (own scorers)"
FUSED = "fused GW, alpha 0.5 (own scorers)"
DESCRIPTION = "task descriptions (MiniLM cosine)"
TASK_VECTORS = "task-vector cosine"
FAMILY = "same planted family"
FUSED_ALPHA = 0.5
ORACLE = "oracle (pairwise losses)"
MIN_TASKS = 4   # 6 pairs: the fewest over which a rank correlation and a resampling of tasks mean anything


def spearman_by_tasks(closeness: np.ndarray, loss: np.ndarray, n_resamples: int = 2000,
                      seed: int = 0) -> dict:
    """Spearman's rho between two (T, T) symmetric matrices over their T(T-1)/2 pairs, with a 95% percentile
    interval from resampling the T tasks with replacement (every pair of two different drawn tasks;
    resamples where either is constant are skipped and counted).

    Returns rho, ci_low, ci_high, n_pairs, n_tasks, resamples_used."""
    x, y = np.asarray(closeness, float), np.asarray(loss, float)
    t = len(x)
    iu = np.triu_indices(t, 1)
    if len(iu[0]) < 3 or np.ptp(x[iu]) == 0 or np.ptp(y[iu]) == 0:   # no ranks to correlate
        return {"rho": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n_pairs": len(iu[0]), "n_tasks": t,
                "resamples_used": 0}
    rho = float(stats.spearmanr(x[iu], y[iu]).statistic)
    draws = np.random.default_rng(seed).integers(0, t, (n_resamples, t))
    values = _row_spearman(x, y, draws[:, iu[0]], draws[:, iu[1]])
    values = values[np.isfinite(values)]
    lo, hi = (float(v) for v in np.percentile(values, [2.5, 97.5])) if len(values) else (np.nan, np.nan)
    return {"rho": rho, "ci_low": lo, "ci_high": hi, "n_pairs": len(iu[0]), "n_tasks": t,
            "resamples_used": len(values)}


def _row_spearman(x: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(B,) Spearman's rho of each row's pairs (x[a, b], y[a, b]) for (B, P) task positions ``a``, ``b``,
    leaving out the pairs of a task with itself; NaN for a row with fewer than 3 such pairs or a constant
    side. Average ranks for ties, as scipy's spearmanr."""
    keep = a != b
    xs, ys = np.where(keep, x[a, b], np.nan), np.where(keep, y[a, b], np.nan)
    rx = stats.rankdata(xs, axis=1, nan_policy="omit")
    ry = stats.rankdata(ys, axis=1, nan_policy="omit")
    with np.errstate(invalid="ignore", divide="ignore"):
        dx = rx - np.nanmean(rx, axis=1, keepdims=True)
        dy = ry - np.nanmean(ry, axis=1, keepdims=True)
        rho = np.nansum(dx * dy, axis=1) / np.sqrt(np.nansum(dx ** 2, axis=1) * np.nansum(dy ** 2, axis=1))
    rho[keep.sum(axis=1) < 3] = np.nan
    return rho


def premise_verdict(rho: float, ci_low: float, ci_high: float, n_pairs: int, n_tasks: int,
                    n_resamples: int, seed: int) -> verdicts.Verdict:
    """"Closeness predicts a smaller merge loss": ``held`` when the 95% interval of Spearman's rho lies at
    or below 0, ``not held`` when it lies above 0, else ``inconclusive``; ``not tested`` when there is no
    correlation (a predictor or the loss the same for every pair)."""
    if not (np.isfinite(rho) and np.isfinite(ci_low) and np.isfinite(ci_high)):
        return verdicts.Verdict(verdicts.NOT_TESTED, rho, ci_low, ci_high, n_pairs,
                                "none: the predictor or the loss is the same for every pair",
                                n_text=f"{n_pairs} pairs of {n_tasks} tasks")
    test = (f"Spearman's rho over the {n_pairs} task pairs, 95% interval from resampling the {n_tasks} tasks "
            f"({n_resamples} resamples, seed {seed}); held when the interval lies at or below 0")
    return verdicts.band(rho, ci_low, ci_high, n_pairs, test, at_most=0.0,
                         n_text=f"{n_pairs} pairs of {n_tasks} tasks")


class Premise(TimedSteps):
    """The pairwise merge losses against GW similarity and its controls, made once per run."""

    def __init__(self, setup: StudySetup, clouds: FeatureClouds, gw: GWDistances, planner: Planner,
                 pairwise: PairwiseMerges):
        self.setup, self.clouds, self.gw, self.planner, self.pairwise = setup, clouds, gw, planner, pairwise
        self.timing, self._memo = setup.timing, {}

    def predictors(self) -> dict[str, pd.DataFrame]:
        """{name: (T, T) closeness}: the paper's GW similarity first, then the controls this run can make."""
        return self._once("predictors", self._predictors)

    def _predictors(self) -> dict[str, pd.DataFrame]:
        s = self.setup
        cg = gromov.CONDITIONAL_GRADIENT
        out = {GW_OWN: self.gw.similarity()}
        if s.settings.method != cg:
            out[GW_CG_OWN] = self.gw.similarity(cg)
        pre = self.gw.matrix(self.clouds.pretrained_features(), self.gw.solver_settings(cg),
                             "GW distances (pre-trained encoder, conditional gradient)")
        out[GW_CG_PRETRAINED] = gromov.similarity(pre)
        feats = self.clouds.features()
        out[WASSERSTEIN] = gromov.similarity(self._placed(placed_distances.WASSERSTEIN, feats))
        out[FUSED] = gromov.similarity(self._placed(placed_distances.FUSED_GW, feats))
        if any(e.name == DESCRIPTIONS for e in self.planner.plans()):
            out[DESCRIPTION] = self.planner.description_similarity()
        out[TASK_VECTORS] = self._timed("task-vector cosines", self.task_vector_cosine)
        families = s.families()
        if families is not None:
            fam = {t: f for f, ts in families.items() for t in ts}
            out[FAMILY] = pd.DataFrame([[float(fam[a] == fam[b]) for b in s.names] for a in s.names],
                                       index=s.names, columns=s.names)
        return out

    def _placed(self, method: str, features: dict[str, np.ndarray]) -> pd.DataFrame:
        """(T, T) Wasserstein or fused GW distances over the clouds, cached by their content."""
        s = self.setup
        inputs = {"features": _features_digest(features), "method": method, "alpha": FUSED_ALPHA,
                  "max_points": s.settings.max_points, "seed": s.seed, "code": code_version(placed_distances)}

        def produce(folder):
            if method == placed_distances.WASSERSTEIN:
                d = placed_distances.pairwise_wasserstein(features, s.settings.max_points, s.seed)
            else:
                d = placed_distances.pairwise_fused_gw(features, FUSED_ALPHA, s.settings.max_points, s.seed)
            d.to_csv(folder / "distance.csv")

        d, _ = self._timed(f"distances ({method})", lambda: s.cache.get_or_compute(
            PLACED_KIND, inputs, produce, lambda art: pd.read_csv(art.file("distance.csv"), index_col=0)))
        return d

    def task_vector_cosine(self) -> pd.DataFrame:
        """(T, T) cosine between the tasks' task vectors (every encoder parameter the scorer changed,
        flattened: theta_t - theta_0)."""
        s = self.setup
        base = s.evaluator.upper.base
        rows = []
        for t in s.names:
            enc = s.evaluator.parts(t).encoder
            rows.append(torch.cat([(enc[n].float() - base[n].float()).ravel() for n in sorted(enc)]))
        v = torch.stack(rows).double()                                     # (T, P)
        v = v / v.norm(dim=1, keepdim=True).clamp_min(1e-300)
        return pd.DataFrame((v @ v.T).numpy(), index=s.names, columns=s.names)

    def pairs(self) -> pd.DataFrame:
        """One row per task pair: task_a, task_b, loss (validation, the chosen TIES setting), then each
        predictor's closeness."""
        s = self.setup
        loss = self.pairwise.losses()
        rows = []
        for a, b in itertools.combinations(s.names, 2):
            rows.append({"task_a": a, "task_b": b, "loss": float(loss.loc[a, b]),
                         **{k: float(p.loc[a, b]) for k, p in self.predictors().items()}})
        return pd.DataFrame(rows)

    def correlations(self) -> pd.DataFrame:
        """Per predictor: rho (Spearman with the merge loss), ci_low, ci_high, n_pairs, n_tasks,
        resamples_used, verdict (:func:`premise_verdict`); no rows with fewer than :data:`MIN_TASKS` tasks."""
        def make():
            if len(self.setup.names) < MIN_TASKS:
                return pd.DataFrame(columns=["predictor", "rho", "ci_low", "ci_high", "n_pairs", "n_tasks",
                                             "resamples_used", "verdict"])
            s, c = self.setup, self.setup.profile.claims
            loss = self.pairwise.losses().to_numpy()
            rows = []
            for name, p in self.predictors().items():
                r = spearman_by_tasks(p.loc[s.names, s.names].to_numpy(), loss, c.n_resamples, c.seed)
                v = premise_verdict(r["rho"], r["ci_low"], r["ci_high"], r["n_pairs"], r["n_tasks"],
                                    c.n_resamples, c.seed)
                rows.append({"predictor": name, **r, "verdict": v.verdict})
            return pd.DataFrame(rows)
        return self._once("correlations", make)

    def verdict(self, predictor: str = GW_OWN) -> verdicts.Verdict:
        """The premise's verdict for one predictor (the paper's GW similarity by default)."""
        c = self.setup.profile.claims
        r = self.correlations().set_index("predictor").loc[predictor]
        return premise_verdict(r["rho"], r["ci_low"], r["ci_high"], int(r["n_pairs"]), int(r["n_tasks"]),
                               c.n_resamples, c.seed)
