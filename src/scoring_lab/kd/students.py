"""The models the KD chapter trains over seeds, each once and cached: the LSTM students (a set's planned
students side by side, in ``kd.workers`` processes), cached as the very artifact a user deploys
(:class:`scoring_lab.kd.student.Student`), and the ANN baseline, whose test probabilities are cached.

Every student of a set uses the vocabulary threshold chosen for it on validation
(:mod:`~scoring_lab.kd.vocab_choice`); the threshold is part of each student's cache key."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from . import ann as ann_module
from . import distill as kd_module
from . import student_batch
from . import student as student_module
from . import vocab as vocab_module
from . import vocab_choice
from . import distillation_choice
from .fine_tuned import FineTunedTransformers
from .plan import KDPlan
from ..models.cache import ArtifactCache, array_digest, code_version
from ..models.per_task import task_fingerprint
from ..study_steps import TimedSteps

STUDENT_KIND, ANN_KIND, ANN_MODEL_KIND = "kd-student", "kd-ann", "kd-ann-model"

# What a student's training depends on among the kd settings (seed, lambda and teacher targets are keyed apart);
# the others (seeds, sweep, baselines, workers) choose which students to train, not how one trains.
STUDENT_SETTINGS = ("parameter_budget", "embedding_dim", "lstm_units", "dense_units", "dropout", "max_words", "lr",
                    "batch_size", "max_epochs", "patience")


def student_settings(settings) -> dict:
    """The kd settings a student's training depends on: its cache key's share of them."""
    return {k: getattr(settings, k) for k in STUDENT_SETTINGS}


@dataclass
class CachedStudent:
    """A trained student as the cache keeps it: the model, its (epochs,) training history, its fit info,
    whether it came from the cache, and its folder."""

    student: student_module.Student
    history: pd.DataFrame
    info: dict
    from_cache: bool
    path: Path


class StudentsAndANN(TimedSteps):
    """The students and ANN baselines of ``plan``'s sets, trained once each (the students' teacher targets
    from ``transformers``) and kept in ``cache``."""

    def __init__(self, plan: KDPlan, transformers: FineTunedTransformers, cache: ArtifactCache,
                 progress: bool = True):
        self.plan, self.sets, self.kd = plan, plan.sets, plan.kd
        self.transformers, self.cache, self.progress = transformers, cache, progress
        self._memo: dict = {}   # (what, set, seed or how) -> a fitted ANN, a targets digest, or students trained
        self.timing = transformers.timing if transformers is not None else {}   # one cost table for the chapter

    # ---- students ---------------------------------------------------------------------------
    def student_inputs(self, name: str, request: kd_module.StudentRequest) -> dict:
        """What the cache key of student ``request`` of set ``name`` is made of."""
        task = self.sets[name]
        teacher = None if request.lam == 0 else {"how": request.targets, "proba": self._once(
            ("digest", name, request.targets),
            lambda: _targets_digest(self.transformers.teacher_targets(name, request.targets)))}
        return {"task": task.name, "data": task_fingerprint(task), "kd": student_settings(self.kd),
                "seed": int(request.seed), "lam": float(request.lam), "teacher": teacher,
                "min_count": int(request.min_count), "temperature": float(request.temperature),
                "code": code_version(kd_module, student_module, student_batch, vocab_module)}

    def min_count(self, name: str) -> int:
        """The vocabulary threshold of set ``name``'s students, chosen on validation once
        (:func:`~scoring_lab.kd.vocab_choice.choice`)."""
        return self._once(("min_count", name), lambda: vocab_choice.chosen_min_count(self.vocab_choice(name)))

    def vocab_choice(self, name: str) -> pd.DataFrame:
        """:func:`~scoring_lab.kd.vocab_choice.choice` on set ``name``: set, min_count, val_accuracy_mean,
        val_accuracy_sd, seeds, vocab_size, chosen."""
        return self._once(("vocab choice", name), lambda: vocab_choice.choice(self, name))

    def distillation_choice(self) -> pd.DataFrame:
        """:func:`~scoring_lab.kd.distillation_choice.choice`: lambda and tau chosen on the sweep set's
        validation responses (set, lam, temperature, val_accuracy_mean, val_accuracy_sd, seeds, chosen)."""
        return self._once(("distillation choice",), lambda: distillation_choice.choice(self))

    def kd_setting(self) -> tuple[float, float]:
        """(lambda, temperature) of every set's KD student, chosen on validation."""
        return distillation_choice.chosen_setting(self.distillation_choice())

    def has_oracle(self, name: str) -> bool:
        """Whether set ``name`` has the positive control's teacher (the generator's probabilities)."""
        return self.transformers.has_oracle(name)

    def planned_students(self, name: str) -> list[kd_module.StudentRequest]:
        """:meth:`KDPlan.planned_students` of set ``name`` at its vocabulary threshold and the chosen setting."""
        lam, tau = self.kd_setting()
        return self.plan.planned_students(name, self.min_count(name), lam, tau, self.has_oracle(name))

    def train_students(self, name: str, requests: list[kd_module.StudentRequest] | None = None) -> int:
        """Train the students of set ``name`` (``requests``, or all planned) that the cache lacks, side by
        side in ``kd.workers`` processes, and cache each; returns how many were trained."""
        requests = self.planned_students(name) if requests is None else requests
        return self._timed("LSTM students: training", lambda: self._train_missing(name, requests))

    def _train_missing(self, name: str, requests: list[kd_module.StudentRequest]) -> int:
        inputs = {r: self.student_inputs(name, r) for r in requests}
        missing = [r for r in requests if not self.cache.exists(STUDENT_KIND, self.cache.key(inputs[r]))]
        if not missing:
            return 0
        task = self.sets[name]
        teachers = {how: self.transformers.teacher_targets(name, how)
                    for how in {r.targets for r in missing if r.lam > 0}}
        workers = min(self.kd.workers, len(missing))
        missing.sort(key=lambda r: r.min_count)   # a vocabulary per min_count: each process gets few of them
        cut = np.linspace(0, len(missing), workers + 1).round().astype(int)
        groups = [missing[a:b] for a, b in zip(cut[:-1], cut[1:])]
        desc = f"students of {name} ({len(missing)} in {workers} process{'es' if workers > 1 else ''})"
        if workers == 1:
            runs = [kd_module.train_students(task, self.kd, groups[0], teachers, progress=self.progress)]
        else:
            jobs = Parallel(n_jobs=workers, return_as="generator")(
                delayed(kd_module.train_students)(task, self.kd, g, teachers) for g in groups)
            runs = list(tqdm(jobs, total=workers, desc=desc, unit="group", disable=not self.progress))
        for group, group_runs in zip(groups, runs):
            for request, run in zip(group, group_runs):
                self.cache.write(STUDENT_KIND, self.cache.key(inputs[request]), inputs[request],
                                 lambda folder, run=run: _save_student(run, folder))
        return len(missing)

    def student(self, name: str, seed: int, lam: float, how: str = "in-sample", temperature: float = 1.0
                ) -> CachedStudent:
        """The LSTM student of set ``name`` (lambda ``lam``; teacher targets ``how`` at ``temperature``; the
        set's chosen vocabulary threshold), trained once: the first student asked of a set trains all the
        set's planned students together."""
        return self.planned_student(name, self.request(name, seed, lam, how, temperature))

    def request(self, name: str, seed: int, lam: float, how: str = "in-sample", temperature: float = 1.0
                ) -> kd_module.StudentRequest:
        """The request :meth:`student` asks of set ``name`` (its chosen vocabulary threshold; no targets and tau 1
        at lambda 0)."""
        return kd_module.StudentRequest(int(seed), float(lam), None if lam == 0 else how, self.min_count(name),
                                        1.0 if lam == 0 else float(temperature))

    def planned_student(self, name: str, request: kd_module.StudentRequest) -> CachedStudent:
        """Student ``request`` of set ``name``, the set's planned students trained together first if the cache
        lacks them."""
        self._once(("students", name), lambda: self.train_students(name))
        return self.cached_student(name, request)

    def kd_student(self, name: str, seed: int, how: str = "in-sample") -> CachedStudent:
        """Set ``name``'s KD student of ``seed`` at the chosen lambda and temperature, learning from targets
        ``how`` (``in-sample``, ``out-of-fold`` or the positive control's ``oracle``)."""
        lam, tau = self.kd_setting()
        return self.student(name, seed, lam, how, tau)

    def cached_student(self, name: str, request: kd_module.StudentRequest) -> CachedStudent:
        """Student ``request`` of set ``name`` from the cache, trained alone if it is not there."""
        how = request.targets
        inputs = self.student_inputs(name, request)

        def produce(folder: Path):   # a student outside the plan: trained alone
            targets = {} if request.lam == 0 else {how: self.transformers.teacher_targets(name, how)}
            _save_student(kd_module.train_students(self.sets[name], self.kd, [request], targets)[0], folder)

        def load(art):
            return (student_module.Student.load(art.path), pd.read_csv(art.file("history.csv")),
                    json.loads(art.file("info.json").read_text()), art.path)

        (student, history, info, path), hit = self._timed("LSTM students: loading", lambda: self.cache.get_or_compute(
            STUDENT_KIND, inputs, produce, load))
        return CachedStudent(student, history, info, hit, path)

    # ---- the ANN ----------------------------------------------------------------------------
    def ann_inputs(self, name: str, seed: int) -> dict:
        """What the cache key of set ``name``'s ANN of ``seed`` is made of."""
        task, k = self.sets[name], self.kd
        return {"task": task.name, "data": task_fingerprint(task, ("train", "val", "test")), "seed": int(seed),
                "hidden": k.ann_hidden, "max_features": k.ann_max_features, "code": code_version(ann_module)}

    def fit_anns(self, name: str) -> int:
        """Fit the ANNs of set ``name`` (one per seed) that the cache lacks, in ``kd.workers`` processes side by
        side, and cache their test probabilities; returns how many were fitted. Each fit is seeded, so it
        is the same whichever process runs it."""
        missing = [s for s in self.plan.seeds if not self.cache.exists(ANN_KIND, self.cache.key(self.ann_inputs(name, s)))]
        if not missing:
            return 0

        def fit_all():
            task, settings = self.sets[name], {"hidden": self.kd.ann_hidden, "max_features": self.kd.ann_max_features}
            workers = min(self.kd.workers, len(missing))
            if workers == 1:
                return [ann_module.fit_ann(task, seed=s, **settings) for s in missing]
            return Parallel(n_jobs=workers)(delayed(ann_module.fit_ann)(task, seed=s, **settings) for s in missing)

        for seed, model in zip(missing, self._timed("ANN: fit or load", fit_all)):
            self._memo[("ann", name, seed)] = model
            self.cache.write(ANN_KIND, self.cache.key(self.ann_inputs(name, seed)), self.ann_inputs(name, seed),
                             lambda folder, model=model: _save_ann(model, self.sets[name], folder))
        return len(missing)

    def ann_test_proba(self, name: str, seed: int) -> tuple[np.ndarray, dict]:
        """(n_test, K) test probabilities of the ANN baseline and its fit info, trained once (the first asked of
        a set fits all the set's seeds side by side)."""
        self._once(("anns", name), lambda: self.fit_anns(name))
        value, _ = self._timed("ANN: fit or load", lambda: self.cache.get_or_compute(
            ANN_KIND, self.ann_inputs(name, seed), lambda folder: _save_ann(self.fit_ann(name, seed), self.sets[name],
                                                                            folder),
            lambda art: (np.load(art.file("test_proba.npy")), json.loads(art.file("info.json").read_text()))))
        return value

    def fit_ann(self, name: str, seed: int) -> ann_module.ANNBaseline:
        """The fitted ANN, fitted once (or taken from this study's side-by-side fits) and kept in the cache (kind
        ``kd-ann-model``, joblib: scikit-learn's own persistence), so that a re-executed chapter times it without
        fitting it again."""
        def fit(folder: Path):
            model = self._memo.get(("ann", name, seed)) or ann_module.fit_ann(
                self.sets[name], hidden=self.kd.ann_hidden, max_features=self.kd.ann_max_features, seed=seed)
            joblib.dump(model, folder / "ann.joblib")

        return self._once(("ann model", name, seed), lambda: self.cache.get_or_compute(
            ANN_MODEL_KIND, self.ann_inputs(name, seed), fit, lambda art: joblib.load(art.file("ann.joblib")))[0])


def _save_ann(model: ann_module.ANNBaseline, task, folder: Path) -> None:
    np.save(folder / "test_proba.npy", model.predict_proba(task.test))
    (folder / "info.json").write_text(json.dumps({**model.info, "n_parameters": model.n_parameters}))


def _save_student(run: kd_module.StudentRun, folder: Path) -> None:
    run.student.save(folder)
    run.history.to_csv(folder / "history.csv", index=False)
    (folder / "info.json").write_text(json.dumps(run.info, indent=1))


def _targets_digest(targets: kd_module.TeacherProbabilities) -> str:
    """The teacher targets by content: the ids and the probabilities rounded to 6 decimals (so a last-bit
    difference in the teacher's forward pass keeps the students)."""
    return array_digest(targets.ids, targets.proba.round(6))
