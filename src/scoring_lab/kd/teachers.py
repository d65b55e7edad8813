"""KD teachers taken from the per-task scorers (``kd.teacher_source: per-task``).

The per-task scorers (the chapter "Per-task scorers") are fine-tuned transformers,
one per task, trained once for the whole book. A KD set's class is a function of
what those scorers predict, so they can teach it without another fine-tune:

* a **multi-class** member task whose score is the set's class: the scorer's (n, K_t)
  class probabilities, classes above the set's cap added into it;
* a **multi-label** member task: the class is ``g(k)``, a function of the number k
  of rubric dimensions met: ``min(k, cap)`` for the target ``dimensions_met``; for
  the target ``score``, the score must be a function of k on the task's training
  responses (the synthetic benchmark's holistic score is), read off them. The
  scorer's per-dimension probabilities p_1..p_L (independent sigmoids) give k's
  distribution exactly (Poisson-binomial, by dynamic programming), pushed through g.

Each response of a pooled set is scored by its own task's scorer. Out-of-fold
targets (:func:`out_of_fold_class_probabilities`) come from the member task's scorer
retrained, with the same settings, without one fold of the set's training responses.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .sets import KDSetSpec, member_tasks, source_id, spec_of
from ..errors import DataError
from ..data.task import Split, Task
from .distill import TeacherProbabilities, fold_tasks


class TeacherSourceError(DataError):
    """A KD set whose class the per-task scorers cannot predict (fine-tune a teacher instead)."""


def count_distribution(p: np.ndarray) -> np.ndarray:
    """(n, L) independent probabilities -> (n, L + 1) distribution of how many are 1 (Poisson-binomial)."""
    p = np.asarray(p, dtype=np.float64)
    n, L = p.shape
    dist = np.zeros((n, L + 1))
    dist[:, 0] = 1.0
    for j in range(L):
        q = p[:, j: j + 1]
        dist[:, 1:] = dist[:, 1:] * (1 - q) + dist[:, :-1] * q
        dist[:, 0] *= 1 - q[:, 0]
    return dist


def count_to_class(task: Task, spec: KDSetSpec) -> np.ndarray:
    """(L + 1,) the set's class of a response of multi-label ``task`` meeting k = 0..L dimensions."""
    L = task.n_labels
    if spec.target == "dimensions_met":
        g = np.arange(L + 1)
    else:
        labels, scores = task.train.labels, task.train.scores
        if labels is None or scores is None:
            raise TeacherSourceError(f"KD set {spec.name!r}: task {task.name!r} needs rubric labels and a score for "
                                     "a per-task teacher of its score")
        counts = labels.sum(axis=1).astype(int)
        g = np.full(L + 1, -1)
        for k in range(L + 1):
            seen = np.unique(scores[counts == k])
            if len(seen) > 1:
                raise TeacherSourceError(
                    f"KD set {spec.name!r}: on task {task.name!r} the score is not a function of the number of "
                    f"dimensions met ({k} met goes with scores {seen.tolist()}); a per-task teacher cannot predict it")
            if len(seen) == 0:
                raise TeacherSourceError(
                    f"KD set {spec.name!r}: no training response of task {task.name!r} meets exactly {k} dimension(s), "
                    "so which score that count gives is unknown; a per-task teacher cannot predict it")
            g[k] = seen[0]
    return np.minimum(g, spec.max_class) if spec.max_class is not None else g


def class_probabilities(task_proba: np.ndarray, task: Task, spec: KDSetSpec, n_classes: int) -> np.ndarray:
    """(n, K) class probabilities of the set from member ``task``'s scorer output (n, L) or (n, K_t)."""
    task_proba = np.asarray(task_proba, dtype=np.float64)
    if task.kind == "multilabel":
        dist, g = count_distribution(task_proba), count_to_class(task, spec)
    else:
        if spec.target != "score":
            raise TeacherSourceError(f"KD set {spec.name!r}: multi-class task {task.name!r} has no rubric labels "
                                     f"to count")
        dist, g = task_proba, np.arange(task_proba.shape[1])
        if spec.max_class is not None:
            g = np.minimum(g, spec.max_class)
    if g.max() >= n_classes:
        raise TeacherSourceError(f"KD set {spec.name!r}: task {task.name!r} gives class {int(g.max())}, the set has "
                                 f"{n_classes}")
    out = np.zeros((len(dist), n_classes))
    for k, c in enumerate(g):
        out[:, c] += dist[:, k]
    return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)


def check_applies(kd_set: Task, tasks: dict[str, Task]) -> None:
    """Raise :class:`TeacherSourceError` (saying why) when per-task scorers cannot teach ``kd_set``."""
    spec = spec_of(kd_set)
    for name in spec.tasks:
        t = tasks[name]
        if t.kind == "multilabel":
            count_to_class(t, spec)
        elif spec.target != "score":
            raise TeacherSourceError(f"KD set {spec.name!r}: multi-class task {name!r} has no rubric labels to count")


def per_task_probabilities(kd_set: Task, split: Split, tasks: dict[str, Task],
                           predict: Callable[[str, Split], np.ndarray]) -> np.ndarray:
    """(n, K) teacher probabilities for ``split`` of ``kd_set``, each response scored by its own task:
    ``predict(task_name, responses) -> (m, L) or (m, K_t)`` is that task's scorer."""
    spec = spec_of(kd_set)
    owner = member_tasks(kd_set, split)
    out = np.zeros((len(split), kd_set.n_classes), dtype=np.float32)
    for name in spec.tasks:
        rows = np.flatnonzero(owner == name)
        if len(rows):
            out[rows] = class_probabilities(predict(name, split.subset(rows)), tasks[name], spec, kd_set.n_classes)
    return out


def task_probabilities_by_id(task: Task, predict_split: Callable[[Split], np.ndarray],
                             predict_train: Callable[[Split], np.ndarray] | None = None) -> tuple[dict, np.ndarray]:
    """({response id: row}, (n, L) or (n, K_t)) a member task's scorer output on all of the task's own
    responses (its train, validation and test splits, in that order): ``predict_split`` is the scorer's
    cached ``predict_proba``, so the splits the chapter "Per-task scorers" scored are not scored again, and a
    response two KD sets share (a task both pooled and a single item) is scored once. ``predict_train``, where
    given, scores the training split instead (the same scorer run another way: its top layers over the
    cached frozen states)."""
    splits = (task.train, task.val, task.test)
    ids = np.concatenate([s.ids.astype(str) for s in splits])
    predict = [predict_train or predict_split, predict_split, predict_split]
    return {i: k for k, i in enumerate(ids)}, np.concatenate([np.asarray(f(s)) for f, s in zip(predict, splits)])


def rows_by_id(kd_set: Task, responses: Split, index: dict, name: str) -> np.ndarray:
    """(m,) the rows of ``index`` (:func:`task_probabilities_by_id`'s) of ``responses`` of ``kd_set``, by their
    member task's own ids; a response its task does not have is an error naming it."""
    ids = [source_id(kd_set, i) for i in responses.ids]
    missing = [i for i in ids if i not in index]
    if missing:
        raise DataError(f"KD set {kd_set.name!r}: {len(missing)} response(s) are not among task {name!r}'s own "
                        f"responses (ids {missing[:5]})")
    return np.array([index[i] for i in ids], dtype=int)


def not_trained_on(kd_set: Task, split: Split, tasks: dict[str, Task]) -> np.ndarray:
    """(n,) bool: the responses of ``split`` that their task's scorer did not train on (they sit in the
    task's validation or test split). A KD set's training and validation responses come from its tasks'
    training and validation splits, so most of them were the per-task scorers' training data."""
    owner = member_tasks(kd_set, split)
    held = {name: {str(i) for i in np.concatenate([tasks[name].val.ids, tasks[name].test.ids])}
            for name in spec_of(kd_set).tasks}
    return np.array([source_id(kd_set, i) in held[o] for i, o in zip(split.ids, owner)], dtype=bool)


def without_responses(task: Task, ids_out: set[str], name: str) -> Task:
    """``task`` with the given responses (by id) removed from its training split (validation and test kept)."""
    keep = np.array([str(i) not in ids_out for i in task.train.ids])
    return Task(name=name, kind=task.kind, train=task.train.subset(np.flatnonzero(keep)), val=task.val,
                test=task.test, label_names=task.label_names, n_classes=task.n_classes,
                meta={**task.meta, "without": len(ids_out)})


def out_of_fold_class_probabilities(kd_set: Task, tasks: dict[str, Task], k: int, seed: int,
                                    fold_predict: Callable[[Task, Split], np.ndarray]) -> TeacherProbabilities:
    """Teacher probabilities for ``kd_set.train`` where each response is scored by its task's scorer
    retrained without the fold it is in (k folds of the set's training responses, stratified by class).
    ``fold_predict(fold_task, responses) -> (m, L) or (m, K_t)`` trains (or takes from the cache) the
    scorer of ``fold_task`` (a member task without one fold) and scores ``responses``."""
    spec = spec_of(kd_set)
    ids, proba = [], []
    for fold_set, held in fold_tasks(kd_set, k, seed):
        owner = member_tasks(kd_set, held)
        out = np.zeros((len(held), kd_set.n_classes), dtype=np.float32)
        fold = fold_set.meta["fold"]
        for name in spec.tasks:
            rows = np.flatnonzero(owner == name)
            if not len(rows):
                continue
            source_ids = {source_id(kd_set, i) for i in held.ids[rows]}
            fold_task = without_responses(tasks[name], source_ids,
                                          f"{name} (without fold {fold + 1}/{k} of {kd_set.name})")
            out[rows] = class_probabilities(fold_predict(fold_task, held.subset(rows)), tasks[name], spec,
                                            kd_set.n_classes)
        ids.append(held.ids.astype(str))
        proba.append(out)
    return TeacherProbabilities(np.concatenate(ids), np.concatenate(proba), how="out-of-fold")


