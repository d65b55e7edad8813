"""The MoE chapter's study: MTL, UniMoE and UniMoE-Guided against the per-task scorers.

:class:`MoEStudy` runs the UniMoE paper's protocol on a run's tasks with the profile's ``moe``
settings: the paper's Tasks 1-7 train the multi-task models and its Tasks 8-9 (``moe.held_out``)
are kept for adaptation. The multi-task models share the profile's backbone; on ``default``
it stays frozen and they train over cached final-layer states
(:mod:`scoring_lab.models.frozen_states`), on ``paper`` it fine-tunes whole. The teachers of
UniMoE-Guided are the per-task scorers (or, with ``moe.teacher``, a teacher fine-tuned per
task), their logits on the training responses joined by response id. Hyper-parameters are
chosen on validation responses; every table reports the test split. Every model and every
measurement goes through the artifact cache, so a warm chapter only reads them back.
"""
from __future__ import annotations

import copy
import json
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from scipy.spatial.distance import jensenshannon
from sklearn.model_selection import KFold

from .. import claims, published
from ..claims import WALL_CLOCK_NOTE
from . import layers as moe, multitask
from ..models.backbone import load_backbone
from ..models.cache import ArtifactCache, code_version, stable_hash
from ..kd.sets import Applicability
from ..data.task import Task
from ..models.latency import device_description, latency_per_response
from ..models.frozen_states import STATES_KIND, FrozenStates, StateMaker, first_trainable_layer, states_inputs
from ..kd.teachers import without_responses
from ..merging.evaluation import OWN, Merge, MergeEvaluator
from .multitask import MultiTaskModel, TaskData
from ..metrics import multilabel_report
from ..models.per_task import TrainedScorer, get_scorer, get_scorers, report, split_fingerprint, task_fingerprint
from ..study_steps import TimedSteps
from ..profiles import MultiTaskSettings, Profile

MODEL_KIND = "multitask-model"
RESOURCES_KIND = "moe-resources"
PROBA_KIND = "multitask-proba"
REPORT_KIND = "multitask-report"
USAGE_KIND = "expert-usage"
INDIVIDUAL, MTL, UNIMOE, GUIDED = "Individual", "MTL", "UniMoE", "UniMoE-Guided"
METHODS = (INDIVIDUAL, MTL, UNIMOE, GUIDED)
METRICS = published.UNIMOE_METRICS
IN_SAMPLE, OUT_OF_FOLD = "in-sample", "out-of-fold"
THRESHOLD = 0.5   # the paper's fixed decision threshold


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


def logits_of(proba: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """(n, L) logits of (n, L) probabilities, clipped to [eps, 1 - eps] first."""
    p = np.clip(np.asarray(proba, dtype=np.float64), eps, 1 - eps)
    return np.log(p / (1 - p)).astype(np.float32)


def label_folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    """k disjoint, seeded folds of positions 0..n-1 (held-out rows of each fold, sorted)."""
    if k < 2 or k > n:
        raise ValueError(f"out-of-fold teachers need 2 <= k <= {n} folds, got {k}")
    return [np.sort(held) for _, held in KFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(n))]


def rehearsal_rows(n: int, share: float, seed: int) -> np.ndarray:
    """A seeded subset of ceil(share * n) positions of 0..n-1 (sorted): an old task's rehearsal responses."""
    m = max(1, int(np.ceil(share * n)))
    return np.sort(np.random.default_rng(seed).choice(n, size=min(m, n), replace=False))


def usage_specialisation(usage: pd.DataFrame, families: dict[str, str], permutations: int = 2000,
                         seed: int = 0) -> dict:
    """Do tasks of one planted family route alike? Mean Jensen-Shannon distance between the expert-usage
    rows (tasks x experts, rows summing to 1) of same-family pairs and of other pairs, and the share of
    seeded permutations of the family labels whose within-family mean is at most the observed one."""
    tasks = [t for t in usage.index if t in families]
    rows = usage.loc[tasks].to_numpy(dtype=float)
    labels = np.array([families[t] for t in tasks])
    n = len(tasks)
    d = np.array([[jensenshannon(rows[i], rows[j], base=2) for j in range(n)] for i in range(n)])
    iu = np.triu_indices(n, 1)

    def within_mean(lab):
        same = lab[iu[0]] == lab[iu[1]]
        return float(d[iu][same].mean()) if same.any() else float("nan")

    same = labels[iu[0]] == labels[iu[1]]
    observed = within_mean(labels)
    rng = np.random.default_rng(seed)
    null = np.array([within_mean(rng.permutation(labels)) for _ in range(permutations)]) if same.any() else []
    return {"within_family_js": observed, "between_family_js": float(d[iu][~same].mean()) if (~same).any() else
            float("nan"), "same_family_pairs": int(same.sum()), "pairs": int(len(same)),
            "p_value": float((np.sum(null <= observed + 1e-12) + 1) / (len(null) + 1)) if len(null) else float("nan")}


COLUMNS = ["method", "task", *METRICS, "exact_match", "n_test"]


def _mean_row(table: pd.DataFrame, method: str) -> dict:
    return {"method": method, "task": "average", **{m: float(table[m].mean()) for m in (*METRICS, "exact_match")},
            "n_test": int(table["n_test"].sum())}


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
    """The tasks kept for adaptation: ``moe.held_out`` (the paper's Tasks 8-9) when the run has every one of
    them; a run with none of them (another source) holds out its last task; a run with only some is an error."""
    present = [t for t in named if t in tasks]
    if present and len(present) < len(named):
        raise KeyError(f"moe.held_out names task(s) {[t for t in named if t not in tasks]} that this run does not "
                       f"have (its tasks: {', '.join(tasks)}); set moe.held_out in the profile to the tasks kept "
                       "for adaptation")
    return present if present else [list(tasks)[-1]]


class MoEStudy(TimedSteps):
    """The UniMoE protocol on ``tasks`` and their per-task ``scorers`` (``run.scorers()``)."""

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
        self.maker = StateMaker(train, self.seed, self.cache, progress, layer=self.layer)
        self.timing: dict[str, float] = {}
        self._memo: dict = {}

    # ---- the encoder and its states -------------------------------------------------
    @property
    def frozen_encoder(self) -> bool:
        return self.layer >= self.backbone.n_layers

    def reads_pooled(self, settings: MultiTaskSettings) -> bool:
        """Whether a model reads nothing but each response's mean final state (frozen encoder, MTL or the
        pooled MoE): then it trains over :func:`~scoring_lab.moe.multitask.pooled_states`."""
        return self.frozen_encoder and (not settings.use_moe or settings.moe_on == moe.POOLED)

    # ---- inputs ----------------------------------------------------------------------
    @property
    def evaluator(self) -> MergeEvaluator:
        """The per-task scorers over their shared frozen states (the GW chapter's, with its caches)."""
        return self._once("evaluator", lambda: MergeEvaluator(self.scorers, self.tasks, self.profile.train, self.seed,
                                                              self.cache, self.progress))

    def states(self, task: str, split: str, pooled: bool = False) -> FrozenStates:
        """The frozen states of one split of ``task`` entering the multi-task models' first trained layer
        (pooled: one mean row per response). When the per-task scorers share lower layers below that
        layer, their states (cached for the whole book) are advanced through the layers between."""
        s = self.tasks[task].splits()[split]

        def direct():
            return self.maker.states(s, split_fingerprint(s), f"{task} {split}")

        def advanced():
            lower = self.evaluator.states(task, s, split)
            inputs = {**states_inputs(split_fingerprint(s), self.profile.train, self.seed, self.layer),
                      "from_layer": lower.layer, "code": code_version(multitask)}

            def produce(folder: Path):
                st = multitask.advance_states(lower, self.backbone.model, self.layer)
                np.save(folder / "values.npy", st.values)
                np.save(folder / "offsets.npy", st.offsets)

            value, _ = self.cache.get_or_compute(STATES_KIND, inputs, produce, lambda art: FrozenStates(
                self.layer, np.load(art.file("offsets.npy")), values=np.load(art.file("values.npy"))))
            return value

        base = first_trainable_layer(self.profile.train, self.backbone.n_layers)
        make = advanced if 0 < base < self.layer else direct
        full = self._once(("states", task, split), lambda: self._timed("frozen states", make))
        return self._once(("pooled", task, split), lambda: multitask.pooled_states(full)) if pooled else full

    @property
    def teachers(self) -> dict[str, TrainedScorer]:
        """The per-task teachers: the per-task scorers, or (``moe.teacher``) one fine-tuned per task."""
        if not self.settings.teacher:
            return self.scorers
        return self._once("teachers", lambda: self._timed("teachers", lambda: get_scorers(
            self.tasks, self.teacher_settings, self.seed, self.cache, self.progress)))

    @property
    def teacher_settings(self):
        return replace(self.profile.train, **self.settings.teacher) if self.settings.teacher else self.profile.train

    def teacher_proba(self, task: str, split: str) -> np.ndarray:
        """(n, L) the teacher's probabilities on a split of ``task``: a per-task scorer runs over the shared
        frozen states (equal to its own run, cached with the GW chapter's), another teacher on its own."""
        if self.settings.teacher:
            return self.teachers[task].predict_proba(self.tasks[task].splits()[split])
        return self.evaluator.probabilities((task,), Merge(OWN), split)[task]

    def teacher_logits(self, task: str, how: str = IN_SAMPLE) -> dict[str, torch.Tensor]:
        """{response id: (L,) teacher logits} for ``task``'s training responses: the teacher's own
        (in-sample, the paper's), or each from the teacher retrained without its fold (out-of-fold)."""
        def make():
            train = self.tasks[task].train
            if how == IN_SAMPLE:
                logits, ids = logits_of(self.teacher_proba(task, "train")), train.ids
            else:
                ids, parts = [], []
                for j, held in enumerate(label_folds(len(train), self.settings.teacher_folds, self.seed)):
                    held_ids = {str(i) for i in train.ids[held]}
                    fold_task = without_responses(self.tasks[task], held_ids,
                                                  f"{task} (without fold {j + 1}/{self.settings.teacher_folds})")
                    teacher = get_scorer(fold_task, self.teacher_settings, self.seed, self.cache, self.progress)
                    parts.append(logits_of(teacher.predict_proba(train.subset(held))))
                    ids.append(train.ids[held])
                ids, logits = np.concatenate(ids), np.concatenate(parts)
            return {str(i): torch.from_numpy(row) for i, row in zip(ids, logits)}
        return self._once(("teacher", task, how), lambda: self._timed(f"teacher logits ({how})", make))

    def task_data(self, task: str, split: str, settings: MultiTaskSettings, teacher: str | None = None,
                  rows: np.ndarray | None = None) -> TaskData:
        """One task's responses of ``split`` for training (``rows``: a subset), with teacher logits joined
        by response id when ``teacher`` names how they were made."""
        s = self.tasks[task].splits()[split]
        states = self.states(task, split, self.reads_pooled(settings))
        labels, ids = s.labels, s.ids
        if rows is not None:
            states, labels, ids = states.select(rows), labels[rows], ids[rows]
        t = None
        if teacher is not None:
            t = moe.teacher_logits_for(ids, self.teacher_logits(task, teacher), task).numpy()
        return TaskData(states, np.asarray(labels), np.asarray(ids), t)

    # ---- models ----------------------------------------------------------------------
    def _encoder(self) -> torch.nn.Module:
        """A wholly frozen encoder's stand-in (its states are precomputed), or a copy of the backbone
        whose layers from ``layer`` up train."""
        if self.frozen_encoder:
            return multitask.StatesInput(self.backbone.model.config)
        enc = copy.deepcopy(self.backbone.model)
        for name, p in enc.named_parameters():
            layer = int(name.split(".")[2]) if name.startswith("encoder.layer.") else -1
            p.requires_grad_(self.layer == 0 or layer >= self.layer)
        return enc

    def build(self, settings: MultiTaskSettings, tasks: list[str]) -> MultiTaskModel:
        torch.manual_seed(self.seed)
        return MultiTaskModel(self._encoder(), self.layer, {t: self.tasks[t].n_labels for t in tasks},
                              settings).to(self.device)

    def _inputs(self, name: str, settings: MultiTaskSettings, tasks: list[str], teacher: str | None,
                extra: dict | None = None) -> dict:
        t = self.profile.train
        teachers = None
        if teacher is not None:
            teachers = {"how": teacher, "scorers": {x: self.teachers[x].key for x in tasks},
                        "folds": self.settings.teacher_folds if teacher == OUT_OF_FOLD else 0,
                        "settings": asdict(self.teacher_settings) if self.settings.teacher else "per-task scorers"}
        return {"name": name, "settings": asdict(settings), "tasks": {x: task_fingerprint(self.tasks[x]) for x in tasks},
                "layer": self.layer, "pooled": self.reads_pooled(settings),
                "backbone": {"name": t.backbone, "dtype": t.dtype, "encoder_layers": t.encoder_layers,
                             "max_length": t.max_length}, "teacher": teachers, "seed": self.seed,
                "extra": extra or {}, "code": code_version(multitask, moe)}

    def _cached(self, name: str, settings: MultiTaskSettings, tasks: list[str], inputs: dict, train) -> FittedModel:
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

        (model, history, seconds), hit = self.cache.get_or_compute(MODEL_KIND, inputs, produce, load)
        return FittedModel(name, model, settings, history, self.cache.key(inputs), seconds, hit, list(tasks))

    def _plan(self, name: str, settings: MultiTaskSettings, teacher: str | None):
        """(teacher, cache inputs, the training data) of a model on the training tasks."""
        teacher = (teacher or IN_SAMPLE) if settings.lambda_kd > 0 else None
        inputs = self._inputs(name, settings, self.old, teacher)

        def data():
            return ({t: self.task_data(t, "train", settings, teacher) for t in self.old},
                    {t: self.task_data(t, "val", settings) for t in self.old})
        return teacher, inputs, data

    def fit(self, name: str, settings: MultiTaskSettings, teacher: str | None = None) -> FittedModel:
        """A multi-task model on the training tasks (MTL when ``settings.use_moe`` is off), KD from the
        teachers' ``teacher`` logits when ``settings.lambda_kd`` > 0; trained once, then cached."""
        teacher, inputs, data = self._plan(name, settings, teacher)

        def train():
            tr, va = data()
            if self.reads_pooled(settings):   # as in a worker of fit_many: one thread, the same numbers
                return self._job_here(settings, tr, va)
            model = self.build(settings, self.old)
            t0 = time.perf_counter()
            model, history = multitask.train_multitask(model, tr, va, settings, self.seed, progress=self.progress)
            return model, history, time.perf_counter() - t0

        return self._once(("fit", stable_hash(inputs)), lambda: self._timed(
            f"training ({name})", lambda: self._cached(name, settings, self.old, inputs, train)))

    def _job_here(self, settings: MultiTaskSettings, train: dict, val: dict):
        """:func:`multitask.train_job` in this process, on one thread as in a worker: (model, history, seconds)."""
        threads = torch.get_num_threads()
        try:
            state, history, seconds = multitask.train_job(settings, self.backbone.model.config,
                                                          {t: self.tasks[t].n_labels for t in train}, train, val,
                                                          self.seed, threads=1)
        finally:
            torch.set_num_threads(threads)
        model = self.build(settings, list(train))
        model.load_state_dict(state, strict=False)
        return model, history, seconds

    def fit_many(self, jobs: list[tuple[str, MultiTaskSettings]]) -> list[FittedModel]:
        """:meth:`fit` of every (name, settings); those not cached that read pooled states train side by side
        in ``moe.workers`` processes of one thread each (small matmuls gain nothing from a second thread)."""
        todo = []
        for name, settings in jobs:
            teacher, inputs, data = self._plan(name, settings, None)
            key = ("fit", stable_hash(inputs))
            if key not in self._memo and not self.cache.exists(MODEL_KIND, self.cache.key(inputs)) \
                    and self.reads_pooled(settings):
                todo.append((name, settings, inputs, data))
        workers = min(self.settings.workers, len(todo))
        if workers > 1:
            from joblib import Parallel, delayed
            labels = {t: self.tasks[t].n_labels for t in self.old}
            config = self.backbone.model.config

            def run_all():
                return Parallel(n_jobs=workers)(delayed(multitask.train_job)(
                    s, config, labels, *data(), self.seed, 1) for _, s, _, data in todo)
            results = self._timed(f"training ({len(todo)} models in {workers} processes)", run_all)
            for (name, settings, inputs, _), (state, history, seconds) in zip(todo, results):
                def train(state=state, history=history, seconds=seconds, settings=settings):
                    model = self.build(settings, self.old)
                    model.load_state_dict(state, strict=False)
                    return model, history, seconds
                self._memo[("fit", stable_hash(inputs))] = self._cached(name, settings, self.old, inputs, train)
        return [self.fit(name, settings) for name, settings in jobs]

    # ---- evaluation ------------------------------------------------------------------
    def proba(self, fitted: FittedModel, task: str, split: str) -> np.ndarray:
        """(n, L) probabilities of ``task`` on a split (over the states the model reads), cached by model
        and split content."""
        s = self.tasks[task].splits()[split]
        inputs = {"model": fitted.key, "task": task, "split": split_fingerprint(s)}

        def produce(folder: Path):
            np.save(folder / "proba.npy", multitask.predict_proba(
                fitted.model, self.states(task, split, self.reads_pooled(fitted.settings)), task))

        return self._once(("proba", fitted.key, task, split), lambda: self.cache.get_or_compute(
            PROBA_KIND, inputs, produce, lambda art: np.load(art.file("proba.npy")))[0])

    def _report(self, who: str, task: str, split: str, proba) -> dict:
        """The metrics of ``proba()`` ((n, L)) at threshold 0.5 on a split of ``task``, cached by ``who`` made
        them (a model's or a scorer's key) and the split's content."""
        s = self.tasks[task].splits()[split]
        inputs = {"who": who, "task": task, "split": split_fingerprint(s), "threshold": THRESHOLD,
                  "code": code_version(report, multilabel_report)}

        def produce(folder: Path):
            r = report(self.tasks[task], (proba() >= THRESHOLD).astype(int), split)
            (folder / "report.json").write_text(json.dumps(r))

        return self._once(("report", who, task, split), lambda: self.cache.get_or_compute(
            REPORT_KIND, inputs, produce, lambda art: json.loads(art.file("report.json").read_text()))[0])

    def evaluate(self, fitted: FittedModel, tasks: list[str] | None = None, split: str = "test",
                 method: str | None = None) -> pd.DataFrame:
        """Per task: kappa, macro_f1, micro_f1, per_label_accuracy, exact_match, n_test at threshold 0.5."""
        return pd.DataFrame([{"method": method or fitted.name, "task": t,
                              **self._report(fitted.key, t, split, lambda t=t: self.proba(fitted, t, split))}
                             for t in tasks or fitted.tasks])

    def individual(self, tasks: list[str], split: str = "test") -> pd.DataFrame:
        """The per-task scorers' metrics (the paper's 'Individual')."""
        return pd.DataFrame([{"method": INDIVIDUAL, "task": t, **self._report(
            self.scorers[t].key, t, split, lambda t=t: self.scorers[t].predict_proba(self.tasks[t].splits()[split]))}
            for t in tasks])

    def validation_scores(self, fitted: FittedModel) -> dict:
        """The mean validation metrics over the training tasks and the best validation loss."""
        v = self.evaluate(fitted, split="val")
        return {**{f"val_{m}": float(v[m].mean()) for m in METRICS},
                "val_loss": float(fitted.history["val_loss"].min()) if len(fitted.history) else float("nan")}

    # ---- the search (validation only) ------------------------------------------------
    def configurations(self) -> list[tuple[str, MultiTaskSettings]]:
        """UniMoE's grid (M x lambda_LB, no KD); UniMoE-Guided's is added by :meth:`search`."""
        s, base = self.settings, self.settings.model
        return [(UNIMOE, replace(base, use_moe=True, n_experts=int(m), lambda_lb=float(lb), lambda_kd=0.0))
                for m, lb in product(s.n_experts, s.lambda_lb)]

    def search(self) -> pd.DataFrame:
        """Every configuration tried, its validation scores and the chosen one per method
        (the highest mean validation kappa; ties: the lower validation loss)."""
        def make():
            rows = []

            def record(jobs):
                for (method, settings), f in zip(jobs, self.fit_many(jobs)):
                    rows.append({"method": method, "n_experts": settings.n_experts, "lambda_lb": settings.lambda_lb,
                                 "lambda_kd": settings.lambda_kd, **self.validation_scores(f), "epochs": f.epochs,
                                 "train_seconds": f.seconds, "key": f.key})

            s = self.settings
            grid = list(product(s.n_experts, s.lambda_lb))
            first = self.configurations()
            if s.search == "sequential":
                record(first)
                best = self._best(pd.DataFrame(rows), UNIMOE)
                grid = [(best["n_experts"], best["lambda_lb"])]
                first = []
            record(first + [(GUIDED, replace(s.model, use_moe=True, n_experts=int(m), lambda_lb=float(lb),
                                             lambda_kd=float(kd))) for (m, lb), kd in product(grid, s.lambda_kd)])
            table = pd.DataFrame(rows)
            table["chosen"] = False
            for method in (UNIMOE, GUIDED):
                table.loc[self._best(table, method).name, "chosen"] = True
            return table
        return self._once("search", make)

    @staticmethod
    def _best(table: pd.DataFrame, method: str) -> pd.Series:
        rows = table[table["method"] == method]
        return rows.sort_values(["val_kappa", "val_loss"], ascending=[False, True], kind="mergesort").iloc[0]

    def chosen_settings(self, method: str) -> MultiTaskSettings:
        row = self._best(self.search(), method)
        return replace(self.settings.model, use_moe=True, n_experts=int(row["n_experts"]),
                       lambda_lb=float(row["lambda_lb"]), lambda_kd=float(row["lambda_kd"]))

    def model(self, method: str) -> FittedModel:
        """The chapter's model of ``method`` (MTL, or UniMoE / UniMoE-Guided as the search chose)."""
        if method == MTL:
            return self.fit(MTL, replace(self.settings.model, use_moe=False, lambda_kd=0.0, lambda_lb=0.0))
        return self.fit(method, self.chosen_settings(method))

    # ---- Table 3 ---------------------------------------------------------------------
    def table3(self) -> pd.DataFrame:
        """method, task, kappa, macro_f1, micro_f1, per_label_accuracy, exact_match, n_test on the training
        tasks' test splits, each method's 'average' (the plain mean over tasks, as the paper's) last."""
        def make():
            parts = [self.individual(self.old)] + [self.evaluate(self.model(m), self.old, method=m)
                                                   for m in (MTL, UNIMOE, GUIDED)]
            out = []
            for p in parts:
                out += [p, pd.DataFrame([_mean_row(p, p["method"].iloc[0])])]
            return pd.concat(out, ignore_index=True)[COLUMNS]
        return self._once("table3", make)

    def variants(self) -> pd.DataFrame:
        """UniMoE-Guided's chosen configuration with the experts on every token (the paper's text) and on
        the pooled vector (its reference code), both capped at ``moe.variant_epochs``; and, with
        ``moe.teacher_folds``, with out-of-fold teacher logits. Test averages, epochs and seconds."""
        def make():
            chosen = self.chosen_settings(GUIDED)
            cap = self.settings.variant_epochs
            rows = []
            for on in (moe.TOKENS, moe.POOLED):
                s = replace(chosen, moe_on=on, max_epochs=cap or chosen.max_epochs)
                label = f"{GUIDED}, experts on {'every token' if on == moe.TOKENS else 'the pooled vector'}"
                f = self.fit(label, s) if (s != chosen) else self.model(GUIDED)
                rows.append(self._variant_row(on, label, f, on))
            if self.settings.teacher_folds:
                f = self.fit(f"{GUIDED}, out-of-fold teachers", chosen, teacher=OUT_OF_FOLD)
                rows.append(self._variant_row(OUT_OF_FOLD, f"{GUIDED}, out-of-fold teachers", f, chosen.moe_on))
            return pd.DataFrame(rows)
        return self._once("variants", make)

    def _variant_row(self, variant: str, label: str, f: FittedModel, on: str) -> dict:
        test = self.evaluate(f, self.old)
        return {"variant": variant, "model": label, "experts_on": on, "max_epochs": f.settings.max_epochs, "epochs": f.epochs,
                "train_seconds": f.seconds, "seconds_per_epoch": f.seconds / max(f.epochs, 1),
                **{m: float(test[m].mean()) for m in METRICS}, **self.validation_scores(f)}

    def teacher_fit(self) -> pd.DataFrame:
        """How the teachers' (in-sample) logits sit against the labels: per training task, the teachers'
        per-label accuracy on the responses they trained on and on validation ones, and their mean
        confidence |2p - 1| on each."""
        def make():
            rows = []
            for t in self.old:
                for split in ("train", "val"):
                    s = self.tasks[t].splits()[split]
                    p = self.teacher_proba(t, split)
                    rows.append({"task": t, "split": split, "per_label_accuracy":
                                 float(((p >= THRESHOLD).astype(int) == s.labels).mean()),
                                 "confidence": float(np.abs(2 * p - 1).mean())})
            return pd.DataFrame(rows)
        return self._once("teacher_fit", make)

    # ---- expert usage (Fig. 3) -------------------------------------------------------
    def expert_usage(self, fitted: FittedModel | None = None, split: str = "test") -> pd.DataFrame:
        """(tasks x experts) the mean gate weight of each expert over each task's ``split`` responses
        (cached by model and split content)."""
        f = fitted or self.model(GUIDED)

        def usage(t: str) -> np.ndarray:
            inputs = {"model": f.key, "task": t, "split": split_fingerprint(self.tasks[t].splits()[split]),
                      "code": code_version(multitask)}

            def produce(folder: Path):
                np.save(folder / "usage.npy", multitask.expert_usage(
                    f.model, self.states(t, split, self.reads_pooled(f.settings)), t))
            return self.cache.get_or_compute(USAGE_KIND, inputs, produce, lambda a: np.load(a.file("usage.npy")))[0]

        rows = {t: usage(t) for t in f.tasks}
        table = pd.DataFrame(rows).T
        table.columns = [f"expert {j + 1}" for j in range(table.shape[1])]
        table.index.name = "task"
        return table

    def families(self) -> dict[str, str] | None:
        """{task: planted family} when every task's meta names one (the synthetic benchmark), else None."""
        if not all("family" in t.meta for t in self.tasks.values()):
            return None
        return {n: t.meta["family"] for n, t in self.tasks.items()}

    # ---- Table 4 ---------------------------------------------------------------------
    def resources(self) -> pd.DataFrame:
        """model, params, disk_mb, latency_ms_batch1, latency_ms_batch32 (this machine, from raw text), and
        the size relative to UniMoE-Guided. Cached by the models and the machine."""
        guided, mtl = self.model(GUIDED), self.model(MTL)
        inputs = {"guided": guided.key, "mtl": mtl.key, "scorers": {t: self.scorers[t].key for t in self.old},
                  "teacher": self.teachers[self.old[0]].key, "device": device_description(),
                  "threads": torch.get_num_threads(), "repeats": self.settings.latency_repeats,
                  "code": code_version(multitask, latency_per_response, MoEStudy)}

        def produce(folder: Path):
            self._measure_resources(guided, mtl).to_csv(folder / "resources.csv", index=False)

        table, _ = self._timed("resources (sizes, latency)", lambda: self.cache.get_or_compute(
            RESOURCES_KIND, inputs, produce, lambda art: pd.read_csv(art.file("resources.csv"))))
        return table

    def _latencies(self, predictors: dict[str, object], texts: list[str], rounds: int = 2) -> dict[str, tuple]:
        """{name: (ms per response at batch 1, at batch 32)}: each predictor timed in turn, ``rounds`` times
        round-robin (10 untimed calls first each time), the fastest round's median kept, so no model pays
        for running first or for a passing load on the machine."""
        r = self.settings.latency_repeats
        best: dict[str, list[float]] = {k: [np.inf, np.inf] for k in predictors}
        with torch.inference_mode():
            for _ in range(rounds):
                for name, predict in predictors.items():
                    for j, (size, repeats) in enumerate(((1, r), (32, max(2, r // 4)))):
                        sec = latency_per_response(predict, texts, size, repeats=repeats, warmup=10 if size == 1
                                                   else 2)["seconds_per_response"]
                        best[name][j] = min(best[name][j], 1000 * sec)
        return {k: tuple(v) for k, v in best.items()}

    def _measure_resources(self, guided: FittedModel, mtl: FittedModel) -> pd.DataFrame:
        task = self.old[0]
        texts = list(self.tasks[task].test.texts)
        max_len = self.profile.train.max_length
        models = {GUIDED: self.deployable(guided), MTL: self.deployable(mtl)}
        one = self.scorers[task].scorer
        teacher = self.teachers[task].scorer
        predictors = {name: (lambda batch, m=m: multitask.predict_texts(m, self.backbone.tokenizer, batch, task,
                                                                       max_len)) for name, m in models.items()}
        predictors[INDIVIDUAL] = lambda batch: one.predict_proba(list(batch), batch_size=32)
        if self.settings.teacher:
            predictors["teacher"] = lambda batch: teacher.predict_proba(list(batch), batch_size=32)
        lat = self._latencies(predictors, texts)
        rows = [{"model": name, "params": multitask.parameter_count(m), "disk_mb": _disk_mb(m.state_dict()),
                 "latency_ms_batch1": lat[name][0], "latency_ms_batch32": lat[name][1]} for name, m in models.items()]
        sizes = [(multitask.parameter_count(self.scorers[t].scorer), _disk_mb(self.scorers[t].scorer.state_dict()))
                 for t in self.old]
        rows.append({"model": f"{INDIVIDUAL} ({len(self.old)} models)", "params": sum(p for p, _ in sizes),
                     "disk_mb": sum(d for _, d in sizes), "latency_ms_batch1": lat[INDIVIDUAL][0],
                     "latency_ms_batch32": lat[INDIVIDUAL][1]})
        t_lat = lat["teacher"] if self.settings.teacher else lat[INDIVIDUAL]
        rows.append({"model": "Teacher (one task's)" if self.settings.teacher else
                     "Teacher (one task's: its per-task scorer)", "params": multitask.parameter_count(teacher),
                     "disk_mb": _disk_mb(teacher.state_dict()), "latency_ms_batch1": t_lat[0],
                     "latency_ms_batch32": t_lat[1]})
        table = pd.DataFrame(rows)
        table["relative_size"] = table["disk_mb"] / float(table.loc[0, "disk_mb"])
        return table

    # ---- Table 5: adaptation to the held-out tasks -----------------------------------
    def adapted(self, method: str) -> FittedModel:
        """``method``'s model (MTL or UniMoE-Guided) extended to the held-out tasks: new heads (and task
        embeddings); UniMoE-Guided also trains its MoE block, on the new tasks' training responses and a
        rehearsal share of the old tasks', with its distillation term; MTL trains the new heads only.
        Everything else stays bit-identical. Early stopping watches the new tasks' validation loss (the
        paper does not say; with the old tasks' in it, their rising loss stopped training after one
        epoch, before the new heads had learned)."""
        base = self.model(method)
        s = base.settings
        teacher = IN_SAMPLE if s.lambda_kd > 0 else None
        rehearse = method != MTL
        tasks = self.old + self.new
        extra = {"adapt_from": base.key, "new": {t: task_fingerprint(self.tasks[t]) for t in self.new},
                 "early_stopping": "new tasks' validation loss",
                 "rehearsal": self.settings.rehearsal if rehearse else 0.0, "trains": "moe+new heads" if rehearse
                 else "new heads"}
        inputs = self._inputs(f"{method} adapted", s, tasks, teacher, extra)

        def train():
            model = copy.deepcopy(base.model)
            torch.manual_seed(self.seed)
            for t in self.new:
                model.add_task(t, self.tasks[t].n_labels)
            for p in model.parameters():
                p.requires_grad_(False)
            trainable = [p for t in self.new for p in model.heads.heads[model.heads.names.index(t)].parameters()]
            if rehearse and model.moe is not None:
                trainable += list(model.moe.parameters())
            for p in trainable:
                p.requires_grad_(True)
            tr = {t: self.task_data(t, "train", s, teacher) for t in self.new}
            va = {t: self.task_data(t, "val", s) for t in self.new}
            if rehearse:   # early stopping still watches the new tasks only: adaptation is for them
                for i, t in enumerate(self.old):
                    rows = rehearsal_rows(len(self.tasks[t].train), self.settings.rehearsal, self.seed + i)
                    tr[t] = self.task_data(t, "train", s, teacher, rows)
            t0 = time.perf_counter()
            model, history = multitask.train_multitask(model, tr, va, s, self.seed, trainable=trainable,
                                                       progress=self.progress)
            return model, history, time.perf_counter() - t0

        return self._once(("adapted", method), lambda: self._timed(
            f"adaptation ({method})", lambda: self._cached(f"{method} adapted", s, tasks, inputs, train)))

    def deployable(self, fitted: FittedModel) -> MultiTaskModel:
        """``fitted``'s model with the whole encoder in place (what runs from raw text)."""
        if isinstance(fitted.model.encoder, multitask.StatesInput):
            return multitask.deployable(fitted.model, self.backbone.model)
        return fitted.model

    def trainable_share(self) -> pd.DataFrame:
        """method, trainable (parameters adaptation updates), params (the whole adapted model), share."""
        rows = []
        for method in (MTL, GUIDED):
            f = self.adapted(method)
            new = sum(multitask.parameter_count(f.model.heads.heads[f.model.heads.names.index(t)]) for t in self.new)
            moe_params = multitask.parameter_count(f.model.moe) if (method != MTL and f.model.moe is not None) else 0
            total = multitask.parameter_count(self.deployable(f))
            rows.append({"method": method, "trainable": new + moe_params, "params": total,
                         "share": (new + moe_params) / total})
        return pd.DataFrame(rows)

    def generalization(self) -> pd.DataFrame:
        """method, task, metrics on the held-out tasks' test splits: Individual, MTL and UniMoE-Guided adapted."""
        parts = [self.individual(self.new)] + [self.evaluate(self.adapted(m), self.new, method=m)
                                               for m in (MTL, GUIDED)]
        return pd.concat(parts, ignore_index=True)[COLUMNS]

    def forgetting(self) -> pd.DataFrame:
        """metric, before, after: UniMoE-Guided's average over the training tasks' test splits before and
        after adaptation, and MTL's (which adaptation leaves unchanged) beside them."""
        before = self.evaluate(self.model(GUIDED), self.old)
        after = self.evaluate(self.adapted(GUIDED), self.old)
        mtl = self.evaluate(self.adapted(MTL), self.old)
        return pd.DataFrame([{"metric": m, "before": float(before[m].mean()), "after": float(after[m].mean()),
                              "mtl": float(mtl[m].mean())} for m in METRICS])

    def timing_table(self) -> pd.DataFrame:
        return pd.DataFrame([{"step": k, "seconds": round(v, 1)} for k, v in self.timing.items()])


def _disk_mb(state: dict[str, torch.Tensor]) -> float:
    """Megabytes (10^6 bytes) of ``state`` saved as safetensors (shared tensors saved once)."""
    seen, unique = set(), {}
    for k, v in state.items():
        ptr = (v.data_ptr(), tuple(v.shape))
        if ptr in seen:
            continue
        seen.add(ptr)
        unique[k] = v.detach().contiguous().clone()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.safetensors"
        save_file(unique, str(path))
        return path.stat().st_size / 1e6


# ---- the paper's tables beside ours ---------------------------------------------------
def table3_vs_paper(table3: pd.DataFrame) -> pd.DataFrame:
    """Per method and metric: our average over the training tasks and the paper's printed average."""
    _, paper, _ = published.unimoe_table3()
    ours = table3[table3["task"] == "average"].melt(id_vars=["method"], value_vars=list(METRICS), var_name="metric",
                                                    value_name="ours")
    out = ours.merge(paper.rename(columns={"value": "paper"}), on=["method", "metric"], how="left")
    return out[["metric", "method", "ours", "paper"]].sort_values(["metric", "method"], key=lambda c: c.map(
        {m: i for i, m in enumerate((*METRICS, *METHODS))}), kind="mergesort").reset_index(drop=True)


def paper_table3() -> tuple[pd.DataFrame, str]:
    """The paper's Table 3 in this chapter's long layout (method, task, the four metrics), its printed
    averages as task 'average'; and its source."""
    long, average, source = published.unimoe_table3()
    per_task = long.pivot_table(index=["method", "task"], columns="metric", values="value").reset_index()
    avg = average.pivot_table(index="method", columns="metric", values="value").reset_index().assign(task="average")
    return pd.concat([per_task, avg], ignore_index=True)[["method", "task", *METRICS]], source


def wide_table(table: pd.DataFrame, tasks: list[str], number_of: dict[str, int] | None = None) -> pd.DataFrame:
    """metric x method rows, one column per task (the paper's layout) from a long method-task table."""
    cols = [*tasks, "average"] if "average" in set(table["task"]) else list(tasks)
    long = table[table["task"].isin(cols)].melt(id_vars=["method", "task"], value_vars=list(METRICS),
                                                var_name="metric", value_name="value")
    wide = long.pivot_table(index=["metric", "method"], columns="task", values="value", sort=False)[cols]
    order = {m: i for i, m in enumerate(METRICS)}
    wide = wide.reset_index().sort_values("metric", key=lambda c: c.map(order), kind="mergesort")
    if number_of:
        wide = wide.rename(columns={t: f"{number_of[t]}: {t}" for t in tasks if t in number_of})
    return wide.reset_index(drop=True)


def moe_claims(study: MoEStudy, table3: pd.DataFrame, resources: pd.DataFrame, generalization: pd.DataFrame,
               forgetting: pd.DataFrame, usage: pd.DataFrame) -> list[claims.Claim]:
    """Which of the UniMoE paper's claims held here, each computed from the chapter's results."""
    avg = table3[table3["task"] == "average"].set_index("method")
    pf = paper_figures()
    pav = pf["table3"]
    t4 = pf["table4"]
    out = []

    def ahead(a: str, b: str, metrics=("kappa", "macro_f1", "micro_f1"), margin: float = 0.0) -> tuple[int, str, str]:
        n = sum(avg.loc[a, m] > avg.loc[b, m] - margin for m in metrics)
        ours = ", ".join(f"{m} {avg.loc[a, m]:.3f} vs {avg.loc[b, m]:.3f}" for m in metrics)
        theirs = ", ".join(f"{m} {pav[(a, m)]:.3f} vs {pav[(b, m)]:.3f}" for m in metrics)
        return n, ours, theirs

    n, ours, theirs = ahead(UNIMOE, MTL)
    out.append(claims.Claim("moe", "UniMoE (no KD) beats MTL on the average of Tasks 1-7", theirs, ours,
                            claims.verdict_share(n, 3), f"ahead on {n} of 3 metrics (kappa, macro-F1, micro-F1), test "
                            "split"))
    n, ours, theirs = ahead(GUIDED, UNIMOE)
    out.append(claims.Claim("moe", "Distillation improves UniMoE: UniMoE-Guided has the highest averages", theirs, ours,
                            claims.verdict_share(n, 3), f"ahead of UniMoE on {n} of 3 metrics"))
    n, ours, theirs = ahead(GUIDED, INDIVIDUAL, ("kappa", "macro_f1"), margin=0.01)
    out.append(claims.Claim("moe", "UniMoE-Guided matches or exceeds the per-task models (kappa, macro-F1)", theirs,
                            ours, claims.verdict_share(n, 2), f"matched or ahead on {n} of 2; within 0.01 below "
                            "counts as matching"))
    res = resources.set_index("model")
    ind = res.loc[[i for i in res.index if i.startswith(INDIVIDUAL)][0]]
    ratio = float(ind["disk_mb"] / res.loc[GUIDED, "disk_mb"])
    n_old = len(study.old)
    paper_ratio = t4[INDIVIDUAL]["relative_size"]
    out.append(claims.Claim("moe", "One UniMoE-Guided model is about 6x smaller on disk than the per-task models",
                            f"{paper_ratio:.2f}x (7 BERT-base models)", f"{ratio:.2f}x ({n_old} models)",
                            "held" if ratio >= 0.8 * n_old else "partly" if ratio >= 2 else "not held",
                            f"held when the ratio is at least 80% of the task count ({0.8 * n_old:.1f}x): a shared "
                            f"encoder replaces one per task; the paper's is {paper_ratio / 7:.0%} of its 7"))
    lat = float(res.loc[GUIDED, "latency_ms_batch1"] / res.loc[MTL, "latency_ms_batch1"])
    out.append(claims.Claim("moe", "The MoE block adds little latency over MTL (14 vs 13 ms per response)",
                            f"{t4[GUIDED]['latency_ms'] / t4[MTL]['latency_ms']:.2f}x", f"{lat:.2f}x (batch 1, this CPU)",
                            "held" if lat <= 1.25 else "partly" if lat <= 1.5 else "not held",
                            f"{WALL_CLOCK_NOTE}: held within 1.25x, partly within 1.5x"))
    if study.settings.teacher:
        teach = [i for i in res.index if i.startswith("Teacher")][0]
        r = float(res.loc[teach, "disk_mb"] / res.loc[GUIDED, "disk_mb"])
        out.append(claims.Claim("moe", "The teacher is far larger than the student (87x on disk)",
                                f"{t4['Teacher']['relative_size']:.2f}x",
                                f"{r:.2f}x", "held" if r >= 2 else "not held", "held when the teacher is at least "
                                "twice the student's size; this teacher is smaller than the paper's 20B"))
    else:
        out.append(claims.not_tested("moe", "The teacher is far larger than the student (87x on disk)",
                                     f"{t4['Teacher']['relative_size']:.2f}x",
                                     "on this profile the teachers are the per-task scorers, the student's own size"))
    # expert usage: tasks prefer different experts
    m = usage.shape[1]
    top = usage.max(axis=1)
    n_pref = int((top >= 1.5 / m).sum())
    quoted = pf["usage"]
    shares = [e[3] for e in quoted["examples"]]
    out.append(claims.Claim("moe", "Tasks rely on experts with distinct preferences (the paper's Fig. 3)",
                            f"quoted top shares {', '.join(f'{x:.1%}' for x in shares)} of {quoted['n_experts']} "
                            f"experts (up to {max(shares) * quoted['n_experts']:.2f}x uniform)",
                            f"{n_pref} of {len(top)} tasks give one expert at least "
                            f"1.5x the uniform share (largest {top.max():.1%} of {m})",
                            claims.verdict_share(min(n_pref, 2), 2),
                            "held when at least two tasks do (as the paper's two examples), partly for one"))
    # generalization
    g = generalization.groupby(["method", "task"])[list(METRICS)].mean()
    wins = sum(g.loc[(GUIDED, t), mm] > g.loc[(MTL, t), mm] for t in study.new for mm in METRICS)
    cells = len(study.new) * len(METRICS)
    out.append(claims.Claim("moe", "Adapted UniMoE-Guided beats MTL on the held-out tasks on every metric",
                            "8 of 8 (Tasks 8-9, 4 metrics)", f"{wins} of {cells}", claims.verdict_share(wins, cells),
                            "MTL: frozen encoder, new head only; UniMoE-Guided: new head and MoE with rehearsal"))
    below = sum(g.loc[(GUIDED, t), mm] <= g.loc[(INDIVIDUAL, t), mm] for t in study.new for mm in METRICS)
    out.append(claims.Claim("moe", "Per-task models remain the upper bound on the held-out tasks",
                            "8 of 8 at or below Individual", f"{below} of {cells}", claims.verdict_share(below, cells)))
    f = forgetting.set_index("metric")
    drop = float(f.loc["kappa", "before"] - f.loc["kappa", "after"])
    pk = pf["forgetting"]["kappa"]
    out.append(claims.close_to("moe", f"Adaptation costs the old tasks a little (kappa {pk['before']:.4f} -> "
                               f"{pk['after']:.4f})", drop, pk["before"] - pk["after"],
                               "kappa before minus after, average of the training tasks"))
    above = sum(f.loc[mm, "after"] > f.loc[mm, "mtl"] for mm in METRICS)
    out.append(claims.Claim("moe", "After adaptation the old tasks stay above MTL", "4 of 4", f"{above} of 4",
                            claims.verdict_share(above, 4)))
    return out


def table5_vs_paper(generalization: pd.DataFrame) -> pd.DataFrame:
    """metric, method, then per held-out task ours and the paper's (its Tasks 8-9 mapped by name)."""
    paper, _ = published.unimoe_table5()
    ours = generalization.melt(id_vars=["method", "task"], value_vars=list(METRICS), var_name="metric",
                               value_name="ours")
    both = ours.merge(paper[["method", "metric", "task", "value"]].rename(columns={"value": "paper"}),
                      on=["method", "metric", "task"], how="left")
    wide = both.pivot_table(index=["metric", "method"], columns="task", values=["ours", "paper"], sort=False)
    wide.columns = [f"{task} ({src if src == 'ours' else 'paper'})" for src, task in wide.columns]
    order = {m: i for i, m in enumerate(METRICS)}
    return wide.reset_index().sort_values("metric", key=lambda c: c.map(order), kind="mergesort").reset_index(drop=True)


def forgetting_vs_paper(forgetting: pd.DataFrame) -> pd.DataFrame:
    """metric, before, after, drop, MTL, and the paper's before, after and drop."""
    paper, _ = published.unimoe_forgetting()
    out = forgetting.rename(columns={"mtl": "MTL"}).assign(drop=lambda d: d["before"] - d["after"])
    paper = paper.rename(columns={"before": "before (paper)", "after": "after (paper)"})
    paper["drop (paper)"] = paper["before (paper)"] - paper["after (paper)"]
    return out.merge(paper, on="metric", how="left")[["metric", "before", "after", "drop", "MTL", "before (paper)",
                                                      "after (paper)", "drop (paper)"]]


def numbering_table(study: MoEStudy) -> pd.DataFrame:
    """The UniMoE paper's task numbers, the task names they map to, and each task's role here."""
    table, _ = published.task_numbering("moe")
    table = table[table["task"].isin(study.tasks)].copy()
    table["role"] = np.where(table["task"].isin(study.new), "held out: adaptation (Table 5)",
                             "training (Table 3)")
    fam = study.families()
    if fam:
        table["planted family"] = table["task"].map(fam)
    return table.reset_index(drop=True)


def paper_figures() -> dict:
    """The paper's figures the chapter's prose and claims quote, read from its transcribed tables:
    Table 3 averages {(method, metric): value}, Table 5 means over its Tasks 8-9 {(method, metric): value},
    Table 4 by model, the forgetting rows by metric, and its quoted expert shares."""
    _, avg, _ = published.unimoe_table3()
    t5, _ = published.unimoe_table5()
    t4, _ = published.unimoe_table4()
    forget, _ = published.unimoe_forgetting()
    return {"table3": avg.set_index(["method", "metric"])["value"].to_dict(),
            "table5": t5.groupby(["method", "metric"])["value"].mean().to_dict(),
            "table4": t4.set_index("model").to_dict("index"),
            "forgetting": forget.set_index("metric").to_dict("index"),
            "usage": published.unimoe_expert_usage()}


def teacher_text(study: MoEStudy, teacher_fit: pd.DataFrame) -> str:
    """What the teachers' logits are on this run, from their fit on training and validation responses."""
    fit = teacher_fit.groupby("split")[["per_label_accuracy", "confidence"]].mean()
    tr, va = fit.loc["train"], fit.loc["val"]
    if study.settings.teacher:
        who = (f"Here each task's teacher is {study.teacher_settings.backbone}, fine-tuned on that task "
               f"({'with LoRA' if study.teacher_settings.lora else 'whole'}).")
    else:
        who = ("Here the teachers are the per-task scorers: the same backbone as the student. That does not make "
               "them redundant: they fine-tuned layers the multi-task models keep frozen"
               if study.frozen_encoder else "Here the teachers are the per-task scorers: the same backbone as "
               "the student, each trained on one task only")
        who += ", so their soft labels can carry what the student cannot compute itself (Individual in Table 3 " \
               "below is the teachers' own test score)."
    gap = tr["per_label_accuracy"] - va["per_label_accuracy"]
    return (f"{who} Their logits on the training responses are in-sample (the paper's public code computes its "
            f"teacher probabilities on its training split too): on the responses they trained on they agree with the labels on "
            f"{tr['per_label_accuracy']:.3f} of the rubric dimensions, on validation responses they never saw on "
            f"{va['per_label_accuracy']:.3f} ({gap:+.3f}), with a mean confidence |2p - 1| of "
            f"{tr['confidence']:.2f} against {va['confidence']:.2f}. "
            + ("So the in-sample logits are only a little closer to the labels than held-out ones would be. "
               if gap < 0.05 else "So the in-sample logits mostly hand the labels back, softened. ")
            + "Out-of-fold logits (each response scored by its task's teacher retrained without it) would carry the "
              f"teachers' errors on unseen responses instead; they are one setting away (`moe.teacher_folds`"
              f"{', ' + str(study.settings.teacher_folds) + ' on this profile, in the comparison below' if study.settings.teacher_folds else ''}), "
              "at k fine-tunes of every teacher.")


def cut_text(study: MoEStudy, table3: pd.DataFrame) -> str:
    """What keeping the encoder frozen costs, read off Table 3 (empty when the encoder trains)."""
    if not study.frozen_encoder:
        return ""
    avg = table3[table3["task"] == "average"].set_index("method")
    gap = avg.loc[INDIVIDUAL, "kappa"] - avg.loc[MTL, "kappa"]
    return (f"With the encoder frozen, MTL's heads share nothing: each reads the same frozen features, so MTL here "
            f"is the per-task scorers without the fine-tuning of their top layers. The gap between them, "
            f"{gap:+.3f} in average kappa ({avg.loc[INDIVIDUAL, 'kappa']:.3f} against {avg.loc[MTL, 'kappa']:.3f}), "
            f"is what this profile's frozen encoder costs a model without the MoE block; the paper's MTL, which "
            f"fine-tunes its encoder, is {_paper_gap():+.3f} behind its Individual models.")


def _paper_gap() -> float:
    p = paper_figures()["table3"]
    return p[(INDIVIDUAL, "kappa")] - p[(MTL, "kappa")]


def summary_text(study: MoEStudy, table3: pd.DataFrame, usage: pd.DataFrame, specialisation: dict,
                 resources: pd.DataFrame, generalization: pd.DataFrame, forgetting: pd.DataFrame,
                 variants: pd.DataFrame) -> str:
    """The chapter's findings in a few sentences, every number from the results."""
    avg = table3[table3["task"] == "average"].set_index("method")
    k = {m: avg.loc[m, "kappa"] for m in METHODS}
    res = resources.set_index("model")
    ind = [i for i in res.index if i.startswith(INDIVIDUAL)][0]
    g = generalization.groupby("method")["kappa"].mean()
    f = forgetting.set_index("metric")
    top = usage.idxmax(axis=1)
    v = variants.set_index("variant")
    pf = paper_figures()
    pk = ", ".join(f"{pf['table3'][(m, 'kappa')]:.3f}" for m in METHODS)
    p5 = {m: pf["table5"][(m, "kappa")] for m in (GUIDED, MTL, INDIVIDUAL)}
    pfk = pf["forgetting"]["kappa"]
    parts = [
        f"Average Cohen's kappa over the {len(study.old)} training tasks (test split): Individual {k[INDIVIDUAL]:.3f}, "
        f"MTL {k[MTL]:.3f}, UniMoE {k[UNIMOE]:.3f}, UniMoE-Guided {k[GUIDED]:.3f} (the paper, in that order: {pk}).",
        f"The MoE block {'adds' if k[UNIMOE] > k[MTL] else 'does not add'} to MTL here "
        f"({k[UNIMOE] - k[MTL]:+.3f}), and distillation {'adds' if k[GUIDED] > k[UNIMOE] else 'does not add'} to "
        f"UniMoE ({k[GUIDED] - k[UNIMOE]:+.3f}); the per-task scorers stay "
        f"{'ahead' if k[INDIVIDUAL] > k[GUIDED] else 'behind'} ({k[INDIVIDUAL] - k[GUIDED]:+.3f}).",
        f"Each task routes most of its gate weight to one expert (largest share {usage.max(axis=1).max():.0%}, "
        f"smallest top share {usage.max(axis=1).min():.0%}); {top.nunique()} of {usage.shape[1]} experts are some "
        f"task's favourite."]
    if np.isfinite(specialisation.get("p_value", np.nan)):
        parts.append(f"Tasks of one planted family route more alike than others (mean Jensen-Shannon distance "
                     f"{specialisation['within_family_js']:.2f} within families against "
                     f"{specialisation['between_family_js']:.2f} between; permutation p = "
                     f"{specialisation['p_value']:.3f}).")
    parts.append(f"One UniMoE-Guided model takes {res.loc[ind, 'disk_mb'] / res.loc[GUIDED, 'disk_mb']:.1f}x less disk "
                 f"than the {len(study.old)} per-task models (the paper: "
                 f"{pf['table4']['Individual']['relative_size']:.2f}x) at "
                 f"{res.loc[GUIDED, 'latency_ms_batch1'] / res.loc[MTL, 'latency_ms_batch1']:.2f}x MTL's latency.")
    parts.append(f"On the held-out tasks the adapted UniMoE-Guided averages kappa {g[GUIDED]:.3f} against MTL's "
                 f"{g[MTL]:.3f} and the per-task scorers' {g[INDIVIDUAL]:.3f} (the paper: {p5[GUIDED]:.3f}, "
                 f"{p5[MTL]:.3f}, {p5[INDIVIDUAL]:.3f}); the "
                 f"old tasks' kappa moves from {f.loc['kappa', 'before']:.3f} to {f.loc['kappa', 'after']:.3f} "
                 f"(the paper: {pfk['before']:.3f} to {pfk['after']:.3f}).")
    if {moe.TOKENS, moe.POOLED} <= set(v.index):
        parts.append(f"With the same epoch cap, experts on every token (the paper's text) reach kappa "
                     f"{v.loc[moe.TOKENS, 'kappa']:.3f} and experts on the pooled vector (its code) "
                     f"{v.loc[moe.POOLED, 'kappa']:.3f}, at {v.loc[moe.TOKENS, 'seconds_per_epoch']:.1f} "
                     f"against {v.loc[moe.POOLED, 'seconds_per_epoch']:.1f} seconds an epoch.")
    if OUT_OF_FOLD in v.index:
        parts.append(f"Out-of-fold teacher logits give kappa {v.loc[OUT_OF_FOLD, 'kappa']:.3f} against "
                     f"{k[GUIDED]:.3f} with in-sample ones.")
    return " ".join(parts)
