"""The multi-task models: built over the study's encoder, trained once (one at a time, or side by side
in worker processes) and kept in the artifact cache under what made them."""
from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from ..models.cache import code_version, stable_hash
from ..models.per_task import task_fingerprint
from ..profiles import MultiTaskSettings
from ..study_steps import TimedSteps
from . import layers as moe, multitask
from .inputs import Inputs
from .multitask import MultiTaskModel
from .protocol import IN_SAMPLE, OUT_OF_FOLD, StudySetup

MODEL_KIND = "multitask-model"


@dataclass
class FittedModel:
    """A trained multi-task model, its settings, its training history and its cache key."""

    name: str
    model: MultiTaskModel
    settings: MultiTaskSettings
    history: pd.DataFrame
    key: str
    seconds: float          # the training's own seconds (when it ran, cached with the model)
    from_cache: bool
    tasks: list[str]

    @property
    def epochs(self) -> int:
        return int(len(self.history))


def deployable(fitted: FittedModel, encoder: torch.nn.Module) -> MultiTaskModel:
    """``fitted``'s model with the whole ``encoder`` (the backbone's) in place: what runs from raw text."""
    if isinstance(fitted.model.encoder, multitask.StatesInput):
        return multitask.deployable(fitted.model, encoder)
    return fitted.model


class ModelStore(TimedSteps):
    """Builds, trains and caches a study's multi-task models over its inputs."""

    def __init__(self, setup: StudySetup, inputs: Inputs):
        self.setup, self.inputs = setup, inputs
        self.timing, self._memo = setup.timing, {}

    def encoder(self) -> torch.nn.Module:
        """A wholly frozen encoder's stand-in (its states are precomputed), or a copy of the backbone
        whose layers from ``layer`` up train."""
        s = self.setup
        if s.frozen_encoder:
            return multitask.StatesInput(s.backbone.model.config)
        enc = copy.deepcopy(s.backbone.model)
        for name, p in enc.named_parameters():
            layer = int(name.split(".")[2]) if name.startswith("encoder.layer.") else -1
            p.requires_grad_(s.layer == 0 or layer >= s.layer)
        return enc

    def build(self, settings: MultiTaskSettings, tasks: list[str], seed: int | None = None) -> MultiTaskModel:
        """An untrained model of ``settings`` with a head per task of ``tasks`` (seeded: ``seed``, default the
        study's), on the study's device."""
        torch.manual_seed(self.setup.seed if seed is None else seed)
        return MultiTaskModel(self.encoder(), self.setup.layer, self.setup.labels_per_task(tasks),
                              settings, self.setup.kinds(tasks)).to(self.setup.device)

    def cache_inputs(self, name: str, settings: MultiTaskSettings, tasks: list[str], teacher: str | None,
                     extra: dict | None = None, seed: int | None = None) -> dict:
        """What a model is made from (its cache inputs): settings, tasks, encoder, teachers, seed (default the
        study's), code."""
        s = self.setup
        t = s.profile.train
        teachers = None
        if teacher is not None:
            teachers = {"how": teacher, "scorers": {x: self.inputs.teachers[x].key for x in tasks},
                        "folds": s.settings.teacher_folds if teacher == OUT_OF_FOLD else 0,
                        "settings": asdict(s.teacher_settings) if s.settings.teacher else "per-task scorers"}
        return {"name": name, "settings": asdict(settings), "tasks": {x: task_fingerprint(s.tasks[x]) for x in tasks},
                "layer": s.layer, "pooled": s.reads_pooled(settings),
                "backbone": {"name": t.backbone, "dtype": t.dtype, "encoder_layers": t.encoder_layers,
                             "max_length": t.max_length}, "teacher": teachers,
                "seed": s.seed if seed is None else int(seed),
                "extra": extra or {}, "code": code_version(multitask, moe)}

    def cached(self, name: str, settings: MultiTaskSettings, tasks: list[str], inputs: dict, train) -> FittedModel:
        """The model of ``inputs`` from the cache, else ``train() -> (model, history, seconds)`` and cached."""
        def produce(folder: Path):
            model, history, seconds = train()
            save_file(multitask.trained_state(model), str(folder / "weights.safetensors"))
            history.to_csv(folder / "history.csv", index=False)
            (folder / "meta.json").write_text(json.dumps({"seconds": seconds, "tasks": tasks}))

        def load(art):
            model = self.build(settings, tasks)
            state = load_file(str(art.file("weights.safetensors")))
            missing, unexpected = model.load_state_dict(state, strict=False)
            if unexpected or any(not k.startswith("encoder.") for k in missing):
                raise ValueError(f"checkpoint does not fit the model: missing {missing[:3]}, unexpected {unexpected[:3]}")
            meta = json.loads(art.file("meta.json").read_text())
            return model.eval(), pd.read_csv(art.file("history.csv")), float(meta["seconds"])

        cache = self.setup.cache
        (model, history, seconds), hit = cache.get_or_compute(MODEL_KIND, inputs, produce, load)
        return FittedModel(name, model, settings, history, cache.key(inputs), seconds, hit, list(tasks))

    def _plan(self, name: str, settings: MultiTaskSettings, teacher: str | None, seed: int | None = None):
        """(teacher, cache inputs, the training data) of a model on the training tasks."""
        old = self.setup.old
        teacher = (teacher or IN_SAMPLE) if settings.lambda_kd > 0 else None
        inputs = self.cache_inputs(name, settings, old, teacher, seed=seed)

        def data():
            return ({t: self.inputs.task_data(t, "train", settings, teacher) for t in old},
                    {t: self.inputs.task_data(t, "val", settings) for t in old})
        return teacher, inputs, data

    def fit(self, name: str, settings: MultiTaskSettings, teacher: str | None = None, seed: int | None = None
            ) -> FittedModel:
        """A multi-task model on the training tasks (MTL when ``settings.use_moe`` is off), KD from the
        teachers' ``teacher`` logits when ``settings.lambda_kd`` > 0, from ``seed`` (default the study's);
        trained once, then cached."""
        teacher, inputs, data = self._plan(name, settings, teacher, seed)
        s = self.setup
        seed = s.seed if seed is None else int(seed)

        def train():
            tr, va = data()
            if s.reads_pooled(settings):   # as in a worker of fit_many: one thread, the same numbers
                return self._job_here(settings, tr, va, seed)
            model = self.build(settings, s.old, seed)
            t0 = time.perf_counter()
            model, history = multitask.train_multitask(model, tr, va, settings, seed, progress=s.progress)
            return model, history, time.perf_counter() - t0

        return self._once(("fit", stable_hash(inputs)), lambda: self._timed(
            f"training ({name})", lambda: self.cached(name, settings, s.old, inputs, train)))

    def _job_here(self, settings: MultiTaskSettings, train: dict, val: dict, seed: int):
        """:func:`multitask.train_job` in this process, on one thread as in a worker: (model, history, seconds)."""
        threads = torch.get_num_threads()
        try:
            state, history, seconds = multitask.train_job(settings, self.setup.backbone.model.config,
                                                          self.setup.labels_per_task(train), train, val,
                                                          seed, threads=1, kinds=self.setup.kinds(train))
        finally:
            torch.set_num_threads(threads)
        model = self.build(settings, list(train))
        model.load_state_dict(state, strict=False)
        return model, history, seconds

    def fit_from(self, name: str, base: FittedModel, settings: MultiTaskSettings, tasks: list[str] | None = None,
                 step: str | None = None) -> FittedModel:
        """``base`` (a model over the wholly frozen encoder) trained on with this setup's encoder layers: its MoE
        block and the heads of ``tasks`` (default: the training tasks) are the starting point, the encoder's
        layers from ``layer`` up the backbone's; ``settings`` say how long and how fast (KD when
        ``settings.lambda_kd`` > 0). Trained once, then cached under ``base``'s key."""
        s = self.setup
        tasks = list(tasks or s.old)
        teacher = IN_SAMPLE if settings.lambda_kd > 0 else None
        inputs = self.cache_inputs(name, settings, tasks, teacher, {"warm_start": base.key})

        def train():
            model = self.build(settings, tasks)
            start = {k: v for k, v in multitask.trained_state(base.model).items() if not k.startswith("heads.")}
            missing, unexpected = model.load_state_dict(start, strict=False)
            if unexpected or any(not k.startswith(("encoder.", "heads.")) for k in missing):
                raise ValueError(f"{base.name} does not fit {name}: missing {missing[:3]}, unexpected {unexpected[:3]}")
            for i, t in enumerate(tasks):   # each task's head from the base's head of that task
                own = base.model.heads.heads[base.model.heads.names.index(t)]
                model.heads.heads[i].load_state_dict(own.state_dict())
            tr = {t: self.inputs.task_data(t, "train", settings, teacher) for t in tasks}
            va = {t: self.inputs.task_data(t, "val", settings) for t in tasks}
            t0 = time.perf_counter()
            model, history = multitask.train_multitask(model, tr, va, settings, s.seed, progress=s.progress)
            return model, history, time.perf_counter() - t0

        return self._once(("fit", stable_hash(inputs)), lambda: self._timed(
            step or f"training ({name})", lambda: self.cached(name, settings, tasks, inputs, train)))

    def fit_many(self, jobs: list[tuple], seed: int | None = None) -> list[FittedModel]:
        """:meth:`fit` of every (name, settings) or (name, settings, seed) from its seed (else ``seed``, else the
        study's); those not cached that read pooled states train side by side in ``moe.workers`` processes of
        one thread each (small matmuls gain nothing from a second thread)."""
        s = self.setup
        jobs = [(job[0], job[1], int(job[2] if len(job) > 2 else s.seed if seed is None else seed)) for job in jobs]
        todo = []
        for name, settings, job_seed in jobs:
            teacher, inputs, data = self._plan(name, settings, None, job_seed)
            key = ("fit", stable_hash(inputs))
            if key not in self._memo and not s.cache.exists(MODEL_KIND, s.cache.key(inputs)) \
                    and s.reads_pooled(settings):
                todo.append((name, settings, job_seed, inputs, data))
        workers = min(s.settings.workers, len(todo))
        if workers > 1:
            from joblib import Parallel, delayed
            labels, kinds = s.labels_per_task(s.old), s.kinds(s.old)
            config = s.backbone.model.config

            def run_all():
                return Parallel(n_jobs=workers)(delayed(multitask.train_job)(
                    settings, config, labels, *data(), job_seed, 1, kinds) for _, settings, job_seed, _, data in todo)
            results = self._timed(f"training ({len(todo)} models in {workers} processes)", run_all)
            for (name, settings, job_seed, inputs, _), (state, history, seconds) in zip(todo, results):
                def train(state=state, history=history, seconds=seconds, settings=settings, job_seed=job_seed):
                    model = self.build(settings, s.old, job_seed)
                    model.load_state_dict(state, strict=False)
                    return model, history, seconds
                self._memo[("fit", stable_hash(inputs))] = self.cached(name, settings, s.old, inputs, train)
        return [self.fit(name, settings, seed=job_seed) for name, settings, job_seed in jobs]
