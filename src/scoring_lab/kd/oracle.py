"""The positive control's teacher: the benchmark generator's own label probabilities.

The synthetic benchmark composes each response's text from the rubric dimensions it meets and
only then flips each label with the rater-noise probability r (:mod:`scoring_lab.data.synthetic`).
Given the text, the best any reader can say of a label is therefore ``1 - r`` if its dimension was
met and ``r`` if not (0 for an off-topic answer, whose labels are never noised): the generator
keeps these per response (``task.meta[LABEL_PROBABILITY]``). Pushed through the set's class
(:func:`scoring_lab.kd.teachers.class_probabilities`: the distribution of how many dimensions are
met), they are the class probabilities of a teacher that reads every response perfectly and knows
the raters' noise: soft labels that carry what the noisy hard labels lack, by construction. A
student distilled from them shows whether the pipeline can move a student when the targets hold
something to move it with. Real data have no such teacher: :func:`applies` says so.
"""
from __future__ import annotations

import numpy as np

from . import teachers as kd_teachers
from .distill import TeacherProbabilities
from .plan import ORACLE
from .sets import source_id, spec_of
from ..data.synthetic import LABEL_PROBABILITY, holistic_scores
from ..data.task import Split, Task
from ..errors import DataError

HOW = ORACLE


def applies(kd_set: Task, tasks: dict[str, Task]) -> bool:
    """Whether every member task of ``kd_set`` carries the generator's label probabilities."""
    return all(name in tasks and LABEL_PROBABILITY in tasks[name].meta for name in spec_of(kd_set).tasks)


def _member_probabilities(kd_set: Task, name: str, task: Task, responses: Split) -> np.ndarray:
    """(m, L) label probabilities (multi-label member) or (m, K_t) class probabilities (the holistic view's
    multi-class member, whose score is the holistic score of its labels) of ``responses`` of ``kd_set``."""
    table = task.meta[LABEL_PROBABILITY]
    ids = [source_id(kd_set, i) for i in responses.ids]
    missing = [i for i in ids if i not in table]
    if missing:
        raise DataError(f"KD set {kd_set.name!r}: {len(missing)} response(s) of task {name!r} have no generator "
                        f"label probability (ids {missing[:5]})")
    p = np.array([table[i] for i in ids], dtype=np.float64).reshape(len(ids), -1)
    if task.kind == "multilabel":
        return p
    L = p.shape[1]
    g = holistic_scores(np.tril(np.ones((L + 1, L), dtype=np.int8), -1))   # class of k = 0..L dimensions met
    dist = kd_teachers.count_distribution(p)
    out = np.zeros((len(p), task.n_classes))
    for k, c in enumerate(g):
        out[:, c] += dist[:, k]
    return out


def oracle_probabilities(kd_set: Task, split: Split, tasks: dict[str, Task]) -> np.ndarray:
    """(n, K) the generator's class probabilities for ``split`` of ``kd_set`` (each response by its own task)."""
    if not applies(kd_set, tasks):
        raise DataError(f"KD set {kd_set.name!r}: its tasks carry no generator label probabilities (only the "
                        "synthetic benchmark has them), so there is no oracle teacher")
    return kd_teachers.per_task_probabilities(
        kd_set, split, tasks, lambda name, responses: _member_probabilities(kd_set, name, tasks[name], responses))


def oracle_targets(kd_set: Task, tasks: dict[str, Task]) -> TeacherProbabilities:
    """The oracle's probabilities on ``kd_set``'s training responses, as KD targets (how ``oracle``)."""
    return TeacherProbabilities(kd_set.train.ids, oracle_probabilities(kd_set, kd_set.train, tasks), how=HOW)
