"""The GW chapter's study: features, GW distances, merge plans, merged models and their tables.

:class:`GWStudy` runs the GW-SMM protocol on a run's tasks and per-task scorers with the
profile's ``gw`` settings: [CLS] features of each task's responses under its own scorer
(train and validation responses only: a plan is a choice, and test responses play no
part in choices), GW distances (the profile's solver, the exact one beside it), the plan
that maximises the within-group similarity, the comparison plans, TIES-merged encoders
with per-group settings chosen on validation, and the Table 3 / Table 4 analogs. Every
expensive step goes through the artifact cache (features, distances, merged predictions),
so a warm chapter only reads tables back.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import adjusted_rand_score

from ..merging import adamerging
from .. import claims, published
from . import gromov, merge_plans
from ..models.cache import ArtifactCache, code_version
from ..data.task import Split, Task, concat_splits
from ..merging.evaluation import OWN, Merge, MergeEvaluator
from ..metrics import per_label_accuracy, per_label_f1, weighted_mean
from ..models.per_task import TrainedScorer, main_metric, metric_columns, report, split_fingerprint, task_kind
from ..study_steps import TimedSteps
from ..profiles import Profile

DISTANCE_KIND = "gw-distances"
LAYERWISE_KIND = "layerwise-merge"
DESCRIPTION_KIND = "description-similarity"
PREMERGE = "Pre-Merged"
GW_PLAN = "GW-SMM"
HUMAN, LLM = "Human Knowledge", "GPT-o1"
DESCRIPTIONS, FAMILIES = "task descriptions", "planted families"
RANDOM = "random"
PAPER_METRICS = ("micro_f1", "macro_f1", "exact_match", "per_label_accuracy")


@dataclass(frozen=True)
class PlanEntry:
    """A named merge plan: ``source`` says where it comes from (gw, paper, description, oracle, random)."""

    name: str
    plan: merge_plans.Plan
    source: str
    note: str = ""


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name, a in arrays.items():
        h.update(name.encode())
        h.update(np.ascontiguousarray(a, dtype=np.float32).tobytes())
    return h.hexdigest()[:32]


class GWStudy(TimedSteps):
    """The GW-SMM protocol on ``tasks`` and their per-task ``scorers`` (``run.scorers()``)."""

    def __init__(self, tasks: dict[str, Task], scorers: dict[str, TrainedScorer], profile: Profile,
                 cache: ArtifactCache | None = None, seed: int = 0, progress: bool = True):
        self.tasks, self.profile, self.settings = tasks, profile, profile.gw
        self.names = list(tasks)
        self.kind = task_kind(tasks)
        self.seed, self.progress = int(seed), progress
        self.cache = cache or ArtifactCache()
        self.evaluator = MergeEvaluator(scorers, tasks, profile.train, self.seed, self.cache, progress)
        self.metrics = PAPER_METRICS if self.kind == "multilabel" else metric_columns(self.kind)
        self.main = main_metric(self.kind)
        self.timing: dict[str, float] = {}      # step -> seconds in this run (loading, when cached)
        self.solver_seconds: list[dict] = []    # each GW matrix: step, method, responses, workers, seconds to solve
        self._memo: dict = {}



    # ---- features and distances ------------------------------------------------------
    @property
    def n_models(self) -> int:
        """T': the profile's, or one fewer than the tasks when there are not more tasks than that."""
        return max(1, min(self.settings.n_models, len(self.names) - 1))

    def feature_split(self, task: str) -> Split:
        """The responses whose features stand for ``task``: its ``gw.feature_splits``, subsampled to
        ``gw.max_points`` (seeded)."""
        t = self.tasks[task]
        pool = concat_splits(*(t.splits()[s] for s in self.settings.feature_splits))
        return pool.subset(gromov.subsample_rows(len(pool), self.settings.max_points, self.seed))

    def features(self) -> dict[str, np.ndarray]:
        """{task: (n_t, H) final-layer [CLS] embeddings under the task's own scorer}."""
        return self._once("features", lambda: self._timed("features (frozen layers + top layers)", lambda: {
            t: self.evaluator.features(t, self.feature_split(t), "+".join(self.settings.feature_splits))
            for t in self.names}))

    def gw_settings(self, method: str | None = None, max_points: int | None = None) -> gromov.GWSettings:
        s = self.settings
        return gromov.GWSettings(method=method or s.method, epsilon=s.epsilon, max_iter=s.max_iter, tol=s.tol,
                             sinkhorn_iter=s.sinkhorn_iter, max_points=max_points)

    def distance_matrix(self, features: dict[str, np.ndarray], settings: gromov.GWSettings, step: str) -> pd.DataFrame:
        """GW distances between ``features``' clouds, cached by their content and the settings; the seconds
        the solver took when it ran go to ``solver_seconds``."""
        inputs = {"features": _digest(features), "settings": asdict(settings), "seed": self.seed,
                  "code": code_version(gromov)}

        def produce(folder):
            t0 = time.perf_counter()
            d = gromov.pairwise_distances(features, settings, self.seed, self.progress, self.settings.workers)
            d.to_csv(folder / "distance.csv")
            (folder / "seconds.txt").write_text(f"{time.perf_counter() - t0:.3f}\n")

        def load(art):
            return pd.read_csv(art.file("distance.csv"), index_col=0), float(art.file("seconds.txt").read_text())

        (value, seconds), _ = self._timed(step, lambda: self.cache.get_or_compute(DISTANCE_KIND, inputs, produce,
                                                                                  load))
        self.solver_seconds.append({"step": step, "method": settings.method,
                                    "responses": max(len(f) if settings.max_points is None else
                                                     min(len(f), settings.max_points) for f in features.values()),
                                    "workers": self.settings.workers, "seconds": seconds})
        return value

    def distances(self, method: str | None = None) -> pd.DataFrame:
        """(T, T) GW distances with the profile's solver (or ``method``), on the features."""
        method = method or self.settings.method
        return self._once(("distances", method), lambda: self.distance_matrix(
            self.features(), self.gw_settings(method), f"GW distances ({method})"))

    def similarity(self, method: str | None = None) -> pd.DataFrame:
        return gromov.similarity(self.distances(method))

    def subsample_effect(self) -> pd.DataFrame:
        """What subsampling does: exact GW on nested subsamples of the features against the full sample.

        Columns: responses (per task, at most), spearman (of the 36 distances with the full sample's),
        max_similarity_change, same_plan, seconds."""
        full = self.distances(gromov.EXACT)
        ref_plan, _ = merge_plans.best_plan(gromov.similarity(full), self.n_models, self.settings.max_group_size)
        iu = np.triu_indices(len(self.names), 1)
        largest = max(len(f) for f in self.features().values())
        rows = []
        for n in sorted(self.settings.subsample_sizes):
            if n >= largest:
                continue
            d = self.distance_matrix(self.features(), self.gw_settings(gromov.EXACT, n), "subsample effect (exact GW)")
            s = gromov.similarity(d)
            plan, _ = merge_plans.best_plan(s, self.n_models, self.settings.max_group_size)
            rows.append({"responses": n, "spearman": _spearman(d.to_numpy()[iu], full.to_numpy()[iu]),
                         "max_similarity_change": float(np.abs(s - gromov.similarity(full)).to_numpy().max()),
                         "same_plan": _same(plan, ref_plan)})
        rows.append({"responses": largest, "spearman": 1.0, "max_similarity_change": 0.0, "same_plan": True})
        return pd.DataFrame(rows)

    def solver_agreement(self) -> dict:
        """The profile's solver against the exact one: Spearman of the distances, same plan or not."""
        iu = np.triu_indices(len(self.names), 1)
        a, b = self.distances(), self.distances(gromov.EXACT)
        pa, _ = merge_plans.best_plan(gromov.similarity(a), self.n_models, self.settings.max_group_size)
        pb, _ = merge_plans.best_plan(gromov.similarity(b), self.n_models, self.settings.max_group_size)
        return {"spearman": _spearman(a.to_numpy()[iu], b.to_numpy()[iu]), "same_plan": _same(pa, pb),
                "exact_plan": pb}

    # ---- plans --------------------------------------------------------------------------
    def plans(self) -> list[PlanEntry]:
        """The GW plan, the paper's human and GPT-o1 plans (when the tasks are the paper's), the plan from
        the task descriptions, the planted families (synthetic data) and the random plans."""
        return self._once("plans", self._plans)

    def _plans(self) -> list[PlanEntry]:
        cap, k = self.settings.max_group_size, self.n_models
        out = []
        plan, _ = merge_plans.best_plan(self.similarity(), k, cap)
        out.append(PlanEntry(GW_PLAN, plan, "gw", f"{self.settings.method} GW, groups of at most {cap or 'any size'}"))
        if cap is not None and cap < len(self.names):
            free, _ = merge_plans.best_plan(self.similarity(), k, None)
            if not _same(free, plan):
                out.append(PlanEntry(f"{GW_PLAN} (no group cap)", free, "gw", "the objective without the cap"))
        paper = published.gw_plans()
        for name in (HUMAN, LLM):
            if all(t in self.names for g in paper[name] for t in g):
                out.append(PlanEntry(name, merge_plans.plan_from_groups(self.names, paper[name]), "paper",
                                     "the paper's plan, by its task numbers"))
        if all(_description(t) for t in self.tasks.values()):
            sim = self._timed("task descriptions (embeddings)", self.description_similarity)
            plan, _ = merge_plans.best_plan(sim, k, cap)
            out.append(PlanEntry(DESCRIPTIONS, plan, "description", "sentence embeddings of scenario, question "
                                 "and rubric"))
        families = self.families()
        if families is not None:
            groups = [g for g in families.values() if len(g) > 1]
            out.append(PlanEntry(FAMILIES, merge_plans.plan_from_groups(self.names, groups), "oracle",
                                 "the benchmark's planted task families"))
        for i, plan in enumerate(merge_plans.random_plans(self.names, k, self.settings.random_plans, self.seed, cap)):
            out.append(PlanEntry(f"{RANDOM} {i + 1}", plan, "random", f"uniform over plans into {k} groups"))
        return out

    def families(self) -> dict[str, list[str]] | None:
        """{family: tasks} when every task's meta names its family (the synthetic benchmark), else None."""
        if not all("family" in t.meta for t in self.tasks.values()):
            return None
        out: dict[str, list[str]] = {}
        for name, t in self.tasks.items():
            out.setdefault(t.meta["family"], []).append(name)
        return out

    def description_similarity(self) -> pd.DataFrame:
        """Cosine similarity of the tasks' description embeddings (scenario, question, rubric), rescaled
        as the GW similarity is: the data-free analog of the human and GPT-o1 plans."""
        texts = {t: _description(task) for t, task in self.tasks.items()}
        inputs = {"texts": texts, "model": self.settings.description_model, "code": code_version(_description_cosines)}

        def produce(folder):
            _description_cosines(texts, self.settings.description_model).to_csv(folder / "cosine.csv")

        def make():
            cosine, _ = self.cache.get_or_compute(DESCRIPTION_KIND, inputs, produce,
                                                  lambda art: pd.read_csv(art.file("cosine.csv"), index_col=0))
            return gromov.similarity(1 - cosine)
        return self._once("descriptions", make)

    def plan_table(self) -> pd.DataFrame:
        """One row per plan: method, groups, n_models, gw_score (summed GW similarity within groups),
        ari_families (adjusted Rand index against the planted families, when there are any)."""
        sim, families = self.similarity(), self.families()
        rows = [{"method": PREMERGE, "groups": "-", "n_models": len(self.names), "source": "-",
                 "gw_score": 0.0}]
        for e in self.plans():
            rows.append({"method": e.name, "groups": merge_plans.format_plan(e.plan), "n_models": len(e.plan),
                         "source": e.source, "gw_score": merge_plans.plan_score(e.plan, sim)})
        table = pd.DataFrame(rows)
        if families is not None:
            truth = merge_plans.plan_labels(tuple(tuple(g) for g in families.values()), self.names)
            table["ari_families"] = [adjusted_rand_score(truth, list(range(len(self.names)))) if m == PREMERGE else
                                     adjusted_rand_score(truth, merge_plans.plan_labels(self.plan(m), self.names))
                                     for m in table["method"]]
        return table

    def plan(self, name: str) -> merge_plans.Plan:
        for e in self.plans():
            if e.name == name:
                return e.plan
        raise KeyError(f"no plan named {name!r}; plans: {[e.name for e in self.plans()]}")

    def random_plan_scores(self) -> np.ndarray:
        """The GW score (summed within-group similarity) of every plan the random ones are drawn from."""
        sim = self.similarity()
        return np.array([merge_plans.plan_score(p, sim) for p in merge_plans.partitions(self.names, self.n_models,
                                                                     self.settings.max_group_size)])

    # ---- merging --------------------------------------------------------------------------
    def grid(self, method: str) -> list[Merge]:
        s = self.settings
        if method == "ties":
            return [Merge("ties", d, c) for d in s.ties_density for c in s.ties_scaling]
        if method == "task_arithmetic":
            return [Merge("task_arithmetic", scaling=c) for c in s.arithmetic_scaling]
        if method == "average":
            return [Merge("average")]
        raise ValueError(f"unknown merge method {method!r}")

    def val_score(self, group: tuple[str, ...], merge: Merge) -> float:
        """The validation-size-weighted mean of the headline metric over the group's tasks."""
        reports = self._timed("merging: validation grid", lambda: self.evaluator.reports(group, merge, "val"))
        weights = [len(self.tasks[t].val) for t in group]
        return float(np.average([reports[t][self.main] for t in group], weights=weights))

    def tuned_merge(self, group: tuple[str, ...], method: str = "ties") -> tuple[Merge, pd.DataFrame]:
        """(the grid's best merge on validation, the grid: group, merge, val score, chosen)."""
        def tune():
            rows = [{"group": ", ".join(group), "method": method, "density": m.density, "scaling": m.scaling,
                     "merge": m, f"val_{self.main}": self.val_score(group, m)} for m in self.grid(method)]
            table = pd.DataFrame(rows)
            best = int(table[f"val_{self.main}"].to_numpy().argmax())   # ties: the first in grid order
            table["chosen"] = np.arange(len(table)) == best
            return table.loc[best, "merge"], table.drop(columns="merge")
        return self._once(("tuned", tuple(group), method), tune)

    def merges_of(self, plan: merge_plans.Plan, method: str = "ties") -> dict[tuple[str, ...], Merge]:
        """{group: its merge} for every group of ``plan`` (a singleton keeps its own scorer)."""
        return {g: (self.tuned_merge(g, method)[0] if len(g) > 1 else Merge(OWN)) for g in plan}

    def plan_predictions(self, plan: merge_plans.Plan, method: str = "ties",
                         merges: dict | None = None) -> dict[str, np.ndarray]:
        """{task: test predictions} under ``plan``: merged groups through their merge, others their own."""
        merges = merges or self.merges_of(plan, method)
        out = {}
        for g, m in merges.items():
            out.update(self._timed("merging: test evaluation", lambda g=g, m=m: self.evaluator.predictions(g, m)))
        return out

    def methods(self) -> dict[str, dict[str, np.ndarray]]:
        """{method: {task: test predictions}}: pre-merge, every plan with TIES, and the GW plan's
        ablations (task arithmetic, plain averaging, layer-wise coefficients)."""
        return self._once("methods", self._methods)

    def _methods(self) -> dict[str, dict[str, np.ndarray]]:
        own = tuple((t,) for t in self.names)
        out = {PREMERGE: self.plan_predictions(own)}
        for e in self.plans():
            out[e.name] = self.plan_predictions(e.plan)
        gw_plan = self.plan(GW_PLAN)
        if merge_plans.merged_groups(gw_plan):
            out[f"{GW_PLAN}, task arithmetic"] = self.plan_predictions(gw_plan, "task_arithmetic")
            out[f"{GW_PLAN}, plain average"] = self.plan_predictions(gw_plan, "average")
            if self.settings.layerwise_steps > 0:
                out[f"{GW_PLAN}, layer-wise coefficients"] = self.plan_predictions(
                    gw_plan, merges={g: (self.layerwise(g)[0] if len(g) > 1 else Merge(OWN)) for g in gw_plan})
        return out

    def layerwise(self, group: tuple[str, ...]) -> tuple[Merge, pd.DataFrame]:
        """AdaMerging-style per-task, per-layer coefficients for ``group``, fitted on validation responses,
        starting from the task-arithmetic scaling chosen on validation."""
        s = self.settings

        def fit():
            start = self.tuned_merge(group, "task_arithmetic")[0].scaling
            inputs = {"group": [self.evaluator.scorers[t].key for t in group], "start": start,
                      "steps": s.layerwise_steps, "lr": s.layerwise_lr, "batch": s.layerwise_batch, "seed": self.seed,
                      "val": [split_fingerprint(self.tasks[t].val) for t in group],
                      "code": code_version(adamerging, MergeEvaluator)}

            def produce(folder):
                merge, history = adamerging.fit_layer_coefficients(self.evaluator, group, start, s.layerwise_steps,
                                                                   s.layerwise_lr, s.layerwise_batch, self.seed,
                                                                   self.progress)
                (folder / "coefficients.json").write_text(json.dumps(merge.coefficients))
                history.to_csv(folder / "history.csv", index=False)

            def load(art):
                coefficients = tuple((t, tuple((p, c) for p, c in cs))
                                     for t, cs in json.loads(art.file("coefficients.json").read_text()))
                return (Merge("task_arithmetic", scaling=1.0, coefficients=coefficients),
                        pd.read_csv(art.file("history.csv")))

            value, _ = self._timed("merging: layer-wise coefficients", lambda: self.cache.get_or_compute(
                LAYERWISE_KIND, inputs, produce, load))
            return value
        return self._once(("layerwise", tuple(group)), fit)

    def tuning_table(self) -> pd.DataFrame:
        """Every validation grid run: group, method, density, scaling, val score, chosen."""
        self.methods()
        parts = [v[1] for k, v in self._memo.items() if isinstance(k, tuple) and k[0] == "tuned"]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    def layerwise_table(self) -> pd.DataFrame:
        """The fitted coefficients: group, task, layer, coefficient (and the start value)."""
        rows = []
        for k, (merge, _) in [(k, v) for k, v in self._memo.items() if isinstance(k, tuple) and k[0] == "layerwise"]:
            start = self.tuned_merge(k[1], "task_arithmetic")[0].scaling
            for task, coefficients in merge.coefficients:
                for prefix, c in coefficients:
                    rows.append({"group": ", ".join(k[1]), "task": task, "layer": prefix.rstrip("."),
                                 "start": start, "coefficient": c})
        return pd.DataFrame(rows)

    def layerwise_summary(self) -> pd.DataFrame:
        """Per fitted group: the validation headline metric at the start (task arithmetic, tuned) and
        after the fit, and the fit's loss over its first and last three steps."""
        rows = []
        for k, (merge, history) in [(k, v) for k, v in self._memo.items() if isinstance(k, tuple)
                                    and k[0] == "layerwise"]:
            start = self.tuned_merge(k[1], "task_arithmetic")[0]
            rows.append({"group": ", ".join(k[1]), f"val_{self.main} (start)": self.val_score(k[1], start),
                         f"val_{self.main} (fitted)": self.val_score(k[1], merge),
                         "loss (first 3 steps)": float(history["loss"].head(3).mean()),
                         "loss (last 3 steps)": float(history["loss"].tail(3).mean())})
        return pd.DataFrame(rows)

    # ---- tables ---------------------------------------------------------------------------
    def performance(self) -> pd.DataFrame:
        """Long: method, task, the kind's metrics, n_test (test split, every task under every method)."""
        rows = []
        for method, preds in self.methods().items():
            for t in self.names:
                m = report(self.tasks[t], preds[t], "test")
                rows.append({"method": method, "task": t, **{c: m[c] for c in self.metrics}, "n_test": m["n_test"]})
        return pd.DataFrame(rows)

    def label_performance(self) -> pd.DataFrame:
        """Long, multi-label only: method, task, label, f1, accuracy (test split)."""
        if self.kind != "multilabel":
            return pd.DataFrame(columns=["method", "task", "label", "f1", "accuracy"])
        rows = []
        for method, preds in self.methods().items():
            for t in self.names:
                y = self.tasks[t].test.labels
                f1, acc = per_label_f1(y, preds[t]), per_label_accuracy(y, preds[t])
                rows += [{"method": method, "task": t, "label": lab, "f1": float(f), "accuracy": float(a)}
                         for lab, f, a in zip(self.tasks[t].label_names, f1, acc)]
        return pd.DataFrame(rows)

    def table3(self, performance: pd.DataFrame) -> pd.DataFrame:
        """Per method: plan, n_models, the test-size-weighted metrics and the gap to pre-merge (Table 3)."""
        plans = self.plan_table().set_index("method")
        rows = []
        for method, part in performance.groupby("method", sort=False):
            mean = weighted_mean(part.drop(columns=["method", "task"]))
            base = method.split(",")[0]
            rows.append({"method": method, "plan": plans.loc[base, "groups"] if base in plans.index else "-",
                         "n_models": int(plans.loc[base, "n_models"]) if base in plans.index else len(self.names),
                         **{c: mean[c] for c in self.metrics}})
        table = pd.DataFrame(rows)
        pre = table.set_index("method").loc[PREMERGE, self.main]
        table[f"{self.main}_gap"] = table[self.main] - pre
        return table

    def random_summary(self, table3: pd.DataFrame) -> pd.DataFrame:
        """Mean, sd, min and max of each metric over the random plans."""
        r = table3[table3["method"].str.startswith(RANDOM + " ")]
        return pd.DataFrame([{"statistic": s, **{c: getattr(r[c], s)() for c in self.metrics}}
                             for s in ("mean", "std", "min", "max")])

    def ttests(self, performance: pd.DataFrame, labels: pd.DataFrame, pairs=None) -> pd.DataFrame:
        """Paired t-tests with Wilcoxon signed-rank beside them: metric, method_a, method_b, unit, n,
        mean_difference, t, p, wilcoxon_p. Unit ``task`` (one pair per task, every metric) and, for
        multi-label tasks, ``task-label`` (one pair per rubric dimension: its F1 and accuracy)."""
        present = set(performance["method"])
        pairs = [p for p in (pairs or self.test_pairs()) if set(p) <= present]
        rows = []
        for a, b in pairs:
            pa = performance[performance["method"] == a].set_index("task")
            pb = performance[performance["method"] == b].set_index("task").reindex(pa.index)
            for metric in self.metrics:
                rows.append({"metric": metric, "method_a": a, "method_b": b, "unit": "task",
                             **paired_tests(pa[metric].to_numpy(), pb[metric].to_numpy())})
            if len(labels):
                la = labels[labels["method"] == a].set_index(["task", "label"])
                lb = labels[labels["method"] == b].set_index(["task", "label"]).reindex(la.index)
                for metric in ("f1", "accuracy"):
                    rows.append({"metric": f"label_{metric}", "method_a": a, "method_b": b, "unit": "task-label",
                                 **paired_tests(la[metric].to_numpy(), lb[metric].to_numpy())})
        return pd.DataFrame(rows)

    def test_pairs(self) -> list[tuple[str, str]]:
        """The paper's three comparisons, then GW against the description plan, the families and pre-merge."""
        return [(GW_PLAN, HUMAN), (GW_PLAN, LLM), (HUMAN, LLM), (GW_PLAN, DESCRIPTIONS), (GW_PLAN, FAMILIES),
                (GW_PLAN, PREMERGE)]

    def storage(self) -> pd.DataFrame:
        """Per plan: n_models, total_mb (every model stored whole, as the paper counts), and
        total_mb_shared_frozen (the frozen lower layers stored once, each model its trained layers)."""
        upper = self.evaluator.upper
        whole = sum(v.numel() * v.element_size() for v in upper.base.values())
        trained = {t: sum(v.numel() * v.element_size() for v in self.evaluator.parts(t).encoder.values())
                   for t in self.names}
        heads = {t: sum(v.numel() * 4 for v in self.evaluator.parts(t).head.values()) for t in self.names}
        frozen = whole - max(trained.values())
        rows = []
        for method in [PREMERGE, *[e.name for e in self.plans()]]:
            plan = tuple((t,) for t in self.names) if method == PREMERGE else self.plan(method)
            mb = (len(plan) * whole + sum(heads.values())) / 2 ** 20
            shared = (frozen + sum(max(trained[t] for t in g) for g in plan) + sum(heads.values())) / 2 ** 20
            rows.append({"method": method, "n_models": len(plan), "total_mb": mb, "total_mb_shared_frozen": shared})
        table = pd.DataFrame(rows)
        table["saving"] = table.loc[0, "total_mb"] / table["total_mb"]
        return table

    # ---- beyond the paper: stability --------------------------------------------------------
    def bootstrap(self) -> pd.DataFrame:
        """One row per bootstrap resample (exact GW on each task's responses drawn with replacement):
        replicate, plan, same_as_gw_plan, ari_families (when known)."""
        def run_all():
            feats, rows = self.features(), []
            families = self.families()
            truth = merge_plans.plan_labels(tuple(tuple(g) for g in families.values()), self.names) if families else None
            ref = self.solver_agreement()["exact_plan"]
            for b in range(self.settings.bootstrap):
                rng = np.random.default_rng([self.seed, b])
                resampled = {t: f[rng.integers(0, len(f), len(f))] for t, f in feats.items()}
                d = self.distance_matrix(resampled, self.gw_settings(gromov.EXACT), "bootstrap (exact GW)")
                plan, _ = merge_plans.best_plan(gromov.similarity(d), self.n_models, self.settings.max_group_size)
                row = {"replicate": b + 1, "plan": merge_plans.format_plan(plan), "same_as_exact_plan": _same(plan, ref),
                       "groups": [g for g in plan if len(g) > 1]}
                if truth is not None:
                    row["ari_families"] = adjusted_rand_score(truth, merge_plans.plan_labels(plan, self.names))
                rows.append(row)
            return pd.DataFrame(rows)
        return self._once("bootstrap", run_all)

    def group_frequencies(self, boot: pd.DataFrame) -> pd.DataFrame:
        """How often each merged group appears across the bootstrap plans, and whether the GW plan has it."""
        counts: dict[tuple, int] = {}
        for groups in boot["groups"]:
            for g in groups:
                counts[tuple(g)] = counts.get(tuple(g), 0) + 1
        in_plan = {tuple(g) for g in merge_plans.merged_groups(self.plan(GW_PLAN))}
        rows = [{"group": ", ".join(g), "share": c / max(len(boot), 1), "in_gw_plan": g in in_plan}
                for g, c in sorted(counts.items(), key=lambda x: -x[1])]
        for g in sorted(in_plan - set(counts)):
            rows.append({"group": ", ".join(g), "share": 0.0, "in_gw_plan": True})
        return pd.DataFrame(rows, columns=["group", "share", "in_gw_plan"])

    def similarity_panels(self) -> dict[str, pd.DataFrame]:
        """The similarity matrices the chapter's heatmaps show: GW with the profile's solver, exact GW and,
        when the tasks have descriptions, the description similarity."""
        s = self.settings
        panels = {f"GW ({s.method}, ε = {s.epsilon:g})": self.similarity(), "GW (exact)": self.similarity(gromov.EXACT)}
        if any(e.name == DESCRIPTIONS for e in self.plans()):
            panels["task descriptions (MiniLM)"] = self.description_similarity()
        return panels

    def timing_table(self) -> pd.DataFrame:
        """step, seconds: this run's wall time per step (a cached step costs its loading)."""
        return pd.DataFrame([{"step": k, "seconds": v} for k, v in self.timing.items()])

    def solver_table(self) -> pd.DataFrame:
        """Each distinct GW matrix solved: step, method, responses, workers, seconds (when it was solved)."""
        t = pd.DataFrame(self.solver_seconds)
        return t.groupby(["step", "method", "responses", "workers"], sort=False, as_index=False)["seconds"].sum() \
            if len(t) else t


# ---- helpers ------------------------------------------------------------------------------------
def paired_tests(a: np.ndarray, b: np.ndarray) -> dict:
    """n, mean_difference, t and p of the paired t-test (scipy), and the Wilcoxon signed-rank p (zero
    differences dropped, scipy's default); NaN where a test is undefined (no non-zero difference)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    diff = a - b
    out = {"n": int(len(diff)), "mean_difference": float(diff.mean()) if len(diff) else float("nan"),
           "t": float("nan"), "p": float("nan"), "wilcoxon_p": float("nan")}
    if len(diff) >= 2 and np.ptp(diff) > 0:
        res = stats.ttest_rel(a, b)
        out["t"], out["p"] = float(res.statistic), float(res.pvalue)
    elif len(diff) >= 2 and diff[0] != 0:   # every difference the same, non-zero: no variance, t undefined
        out["p"] = 0.0
    if (diff != 0).sum() >= 1:
        out["wilcoxon_p"] = float(stats.wilcoxon(a, b).pvalue)
    return out


def implied_df(t: float, p: float, max_df: int = 500) -> int:
    """The degrees of freedom whose two-sided t-test turns ``t`` into ``p`` most closely (what a published
    t and p imply about the number of paired units: df + 1)."""
    dfs = np.arange(1, max_df + 1)
    return int(dfs[np.argmin(np.abs(2 * stats.t.sf(abs(t), dfs) - p))])


def plan_marks(plans: pd.DataFrame) -> dict[str, float]:
    """{method: its GW score} of the GW, paper and description plans (what the score histogram marks)."""
    return {r.method: r.gw_score for r in plans.itertuples() if r.source in ("gw", "paper", "description")}


def paper_units() -> dict:
    """What the paper's Table 4 implies and what it had: implied (sorted distinct numbers of paired
    units its t and p give), tasks and task_labels (of its Table 2)."""
    t4, _ = published.gw_table4()
    tasks, _ = published.task_numbering("gw")
    return {"implied": sorted({implied_df(t, p) + 1 for t, p in zip(t4["t"], t4["p"])}),
            "tasks": len(tasks), "task_labels": int(tasks["n_labels"].sum())}


def _spearman(a, b) -> float:
    return float(stats.spearmanr(a, b).statistic)


def _same(a: merge_plans.Plan, b: merge_plans.Plan) -> bool:
    return {frozenset(g) for g in a} == {frozenset(g) for g in b}


def _description(task: Task) -> str:
    """A task's scenario, question and rubric dimensions as one text ('' when its meta has none)."""
    m = task.meta
    rubric = m.get("rubric") or []
    parts = [m.get("scenario", ""), m.get("question", "")] + [
        r.get("description", "") if isinstance(r, dict) else str(r) for r in rubric]
    return " ".join(p for p in parts if p).strip() if m.get("scenario") else ""


def _description_cosines(texts: dict[str, str], model: str) -> pd.DataFrame:
    """(T, T) cosine similarities of sentence embeddings of the tasks' descriptions (sentence-transformers)."""
    from sentence_transformers import SentenceTransformer

    from ..models.backbone import resolve

    encoder = SentenceTransformer(resolve(model), device="cpu")
    e = encoder.encode(list(texts.values()), normalize_embeddings=True)
    names = list(texts)
    return pd.DataFrame(e @ e.T, index=names, columns=names)


# ---- the paper's tables beside ours, and its claims ------------------------------------------------
def table3_vs_paper(table3: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 3 rows beside ours (same methods), columns ``method, figures, <metrics>``."""
    theirs, _ = published.gw_table3()
    ours = table3[table3["method"].isin(theirs["method"])].set_index("method")
    rows = []
    for method in theirs["method"]:
        p = theirs.set_index("method").loc[method]
        rows.append({"method": method, "figures": "GW paper (published)", **{c: p[c] for c in PAPER_METRICS}})
        if method in ours.index:
            o = ours.loc[method]
            rows.append({"method": method, "figures": "this book",
                         **{c: o[c] for c in PAPER_METRICS if c in ours.columns}})
    return pd.DataFrame(rows)


def table4_vs_paper(tests: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 4 (t and p) beside ours on tasks as the paired unit, with the number of paired
    units the paper's t and p imply."""
    theirs, _ = published.gw_table4()
    ours = tests[tests["unit"] == "task"].set_index(["metric", "method_a", "method_b"]) if len(tests) else None
    out = theirs.rename(columns={"t": "t (paper)", "p": "p (paper)"}).copy()
    idx = list(zip(out["metric"], out["method_a"], out["method_b"]))
    for col, name in (("t", "t (ours)"), ("p", "p (ours)"), ("wilcoxon_p", "wilcoxon p (ours)")):
        out[name] = [ours[col].get(i, np.nan) if ours is not None else np.nan for i in idx]
    out["paper's implied units"] = [implied_df(t, p) + 1 for t, p in zip(theirs["t"], theirs["p"])]
    return out


def gw_claims(study: GWStudy, table3: pd.DataFrame, tests: pd.DataFrame, storage: pd.DataFrame) -> list:
    """The GW paper's claims, each judged from this run's results (see :mod:`scoring_lab.claims`)."""
    theirs, _ = published.gw_table3()
    paper = theirs.set_index("method")
    mean = table3.set_index("method")
    train = study.profile.train
    tuned = (f"top {train.trainable_layers} layers fine-tuned" if train.trainable_layers else "fully fine-tuned")
    base = (f"{'synthetic benchmark' if study.families() is not None else 'this source'}; {train.backbone} "
            f"scorers, {tuned}")
    out = []
    names = {"micro_f1": "micro-F1", "macro_f1": "macro-F1", "exact_match": "exact match",
             "per_label_accuracy": "per-label accuracy"}
    multilabel = study.kind == "multilabel"
    for other in (HUMAN, LLM):
        claim = f"GW-SMM's plan scores above the {other} plan on all four weighted metrics (Table 3)"
        if other not in mean.index or not multilabel:
            out.append(claims.not_tested("gw", claim, "4 of 4", "needs the paper's nine multi-label tasks"))
            continue
        ahead = [c for c in PAPER_METRICS if mean.loc[GW_PLAN, c] > mean.loc[other, c]]
        gaps = ", ".join(f"{names[c]} {mean.loc[GW_PLAN, c] - mean.loc[other, c]:+.3f}" for c in PAPER_METRICS)
        out.append(claims.Claim("gw", claim, "4 of 4", f"{len(ahead)} of 4", claims.verdict_share(len(ahead), 4),
                                f"{base}; test-size-weighted means; GW minus {other}: {gaps}"))
    t4, _ = published.gw_table4()
    units = paper_units()
    task_tests = tests[tests["unit"] == "task"].set_index(["metric", "method_a", "method_b"]) if len(tests) else None
    for metric in ("micro_f1", "per_label_accuracy"):
        row = t4[(t4["metric"] == metric) & (t4["method_a"] == GW_PLAN) & (t4["method_b"] == LLM)].iloc[0]
        claim = f"GW-SMM beats GPT-o1 significantly on {names[metric]} (Table 4)"
        value = f"t = {row['t']:.2f}, p = {row['p']:.3f}"
        key = (metric, GW_PLAN, LLM)
        if task_tests is None or key not in task_tests.index:
            out.append(claims.not_tested("gw", claim, value, "needs the paper's nine multi-label tasks"))
            continue
        r = task_tests.loc[key]
        ok = r["mean_difference"] > 0 and r["p"] < 0.05
        out.append(claims.Claim("gw", claim, value, f"t = {r['t']:.2f}, p = {r['p']:.3f}",
                                "held" if ok else "not held",
                                f"{base}; paired t-test over the {int(r['n'])} tasks (Wilcoxon p = "
                                f"{r['wilcoxon_p']:.3f}); the paper's t and p imply {implied_df(row['t'], row['p']) + 1} "
                                f"paired units, neither its {units['tasks']} tasks nor its {units['task_labels']} "
                                "task-labels"))
    claim = "GW-SMM and Human Knowledge do not differ significantly on any metric (Table 4)"
    keys = [(m, GW_PLAN, HUMAN) for m in PAPER_METRICS]
    if task_tests is None or not all(k in task_tests.index for k in keys):
        out.append(claims.not_tested("gw", claim, "p > 0.05 on 4 of 4", "needs the paper's nine multi-label tasks"))
    else:
        ps = [task_tests.loc[k, "p"] for k in keys]
        n_ns = sum(not p < 0.05 for p in ps)
        out.append(claims.Claim("gw", claim, "p > 0.05 on 4 of 4", f"p > 0.05 on {n_ns} of 4",
                                "held" if n_ns == 4 else "not held",
                                f"{base}; paired t-tests over tasks; p = " + ", ".join(f"{p:.2f}" for p in ps)))
    claim = "Merged models stay below the pre-merge models (micro-F1 0.687 against 0.829)"
    gap_paper = paper.loc[PREMERGE, "micro_f1"] - paper.loc[GW_PLAN, "micro_f1"]
    main = study.main
    gap = mean.loc[PREMERGE, main] - mean.loc[GW_PLAN, main]
    below = [c for c in study.metrics if mean.loc[GW_PLAN, c] < mean.loc[PREMERGE, c]]
    out.append(claims.Claim("gw", claim, f"gap {gap_paper:.3f}", f"gap {gap:.3f} ({main})",
                            claims.verdict_share(len(below), len(study.metrics)) if below else "not held",
                            f"{base}; GW plan below pre-merge on {len(below)} of {len(study.metrics)} weighted "
                            "metrics; held if on all"))
    claim = "Merging nine models into five roughly halves the storage"
    st = storage.set_index("method")
    saving = float(st.loc[GW_PLAN, "saving"])
    out.append(claims.Claim("gw", claim, "about 2x", f"{saving:.2f}x ({int(st.loc[GW_PLAN, 'n_models'])} models)",
                            "held" if saving >= 1.75 else "partly" if saving >= 1.4 else "not held",
                            f"every model stored whole, as the paper counts (its {published.gw_storage()['model_mb']} "
                            "MB per BERT); held from 1.75x"))
    claim = "The GW objective merges models in pairs or trios"
    free = [e for e in study.plans() if e.name == f"{GW_PLAN} (no group cap)"]
    plan = free[0].plan if free else study.plan(GW_PLAN)
    largest = max(len(g) for g in plan)
    out.append(claims.Claim("gw", claim, "groups of 2-3", f"largest group {largest}", "held" if largest <= 3 else
                            "not held", f"{base}; the plan of the paper's objective without this book's cap of "
                            f"{study.settings.max_group_size}: {merge_plans.format_plan(plan)}"))
    lw = f"{GW_PLAN}, layer-wise coefficients"
    claim = "Adaptive layer-wise merging would narrow the gap to the pre-merge models (future work)"
    if lw not in mean.index:
        out.append(claims.not_tested("gw", claim, "-", "no layer-wise coefficients in this run (see the profile)"))
    elif not gap > 0:
        out.append(claims.not_tested("gw", claim, "-", f"{base}; the GW plan's merged models are not below the "
                                     "pre-merge ones here: there is no gap to narrow"))
    else:
        closed = (mean.loc[lw, main] - mean.loc[GW_PLAN, main]) / gap
        out.append(claims.Claim("gw", claim, "-", f"{closed:+.0%} of the gap closed ({main})",
                                "held" if closed > 0.1 else "partly" if closed > 0 else "not held",
                                f"{base}; AdaMerging-style per-task, per-layer coefficients fitted on validation "
                                "responses against TIES with settings chosen on validation; held if it closes more "
                                "than a tenth of the gap"))
    return out


def summary_text(study: GWStudy, table3: pd.DataFrame, plans: pd.DataFrame, boot: pd.DataFrame) -> str:
    """A few sentences with this run's headline numbers (all computed): the GW plan against the others,
    how well it recovers the planted families, and how often resampling gives it back."""
    m, main = table3.set_index("method"), study.main
    label = {"micro_f1": "micro-F1", "qwk": "QWK"}.get(main, main)
    parts = [f"The GW plan's merged models reach a test {label} of {m.loc[GW_PLAN, main]:.3f}, against "
             f"{m.loc[PREMERGE, main]:.3f} before merging"]
    others = [f"{name} {m.loc[name, main]:.3f}" for name in (HUMAN, LLM, DESCRIPTIONS, FAMILIES) if name in m.index]
    random = m[m.index.str.startswith(RANDOM + " ")][main]
    if others:
        parts[0] += "; the other plans: " + ", ".join(others)
    if len(random):
        parts[0] += (f"; random plans {random.mean():.3f} on average ({random.min():.3f} to {random.max():.3f}, "
                     f"{len(random)} plans)")
    parts[0] += "."
    if "ari_families" in plans.columns:
        ari = plans.set_index("method")["ari_families"]
        text = f"Against the planted families the GW plan's adjusted Rand index is {ari[GW_PLAN]:.2f}"
        if DESCRIPTIONS in ari.index:
            text += f", the description plan's {ari[DESCRIPTIONS]:.2f}"
        parts.append(text + " (1: the families exactly, 0: chance).")
    if len(boot):
        parts.append(f"Resampling the responses gave the exact solver's plan back {int(boot['same_as_exact_plan'].sum())} "
                     f"times in {len(boot)}.")
    return " ".join(parts)
