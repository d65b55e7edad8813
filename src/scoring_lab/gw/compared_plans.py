"""The merge plans the chapter compares: the GW plan (the most similarity inside its groups), the
paper's human and GPT-o1 plans, the plan from the task descriptions' similarity and the planted families;
their table and the objective over every partition."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from .. import published
from ..data.task import Task
from ..models.cache import code_version
from ..study_steps import TimedSteps
from . import gromov, merge_plans
from .distance_matrices import GWDistances
from .protocol import DESCRIPTIONS, FAMILIES, GW_PLAN, HUMAN, LLM, PREMERGE, StudySetup

DESCRIPTION_KIND = "description-similarity"


@dataclass(frozen=True)
class PlanEntry:
    """A named merge plan: ``source`` says where it comes from (gw, paper, description, oracle, random)."""

    name: str
    plan: merge_plans.Plan
    source: str
    note: str = ""


class Planner(TimedSteps):
    """The chapter's plans over the GW similarity (and the descriptions'), made once per run."""

    def __init__(self, setup: StudySetup, gw: GWDistances):
        self.setup, self.gw = setup, gw
        self.timing, self._memo = setup.timing, {}

    def plans(self) -> list[PlanEntry]:
        """The GW plan, the paper's human and GPT-o1 plans (when the tasks are the paper's), the plan from
        the task descriptions and the planted families (synthetic data); the random plans, drawn with the GW
        plan's group sizes, are :mod:`.plan_ranks`'."""
        return self._once("plans", self._plans)

    def _plans(self) -> list[PlanEntry]:
        s = self.setup
        cap, k = s.settings.max_group_size, s.n_models
        out = []
        plan, _ = merge_plans.best_plan(self.gw.similarity(), k, cap)
        out.append(PlanEntry(GW_PLAN, plan, "gw", f"{s.settings.method} GW, groups of at most {cap or 'any size'}"))
        if cap is not None and cap < len(s.names):
            free, _ = merge_plans.best_plan(self.gw.similarity(), k, None)
            if not merge_plans.same_plan(free, plan):
                out.append(PlanEntry(f"{GW_PLAN} (no group cap)", free, "gw", "the objective without the cap"))
        paper = published.gw_plans()
        for name in (HUMAN, LLM):
            if all(t in s.names for g in paper[name] for t in g):
                out.append(PlanEntry(name, merge_plans.plan_from_groups(s.names, paper[name]), "paper",
                                     "the paper's plan, by its task numbers"))
        if all(task_description(t) for t in s.tasks.values()):
            sim = self._timed("task descriptions (embeddings)", self.description_similarity)
            plan, _ = merge_plans.best_plan(sim, k, cap)
            out.append(PlanEntry(DESCRIPTIONS, plan, "description", "sentence embeddings of scenario, question "
                                 "and rubric"))
        families = s.families()
        if families is not None:
            groups = [g for g in families.values() if len(g) > 1]
            out.append(PlanEntry(FAMILIES, merge_plans.plan_from_groups(s.names, groups), "planted",
                                 "the benchmark's planted task families"))
        return out

    def description_similarity(self) -> pd.DataFrame:
        """(T, T) cosine similarity of the tasks' description embeddings (scenario, question, rubric),
        rescaled as the GW similarity is: the data-free analog of the human and GPT-o1 plans."""
        s = self.setup
        texts = {t: task_description(task) for t, task in s.tasks.items()}
        inputs = {"texts": texts, "model": s.settings.description_model, "code": code_version(_description_cosines)}

        def produce(folder):
            _description_cosines(texts, s.settings.description_model).to_csv(folder / "cosine.csv")

        def make():
            cosine, _ = s.cache.get_or_compute(DESCRIPTION_KIND, inputs, produce,
                                               lambda art: pd.read_csv(art.file("cosine.csv"), index_col=0))
            return gromov.similarity(1 - cosine)
        return self._once("descriptions", make)

    def plan(self, name: str) -> merge_plans.Plan:
        """The plan of :meth:`plans` named ``name``."""
        for e in self.plans():
            if e.name == name:
                return e.plan
        raise KeyError(f"no plan named {name!r}; plans: {[e.name for e in self.plans()]}")

    def plan_table(self) -> pd.DataFrame:
        """One row per plan: method, groups, n_models, gw_score (summed GW similarity within groups),
        ari_families (adjusted Rand index against the planted families, when there are any)."""
        s = self.setup
        sim, families = self.gw.similarity(), s.families()
        rows = [{"method": PREMERGE, "groups": "-", "n_models": len(s.names), "source": "-",
                 "gw_score": 0.0}]
        for e in self.plans():
            rows.append({"method": e.name, "groups": merge_plans.format_plan(e.plan), "n_models": len(e.plan),
                         "source": e.source, "gw_score": merge_plans.plan_score(e.plan, sim)})
        table = pd.DataFrame(rows)
        if families is not None:
            truth = merge_plans.plan_labels(tuple(tuple(g) for g in families.values()), s.names)
            table["ari_families"] = [adjusted_rand_score(truth, list(range(len(s.names)))) if m == PREMERGE else
                                     adjusted_rand_score(truth, merge_plans.plan_labels(self.plan(m), s.names))
                                     for m in table["method"]]
        return table

    def random_plan_scores(self) -> np.ndarray:
        """The GW score (summed within-group similarity) of every plan the random ones are drawn from."""
        s = self.setup
        sim = self.gw.similarity()
        return np.array([merge_plans.plan_score(p, sim) for p in merge_plans.partitions(s.names, s.n_models,
                                                                                        s.settings.max_group_size)])


def task_description(task: Task) -> str:
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
