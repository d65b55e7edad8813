"""What each plan's models do on test and what they cost to store: the test predictions of every
method (pre-merge, every plan with TIES, the GW plan's merge ablations), per-task and per-label
metrics, the paper's Table 3 analog, the random plans' spread, and the storage each plan needs."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..metrics import per_label_accuracy, per_label_f1, weighted_mean
from ..study_steps import TimedSteps
from . import merge_plans
from .layerwise import LayerwiseFit
from .merges import Merges
from .pairwise import split_metrics
from .compared_plans import Planner
from .protocol import GW_PLAN, PREMERGE, StudySetup


class Evaluation(TimedSteps):
    """Every method's test predictions (made once per run) and the tables over them."""

    def __init__(self, setup: StudySetup, planner: Planner, merges: Merges, layerwise: LayerwiseFit,
                 extra_plans=lambda: []):
        self.setup, self.planner, self.merges, self.layerwise = setup, planner, merges, layerwise
        self.extra_plans = extra_plans   # () -> [PlanEntry]: the oracle plans (.plan_ranks), in Table 3 too
        self.timing, self._memo = setup.timing, {}

    def named_plans(self) -> list:
        """Every named plan of Table 3: the planner's, then the extra ones (oracles)."""
        return [*self.planner.plans(), *self.extra_plans()]

    def methods(self) -> dict[str, dict[str, np.ndarray]]:
        """{method: {task: test predictions}}: pre-merge, every named plan with TIES, and the GW plan's
        ablations (task arithmetic, plain averaging, layer-wise coefficients)."""
        return self._once("methods", self._methods)

    def premerge(self) -> dict[str, np.ndarray]:
        """{task: (n_test, ...) test predictions of its own scorer}."""
        return self.merges.plan_predictions(tuple((t,) for t in self.setup.names))

    def _methods(self) -> dict[str, dict[str, np.ndarray]]:
        out = {PREMERGE: self.premerge()}
        for e in self.named_plans():
            out[e.name] = self.merges.plan_predictions(e.plan)
        gw_plan = self.planner.plan(GW_PLAN)
        if merge_plans.merged_groups(gw_plan):
            out[f"{GW_PLAN}, task arithmetic"] = self.merges.plan_predictions(gw_plan, "task_arithmetic")
            out[f"{GW_PLAN}, plain average"] = self.merges.plan_predictions(gw_plan, "average")
            if self.setup.settings.layerwise_steps > 0:
                out[f"{GW_PLAN}, layer-wise coefficients"] = self.merges.plan_predictions(
                    gw_plan, merges=self.layerwise.merges_of(gw_plan))
        return out

    def performance(self) -> pd.DataFrame:
        """Long: method, task, the kind's metrics, n_test (test split, every task under every method)."""
        s = self.setup
        rows = []
        for method, preds in self.methods().items():
            for t in s.names:
                m = split_metrics(s.tasks[t], preds[t], "test", s.metrics)
                rows.append({"method": method, "task": t, **{c: m[c] for c in s.metrics}, "n_test": m["n_test"]})
        return pd.DataFrame(rows)

    def label_performance(self) -> pd.DataFrame:
        """Long, multi-label only: method, task, label, f1, accuracy (test split)."""
        s = self.setup
        if s.kind != "multilabel":
            return pd.DataFrame(columns=["method", "task", "label", "f1", "accuracy"])
        rows = []
        for method, preds in self.methods().items():
            for t in s.names:
                y = s.tasks[t].test.labels
                f1, acc = per_label_f1(y, preds[t]), per_label_accuracy(y, preds[t])
                rows += [{"method": method, "task": t, "label": lab, "f1": float(f), "accuracy": float(a)}
                         for lab, f, a in zip(s.tasks[t].label_names, f1, acc)]
        return pd.DataFrame(rows)

    def table3(self, performance: pd.DataFrame) -> pd.DataFrame:
        """Per method: plan, n_models, the test-size-weighted metrics and the gap to pre-merge (Table 3)."""
        s = self.setup
        plans = {e.name: e.plan for e in self.named_plans()}
        rows = []
        for method, part in performance.groupby("method", sort=False):
            mean = weighted_mean(part.drop(columns=["method", "task"]))
            plan = plans.get(method, plans.get(method.split(",")[0]))   # an ablation row: "<plan>, <method>"
            rows.append({"method": method, "plan": merge_plans.format_plan(plan) if plan else "-",
                         "n_models": len(plan) if plan else len(s.names),
                         "merged_tasks": sum(len(g) for g in merge_plans.merged_groups(plan)) if plan else 0,
                         **{c: mean[c] for c in s.metrics}})
        table = pd.DataFrame(rows)
        pre = table.set_index("method").loc[PREMERGE, s.main]
        table[f"{s.main}_gap"] = table[s.main] - pre
        return table

    def storage(self) -> pd.DataFrame:
        """Per plan: n_models, total_mb (every model stored whole, as the paper counts), and
        total_mb_shared_frozen (the frozen lower layers stored once, each model its trained layers), from
        the measured sizes of the safetensors files each part serialises to (header included)."""
        s = self.setup
        base = s.evaluator.upper.base
        parts = {t: s.evaluator.parts(t) for t in s.names}
        whole = serialized_bytes(base)
        trained = {t: serialized_bytes(p.encoder) for t, p in parts.items()}
        heads = {t: serialized_bytes(p.head) for t, p in parts.items()}
        changed = set().union(*(set(p.encoder) for p in parts.values()))
        frozen = serialized_bytes({n: v for n, v in base.items() if n not in changed})
        rows = []
        plans = {PREMERGE: tuple((t,) for t in s.names), **{e.name: e.plan for e in self.named_plans()}}
        for method, plan in plans.items():
            mb = (len(plan) * whole + sum(heads.values())) / 2 ** 20
            shared = (frozen + sum(max(trained[t] for t in g) for g in plan) + sum(heads.values())) / 2 ** 20
            rows.append({"method": method, "n_models": len(plan), "total_mb": mb, "total_mb_shared_frozen": shared})
        table = pd.DataFrame(rows)
        table["saving"] = table.loc[0, "total_mb"] / table["total_mb"]
        return table


def serialized_bytes(state: dict) -> int:
    """The size in bytes of ``state`` ({name: tensor}) written as a safetensors file (header included)."""
    from safetensors.torch import save

    return len(save({k: v.detach().contiguous() for k, v in state.items()}))
