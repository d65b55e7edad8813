"""The KD chapter's experiment: teachers, baselines and students over seeds, each trained once and cached.

For every KD data set (:mod:`scoring_lab.kd.sets`) a :class:`KDStudy` gives

* the teacher: a fine-tuned transformer (``training.train_scorer`` through the
  per-task scorer cache) with the profile's train settings and ``kd.teacher``'s
  changes; its class probabilities on the training responses are the KD targets;
* the small transformer (the paper's TinyBERT role): the same scorer code with
  ``kd.small_transformer``'s settings (on ``default`` the lower layers of the
  packaged MiniLM, on ``paper`` a TinyBERT checkpoint by name);
* the ANN (:mod:`scoring_lab.kd.ann`) and the LSTM student with lambda = 0 and with
  the paper's lambda (:mod:`scoring_lab.kd.distill`), over ``kd.seeds`` seeds;

and the chapter's tables: per-seed test metrics, the Table 2 analog (mean ± sd),
paired tests of the KD student against each baseline, the lambda sweep, and
out-of-fold against in-sample teacher targets. Students are cached as the very
artifact a user deploys (:class:`scoring_lab.kd.student.Student`).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from scipy import stats
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from . import ann as ann_module
from . import distill as kd_module
from . import teachers as kd_teachers
from . import student_batch
from . import student as student_module
from . import vocab as vocab_module
from ..models.cache import ArtifactCache, code_version, stable_hash
from ..models.latency import latency_per_response
from . import sets as kd_sets
from ..data.task import Split, Task
from ..metrics import accuracy, multiclass_macro_f1
from ..models.per_task import TrainedScorer, get_scorer, task_fingerprint
from ..profiles import Profile, small_transformer_settings, teacher_settings

TEACHER, SMALL, ANN, STUDENT, KD_STUDENT = ("teacher", "small transformer", "ANN", "student (lambda = 0)",
                                            "KD student")
MODELS = (TEACHER, SMALL, ANN, STUDENT, KD_STUDENT)
STUDENT_KIND, ANN_KIND = "kd-student", "kd-ann"


@dataclass
class CachedStudent:
    student: student_module.Student
    history: pd.DataFrame
    info: dict
    from_cache: bool
    path: Path


@dataclass
class Teacher:
    """A KD set's teacher: its class probabilities on any split of the set, and the model(s) behind them.

    scorers: the fine-tuned transformer(s): one per set (``fine-tune``) or one per member task
    (``per-task``, each response scored by its own task's)."""

    source: str
    scorers: dict[str, TrainedScorer]
    predict_proba: Callable[[Split], np.ndarray]   # split of the set -> (n, K)

    def predict(self, split: Split) -> np.ndarray:
        return self.predict_proba(split).argmax(axis=1)

    @property
    def scorer(self):
        """The (first) transformer itself, for its size and speed."""
        return next(iter(self.scorers.values())).scorer


def scores_of(task: Task, pred: np.ndarray) -> dict:
    """accuracy and macro-F1 of (n,) predicted classes on the test split."""
    y = task.test.scores
    return {"accuracy": accuracy(y, pred), "macro_f1": multiclass_macro_f1(y, pred, task.n_classes)}


class KDStudy:
    """Everything the KD chapter trains, for the sets ``sets`` under ``profile`` (seeds from ``seed``).

    ``tasks`` are the source's tasks the sets were built from: the per-task teachers
    (``kd.teacher_source: per-task``) are their scorers."""

    def __init__(self, sets: dict[str, Task], profile: Profile, cache: ArtifactCache | None = None, seed: int = 0,
                 progress: bool = True, tasks: dict[str, Task] | None = None):
        self.sets, self.profile, self.kd = sets, profile, profile.kd
        self.tasks = tasks
        self.cache = cache or ArtifactCache()
        self.seed, self.progress = int(seed), progress
        self.seeds = [self.seed + i for i in range(self.kd.seeds)]
        self.transformer_seeds = [self.seed + i for i in range(self.kd.teacher_seeds)]
        self._memo: dict = {}   # (what, set, seed or how) -> a model or targets, loaded once per study
        if self.kd.teacher_source == "per-task":
            if tasks is None:
                raise ValueError("kd.teacher_source per-task needs the source's tasks (KDStudy(..., tasks=run.tasks))")
            for t in sets.values():
                kd_teachers.check_applies(t, tasks)

    def _once(self, key: tuple, make):
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    # ---- the transformers -------------------------------------------------------------
    def teacher(self, name: str, seed: int | None = None) -> Teacher:
        """The teacher of set ``name``: fine-tuned on the set (``fine-tune``), or the scorers of its member
        tasks with the profile's own train settings, the very ones of the chapter "Per-task scorers"."""
        seed = self.seed if seed is None else seed
        return self._once(("teacher", name, seed), lambda: self._teacher(name, seed))

    def _teacher(self, name: str, seed: int) -> Teacher:
        task = self.sets[name]
        if self.kd.teacher_source == "fine-tune":
            trained = get_scorer(task, teacher_settings(self.profile), seed, self.cache, self.progress)
            return Teacher("fine-tune", {name: trained}, trained.predict_proba)
        members = kd_sets.spec_of(task).tasks
        scorers = {m: get_scorer(self.tasks[m], self.profile.train, seed, self.cache, self.progress) for m in members}
        return Teacher("per-task", scorers, lambda split: kd_teachers.per_task_probabilities(
            task, split, self.tasks, lambda m, responses: scorers[m].predict_proba(responses)))

    def has_small_transformer(self, name: str) -> bool:
        """Whether the profile trains the small transformer on set ``name`` (``kd.small_transformer_pooled``
        says whether pooled sets get one)."""
        return self.kd.small_transformer_pooled or name in self.single_item_sets

    def small_transformer(self, name: str, seed: int | None = None) -> TrainedScorer:
        seed = self.seed if seed is None else seed
        return self._once(("small", name, seed), lambda: get_scorer(
            self.sets[name], small_transformer_settings(self.profile), seed, self.cache, self.progress))

    def teacher_targets(self, name: str, how: str = "in-sample") -> kd_module.TeacherProbabilities:
        """The KD targets of a set's training responses: the seed's teacher scoring its own training data
        (``in-sample``), or k fold teachers each scoring the fold it did not see (``out-of-fold``)."""
        return self._once(("targets", name, how), lambda: self._teacher_targets(name, how))

    def _teacher_targets(self, name: str, how: str) -> kd_module.TeacherProbabilities:
        task = self.sets[name]
        if how == "in-sample":
            return kd_module.TeacherProbabilities(task.train.ids, self.teacher(name).predict_proba(task.train))
        if how != "out-of-fold":
            raise ValueError(f"teacher targets are 'in-sample' or 'out-of-fold', got {how!r}")
        if self.kd.teacher_source == "fine-tune":
            settings = teacher_settings(self.profile)

            def predict_fold(fold_task, held):
                return get_scorer(fold_task, settings, self.seed, self.cache, self.progress).predict_proba(held)

            return kd_module.out_of_fold_probabilities(task, self.kd.oof_folds, predict_fold, self.seed)

        def predict_task_fold(fold_task, responses):
            return get_scorer(fold_task, self.profile.train, self.seed, self.cache, self.progress).predict_proba(
                responses)

        return kd_teachers.out_of_fold_class_probabilities(task, self.tasks, self.kd.oof_folds, self.seed,
                                                           predict_task_fold)

    # ---- students and the ANN ------------------------------------------------------------
    def planned_students(self, name: str) -> list[kd_module.StudentRequest]:
        """Every student the chapter asks of set ``name``: the table's (each seed, lambda 0 and the paper's
        lambda), the sweep's and the out-of-fold comparison's where they run on this set."""
        k = self.kd
        wanted = [(s, lam, "in-sample") for s in self.seeds for lam in (0.0, k.lam)]
        if name == self.sweep_set:
            wanted += [(s, lam, "in-sample") for lam in k.lambdas for s in self.sweep_seeds]
        if name == self.oof_set:
            wanted += [(s, k.lam, "out-of-fold") for s in self.seeds]
        requests = [kd_module.StudentRequest(s, float(lam), None if lam == 0 else how) for s, lam, how in wanted]
        return list(dict.fromkeys(requests))

    def _student_inputs(self, name: str, request: kd_module.StudentRequest) -> dict:
        task = self.sets[name]
        teacher = None if request.lam == 0 else {"how": request.targets, "proba": self._once(
            ("digest", name, request.targets), lambda: _digest(self.teacher_targets(name, request.targets).to_frame()))}
        return {"task": task.name, "data": task_fingerprint(task), "kd": student_settings(self.kd), "seed": int(request.seed),
                "lam": float(request.lam), "teacher": teacher,
                "code": code_version(kd_module, student_module, student_batch, vocab_module)}

    def train_students(self, name: str, requests: list[kd_module.StudentRequest] | None = None) -> int:
        """Train the students of set ``name`` (``requests``, or all planned) that the cache lacks, side by
        side in ``kd.workers`` processes, and cache each; returns how many were trained."""
        requests = self.planned_students(name) if requests is None else requests
        inputs = {r: self._student_inputs(name, r) for r in requests}
        missing = [r for r in requests if not self.cache.exists(STUDENT_KIND, self.cache.key(inputs[r]))]
        if not missing:
            return 0
        task = self.sets[name]
        teachers = {how: self.teacher_targets(name, how) for how in {r.targets for r in missing if r.lam > 0}}
        workers = min(self.kd.workers, len(missing))
        groups = [missing[i::workers] for i in range(workers)]
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

    def student(self, name: str, seed: int, lam: float, how: str = "in-sample") -> CachedStudent:
        """The LSTM student of set ``name`` (lambda ``lam``; teacher targets ``how``), trained once: the
        first student asked of a set trains all the set's planned students together."""
        request = kd_module.StudentRequest(int(seed), float(lam), None if lam == 0 else how)
        self._once(("students", name), lambda: self.train_students(name))
        inputs = self._student_inputs(name, request)

        def produce(folder: Path):   # a student outside the plan: trained alone
            targets = {} if request.lam == 0 else {how: self.teacher_targets(name, how)}
            _save_student(kd_module.train_students(self.sets[name], self.kd, [request], targets)[0], folder)

        def load(art):
            return (student_module.Student.load(art.path), pd.read_csv(art.file("history.csv")),
                    json.loads(art.file("info.json").read_text()), art.path)

        (student, history, info, path), hit = self.cache.get_or_compute(STUDENT_KIND, inputs, produce, load)
        return CachedStudent(student, history, info, hit, path)

    def ann_test_proba(self, name: str, seed: int) -> tuple[np.ndarray, dict]:
        """(n_test, K) test probabilities of the ANN baseline and its fit info, trained once."""
        task = self.sets[name]
        k = self.kd
        inputs = {"task": task.name, "data": task_fingerprint(task, ("train", "val", "test")), "seed": int(seed),
                  "hidden": k.ann_hidden, "max_features": k.ann_max_features, "code": code_version(ann_module)}

        def produce(folder: Path):
            model = self.fit_ann(name, seed)
            np.save(folder / "test_proba.npy", model.predict_proba(task.test))
            (folder / "info.json").write_text(json.dumps({**model.info, "n_parameters": model.n_parameters}))

        value, _ = self.cache.get_or_compute(ANN_KIND, inputs, produce, lambda art: (
            np.load(art.file("test_proba.npy")), json.loads(art.file("info.json").read_text())))
        return value

    def fit_ann(self, name: str, seed: int) -> ann_module.ANNBaseline:
        """The fitted ANN (fitted once per study; the cache keeps only its test probabilities)."""
        return self._once(("ann", name, seed), lambda: ann_module.fit_ann(
            self.sets[name], hidden=self.kd.ann_hidden, max_features=self.kd.ann_max_features, seed=seed))

    @property
    def sweep_set(self) -> str:
        return self.kd.sweep_set or self.single_item_sets[0]

    @property
    def oof_set(self) -> str:
        return self.kd.oof_set or self.single_item_sets[0]

    @property
    def sweep_seeds(self) -> list[int]:
        return self.seeds[: self.kd.sweep_seeds or len(self.seeds)]

    # ---- the chapter's tables --------------------------------------------------------------
    @cached_property
    def seed_results(self) -> pd.DataFrame:
        """One row per set, model and seed: set, model, seed, accuracy, macro_f1, n_test."""
        rows = []
        for name, task in tqdm(self.sets.items(), desc="KD sets", unit="set", disable=not self.progress):
            def add(model, seed, pred):
                rows.append({"set": name, "model": model, "seed": seed, **scores_of(task, pred), "n_test": len(task.test)})
            for s in self.transformer_seeds:
                add(TEACHER, s, self.teacher(name, s).predict(task.test))
                if self.has_small_transformer(name):
                    add(SMALL, s, self.small_transformer(name, s).predict(task.test))
            for s in self.seeds:
                add(ANN, s, self.ann_test_proba(name, s)[0].argmax(axis=1))
                add(STUDENT, s, self.student(name, s, 0.0).student.predict(task.test.texts))
                add(KD_STUDENT, s, self.student(name, s, self.kd.lam).student.predict(task.test.texts))
        return pd.DataFrame(rows)

    def sweep(self, name: str | None = None) -> pd.DataFrame:
        """Lambda sensitivity on one set: set, lam, seed, val_accuracy, accuracy, macro_f1."""
        name = name or self.sweep_set
        task = self.sets[name]
        rows = []
        for lam in tqdm(self.kd.lambdas, desc=f"lambda sweep ({name})", disable=not self.progress):
            for s in self.sweep_seeds:
                st = self.student(name, s, lam)
                val = float(st.history.loc[st.history["epoch"] == st.info["best_epoch"], "val_accuracy"].iloc[0]) \
                    if st.info["best_epoch"] > 0 else float("nan")
                rows.append({"set": name, "lam": lam, "seed": s, "val_accuracy": val,
                             **scores_of(task, st.student.predict(task.test.texts))})
        return pd.DataFrame(rows)

    def out_of_fold_comparison(self, name: str | None = None) -> pd.DataFrame:
        """In-sample against out-of-fold teacher targets on one set: set, targets, seed, accuracy, macro_f1,
        plus the targets' mean max-probability and agreement with the labels (how over-confident they are)."""
        name = name or self.oof_set
        task = self.sets[name]
        rows = []
        for how in ("in-sample", "out-of-fold"):
            targets = self.teacher_targets(name, how).for_ids(task.train.ids, task.n_classes)
            confidence = float(targets.max(axis=1).mean())
            agreement = float((targets.argmax(axis=1) == task.train.scores).mean())
            for s in self.seeds:
                st = self.student(name, s, self.kd.lam, how)
                rows.append({"set": name, "targets": how, "seed": s,
                             **scores_of(task, st.student.predict(task.test.texts)),
                             "target_confidence": confidence, "target_agreement": agreement})
        return pd.DataFrame(rows)

    @property
    def single_item_sets(self) -> list[str]:
        singles = [n for n, t in self.sets.items() if len(t.meta.get("spec", {}).get("tasks", ())) == 1]
        return singles or list(self.sets)


# What a student's training depends on among the kd settings (seed, lambda and teacher targets are keyed apart);
# the others (seeds, sweep, baselines, workers) choose which students to train, not how one trains.
STUDENT_SETTINGS = ("parameter_budget", "embedding_dim", "lstm_units", "dense_units", "dropout", "max_words", "lr",
                    "batch_size", "max_epochs", "patience")


def student_settings(settings) -> dict:
    """The kd settings a student's training depends on: its cache key's share of them."""
    return {k: getattr(settings, k) for k in STUDENT_SETTINGS}


def teacher_text(profile: Profile, multilabel: bool = True) -> str:
    """One or two sentences for the chapter: what the teacher is under ``profile`` (on tasks with rubric
    dimensions, ``multilabel``, or with a multi-class score)."""
    if profile.kd.teacher_source == "per-task":
        t = profile.train
        trained = "all layers" if t.trainable_layers is None else f"its top {t.trainable_layers} layers"
        on = "rubric dimensions" if multilabel else "score"
        how = ("Its probability of each dimension gives the distribution of how many a response meets (exactly, the "
               "dimensions taken as independent given the response), and so the set's class probabilities"
               if multilabel else "Its class probabilities are the set's (classes above a set's cap added into it)")
        return (f"the per-task scorer of each of the set's tasks (chapter \"Per-task scorers\": {t.backbone}, "
                f"{trained} fine-tuned on the task's {on}). {how}; a pooled set's responses are each scored by their "
                "own task's scorer.")
    return (f"a fine-tuned {teacher_settings(profile).backbone} per set, trained on the set's classes by the same code "
            "as the per-task scorers (chapter \"Per-task scorers\") and kept in the artifact cache.")


def _save_student(run: kd_module.StudentRun, folder: Path) -> None:
    run.student.save(folder)
    run.history.to_csv(folder / "history.csv", index=False)
    (folder / "info.json").write_text(json.dumps(run.info, indent=1))


def _digest(frame: pd.DataFrame) -> str:
    return stable_hash(frame.round(6).to_dict("list"))


# ----------------------------------------------------------------------------- summaries
def table2(seed_results: pd.DataFrame, models=MODELS) -> pd.DataFrame:
    """Per set and model: accuracy and macro-F1 mean and sd over seeds, and the number of seeds."""
    g = seed_results.groupby(["set", "model"], sort=False)
    out = g.agg(accuracy_mean=("accuracy", "mean"), accuracy_sd=("accuracy", "std"),
                macro_f1_mean=("macro_f1", "mean"), macro_f1_sd=("macro_f1", "std"), seeds=("seed", "nunique"))
    out = out.reset_index()
    out["model"] = pd.Categorical(out["model"], categories=list(models), ordered=True)
    return out.sort_values(["set", "model"], key=lambda c: c.map({s: i for i, s in enumerate(
        dict.fromkeys(seed_results["set"]))}) if c.name == "set" else c, kind="stable").reset_index(drop=True)


def mean_sd(table: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Sets as rows, models as columns, cells ``mean ± sd`` (sd left out for a single seed; ``not trained``
    where the profile trains no such model on the set)."""
    def cell(r):
        sd = r[f"{metric}_sd"]
        return f"{r[f'{metric}_mean']:.3f}" + ("" if pd.isna(sd) else f" ± {sd:.3f}")
    t = table.assign(cell=table.apply(cell, axis=1))
    wide = t.pivot(index="set", columns="model", values="cell")
    order = list(dict.fromkeys(table["set"]))
    wide = wide.reindex(order)[[m for m in MODELS if m in wide.columns]].fillna("not trained")
    return wide.rename_axis(None, axis=1).reset_index()


def paired_tests(seed_results: pd.DataFrame, ours: str = KD_STUDENT, metric: str = "accuracy") -> pd.DataFrame:
    """The KD student against each other model, per set: set, baseline, n, mean_difference, t, p, test.

    Paired by seed (scipy's ``ttest_rel``) where the baseline has as many seeds; a baseline trained with
    one seed is a fixed number, so the KD student's seeds are tested against it (``ttest_1samp``)."""
    rows = []
    for name, g in seed_results.groupby("set", sort=False):
        mine = g[g["model"] == ours].set_index("seed")[metric]
        for other in [m for m in MODELS if m != ours]:
            theirs = g[g["model"] == other].set_index("seed")[metric]
            if theirs.empty:
                continue
            common = mine.index.intersection(theirs.index)
            if len(theirs) >= 2 and len(common) >= 2:
                diff = mine[common] - theirs[common]
                res, test = stats.ttest_rel(mine[common], theirs[common]), "paired t (by seed)"
                n = len(common)
            else:
                diff = mine - float(theirs.mean())
                res, test = stats.ttest_1samp(mine, float(theirs.mean())), f"one-sample t (baseline: {len(theirs)} seed)"
                n = len(mine)
            rows.append({"set": name, "metric": metric, "baseline": other, "n": n,
                         "mean_difference": float(diff.mean()), "t": float(res.statistic), "p": float(res.pvalue),
                         "test": test})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- size and speed
def _folder_mb(path: Path) -> float:
    path = Path(path)
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files) / 2**20


def _student_mb(folder: Path) -> float:
    """MB of a saved student's own two files (not the cache's manifest beside them)."""
    return sum((Path(folder) / f).stat().st_size for f in (student_module.CONFIG_FILE, student_module.WEIGHTS_FILE)) / 2**20


def _parameters(module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def size_and_speed(study: KDStudy, name: str, onnx_path: Path, n_responses: int = 32, threads: int = 1,
                   repeats: int = 3) -> pd.DataFrame:
    """Per model of set ``name`` (seed ``study.seed``): parameters, weights MB (float32 transformers,
    float64 ANN), saved MB where the model is saved as a file, and CPU seconds per response at batch 1
    and batch 32 (median of ``repeats``, after one untimed call), all with ``threads`` threads (PyTorch and
    onnxruntime alike). ``benchmarks/bench_kd_latency.py`` times the same models at length."""
    from . import deploy

    task = study.sets[name]
    texts = list(task.test.texts[:n_responses])
    kd_student = study.student(name, study.seed, study.kd.lam)
    session = deploy.onnx_session(onnx_path, intra_op_num_threads=threads)
    ann = study.fit_ann(name, study.seed)
    teacher, small = study.teacher(name).scorer, study.small_transformer(name).scorer
    models = [
        (TEACHER, _parameters(teacher), 4 * _parameters(teacher), None,
         lambda b: teacher.predict_proba(b, batch_size=len(b))),
        (SMALL, _parameters(small), 4 * _parameters(small), None, lambda b: small.predict_proba(b, batch_size=len(b))),
        (ANN, ann.n_parameters, 8 * ann.n_parameters, None, ann.predict_proba),
        (f"{KD_STUDENT} (PyTorch)", kd_student.student.n_parameters, 4 * kd_student.student.n_parameters,
         _student_mb(kd_student.path), kd_student.student.predict_proba),
        (f"{KD_STUDENT} (ONNX Runtime)", kd_student.student.n_parameters, 4 * kd_student.student.n_parameters,
         _folder_mb(onnx_path), lambda b: deploy.onnx_predict_proba(session, kd_student.student.encode(b).numpy())),
    ]
    rows = []
    with student_module.torch_threads(threads):
        for model, params, weight_bytes, saved_mb, predict in models:
            row = {"model": model, "parameters": params, "weights_mb": weight_bytes / 2**20, "saved_mb": saved_mb}
            for b in (1, 32):
                timed = latency_per_response(predict, texts, batch_size=b, repeats=repeats, warmup=1)
                row[f"seconds_per_response_b{b}"] = timed["seconds_per_response"]
            rows.append(row)
    return pd.DataFrame(rows)


def ratios(sizes: pd.DataFrame) -> dict:
    """The paper's two size and speed claims, measured: teacher / student parameters, and the small
    transformer's seconds per response over the student's (PyTorch and ONNX, batch 1 and 32)."""
    by = sizes.set_index("model")
    student, onnx_row = by.loc[f"{KD_STUDENT} (PyTorch)"], by.loc[f"{KD_STUDENT} (ONNX Runtime)"]
    out = {"teacher_parameters": int(by.loc[TEACHER, "parameters"]),
           "parameter_ratio": by.loc[TEACHER, "parameters"] / student["parameters"],
           "small_parameter_ratio": by.loc[SMALL, "parameters"] / student["parameters"]}
    for b in (1, 32):
        col = f"seconds_per_response_b{b}"
        out[f"speedup_b{b}"] = by.loc[SMALL, col] / student[col]
        out[f"speedup_onnx_b{b}"] = by.loc[SMALL, col] / onnx_row[col]
        out[f"teacher_speedup_b{b}"] = by.loc[TEACHER, col] / student[col]
    return out


# ----------------------------------------------------------------------------- claims
def kd_claims(table: pd.DataFrame, tests: pd.DataFrame, measured_ratios: dict, sets: dict[str, Task]) -> list:
    """The KD paper's claims, each judged from this run's results (see :mod:`scoring_lab.claims`)."""
    from .. import claims, published

    sizes = published.kd_sizes()
    mean = table.set_index(["set", "model"])["accuracy_mean"]
    names = list(dict.fromkeys(table["set"]))
    out = []
    base = "synthetic benchmark in the roles of the paper's data sets" if all(
        "role" in t.meta for t in sets.values()) else "this source's data sets"
    for other, gain_key in ((ANN, "accuracy_gain_over_ann_claim"), (SMALL, "accuracy_gain_over_small_transformer_claim")):
        with_it = [n for n in names if (n, other) in mean.index]
        gains = [mean[(n, KD_STUDENT)] - mean[(n, other)] for n in with_it]
        avg = float(np.mean(gains))
        claim = f"The KD student is more accurate than the {other} (by about {sizes[gain_key]:.0%} on average)"
        n_ahead = sum(g > 0 for g in gains)
        left_out = [n for n in names if n not in with_it]
        out.append(claims.Claim("kd", claim, f"+{sizes[gain_key]:.3f}", f"{avg:+.3f} (ahead on {n_ahead} of "
                                f"{len(with_it)} sets)", claims.verdict_share(n_ahead, len(with_it)),
                                f"{base}; mean test accuracy over seeds, averaged over sets; held if ahead on every "
                                "set, partly if on at least half" + (f"; no {other} on {', '.join(left_out)} (see the "
                                                                     "profile)" if left_out else "")))
    p_ok = tests[(tests["baseline"].isin([ANN, SMALL])) & (tests["mean_difference"] > 0) & (tests["p"] < 0.05)]
    n_tests = int(tests["baseline"].isin([ANN, SMALL]).sum())
    out.append(claims.Claim("kd", "KD beats TinyBERT and the ANN on every data set (Table 2's asterisks)",
                            f"{2 * len(names)} of {2 * len(names)}", f"{len(p_ok)} of {n_tests} significant",
                            claims.verdict_share(len(p_ok), n_tests),
                            "KD student ahead with p < 0.05 (test per set and baseline, see the tests table)"))
    gaps = [mean[(n, TEACHER)] - mean[(n, KD_STUDENT)] for n in names]
    paper, _ = published.kd_table2()
    acc = paper[paper["metric"] == "accuracy"].pivot(index="role", columns="model", values="mean")
    paper_gap = float((acc[TEACHER] - acc[KD_STUDENT]).mean())
    out.append(claims.close_to("kd", "The KD student's accuracy is comparable to the teacher's (gap, teacher - KD)",
                               float(np.mean(gaps)), paper_gap,
                               f"{base}; mean over sets of the teacher's accuracy minus the KD student's; the "
                               "paper's value is the mean gap of its Table 2"))
    kd_vs_plain = [mean[(n, KD_STUDENT)] - mean[(n, STUDENT)] for n in names]
    n_up = sum(g > 0 for g in kd_vs_plain)
    out.append(claims.Claim("kd", "Distillation improves the student over training on labels alone (lambda = 0)",
                            "improves", f"{float(np.mean(kd_vs_plain)):+.3f} (better on {n_up} of {len(names)} sets)",
                            claims.verdict_share(n_up, len(names)),
                            "the paper's premise; its Table 2 has no lambda = 0 column; mean test accuracy over seeds"))
    ratio = measured_ratios["parameter_ratio"]
    out.append(claims.Claim("kd", "The student has about 4,000 times fewer parameters than the teacher",
                            f"{sizes['parameter_ratio_claim']:,}x", f"{ratio:,.0f}x",
                            "held" if ratio >= 0.5 * sizes["parameter_ratio_claim"] else
                            "partly" if ratio >= 0.1 * sizes["parameter_ratio_claim"] else "not held",
                            f"our teacher has {measured_ratios['teacher_parameters'] / 1e6:.1f}M parameters, the "
                            f"paper's {sizes['teacher_parameters'] / 1e6:.0f}M: the ratio shrinks by that factor; "
                            "held if at least half the paper's ratio, partly if a tenth"))
    speed = measured_ratios["speedup_b1"]
    out.append(claims.Claim("kd", "The student infers about 10 times faster than TinyBERT",
                            f"{sizes['speedup_over_small_transformer_claim']}x", f"{_order(speed)}x",
                            "held" if speed >= sizes["speedup_over_small_transformer_claim"] else
                            "partly" if speed >= 2 else "not held",
                            "wall-clock: CPU seconds per response at batch 1, one thread, against the small "
                            "transformer (lower MiniLM layers on default); shown to one significant figure; held "
                            "if at least 10x"))
    return out


def _order(x: float) -> str:
    """``x`` to one significant figure (a wall-clock ratio varies a little from run to run)."""
    if not np.isfinite(x) or x <= 0:
        return "n/a"
    return f"{float(f'{x:.1g}'):g}"


# ----------------------------------------------------------------------------- the chapter's other tables
def beside_paper(table: pd.DataFrame, sets: dict[str, Task]) -> pd.DataFrame:
    """Per set and model: our mean test accuracy and macro-F1 beside the paper's Table 2 figures for the
    data set whose role the set plays (``role``; empty where the paper has no such model)."""
    from .. import published

    theirs, _ = published.kd_table2()
    paper = theirs.pivot_table(index=["role", "model"], columns="metric", values="mean")
    rows = []
    for _, r in table.iterrows():
        role = sets[r["set"]].meta.get("role", "")
        key = (role, str(r["model"]))
        rows.append({"set": r["set"], "role": role, "model": str(r["model"]),
                     "accuracy (ours)": r["accuracy_mean"],
                     "accuracy (paper)": paper["accuracy"].get(key, np.nan),
                     "F1 (ours, macro)": r["macro_f1_mean"], "F1 (paper)": paper["f1"].get(key, np.nan)})
    return pd.DataFrame(rows)


def transformer_training(study: KDStudy) -> pd.DataFrame:
    """How the transformers of each set trained (seed ``study.seed``): set, model, models, val_accuracy
    and val_n (the set's validation responses the model never trained on, in the set's classes),
    epochs_run, best_epoch, epoch_cap, seconds. A per-task teacher is several scorers (a pooled
    set's): their largest epochs, their summed seconds; it trained on most of a set's validation
    responses (they come from its tasks' training splits), so only the others count."""
    rows = []
    for name, task in study.sets.items():
        teacher = study.teacher(name)
        y = task.val.scores
        everything = np.ones(len(y), dtype=bool)
        held = kd_teachers.not_trained_on(task, task.val, study.tasks) if teacher.source == "per-task" else everything
        models = [(TEACHER, list(teacher.scorers.values()), teacher.predict(task.val), held, None)]
        if study.has_small_transformer(name):
            small = study.small_transformer(name)
            models.append((SMALL, [small], small.predict(task.val), everything,
                           small_transformer_settings(study.profile).max_epochs))
        for model, scorers, pred, keep, cap in models:
            rows.append({"set": name, "model": model, "models": len(scorers),
                         "val_accuracy": accuracy(y[keep], pred[keep]) if keep.any() else float("nan"),
                         "val_n": int(keep.sum()),
                         "epochs_run": max(int(s.info["epochs_run"]) for s in scorers),
                         "best_epoch": max(int(s.info["best_epoch"]) for s in scorers),
                         "epoch_cap": cap, "seconds": float(sum(s.info["seconds"] for s in scorers))})
    return pd.DataFrame(rows).astype({"epoch_cap": "Int64"})


def baseline_accuracies(table: pd.DataFrame, name: str) -> dict[str, float]:
    """{model: mean test accuracy} of the teacher, small transformer and ANN on set ``name`` (Table 2 analog)."""
    by = table.set_index(["set", "model"])["accuracy_mean"]
    return {m: float(by.loc[(name, m)]) for m in (TEACHER, SMALL, ANN) if (name, m) in by.index}


def in_milliseconds(sizes: pd.DataFrame) -> pd.DataFrame:
    """:func:`size_and_speed`'s table with the seconds per response shown as milliseconds."""
    out = sizes.drop(columns=[f"seconds_per_response_b{b}" for b in (1, 32)])
    for b in (1, 32):
        out[f"ms per response, batch {b}"] = 1000 * sizes[f"seconds_per_response_b{b}"]
    return out


def sweep_summary(sweep: pd.DataFrame) -> str:
    """One sentence on the lambda sweep: lambda chosen on validation, its test accuracy, the spread."""
    g = sweep.groupby("lam").agg(val=("val_accuracy", "mean"), test=("accuracy", "mean"), sd=("accuracy", "std"))
    best = float(g["val"].idxmax())
    zero = g.loc[0.0, "test"] if 0.0 in g.index else np.nan
    return (f"Chosen on validation, the best λ is {best:g} (test accuracy {g.loc[best, 'test']:.3f}); "
            f"over the whole sweep the mean test accuracy ranges from {g['test'].min():.3f} (λ = "
            f"{g['test'].idxmin():g}) to {g['test'].max():.3f} (λ = {g['test'].idxmax():g}), against "
            f"{zero:.3f} without the teacher (λ = 0); the sd over seeds is up to {g['sd'].max():.3f}.")


def out_of_fold_summary(oof: pd.DataFrame) -> pd.DataFrame:
    """Per kind of teacher target: KD student test accuracy and macro-F1 (mean, sd over seeds), and how
    confident the targets are (mean max-probability) and how often they agree with the labels."""
    g = oof.groupby("targets", sort=False)
    return g.agg(accuracy_mean=("accuracy", "mean"), accuracy_sd=("accuracy", "std"),
                 macro_f1_mean=("macro_f1", "mean"), target_confidence=("target_confidence", "first"),
                 target_agreement=("target_agreement", "first"), seeds=("seed", "nunique")).reset_index()


def out_of_fold_text(summary: pd.DataFrame) -> str:
    s = summary.set_index("targets")
    ins, oof = s.loc["in-sample"], s.loc["out-of-fold"]
    diff = oof["accuracy_mean"] - ins["accuracy_mean"]
    verdict = "helped" if diff > 0 else "did not help"
    return (f"the in-sample targets put on average {ins['target_confidence']:.2f} on their top class and agree "
            f"with the labels on {ins['target_agreement']:.0%} of the training responses; the out-of-fold targets "
            f"{oof['target_confidence']:.2f} and {oof['target_agreement']:.0%}. Out-of-fold targets {verdict}: "
            f"test accuracy {oof['accuracy_mean']:.3f} against {ins['accuracy_mean']:.3f} ({diff:+.3f}; sd over "
            f"seeds {max(oof['accuracy_sd'], ins['accuracy_sd']):.3f}).")


def ship_student(study: KDStudy, name: str, folder: Path, n_example: int = 5) -> dict:
    """Save the KD student of set ``name`` (seed ``study.seed``) as a deployable folder, export it to
    ONNX beside it, check ONNX against PyTorch on the whole test split, and score an example CSV of
    ``n_example`` test responses with :func:`scoring_lab.kd.deploy.score_csv`."""
    from . import deploy

    folder = Path(folder)
    task = study.sets[name]
    trained = study.student(name, study.seed, study.kd.lam)
    trained.student.about.update({"set": name, "role": task.meta.get("role", "")})
    trained.student.save(folder)
    onnx_path = deploy.export_onnx(trained.student, folder / "student.onnx")
    example = folder / "example_responses.csv"
    pd.DataFrame({"id": task.test.ids[:n_example], "response": task.test.texts[:n_example],
                  "human_score": task.test.scores[:n_example]}).to_csv(example, index=False)
    scored = deploy.score_csv(folder, example, folder / "example_scored.csv", text_column="response")
    return {"folder": folder, "onnx": onnx_path,
            "onnx_max_difference": deploy.onnx_max_difference(trained.student, onnx_path, task.test.texts),
            "example": scored}


def not_applicable_claims(reason: str) -> list:
    from .. import claims

    return [claims.not_tested("kd", c, v, reason) for c, v in (
        ("The KD student is more accurate than the ANN and TinyBERT", "+0.03 / +0.02"),
        ("The student has about 4,000 times fewer parameters than the teacher", "4,000x"),
        ("The student infers about 10 times faster than TinyBERT", "10x"))]
