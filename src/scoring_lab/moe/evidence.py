"""What the chapter's claims are judged on, per test response: every model's decisions (at the paper's
threshold, or a score's most probable class) and UniMoE-Guided's gate weights, read from the artifact cache (the probabilities the tables
were computed from) or, for the gate weights, computed once from the cached model and kept in a cache
step of their own."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..models.cache import code_version
from ..models.per_task import split_fingerprint
from . import multitask
from .protocol import CONTROLS, GUIDED, INDIVIDUAL, MTL, SINGLE, UNIMOE, decide

if TYPE_CHECKING:   # only for the annotation: the study is the facade over this module
    from .study import MoEStudy

GATES_KIND = "expert-gates"
ADAPTED = " adapted"   # a model's name with this suffix: the model adapted to the held-out tasks
NO_REHEARSAL = ", no rehearsal"   # and with this one after it: adapted without rehearsing the old tasks
FROZEN_SUFFIX = " (frozen encoder)"   # a method's model over the wholly frozen encoder (the search's)
CONTINUED_SUFFIX = " (frozen encoder, trained on as long)"   # that model trained on as the trained column is


@dataclass(frozen=True)
class Evidence:
    """``labels[task]``: (n, L) 0/1 truth of a task's test split (or (n,) classes of a score);
    ``preds[model][task]``: (n, L) 0/1 predictions at the paper's threshold (or (n,) classes), or
    (S, n, L) (or (S, n)) those of S seeds of the model. Models: Individual,
    MTL, UniMoE, UniMoE-Guided on the training tasks (the chapter's column), each also over the frozen
    encoder (:data:`FROZEN_SUFFIX`, every seed of ``moe.seeds``), the controls of
    :data:`~.protocol.CONTROLS` (frozen encoder, every seed) and, with a trained column, its transfer
    control :data:`~.protocol.SINGLE` and its freezing control (:data:`CONTINUED_SUFFIX`, MTL, UniMoE and
    UniMoE-Guided each); Individual also, and ``MTL adapted``, ``UniMoE-Guided adapted`` on
    every task. ``gates[task]``: (n, M) UniMoE-Guided's gate weights per test response of a training task
    (empty without an MoE block). ``kind``: the tasks' kind; ``classes[task]``: a score's class count K
    (multi-class tasks)."""

    labels: dict
    preds: dict
    gates: dict
    kind: str = "multilabel"
    classes: dict = field(default_factory=dict)


@torch.no_grad()
def response_gates(model: multitask.MultiTaskModel, states, task: str, size: int = 64) -> np.ndarray:
    """(n, M) each response's gate weights for ``task`` over a split's states (rows sum to 1; their
    mean is :func:`~scoring_lab.moe.multitask.expert_usage`)."""
    if model.moe is None:
        raise ValueError("the model has no MoE block")
    model.eval()
    out = np.zeros((len(states), model.moe.n_experts), np.float32)
    for idx, batch in states.batches(size):
        batch = multitask._on(batch, multitask._device(model))
        hidden = model.encode(batch)
        ids = torch.full((hidden.shape[0],), model.tasks.index(task), dtype=torch.long, device=hidden.device)
        out[idx] = model.moe.weights(hidden, batch["attention_mask"], ids).float().cpu().numpy()
    return out


def gate_weights(study: MoEStudy, fitted, task: str, split: str = "test") -> np.ndarray:
    """(n, M) ``fitted``'s gate weights per response of ``task``'s ``split``, cached by model and split."""
    s = study.setup
    inputs = {"model": fitted.key, "task": task, "split": split_fingerprint(s.tasks[task].splits()[split]),
              "code": code_version(response_gates)}

    def produce(folder: Path):
        np.save(folder / "gates.npy", response_gates(
            fitted.model, study.inputs.states(task, split, s.reads_pooled(fitted.settings)), task))

    return s.cache.get_or_compute(GATES_KIND, inputs, produce, lambda a: np.load(a.file("gates.npy")))[0]


def gather(study: MoEStudy) -> Evidence:
    """The study's test labels, predictions and gate weights (see :class:`Evidence`)."""
    s = study.setup
    old, every = s.old, s.old + s.new
    test = {t: s.tasks[t].splits()["test"] for t in every}

    def cut(p) -> np.ndarray:
        return decide(p, s.kind)

    def on(fitted, tasks) -> dict:
        return {t: cut(study.proba(fitted, t, "test")) for t in tasks}

    def seeded(method: str) -> dict:     # (S, n, L): the frozen column's model from each seed
        fits = study.selection.seeded(method)
        return {t: np.stack([cut(study.proba(f, t, "test")) for f in fits]) for t in old}

    preds = {INDIVIDUAL: {t: cut(s.scorers[t].predict_proba(test[t])) for t in every}}
    for m in (MTL, UNIMOE, GUIDED):
        preds[m] = on(study.model(m), old)
        preds[m + FROZEN_SUFFIX] = seeded(m)
    for m in CONTROLS:
        preds[m] = seeded(m)
    if study.trained is not None:
        preds[SINGLE] = {t: on(study.trained.models.single_task(t), [t])[t] for t in old}
        for m in (MTL, UNIMOE, GUIDED):
            preds[m + CONTINUED_SUFFIX] = on(study.trained.models.continued(m), old)
    for m in (MTL, GUIDED):
        preds[m + ADAPTED] = on(study.adapted(m), every)
    preds[GUIDED + ADAPTED + NO_REHEARSAL] = on(study.adaptation.adapted(GUIDED, rehearsal=0.0), every)
    guided = study.model(GUIDED)
    gates = {t: gate_weights(study, guided, t) for t in old} if guided.model.moe is not None else {}
    return Evidence({t: s.truth(t, "test") for t in every}, preds, gates, s.kind,
                    {t: s.tasks[t].n_classes for t in every if s.kind == "multiclass"})
