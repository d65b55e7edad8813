"""Choosing UniMoE's and UniMoE-Guided's settings on validation responses, the chapter's model of each
method, and those models on the training tasks' test splits: Table 3, and the chosen UniMoE-Guided
with its experts on every token or on the pooled vector (and with out-of-fold teacher logits)."""
from __future__ import annotations

from dataclasses import replace
from itertools import product

import pandas as pd

from ..profiles import MultiTaskSettings
from ..study_steps import TimedSteps
from . import layers as moe, multitask
from .evaluation import Evaluation
from .protocol import COLUMNS, DENSE, GUIDED, METRICS, MTL, MTL_KD, OUT_OF_FOLD, UNIMOE, StudySetup
from .store import FittedModel, ModelStore


def best_row(table: pd.DataFrame, method: str) -> pd.Series:
    """``method``'s row of a search table with the highest validation kappa (ties: the lower validation loss)."""
    rows = table[table["method"] == method]
    return rows.sort_values(["val_kappa", "val_loss"], ascending=[False, True], kind="mergesort").iloc[0]


def mean_row(table: pd.DataFrame, method: str) -> dict:
    """``method``'s 'average' row of a method-task table: the plain mean of each metric over its tasks."""
    return {"method": method, "task": "average", **{m: float(table[m].mean()) for m in (*METRICS, "exact_match")},
            "n_test": int(table["n_test"].sum())}


class ModelSelection(TimedSteps):
    """The search over a study's settings grid, the models it chooses and their scores on the training tasks."""

    def __init__(self, setup: StudySetup, store: ModelStore, evaluation: Evaluation):
        self.setup, self.store, self.evaluation = setup, store, evaluation
        self.timing, self._memo = setup.timing, {}

    def configurations(self) -> list[tuple[str, MultiTaskSettings]]:
        """UniMoE's grid (M x lambda_LB, no KD); UniMoE-Guided's is added by :meth:`search`."""
        s, base = self.setup.settings, self.setup.settings.model
        return [(UNIMOE, replace(base, use_moe=True, n_experts=int(m), lambda_lb=float(lb), lambda_kd=0.0))
                for m, lb in product(s.n_experts, s.lambda_lb)]

    def search(self) -> pd.DataFrame:
        """Every configuration tried, its validation scores and the chosen one per method
        (the highest mean validation kappa; ties: the lower validation loss)."""
        def make():
            rows = []

            def record(jobs):
                for (method, settings), f in zip(jobs, self.store.fit_many(jobs)):
                    rows.append({"method": method, "n_experts": settings.n_experts, "lambda_lb": settings.lambda_lb,
                                 "lambda_kd": settings.lambda_kd, **self.evaluation.validation_scores(f),
                                 "epochs": f.epochs, "train_seconds": f.seconds, "key": f.key})

            s = self.setup.settings
            grid = list(product(s.n_experts, s.lambda_lb))
            first = self.configurations()
            if s.search == "sequential":
                record(first)
                best = best_row(pd.DataFrame(rows), UNIMOE)
                grid = [(best["n_experts"], best["lambda_lb"])]
                first = []
            record(first + [(GUIDED, replace(s.model, use_moe=True, n_experts=int(m), lambda_lb=float(lb),
                                             lambda_kd=float(kd))) for (m, lb), kd in product(grid, s.lambda_kd)])
            table = pd.DataFrame(rows)
            table["chosen"] = False
            for method in (UNIMOE, GUIDED):
                table.loc[best_row(table, method).name, "chosen"] = True
            return table
        return self._once("search", make)

    def chosen_settings(self, method: str) -> MultiTaskSettings:
        """The settings the search chose for ``method`` (UniMoE or UniMoE-Guided)."""
        row = best_row(self.search(), method)
        return replace(self.setup.settings.model, use_moe=True, n_experts=int(row["n_experts"]),
                       lambda_lb=float(row["lambda_lb"]), lambda_kd=float(row["lambda_kd"]))

    def model(self, method: str) -> FittedModel:
        """The chapter's model of ``method`` (MTL, or UniMoE / UniMoE-Guided as the search chose, or one of
        the controls: :meth:`control_settings`)."""
        if method == MTL:
            return self.store.fit(MTL, replace(self.setup.settings.model, use_moe=False, lambda_kd=0.0,
                                               lambda_lb=0.0))
        if method in (DENSE, MTL_KD):
            return self.store.fit(method, self.control_settings(method))
        return self.store.fit(method, self.chosen_settings(method))

    def control_settings(self, control: str) -> MultiTaskSettings:
        """The dense control: UniMoE's chosen block with one expert whose hidden width is its M experts'
        together (about the same parameters, no routing; the load-balancing term is 0 for one expert).
        MTL + KD: MTL distilled with UniMoE-Guided's chosen lambda_KD."""
        if control == DENSE:
            s = self.chosen_settings(UNIMOE)
            width = s.expert_hidden or self.setup.backbone.model.config.hidden_size
            return replace(s, n_experts=1, expert_hidden=int(width) * s.n_experts, lambda_lb=0.0)
        if control == MTL_KD:
            kd = self.chosen_settings(GUIDED).lambda_kd
            return replace(self.setup.settings.model, use_moe=False, lambda_kd=float(kd), lambda_lb=0.0)
        raise KeyError(f"no control named {control!r}")

    def controls(self) -> pd.DataFrame:
        """The controls beside the models they control for (UniMoE, MTL, UniMoE-Guided): model, params
        (trained ones), epochs, the test averages over the training tasks and the validation scores."""
        def make():
            rows = []
            for name in (UNIMOE, DENSE, MTL, MTL_KD, GUIDED):
                f = self.model(name)
                test = self.evaluation.evaluate(f, self.setup.old)
                rows.append({"model": name, "params": multitask.parameter_count(f.model), "epochs": f.epochs,
                             **{m: float(test[m].mean()) for m in METRICS}, **self.evaluation.validation_scores(f)})
            return pd.DataFrame(rows)
        return self._once("controls", make)

    def table3(self) -> pd.DataFrame:
        """method, task, kappa, macro_f1, micro_f1, per_label_accuracy, exact_match, n_test on the training
        tasks' test splits, each method's 'average' (the plain mean over tasks, as the paper's) last."""
        def make():
            old = self.setup.old
            parts = [self.evaluation.individual(old)] + [self.evaluation.evaluate(self.model(m), old, method=m)
                                                         for m in (MTL, UNIMOE, GUIDED)]
            out = []
            for p in parts:
                out += [p, pd.DataFrame([mean_row(p, p["method"].iloc[0])])]
            return pd.concat(out, ignore_index=True)[COLUMNS]
        return self._once("table3", make)

    def variants(self) -> pd.DataFrame:
        """UniMoE-Guided's chosen configuration with the experts on every token (the paper's text) and on
        the pooled vector (its code's placement, in one block), both capped at ``moe.variant_epochs``; and, with
        ``moe.teacher_folds``, with out-of-fold teacher logits. Test averages, epochs and seconds."""
        def make():
            chosen = self.chosen_settings(GUIDED)
            cap = self.setup.settings.variant_epochs
            rows = []
            for on in (moe.TOKENS, moe.POOLED):
                s = replace(chosen, moe_on=on, max_epochs=cap or chosen.max_epochs)
                label = f"{GUIDED}, experts on {'every token' if on == moe.TOKENS else 'the pooled vector'}"
                f = self.store.fit(label, s) if (s != chosen) else self.model(GUIDED)
                rows.append(self._variant_row(on, label, f, on))
            if self.setup.settings.teacher_folds:
                f = self.store.fit(f"{GUIDED}, out-of-fold teachers", chosen, teacher=OUT_OF_FOLD)
                rows.append(self._variant_row(OUT_OF_FOLD, f"{GUIDED}, out-of-fold teachers", f, chosen.moe_on))
            return pd.DataFrame(rows)
        return self._once("variants", make)

    def _variant_row(self, variant: str, label: str, f: FittedModel, on: str) -> dict:
        test = self.evaluation.evaluate(f, self.setup.old)
        return {"variant": variant, "model": label, "experts_on": on, "max_epochs": f.settings.max_epochs,
                "epochs": f.epochs, "train_seconds": f.seconds, "seconds_per_epoch": f.seconds / max(f.epochs, 1),
                **{m: float(test[m].mean()) for m in METRICS}, **self.evaluation.validation_scores(f)}
