"""Choosing UniMoE's and UniMoE-Guided's settings on validation responses, the chapter's model of each
method, and those models on the training tasks' test splits: Table 3, and the chosen UniMoE-Guided
with its experts on every token or on the pooled vector (and with out-of-fold teacher logits)."""
from __future__ import annotations

from dataclasses import replace
from itertools import product

import numpy as np
import pandas as pd

from ..profiles import MultiTaskSettings
from ..study_steps import TimedSteps
from . import layers as moe, multitask
from .evaluation import Evaluation
from .judging import mean_pairwise_js
from .protocol import DENSE, GUIDED, MTL, MTL_KD, OUT_OF_FOLD, UNIMOE, StudySetup
from .store import FittedModel, ModelStore


SEEDED = (MTL, UNIMOE, GUIDED, DENSE, MTL_KD)   # the frozen column's models trained from several seeds


def routing_summary(usage: np.ndarray) -> dict:
    """From (tasks, M) usage rows (each summing to 1): task_entropy (mean bits), pooled_entropy (bits of the
    tasks' mean usage), max_entropy (log2 M), favourites (distinct argmax experts), task_js (mean pairwise
    Jensen-Shannon distance, base 2), pooled_lb and max_task_lb (L_LB of the pooled usage, largest per task)."""
    m = usage.shape[1]

    def bits(p):
        p = np.clip(p, 1e-12, 1)
        return float(-(p * np.log2(p)).sum(-1).mean())

    lb = ((usage - 1.0 / m) ** 2).mean(-1)
    pooled = usage.mean(0)
    return {"task_entropy": bits(usage), "pooled_entropy": bits(pooled[None]), "max_entropy": float(np.log2(m)),
            "favourites": int(len(set(usage.argmax(1).tolist()))), "task_js": float(mean_pairwise_js(usage)),
            "pooled_lb": float(((pooled - 1.0 / m) ** 2).mean()), "max_task_lb": float(lb.max())}


def best_row(table: pd.DataFrame, method: str) -> pd.Series:
    """``method``'s row of a search table with the highest validation kappa (ties: the lower validation loss)."""
    rows = table[table["method"] == method]
    return rows.sort_values(["val_kappa", "val_loss"], ascending=[False, True], kind="mergesort").iloc[0]


def mean_row(table: pd.DataFrame, method: str) -> dict:
    """``method``'s 'average' row of a method-task table: the plain mean of each metric over its tasks."""
    metrics = [c for c in table.columns if c not in ("method", "task", "n_test")]
    return {"method": method, "task": "average", **{m: float(table[m].mean()) for m in metrics},
            "n_test": int(table["n_test"].sum())}


def table3_of(evaluation: Evaluation, tasks: list[str], model_of) -> pd.DataFrame:
    """Table 3 over ``tasks``' test splits: Individual, then ``model_of(method)`` for MTL, UniMoE and
    UniMoE-Guided, each method's rows and its 'average' (the plain mean over tasks, as the paper's) last."""
    parts = [evaluation.individual(tasks)] + [evaluation.evaluate(model_of(m), tasks, method=m)
                                              for m in (MTL, UNIMOE, GUIDED)]
    out = []
    for p in parts:
        out += [p, pd.DataFrame([mean_row(p, p["method"].iloc[0])])]
    return pd.concat(out, ignore_index=True)[evaluation.setup.columns]


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
                                 "lambda_kd": settings.lambda_kd, "tau": settings.tau if settings.lambda_kd else None,
                                 **self.evaluation.validation_scores(f),
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
                                             lambda_kd=float(kd), tau=float(tau)))
                            for (m, lb), kd, tau in product(grid, s.lambda_kd, s.tau)])
            table = pd.DataFrame(rows)
            table["chosen"] = False
            for method in (UNIMOE, GUIDED):
                table.loc[best_row(table, method).name, "chosen"] = True
            return table
        return self._once("search", make)

    def chosen_settings(self, method: str) -> MultiTaskSettings:
        """The settings the search chose for ``method`` (UniMoE or UniMoE-Guided)."""
        row = best_row(self.search(), method)
        tau = float(row["tau"]) if row["lambda_kd"] else self.setup.settings.model.tau
        return replace(self.setup.settings.model, use_moe=True, n_experts=int(row["n_experts"]),
                       lambda_lb=float(row["lambda_lb"]), lambda_kd=float(row["lambda_kd"]), tau=tau)

    def settings_of(self, method: str) -> MultiTaskSettings:
        """``method``'s settings: MTL's (no MoE, no KD), the search's choice (UniMoE, UniMoE-Guided) or a
        control's (:meth:`control_settings`)."""
        if method == MTL:
            return replace(self.setup.settings.model, use_moe=False, lambda_kd=0.0, lambda_lb=0.0)
        if method in (DENSE, MTL_KD):
            return self.control_settings(method)
        return self.chosen_settings(method)

    def model(self, method: str, seed: int | None = None) -> FittedModel:
        """The chapter's model of ``method`` (MTL, or UniMoE / UniMoE-Guided as the search chose, or one of
        the controls: :meth:`control_settings`), from ``seed`` (default the study's)."""
        return self.store.fit(method, self.settings_of(method), seed=seed)

    def load_balancing(self) -> pd.DataFrame:
        """What the load-balancing term does to routing: UniMoE's chosen configuration at its lambda_LB and at
        each of ``moe.lb_probe``. Per lambda_LB, on the validation responses: the mean entropy (bits) of each
        task's usage and of all the tasks' usage together, log2(M) the most, the distinct favourite experts,
        the mean Jensen-Shannon distance between the tasks' usage, L_LB of the pooled usage, the largest
        per-task L_LB (what one batch of one task pays), and the validation kappa."""
        def make():
            chosen = self.chosen_settings(UNIMOE)
            lbs = sorted({chosen.lambda_lb, *self.setup.settings.lb_probe})
            jobs = [(UNIMOE, replace(chosen, lambda_lb=float(lb))) for lb in lbs]
            rows = []
            for lb, f in zip(lbs, self.store.fit_many(jobs)):
                usage = self.evaluation.expert_usage(f, "val").to_numpy(dtype=float)
                rows.append({"lambda_lb": lb, "chosen": lb == chosen.lambda_lb, **routing_summary(usage),
                             "val_kappa": self.evaluation.validation_scores(f)["val_kappa"], "epochs": f.epochs})
            return pd.DataFrame(rows)
        return self._once("load_balancing", make)

    def seed_list(self) -> list[int]:
        """The seeds of the frozen column's models (``moe.seeds`` of them; the first is the study's)."""
        return [self.setup.seed + i for i in range(self.setup.settings.seeds)]

    def seeded(self, method: str) -> list[FittedModel]:
        """``method``'s model from each of :meth:`seed_list` (the other seeds' of every method of
        :data:`SEEDED` trained side by side first)."""
        def train_all():
            self.store.fit_many([(m, self.settings_of(m), seed) for seed in self.seed_list()[1:] for m in SEEDED])
            return True
        self._once("seeded", train_all)
        return [self.model(method, seed) for seed in self.seed_list()]

    def seeds(self) -> pd.DataFrame:
        """model, seed, and each seed's test averages over the training tasks, for every method of
        :data:`SEEDED` (over the frozen encoder)."""
        def make():
            rows = []
            for method in SEEDED:
                for seed, f in zip(self.seed_list(), self.seeded(method)):
                    test = self.evaluation.evaluate(f, self.setup.old)
                    rows.append({"model": method, "seed": seed,
                                 **{m: float(test[m].mean()) for m in self.setup.metrics},
                                 "epochs": f.epochs})
            return pd.DataFrame(rows)
        return self._once("seeds", make)

    def control_settings(self, control: str) -> MultiTaskSettings:
        """The dense control: UniMoE's chosen block with one expert whose hidden width is its M experts'
        together (about the same parameters, no routing; the load-balancing term is 0 for one expert).
        MTL + KD: MTL distilled with UniMoE-Guided's chosen lambda_KD and temperature."""
        if control == DENSE:
            s = self.chosen_settings(UNIMOE)
            width = s.expert_hidden or self.setup.backbone.model.config.hidden_size
            return replace(s, n_experts=1, expert_hidden=int(width) * s.n_experts, lambda_lb=0.0)
        if control == MTL_KD:
            guided = self.chosen_settings(GUIDED)
            return replace(self.setup.settings.model, use_moe=False, lambda_kd=float(guided.lambda_kd), tau=guided.tau,
                           lambda_lb=0.0)
        raise KeyError(f"no control named {control!r}")

    def controls(self) -> pd.DataFrame:
        """The controls beside the models they control for (UniMoE, MTL, UniMoE-Guided): model, params
        (trained ones), epochs, the test averages over the training tasks and the validation scores."""
        def make():
            self.store.fit_many([(c, self.control_settings(c)) for c in (DENSE, MTL_KD)])   # side by side
            rows = []
            for name in (UNIMOE, DENSE, MTL, MTL_KD, GUIDED):
                f = self.model(name)
                test = self.evaluation.evaluate(f, self.setup.old)
                rows.append({"model": name, "params": multitask.parameter_count(f.model), "epochs": f.epochs,
                             **{m: float(test[m].mean()) for m in self.setup.metrics},
                             **self.evaluation.validation_scores(f)})
            return pd.DataFrame(rows)
        return self._once("controls", make)

    def table3(self) -> pd.DataFrame:
        """method, task, the run's metrics (:func:`~.protocol.columns_of`) and n_test on the training
        tasks' test splits, each method's 'average' (the plain mean over tasks, as the paper's) last."""
        return self._once("table3", lambda: table3_of(self.evaluation, self.setup.old, self.model))

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
                **{m: float(test[m].mean()) for m in self.setup.metrics}, **self.evaluation.validation_scores(f)}
