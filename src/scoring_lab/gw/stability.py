"""How much the GW plan depends on how it was computed: the profile's solver against the non-entropic
(conditional-gradient) one, smaller nested subsamples of the responses against the chapter's sample, and
bootstrap resamples of each task's responses (conditional-gradient GW on each), with how often each merged
group comes back."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import adjusted_rand_score

from ..study_steps import TimedSteps
from . import gromov, merge_plans
from .distance_matrices import GWDistances
from .features import FeatureClouds
from .compared_plans import Planner
from .protocol import GW_PLAN, StudySetup


def _spearman(a, b) -> float:
    return float(stats.spearmanr(a, b).statistic)


class Stability(TimedSteps):
    """The solver, subsample and bootstrap checks of the GW plan (the bootstrap made once per run)."""

    def __init__(self, setup: StudySetup, clouds: FeatureClouds, gw: GWDistances, planner: Planner):
        self.setup, self.clouds, self.gw, self.planner = setup, clouds, gw, planner
        self.timing, self._memo = setup.timing, {}

    def _best_plan(self, similarity: pd.DataFrame) -> merge_plans.Plan:
        """The GW objective's plan over (T, T) ``similarity``, with the chapter's T' and group cap."""
        plan, _ = merge_plans.best_plan(similarity, self.setup.n_models, self.setup.settings.max_group_size)
        return plan

    def solver_agreement(self) -> dict:
        """The profile's solver against the conditional-gradient one: Spearman of the distances, same plan or
        not, and the conditional-gradient solver's plan (cg_plan)."""
        iu = np.triu_indices(len(self.setup.names), 1)
        a, b = self.gw.distances(), self.gw.distances(gromov.CONDITIONAL_GRADIENT)
        pa = self._best_plan(gromov.similarity(a))
        pb = self._best_plan(gromov.similarity(b))
        return {"spearman": _spearman(a.to_numpy()[iu], b.to_numpy()[iu]), "same_plan": merge_plans.same_plan(pa, pb),
                "cg_plan": pb}

    def subsample_effect(self) -> pd.DataFrame:
        """What subsampling does: conditional-gradient GW on nested subsamples of the features
        (:func:`~scoring_lab.gw.gromov.subsample_rows`: each smaller one inside the larger) against the full
        sample.

        Columns: responses (per task, at most), spearman (of the T(T-1)/2 distances with the full
        sample's), max_similarity_change, same_plan."""
        s = self.setup
        full = self.gw.distances(gromov.CONDITIONAL_GRADIENT)
        ref_plan = self._best_plan(gromov.similarity(full))
        iu = np.triu_indices(len(s.names), 1)
        largest = max(len(f) for f in self.clouds.features().values())
        rows = []
        for n in sorted(s.settings.subsample_sizes):
            if n >= largest:
                continue
            d = self.gw.matrix(self.clouds.features(), self.gw.solver_settings(gromov.CONDITIONAL_GRADIENT, n),
                               "subsample effect (conditional-gradient GW)")
            sim = gromov.similarity(d)
            plan = self._best_plan(sim)
            rows.append({"responses": n, "spearman": _spearman(d.to_numpy()[iu], full.to_numpy()[iu]),
                         "max_similarity_change": float(np.abs(sim - gromov.similarity(full)).to_numpy().max()),
                         "same_plan": merge_plans.same_plan(plan, ref_plan)})
        rows.append({"responses": largest, "spearman": 1.0, "max_similarity_change": 0.0, "same_plan": True})
        return pd.DataFrame(rows)

    def bootstrap(self) -> pd.DataFrame:
        """One row per bootstrap resample (conditional-gradient GW on each task's responses drawn with
        replacement): replicate, plan, same_as_cg_plan, groups (the merged ones), ari_families (when known)."""
        def run_all():
            s = self.setup
            feats, rows = self.clouds.features(), []
            families = s.families()
            truth = merge_plans.plan_labels(tuple(tuple(g) for g in families.values()), s.names) if families else None
            ref = self.solver_agreement()["cg_plan"]
            for b in range(s.settings.bootstrap):
                rng = np.random.default_rng([s.seed, b])
                resampled = {t: f[rng.integers(0, len(f), len(f))] for t, f in feats.items()}
                d = self.gw.matrix(resampled, self.gw.solver_settings(gromov.CONDITIONAL_GRADIENT),
                                   "bootstrap (conditional-gradient GW)")
                plan = self._best_plan(gromov.similarity(d))
                row = {"replicate": b + 1, "plan": merge_plans.format_plan(plan),
                       "same_as_cg_plan": merge_plans.same_plan(plan, ref), "groups": [g for g in plan if len(g) > 1]}
                if truth is not None:
                    row["ari_families"] = adjusted_rand_score(truth, merge_plans.plan_labels(plan, s.names))
                rows.append(row)
            return pd.DataFrame(rows)
        return self._once("bootstrap", run_all)

    def group_frequencies(self, boot: pd.DataFrame) -> pd.DataFrame:
        """How often each merged group appears across the bootstrap plans, and whether the GW plan has it."""
        counts: dict[tuple, int] = {}
        for groups in boot["groups"]:
            for g in groups:
                counts[tuple(g)] = counts.get(tuple(g), 0) + 1
        in_plan = {tuple(g) for g in merge_plans.merged_groups(self.planner.plan(GW_PLAN))}
        rows = [{"group": ", ".join(g), "share": c / max(len(boot), 1), "in_gw_plan": g in in_plan}
                for g, c in sorted(counts.items(), key=lambda x: -x[1])]
        for g in sorted(in_plan - set(counts)):
            rows.append({"group": ", ".join(g), "share": 0.0, "in_gw_plan": True})
        return pd.DataFrame(rows, columns=["group", "share", "in_gw_plan"])
