"""The chapter's protocol: its methods, metrics and decisions (the paper's fixed threshold for rubric
dimensions, the most probable class for a score), which sources it runs on, which tasks train and
which are held out, and what every step of a study shares
(:class:`StudySetup`: the tasks, the backbone and the layer the multi-task models train from,
the cache, the seed and the timing of the steps)."""
from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import replace

import numpy as np
import torch

from .. import published
from ..data.task import Task
from ..kd.sets import Applicability
from ..models.backbone import load_backbone
from ..models.cache import ArtifactCache
from ..models.per_task import TrainedScorer, task_kind
from ..profiles import MultiTaskSettings, Profile
from . import layers as moe

INDIVIDUAL, MTL, UNIMOE, GUIDED = "Individual", "MTL", "UniMoE", "UniMoE-Guided"
METHODS = (INDIVIDUAL, MTL, UNIMOE, GUIDED)
# controls (beyond the paper): UniMoE's block with one expert as wide as its M experts together (routing
# removed, capacity kept), and MTL distilled from the teachers as UniMoE-Guided is (distillation without routing)
DENSE, MTL_KD = "dense block (M = 1, same size)", "MTL + KD"
CONTROLS = (DENSE, MTL_KD)
SINGLE = "MTL, one task at a time"   # the transfer control: MTL's start and its trained layer, each task alone
# the freezing control: a frozen-encoder model trained on for the trained column's epochs, with no layer trained
CONTINUED = "frozen encoder, trained on as long"
METRICS = published.UNIMOE_METRICS   # the paper's, for rubric dimensions (multi-label tasks)
# for scored tasks (multi-class): kappa is then quadratic weighted kappa (a score's, as ASAP-SAS reports it),
# macro-F1 the mean over classes, and accuracy stands for micro-F1 and per-label accuracy, which for one
# class per response both equal it
MULTICLASS_METRICS = ("kappa", "macro_f1", "accuracy")
PAPER_COUNTERPART = {"kappa": "kappa", "macro_f1": "macro_f1", "micro_f1": "accuracy", "per_label_accuracy": "accuracy"}
IN_SAMPLE, OUT_OF_FOLD = "in-sample", "out-of-fold"
FROZEN = "frozen encoder"   # the column of models over a wholly frozen encoder
THRESHOLD = 0.5   # the paper's fixed decision threshold
COLUMNS = ["method", "task", *METRICS, "exact_match", "n_test"]


def metrics_of(kind: str) -> tuple[str, ...]:
    """The table metrics of a kind of task: the paper's four for rubric dimensions, three for a score."""
    return METRICS if kind == "multilabel" else MULTICLASS_METRICS


def columns_of(kind: str) -> list[str]:
    """The columns of a method-task table of a kind: method, task, the metrics (exact match beside the
    multi-label ones), n_test."""
    return COLUMNS if kind == "multilabel" else ["method", "task", *MULTICLASS_METRICS, "n_test"]


def ours_for(paper_metrics, kind: str) -> list[str]:
    """The metrics of ``kind`` that stand for the paper's ``paper_metrics`` (each once, in order)."""
    if kind == "multilabel":
        return list(paper_metrics)
    return list(dict.fromkeys(PAPER_COUNTERPART[m] for m in paper_metrics))


def decide(proba: np.ndarray, kind: str) -> np.ndarray:
    """Decisions from probabilities: (n, L) 0/1 at the paper's threshold (rubric dimensions) or (n,) the most
    probable class (a score, from (n, K))."""
    p = np.asarray(proba)
    return (p >= THRESHOLD).astype(np.int8) if kind == "multilabel" else p.argmax(axis=-1)


def applies(tasks: dict[str, Task]) -> Applicability:
    """Whether the UniMoE protocol runs on a source's tasks: two or more, of one kind (rubric dimensions, a
    sigmoid each, or scores, a softmax each)."""
    try:
        task_kind(tasks)
    except ValueError as e:
        return Applicability(False, f"This chapter trains one kind of task at a time: {e}; its parts are skipped.")
    if len(tasks) < 2:
        return Applicability(False, "This chapter needs at least two tasks (one to train on, one to adapt to); this "
                                    "source has one, so its parts are skipped.")
    return Applicability(True)


def held_out_tasks(tasks: dict[str, Task], named: tuple[str, ...]) -> list[str]:
    """The tasks kept for adaptation: those of ``moe.held_out`` (the paper's Tasks 8-9) the run has, as long as
    a task is left to train on; a run with none of them (another source), or with nothing else, holds out
    its last task (the page says which tasks were held out, and why)."""
    present = [t for t in named if t in tasks]
    return present if present and len(present) < len(tasks) else [list(tasks)[-1]]


class StudySetup:
    """What every step of the study shares: the run's ``tasks`` (``old``: trained on, ``new``: held out
    for adaptation) and their per-task ``scorers``, the profile's ``moe`` settings, the backbone
    (frozen, on ``device``) with ``layer``, the first layer the multi-task models train (the layer
    count: none, the encoder stays frozen), the cache, the seed, and ``timing`` {step: seconds}."""

    def __init__(self, tasks: dict[str, Task], scorers: dict[str, TrainedScorer], profile: Profile,
                 cache: ArtifactCache | None = None, seed: int = 0, progress: bool = True):
        s = profile.moe
        ok = applies(tasks)
        if not ok:
            raise ValueError(ok.reason)
        self.tasks, self.scorers, self.profile, self.settings = tasks, scorers, profile, s
        self.kind = task_kind(tasks)
        self.new = held_out_tasks(tasks, s.held_out)
        self.old = [t for t in tasks if t not in self.new]
        if not self.old:
            raise ValueError(f"every task of this run is held out ({self.new}); nothing is left to train on")
        self.seed, self.progress = int(seed), progress
        self.cache = cache or ArtifactCache()
        train = profile.train
        self.backbone = load_backbone(train.backbone, seed=self.seed, dtype=train.dtype,
                                      encoder_layers=train.encoder_layers)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.backbone.model.to(self.device).eval()
        for p in self.backbone.model.parameters():
            p.requires_grad_(False)
        n = self.backbone.n_layers
        self.layer = 0 if s.trainable_layers is None or s.trainable_layers >= n else n - s.trainable_layers
        self.timing: dict[str, float] = {}

    @property
    def frozen_encoder(self) -> bool:
        return self.layer >= self.backbone.n_layers

    def frozen(self) -> StudySetup:
        """This setup with the whole encoder frozen (the search's, the controls' and the frozen column's):
        the same tasks, backbone, cache and timing."""
        out = copy.copy(self)
        out.layer = self.backbone.n_layers
        return out

    @property
    def encoder_label(self) -> str:
        """What of the shared encoder this setup's models train, in words (a column's name)."""
        n = self.backbone.n_layers
        if self.layer >= n:
            return FROZEN
        if self.layer == 0:
            return "whole encoder trained"
        k = n - self.layer
        return "top layer trained" if k == 1 else f"top {k} layers trained"

    def reads_pooled(self, settings: MultiTaskSettings) -> bool:
        """Whether a model reads nothing but each response's mean final state (frozen encoder, MTL or the
        pooled MoE): then it trains over :func:`~scoring_lab.moe.multitask.pooled_states`."""
        return self.frozen_encoder and (not settings.use_moe or settings.moe_on == moe.POOLED)

    @property
    def teacher_settings(self):
        """The teachers' training settings: the per-task scorers', or theirs with ``moe.teacher`` applied."""
        return replace(self.profile.train, **self.settings.teacher) if self.settings.teacher else self.profile.train

    def labels_per_task(self, tasks: Iterable[str]) -> dict[str, int]:
        """{task: its output count} of ``tasks``, in their order (labels, or classes of a score)."""
        return {t: self.tasks[t].n_labels for t in tasks}

    def kinds(self, tasks: Iterable[str]) -> dict[str, str]:
        """{task: its kind} of ``tasks`` (what head and loss each gets)."""
        return {t: self.tasks[t].kind for t in tasks}

    @property
    def metrics(self) -> tuple[str, ...]:
        """The table metrics of this run's kind of task (:func:`metrics_of`)."""
        return metrics_of(self.kind)

    @property
    def columns(self) -> list[str]:
        return columns_of(self.kind)

    def truth(self, task: str, split: str) -> np.ndarray:
        """(n, L) 0/1 labels or (n,) classes of a split of ``task``, as its kind has them."""
        s = self.tasks[task].splits()[split]
        return s.labels if self.kind == "multilabel" else s.scores

    def families(self) -> dict[str, str] | None:
        """{task: planted family} when every task's meta names one (the synthetic benchmark), else None."""
        if not all("family" in t.meta for t in self.tasks.values()):
            return None
        return {n: t.meta["family"] for n, t in self.tasks.items()}
