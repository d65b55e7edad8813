"""The chapter's protocol: its methods, metrics and fixed decision threshold, which sources it runs
on, which tasks train and which are held out, and what every step of a study shares
(:class:`StudySetup`: the tasks, the backbone and the layer the multi-task models train from,
the cache, the seed and the timing of the steps)."""
from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import replace

import torch

from .. import published
from ..data.task import Task
from ..kd.sets import Applicability
from ..models.backbone import load_backbone
from ..models.cache import ArtifactCache
from ..models.per_task import TrainedScorer
from ..profiles import MultiTaskSettings, Profile
from . import layers as moe

INDIVIDUAL, MTL, UNIMOE, GUIDED = "Individual", "MTL", "UniMoE", "UniMoE-Guided"
METHODS = (INDIVIDUAL, MTL, UNIMOE, GUIDED)
# controls (beyond the paper): UniMoE's block with one expert as wide as its M experts together (routing
# removed, capacity kept), and MTL distilled from the teachers as UniMoE-Guided is (distillation without routing)
DENSE, MTL_KD = "dense block (M = 1, same size)", "MTL + KD"
CONTROLS = (DENSE, MTL_KD)
SINGLE = "MTL, one task at a time"   # the transfer control: MTL's start and its trained layer, each task alone
METRICS = published.UNIMOE_METRICS
IN_SAMPLE, OUT_OF_FOLD = "in-sample", "out-of-fold"
FROZEN = "frozen encoder"   # the column of models over a wholly frozen encoder
THRESHOLD = 0.5   # the paper's fixed decision threshold
COLUMNS = ["method", "task", *METRICS, "exact_match", "n_test"]


def applies(tasks: dict[str, Task]) -> Applicability:
    """Whether the UniMoE protocol runs on a source's tasks: multi-label ones (rubric dimensions), two or more."""
    if any(t.kind != "multilabel" for t in tasks.values()):
        return Applicability(False, "This chapter reproduces a multi-label method (one binary output per rubric "
                                    "dimension); this source's tasks have multi-class scores, so its parts are skipped.")
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
        """{task: its label count} of ``tasks``, in their order."""
        return {t: self.tasks[t].n_labels for t in tasks}

    def families(self) -> dict[str, str] | None:
        """{task: planted family} when every task's meta names one (the synthetic benchmark), else None."""
        if not all("family" in t.meta for t in self.tasks.values()):
            return None
        return {n: t.meta["family"] for n, t in self.tasks.items()}
