"""What each plan's models do on test and what they cost to store: the test predictions of every
method (pre-merge, every plan with TIES, the GW plan's merge ablations), per-task and per-label
metrics, the paper's Table 3 analog, the random plans' spread, and the storage each plan needs."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..metrics import per_label_accuracy, per_label_f1, weighted_mean
from ..models.per_task import report
from ..study_steps import TimedSteps
from . import merge_plans
from .layerwise import LayerwiseFit
from .merges import Merges
from .compared_plans import Planner
from .protocol import GW_PLAN, PREMERGE, RANDOM, StudySetup


class Evaluation(TimedSteps):
    """Every method's test predictions (made once per run) and the tables over them."""

    def __init__(self, setup: StudySetup, planner: Planner, merges: Merges, layerwise: LayerwiseFit):
        self.setup, self.planner, self.merges, self.layerwise = setup, planner, merges, layerwise
        self.timing, self._memo = setup.timing, {}

    def methods(self) -> dict[str, dict[str, np.ndarray]]:
        """{method: {task: test predictions}}: pre-merge, every plan with TIES, and the GW plan's
        ablations (task arithmetic, plain averaging, layer-wise coefficients)."""
        return self._once("methods", self._methods)

    def _methods(self) -> dict[str, dict[str, np.ndarray]]:
        own = tuple((t,) for t in self.setup.names)
        out = {PREMERGE: self.merges.plan_predictions(own)}
        for e in self.planner.plans():
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
                m = report(s.tasks[t], preds[t], "test")
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
        plans = self.planner.plan_table().set_index("method")
        rows = []
        for method, part in performance.groupby("method", sort=False):
            mean = weighted_mean(part.drop(columns=["method", "task"]))
            base = method.split(",")[0]
            rows.append({"method": method, "plan": plans.loc[base, "groups"] if base in plans.index else "-",
                         "n_models": int(plans.loc[base, "n_models"]) if base in plans.index else len(s.names),
                         **{c: mean[c] for c in s.metrics}})
        table = pd.DataFrame(rows)
        pre = table.set_index("method").loc[PREMERGE, s.main]
        table[f"{s.main}_gap"] = table[s.main] - pre
        return table

    def random_summary(self, table3: pd.DataFrame) -> pd.DataFrame:
        """Mean, sd, min and max of each metric over the random plans."""
        r = table3[table3["method"].str.startswith(RANDOM + " ")]
        return pd.DataFrame([{"statistic": stat, **{c: getattr(r[c], stat)() for c in self.setup.metrics}}
                             for stat in ("mean", "std", "min", "max")])

    def storage(self) -> pd.DataFrame:
        """Per plan: n_models, total_mb (every model stored whole, as the paper counts), and
        total_mb_shared_frozen (the frozen lower layers stored once, each model its trained layers)."""
        s = self.setup
        upper = s.evaluator.upper
        whole = sum(v.numel() * v.element_size() for v in upper.base.values())
        trained = {t: sum(v.numel() * v.element_size() for v in s.evaluator.parts(t).encoder.values())
                   for t in s.names}
        heads = {t: sum(v.numel() * 4 for v in s.evaluator.parts(t).head.values()) for t in s.names}
        frozen = whole - max(trained.values())
        rows = []
        for method in [PREMERGE, *[e.name for e in self.planner.plans()]]:
            plan = tuple((t,) for t in s.names) if method == PREMERGE else self.planner.plan(method)
            mb = (len(plan) * whole + sum(heads.values())) / 2 ** 20
            shared = (frozen + sum(max(trained[t] for t in g) for g in plan) + sum(heads.values())) / 2 ** 20
            rows.append({"method": method, "n_models": len(plan), "total_mb": mb, "total_mb_shared_frozen": shared})
        table = pd.DataFrame(rows)
        table["saving"] = table.loc[0, "total_mb"] / table["total_mb"]
        return table
