"""The KD chapter's data sets: multi-class sets in the roles of the KD paper's Table 1.

The paper scores one large pooled set (7T: seven science tasks, 6,684 responses,
10 classes) and three single items (Bathtub 1,145 responses / 5 classes,
Falling Weights 1,148 / 4, Gelatin 1,142 / 5). A :class:`KDSetSpec` says how one
such set is built from a source's tasks:

* ``tasks``: the member tasks, pooled (response ids become ``<task>/<id>``);
* ``target``: the class of a response: ``score``, the task's own multi-class score
  (the benchmark's holistic 0-3), or ``dimensions_met``, the number of rubric
  dimensions met (a finer holistic score, 0..L), with classes above ``max_class``
  merged into it (``max_class = 9``: "9 or more");
* ``n_responses``: a seeded subsample to the paper's size, stratified by task and class.

Splits follow the paper's 7:1:2: the source's own test split stays the test split
(on the benchmark it is 20% of each task and holds the paraphrases no training
response uses) and the rest is re-split 7:1 into train and validation,
stratified by class. Nothing is dropped silently: a subsample's size is
recorded in ``meta``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from .. import published
from ..data.splits import carve_validation
from ..errors import DataError
from ..data.task import Split, Task, concat_splits

TARGETS = ("score", "dimensions_met")
VAL_SHARE_OF_TRAIN = 1 / 8     # train : val = 7 : 1


@dataclass(frozen=True)
class KDSetSpec:
    """How one KD data set is built (see the module docstring)."""

    name: str
    role: str                       # the KD paper's data set it stands in for
    tasks: tuple[str, ...]
    target: str = "score"
    max_class: int | None = None
    n_responses: int | None = None

    def __post_init__(self):
        if self.target not in TARGETS:
            raise ValueError(f"KD set {self.name!r}: target must be one of {TARGETS}, got {self.target!r}")
        if not self.tasks:
            raise ValueError(f"KD set {self.name!r} has no tasks")

    def describe(self) -> str:
        what = {"score": "the task's own score", "dimensions_met": "rubric dimensions met"}[self.target]
        cap = f", {self.max_class} standing for {self.max_class} or more" if self.max_class is not None else ""
        size = f", subsampled to {self.n_responses:,} responses" if self.n_responses else ""
        return f"{', '.join(self.tasks)}; class = {what}{cap}{size}"


# The benchmark's four sets. Pooled: the MoE paper's seven training tasks (its Tasks 1-7), as 7T pools
# seven tasks; the single items: its two held-out tasks and one of the seven (a separate experiment,
# so sharing responses with the pooled set does no harm). Sizes and class counts are the paper's.
BENCHMARK_SETS = (
    KDSetSpec("pooled-7", "7T", ("anna_vs_carla", "breaking_down_hydrogen_peroxide", "gas_filled_balloons",
                                 "layers_in_test_tube", "model_for_making_water", "namis_careful_experiment",
                                 "natural_sugar"), "dimensions_met", max_class=9, n_responses=6684),
    KDSetSpec("carlos_javier_atomic_model", "Bathtub", ("carlos_javier_atomic_model",), "dimensions_met",
              max_class=4, n_responses=1145),
    KDSetSpec("dry_ice_model", "Falling Weights", ("dry_ice_model",), "score", n_responses=1148),
    KDSetSpec("anna_vs_carla", "Gelatin", ("anna_vs_carla",), "dimensions_met", max_class=4, n_responses=1142),
)


@dataclass(frozen=True)
class Applicability:
    """Whether a source's tasks can make KD sets; ``reason`` says why not (one sentence for the page)."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


def _target_for(task: Task) -> str | None:
    if task.train.scores is not None:
        return "score"
    return "dimensions_met" if task.train.labels is not None else None


def kd_sets_apply(tasks: dict[str, Task]) -> Applicability:
    """Every source with a multi-class score or rubric labels (whose count is a score) makes KD sets."""
    usable = [n for n, t in tasks.items() if _target_for(t) is not None and len(t.train) + len(t.val) >= 2]
    if usable:
        return Applicability(True)
    return Applicability(False, "This chapter needs responses with a multi-class score (or rubric labels whose "
                                "count is one); this source's tasks have neither, so the chapter's parts are skipped.")


def default_specs(tasks: dict[str, Task]) -> tuple[KDSetSpec, ...]:
    """The benchmark's four sets when its tasks (with rubric labels) are there. Otherwise, for any
    source: a pooled set of the first seven tasks (fewer if there are fewer; none with one task) and
    the three largest tasks as single items; the class is each task's own score, or the number of
    rubric dimensions met where a task has labels but no score (a multi-label source)."""
    if all(t in tasks and tasks[t].train.labels is not None for s in BENCHMARK_SETS for t in s.tasks):
        return BENCHMARK_SETS
    if not kd_sets_apply(tasks):
        raise DataError(kd_sets_apply(tasks).reason)
    usable = [n for n, t in tasks.items() if _target_for(t) is not None]
    target = "score" if all(_target_for(tasks[n]) == "score" for n in usable) else "dimensions_met"
    usable = [n for n in usable if target == "score" or tasks[n].train.labels is not None]
    specs = []
    if len(usable) > 1:
        specs.append(KDSetSpec(f"pooled-{min(7, len(usable))}", "7T", tuple(usable[:7]), target))
    by_size = sorted(usable, key=lambda n: -sum(len(s) for s in tasks[n].splits().values()))
    roles = ("Bathtub", "Falling Weights", "Gelatin")
    specs += [KDSetSpec(n, roles[i], (n,), target) for i, n in enumerate(by_size[:3])]
    return tuple(specs)


def classes_of(task: Task, split: Split, spec: KDSetSpec) -> np.ndarray:
    """(n,) class of each response of ``split`` under ``spec.target`` (capped at ``spec.max_class``)."""
    if spec.target == "score":
        if split.scores is None:
            raise DataError(f"KD set {spec.name!r}: task {task.name!r} has no multi-class score")
        y = split.scores.astype(np.int64)
    else:
        if split.labels is None:
            raise DataError(f"KD set {spec.name!r}: task {task.name!r} has no rubric labels to count")
        y = split.labels.sum(axis=1).astype(np.int64)
    return np.minimum(y, spec.max_class) if spec.max_class is not None else y


def _pooled(tasks: dict[str, Task], spec: KDSetSpec) -> tuple[Split, Split, np.ndarray, np.ndarray]:
    """(rest, test, task of each rest row, task of each test row): every member task's train + val,
    and its test split, pooled."""
    rest, test, rest_owner, test_owner = [], [], [], []
    pooled = len(spec.tasks) > 1
    for name in spec.tasks:
        t = tasks[name]
        for parts, out, owner in (((t.train, t.val), rest, rest_owner), ((t.test,), test, test_owner)):
            for s in parts:
                out.append(Split(ids=[f"{name}/{i}" if pooled else str(i) for i in s.ids], texts=s.texts,
                                 scores=classes_of(t, s, spec)))
                owner += [name] * len(s)
    return (concat_splits(*rest), concat_splits(*test), np.array(rest_owner, dtype=object),
            np.array(test_owner, dtype=object))


def _subsample(split: Split, n: int, strata: np.ndarray, seed: int) -> Split:
    if n >= len(split):
        return split
    keys = strata.astype(str)
    _, counts = np.unique(keys, return_counts=True)
    stratify = keys if counts.min() >= 2 else None
    keep, _ = train_test_split(np.arange(len(split)), train_size=n, random_state=seed, stratify=stratify)
    return split.subset(np.sort(keep))


def data_source(tasks: dict[str, Task], spec: KDSetSpec) -> str | None:
    """The source the member tasks were loaded from (their ``meta["source"]``: ``synthetic``,
    ``asap-sas``, ...); None where they do not say or differ."""
    found = {tasks[t].meta.get("source") for t in spec.tasks}
    return found.pop() if len(found) == 1 else None


def build_kd_set(tasks: dict[str, Task], spec: KDSetSpec, seed: int = 0) -> Task:
    """One KD data set as a multi-class :class:`Task` (train : val : test about 7 : 1 : 2)."""
    missing = [t for t in spec.tasks if t not in tasks]
    if missing:
        raise DataError(f"KD set {spec.name!r} needs task(s) {missing}; the source has {sorted(tasks)}")
    rest, test, rest_owner, test_owner = _pooled(tasks, spec)
    n_before = len(rest) + len(test)
    if spec.n_responses and spec.n_responses < n_before:
        n_test = int(round(spec.n_responses * len(test) / n_before))
        test = _subsample(test, n_test, test_owner + ":" + test.scores.astype(str), seed)
        rest = _subsample(rest, spec.n_responses - n_test, rest_owner + ":" + rest.scores.astype(str), seed)
    train, val = carve_validation(rest, VAL_SHARE_OF_TRAIN, seed)
    n_classes = int(max(s.scores.max() for s in (train, val, test) if len(s)) + 1)
    if spec.max_class is not None:
        n_classes = spec.max_class + 1
    return Task(name=spec.name, kind="multiclass", train=train, val=val, test=test, n_classes=n_classes,
                meta={"source": "kd-set", "data_source": data_source(tasks, spec), "spec": asdict(spec),
                      "role": spec.role, "built_from": spec.describe(),
                      "responses_before_subsample": n_before, "seed": seed})


def spec_of(kd_set: Task) -> KDSetSpec:
    """The :class:`KDSetSpec` a set was built from (kept in its ``meta``)."""
    raw = kd_set.meta.get("spec")
    if raw is None:
        raise DataError(f"task {kd_set.name!r} was not built as a KD set (no spec in its meta)")
    return KDSetSpec(**{**raw, "tasks": tuple(raw["tasks"])})


def member_tasks(kd_set: Task, split: Split) -> np.ndarray:
    """(n,) the member task of each response of ``split`` (pooled sets' ids are ``<task>/<id>``)."""
    spec = spec_of(kd_set)
    if len(spec.tasks) == 1:
        return np.full(len(split), spec.tasks[0], dtype=object)
    owner = np.array([str(i).split("/", 1)[0] for i in split.ids], dtype=object)
    foreign = sorted(set(owner) - set(spec.tasks))
    if foreign:
        raise DataError(f"KD set {spec.name!r}: response ids name task(s) {foreign[:5]} that are not its members")
    return owner


def source_id(kd_set: Task, set_id) -> str:
    """The member task's own id of one of ``kd_set``'s response ids."""
    return str(set_id) if len(spec_of(kd_set).tasks) == 1 else str(set_id).split("/", 1)[1]


def build_kd_sets(tasks: dict[str, Task], specs: tuple[KDSetSpec, ...] | None = None,
                  seed: int = 0) -> dict[str, Task]:
    """Every KD data set (``specs`` or :func:`default_specs`), by name."""
    return {s.name: build_kd_set(tasks, s, seed) for s in (specs or default_specs(tasks))}


def class_balance(sets: dict[str, Task]) -> pd.DataFrame:
    """Long table: set, role, split, class, n, share."""
    rows = []
    for name, t in sets.items():
        for split, s in t.splits().items():
            counts = np.bincount(s.scores, minlength=t.n_classes)
            rows += [{"set": name, "role": t.meta.get("role", ""), "split": split, "class": k, "n": int(c),
                      "share": float(c / max(len(s), 1))} for k, c in enumerate(counts)]
    return pd.DataFrame(rows)


def set_summary(sets: dict[str, Task]) -> pd.DataFrame:
    """One row per set: set, role, the paper's size and classes, ours, split sizes, how it is built."""
    paper = published.kd_sets().set_index("role")
    rows = []
    for name, t in sets.items():
        role = t.meta.get("role", "")
        paper_n, paper_k = (int(paper.loc[role, "responses"]), int(paper.loc[role, "classes"])) \
            if role in paper.index else (None, None)
        rows.append({"set": name, "role (paper's data set)": role, "paper responses": paper_n,
                     "paper classes": paper_k, "responses": len(t.train) + len(t.val) + len(t.test),
                     "classes": t.n_classes, "train": len(t.train), "val": len(t.val), "test": len(t.test),
                     "built from": t.meta.get("built_from", "")})
    return pd.DataFrame(rows)
