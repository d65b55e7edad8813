"""Plans compared on the same footing: every plan merged with the chapter's one TIES setting, the GW plan
ranked among random plans with its own group sizes, every bootstrap plan evaluated (the GW plan's
performance as a distribution, not one draw), and the plans an oracle with the measured pairwise merge
losses would choose (:mod:`.premise`).

A plan's test figures are Table 3's (every task, test-size-weighted; a task left on its own keeps its
scorer), so two plans with the same group sizes merge the same number of tasks and differ only in which
tasks go together; ``drop_per_merged_task`` puts plans of different sizes side by side.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import verdicts
from ..metrics import weighted_mean
from ..study_steps import TimedSteps
from . import merge_plans
from .compared_plans import Planner, PlanEntry
from .merges import Merges
from .pairwise import split_metrics
from .premise import FAMILY, ORACLE, Premise
from .protocol import GW_PLAN, RANDOM, StudySetup
from .stability import Stability

ORACLE_SAME_SIZES = "oracle (pairwise losses; the GW plan's group sizes)"
FAMILIES_SAME_SIZES = "planted families (the GW plan's group sizes)"
BOOTSTRAP = "bootstrap"
ALPHA = 0.05


def rank_verdict(value: float, others, n_resamples: int = 2000, seed: int = 0, what: str = "") -> verdicts.Verdict:
    """One plan's figure ``value`` against ``others`` (the same figure of N random plans with its group
    sizes, on the same test responses): a Monte Carlo rank test. ``held`` when p = (1 + #others >= value) /
    (N + 1) <= 0.05 (with N = 30: above every one), ``not held`` when the mirror p (others <= value) is,
    else ``inconclusive``. Effect: ``value`` minus the others' mean, its 95% interval from resampling the
    random plans (which plans were drawn)."""
    others = np.asarray(others, dtype=float)
    n = len(others)
    if n == 0:
        raise ValueError("a rank needs at least one random plan")
    p_greater = (1 + int((others >= value).sum())) / (n + 1)
    p_less = (1 + int((others <= value).sum())) / (n + 1)
    verdict = verdicts.HELD if p_greater <= ALPHA else verdicts.NOT_HELD if p_less <= ALPHA else verdicts.INCONCLUSIVE
    rng = np.random.default_rng(seed)
    means = others[rng.integers(0, n, (n_resamples, n))].mean(axis=1)
    lo, hi = (float(value - x) for x in np.percentile(means, [97.5, 2.5]))
    rank = 1 + int((others > value).sum())
    test = (f"Monte Carlo rank test among {n} random plans with the same group sizes{what}: rank {rank} of {n + 1}, "
            f"one-sided p = {p_greater:.3f} (held at p <= {ALPHA:g}; the smallest p {n} plans allow is "
            f"{1 / (n + 1):.3f}); interval: the plan minus the random plans' mean, {n_resamples} resamples of the "
            f"plans drawn, seed {seed}")
    return verdicts.Verdict(verdict, float(value - others.mean()), lo, hi, n, test, p_greater,
                            n_text=f"{n} random plans; the same test responses for all")


def sample_verdict(values, others, n_resamples: int = 2000, seed: int = 0) -> verdicts.Verdict:
    """Plans drawn by a method (``values``: e.g. the bootstrap GW plans' figures) against random plans
    (``others``) on the same test responses: a two-sided Mann-Whitney U test (scipy). ``held`` when p < 0.05
    with the method's plans above, ``not held`` when p < 0.05 with them below, else ``inconclusive``.
    Effect: the difference of the means, its 95% interval from resampling both sets of plans."""
    from scipy import stats

    a, b = np.asarray(values, dtype=float), np.asarray(others, dtype=float)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("a comparison of two sets of plans needs at least two plans in each")
    p = float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    effect = float(a.mean() - b.mean())
    verdict = (verdicts.INCONCLUSIVE if p >= ALPHA else verdicts.HELD if effect > 0 else verdicts.NOT_HELD)
    rng = np.random.default_rng(seed)
    diffs = (a[rng.integers(0, len(a), (n_resamples, len(a)))].mean(axis=1)
             - b[rng.integers(0, len(b), (n_resamples, len(b)))].mean(axis=1))
    lo, hi = (float(x) for x in np.percentile(diffs, [2.5, 97.5]))
    test = (f"two-sided Mann-Whitney U test of {len(a)} against {len(b)} plans (p = {p:.3f}, held at p < "
            f"{ALPHA:g} with the first above); interval: difference of the means, {n_resamples} resamples of both "
            f"sets of plans, seed {seed}")
    return verdicts.Verdict(verdict, effect, lo, hi, len(a) + len(b), test, p,
                            n_text=f"{len(a)} and {len(b)} plans; the same test responses for all")


class PlanRanks(TimedSteps):
    """The plans beyond Table 3's named ones (random with the GW plan's sizes, bootstrap, oracle) and the
    figures of every plan at the chapter's TIES setting, made once per run."""

    def __init__(self, setup: StudySetup, planner: Planner, merges: Merges, premise: Premise,
                 stability: Stability):
        self.setup, self.planner, self.merges, self.premise, self.stability = setup, planner, merges, premise, stability
        self.timing, self._memo = setup.timing, {}

    def gw_sizes(self) -> tuple[int, ...]:
        return merge_plans.sizes(self.planner.plan(GW_PLAN))

    def extra_plans(self) -> list[PlanEntry]:
        """The oracle's plan over any group sizes the cap allows, the oracle's plan with the GW plan's sizes
        (when it differs), and the planted families packed into the GW plan's sizes (synthetic data)."""
        return self._once("extra", self._extra)

    def _extra(self) -> list[PlanEntry]:
        s = self.setup
        cap, k = s.settings.max_group_size, s.n_models
        losses = self.premise.pairwise.losses()
        free, _ = merge_plans.best_plan(-losses, k, cap)
        out = [PlanEntry(ORACLE, free, "oracle", "the smallest summed pairwise merge loss (validation), any sizes "
                         "the cap allows")]
        same, _ = merge_plans.best_plan(-losses, k, cap, self.gw_sizes())
        if not merge_plans.same_plan(same, free):
            out.append(PlanEntry(ORACLE_SAME_SIZES, same, "oracle", "the same, with the GW plan's group sizes"))
        fam = self.premise.predictors().get(FAMILY)
        if fam is not None:
            plan, _ = merge_plans.best_plan(fam, k, cap, self.gw_sizes())
            out.append(PlanEntry(FAMILIES_SAME_SIZES, plan, "planted", "the most same-family pairs inside groups "
                                 "with the GW plan's sizes"))
        return out

    def random_plans(self) -> list[PlanEntry]:
        """``gw.random_plans`` plans drawn uniformly (seeded) from every plan with the GW plan's group sizes
        other than the GW plan."""
        s = self.setup

        def make():
            plans, total = merge_plans.random_plans_like(s.names, self.planner.plan(GW_PLAN), s.settings.random_plans,
                                                         s.seed)
            self._memo["n_like"] = total
            return [PlanEntry(f"{RANDOM} {i + 1}", p, "random", f"uniform over the {total} plans with the GW plan's "
                              "group sizes") for i, p in enumerate(plans)]
        return self._once("random", make)

    def n_like(self) -> int:
        """How many plans have the GW plan's group sizes (the GW plan not counted)."""
        self.random_plans()
        return self._memo["n_like"]

    def bootstrap_plans(self) -> list[PlanEntry]:
        """The conditional-gradient GW plan of each bootstrap resample (:meth:`Stability.bootstrap`)."""
        s = self.setup
        boot = self.stability.bootstrap()
        return [PlanEntry(f"{BOOTSTRAP} {int(r.replicate)}", merge_plans.plan_from_groups(s.names, r.groups),
                          BOOTSTRAP, "conditional-gradient GW on a resample of each task's responses")
                for r in boot.itertuples()]

    def plan_metrics(self, plan: merge_plans.Plan) -> dict[str, float]:
        """A plan's test metrics at the chapter's TIES setting, test-size-weighted over every task as Table 3,
        and drop_per_merged_task: the headline metric's drop from pre-merge averaged over the tasks it
        merges (test-size-weighted; 0 when it merges none)."""
        s = self.setup
        reports = {t: m for g in plan for t, m in self._group_reports(g).items()}
        merged = [t for g in merge_plans.merged_groups(plan) for t in g]
        mean = weighted_mean(pd.DataFrame([{**{c: reports[t][c] for c in s.metrics}, "n_test": reports[t]["n_test"]}
                                           for t in s.names]))
        drops = [self._group_reports((t,))[t][s.main] - reports[t][s.main] for t in merged]
        drop = float(np.average(drops, weights=[reports[t]["n_test"] for t in merged])) if merged else 0.0
        return {**{c: float(mean[c]) for c in s.metrics}, "drop_per_merged_task": drop}

    def _group_reports(self, group: tuple[str, ...]) -> dict[str, dict]:
        """{task: its test metrics} under one group's merge (a singleton: its own scorer), once per group."""
        s = self.setup

        def make():
            preds = self._timed("plans: test evaluation", lambda: self.merges.plan_predictions((group,)))
            return {t: split_metrics(s.tasks[t], preds[t], "test", s.metrics) for t in group}
        return self._once(("group", tuple(group)), make)

    def table(self) -> pd.DataFrame:
        """One row per plan evaluated: method, kind, groups, sizes, same_sizes_as_gw, gw_score (the objective
        on the GW similarity), the metrics (test, every task, test-size-weighted), drop_per_merged_task,
        rank_among_random (1: above every random plan, on the headline metric)."""
        return self._once("table", self._table)

    def _table(self) -> pd.DataFrame:
        s = self.setup
        sim = self.planner.gw.similarity()
        cg = self.stability.solver_agreement()["cg_plan"]
        entries = [*self.planner.plans(), PlanEntry("conditional-gradient GW plan", cg, "gw", "the other solver"),
                   *self.extra_plans(), *self.bootstrap_plans(), *self.random_plans()]
        gw = self.gw_sizes()
        rows = []
        for e in entries:
            rows.append({"method": e.name, "kind": e.source, "groups": merge_plans.format_plan(e.plan),
                         "sizes": "-".join(map(str, merge_plans.sizes(e.plan))),
                         "same_sizes_as_gw": merge_plans.sizes(e.plan) == gw,
                         "gw_score": merge_plans.plan_score(e.plan, sim), **self.plan_metrics(e.plan)})
        table = pd.DataFrame(rows)
        random = table.loc[table["kind"] == "random", s.main].to_numpy()
        table["rank_among_random"] = [1 + int((random > v).sum()) if same else np.nan
                                      for v, same in zip(table[s.main], table["same_sizes_as_gw"])]
        return table

    def rank(self, method: str = GW_PLAN) -> verdicts.Verdict:
        """:func:`rank_verdict` of ``method`` (a plan with the GW plan's sizes) among the random plans, on the
        headline metric."""
        s, c = self.setup, self.setup.profile.claims
        t = self.table().set_index("method")
        if not t.loc[method, "same_sizes_as_gw"]:
            raise ValueError(f"{method!r} has group sizes {t.loc[method, 'sizes']}, the random plans "
                             f"{'-'.join(map(str, self.gw_sizes()))}")
        random = t.loc[t["kind"] == "random", s.main].to_numpy()
        return rank_verdict(float(t.loc[method, s.main]), random, c.n_resamples, c.seed,
                            f" ({'-'.join(map(str, self.gw_sizes()))})")

    def bootstrap_against_random(self) -> verdicts.Verdict:
        """:func:`sample_verdict` of the bootstrap GW plans against the random plans (headline metric)."""
        s, c = self.setup, self.setup.profile.claims
        t = self.table()
        return sample_verdict(t.loc[t["kind"] == BOOTSTRAP, s.main], t.loc[t["kind"] == "random", s.main],
                              c.n_resamples, c.seed)

    def summary(self) -> pd.DataFrame:
        """Per kind of plan (random, bootstrap): count, mean, sd, min, max of the headline metric."""
        s = self.setup
        t = self.table()
        rows = []
        for kind in ("random", BOOTSTRAP):
            v = t.loc[t["kind"] == kind, s.main]
            if len(v):
                rows.append({"plans": kind, "count": len(v), "mean": v.mean(), "sd": v.std(), "min": v.min(),
                             "max": v.max()})
        return pd.DataFrame(rows, columns=["plans", "count", "mean", "sd", "min", "max"])

