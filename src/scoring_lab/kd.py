"""Knowledge distillation into the LSTM student: the KD paper's Eq. 2, teacher targets, training.

Loss (the paper's Eqs. 1-2), for logits z of the student, labels y and teacher
class probabilities p (both per response)::

    L_KD = CE(y, softmax(z)) + lambda * (1/N) sum_i  -sum_k p_ik log softmax(z_i)_k

``lambda = 0`` is plain cross-entropy. The teacher's probabilities are joined
to the training responses by response id (:class:`TeacherProbabilities`), never
by position; a run where a training response has no teacher probability fails
and names how many and which. They come either from the teacher scoring its own
training data (``in-sample``: over-confident, since it fitted those very labels)
or from k teachers each scoring the fold it did not train on (``out-of-fold``,
:func:`out_of_fold_probabilities`).

Training (:func:`train_student`): Adam, mini-batches in a seeded order, padded to
the batch's longest response, early stopping on the validation split's
cross-entropy with the labels (the paper's "validation loss"; the teacher term
has no held-out counterpart) with the best epoch's weights restored.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import StratifiedKFold
from torch.nn import functional as F
from tqdm.auto import tqdm
from transformers.trainer_pt_utils import LengthGroupedSampler

from .data.task import DataError, Split, Task
from .profiles import KDSettings
from .student import LSTMStudent, Student, StudentConfig, fixed_parameters, n_parameters, torch_threads
from .vocab import fit_vocabulary, vocabulary_size_for_budget


class TeacherTargetError(DataError):
    """Teacher probabilities that do not cover, or do not fit, the responses a KD run trains on."""


@dataclass
class TeacherProbabilities:
    """A teacher's class probabilities, by response id.

    ids:   (n,) str response ids, unique
    proba: (n, K) float, rows summing to 1
    how:   "in-sample" (the teacher scored its own training data) or "out-of-fold"
    """

    ids: np.ndarray
    proba: np.ndarray
    how: str = "in-sample"

    def __post_init__(self):
        self.ids = np.asarray(self.ids).astype(str)
        self.proba = np.asarray(self.proba, dtype=np.float32)
        if self.proba.ndim != 2 or self.proba.shape[0] != len(self.ids):
            raise TeacherTargetError(f"teacher probabilities: {len(self.ids)} ids but an array of shape "
                                     f"{self.proba.shape}, expected ({len(self.ids)}, K)")
        uniq, counts = np.unique(self.ids, return_counts=True)
        if (counts > 1).any():
            raise TeacherTargetError(f"teacher probabilities: {int((counts > 1).sum())} id(s) appear more than once, "
                                     f"e.g. {list(uniq[counts > 1][:5])}")
        bad = ~np.isfinite(self.proba).all(axis=1) | (np.abs(self.proba.sum(axis=1) - 1) > 1e-3) | \
            (self.proba < 0).any(axis=1)
        if bad.any():
            raise TeacherTargetError(f"teacher probabilities: {int(bad.sum())} row(s) are not probability "
                                     f"distributions (NaN, negative or not summing to 1), e.g. ids "
                                     f"{list(self.ids[bad][:5])}")

    @property
    def n_classes(self) -> int:
        return int(self.proba.shape[1])

    def for_ids(self, ids, n_classes: int | None = None) -> np.ndarray:
        """(len(ids), K) probabilities in the order of ``ids``; every id must have one."""
        ids = np.asarray(ids).astype(str)
        if n_classes is not None and n_classes != self.n_classes:
            raise TeacherTargetError(f"teacher probabilities have {self.n_classes} classes, the task has {n_classes}")
        position = {i: k for k, i in enumerate(self.ids)}
        missing = [i for i in ids if i not in position]
        if missing:
            raise TeacherTargetError(f"{len(missing)} of {len(ids)} training responses have no teacher probability "
                                     f"(ids {missing[:10]}{' ...' if len(missing) > 10 else ''}): KD would train "
                                     f"them on labels alone")
        return self.proba[[position[i] for i in ids]]

    def to_frame(self) -> pd.DataFrame:
        """id, p0..p{K-1}: the file a teacher's probabilities are kept in."""
        return pd.DataFrame({"id": self.ids, **{f"p{k}": self.proba[:, k] for k in range(self.n_classes)}})


def soft_cross_entropy(logits: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_k p_k log softmax(logits)_k (the paper's Eq. 1). (B, K), (B, K) -> ()."""
    return -(p * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def kd_loss(logits: torch.Tensor, targets: torch.Tensor, teacher_proba: torch.Tensor | None, lam: float) -> torch.Tensor:
    """The paper's Eq. 2: CE with the labels + ``lam`` x CE with the teacher's probabilities.

    logits (B, K), targets (B,) classes, teacher_proba (B, K) or None (only with ``lam == 0``)."""
    loss = F.cross_entropy(logits, targets)
    if lam == 0:
        return loss
    if teacher_proba is None:
        raise TeacherTargetError(f"lambda = {lam} needs teacher probabilities; there are none")
    return loss + lam * soft_cross_entropy(logits, teacher_proba)


def student_config(n_classes: int, vocab_size: int, settings: KDSettings) -> StudentConfig:
    return StudentConfig(vocab_size=vocab_size, n_classes=n_classes, embedding_dim=settings.embedding_dim,
                         lstm_units=settings.lstm_units, dense_units=settings.dense_units, dropout=settings.dropout)


def vocabulary_size(n_classes: int, settings: KDSettings) -> int:
    """Vocabulary rows (PAD and OOV included) that keep the student within ``settings.parameter_budget``."""
    return vocabulary_size_for_budget(settings.parameter_budget, settings.embedding_dim,
                                      fixed_parameters(n_classes, settings.embedding_dim, settings.lstm_units,
                                                       settings.dense_units))


def student_parameters(n_classes: int, settings: KDSettings) -> int:
    """Parameters of the student of a ``n_classes`` task under ``settings`` (vocabulary filled to the budget)."""
    return fixed_parameters(n_classes, settings.embedding_dim, settings.lstm_units, settings.dense_units) + \
        settings.embedding_dim * vocabulary_size(n_classes, settings)


@dataclass
class StudentRun:
    student: Student
    history: pd.DataFrame    # epoch, train_loss, val_loss, val_accuracy, seconds
    info: dict               # best_epoch, epochs_run, seconds, n_parameters, vocab_size, lam, teacher, seed


def _batches(lengths: list[int], batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    """One epoch's mini-batches of responses of similar length (transformers' length-grouped order,
    seeded): less padding, so fewer LSTM steps, and a prediction does not depend on padding anyway."""
    order = list(LengthGroupedSampler(batch_size, lengths=lengths, generator=gen))
    return [torch.tensor(order[i: i + batch_size]) for i in range(0, len(order), batch_size)]


def _trim(ids: torch.Tensor) -> torch.Tensor:
    """Drop the all-padding columns at the right of a (B, T) batch."""
    width = int((ids != 0).sum(dim=1).max().clamp(min=1))
    return ids[:, :width]


@torch.no_grad()
def _evaluate(model: LSTMStudent, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> tuple[float, float]:
    model.eval()
    logits = torch.cat([model(_trim(x[i: i + batch_size])) for i in range(0, len(x), batch_size)])
    return float(F.cross_entropy(logits, y)), float((logits.argmax(dim=1) == y).float().mean())


def train_student(task: Task, settings: KDSettings, seed: int = 0, lam: float = 0.0,
                  teacher: TeacherProbabilities | None = None, progress: bool = False) -> StudentRun:
    """Train an LSTM student on ``task.train`` (multi-class), early-stopped on ``task.val``.

    ``lam > 0`` needs ``teacher`` probabilities for every training response (joined by id).
    Deterministic on the CPU for a given seed (initialisation, dropout, batch order); runs on one
    thread, the fastest for so small a network."""
    with torch_threads(1):
        return _train_student(task, settings, seed, lam, teacher, progress)


def _train_student(task: Task, settings: KDSettings, seed: int, lam: float, teacher: TeacherProbabilities | None,
                   progress: bool) -> StudentRun:
    if task.kind != "multiclass":
        raise ValueError(f"the LSTM student scores multi-class tasks; {task.name!r} is {task.kind}")
    if len(task.train) == 0 or len(task.val) == 0:
        raise ValueError(f"task {task.name!r} needs training and validation responses")
    if lam > 0 and teacher is None:
        raise TeacherTargetError(f"KD with lambda = {lam} on {task.name!r} needs teacher probabilities")
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    K = task.n_classes
    vocab = fit_vocabulary(task.train.texts, vocabulary_size(K, settings), max_words=settings.max_words)
    model = LSTMStudent(student_config(K, len(vocab), settings))
    x_train = torch.from_numpy(vocab.encode(task.train.texts))
    lengths = (x_train != 0).sum(dim=1).tolist()
    y_train = torch.from_numpy(task.train.scores.astype(np.int64))
    p_train = torch.from_numpy(teacher.for_ids(task.train.ids, K)) if lam > 0 else None
    x_val = torch.from_numpy(vocab.encode(task.val.texts))
    y_val = torch.from_numpy(task.val.scores.astype(np.int64))
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    gen = torch.Generator().manual_seed(seed)

    history, best_state, best_loss, best_epoch, bad = [], copy.deepcopy(model.state_dict()), float("inf"), 0, 0
    bar = tqdm(range(1, settings.max_epochs + 1), desc=f"student {task.name} (lambda {lam:g}, seed {seed})",
               unit="epoch", leave=False, disable=not progress)
    for epoch in bar:
        e0 = time.perf_counter()
        model.train()
        losses = []
        for idx in _batches(lengths, settings.batch_size, gen):
            logits = model(_trim(x_train[idx]))
            loss = kd_loss(logits, y_train[idx], None if p_train is None else p_train[idx], lam)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        val_loss, val_acc = _evaluate(model, x_val, y_val)
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_loss": val_loss,
                        "val_accuracy": val_acc, "seconds": time.perf_counter() - e0})
        if val_loss < best_loss - 1e-6:
            best_loss, best_epoch, bad = val_loss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad += 1
            if bad >= settings.patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    info = {"best_epoch": best_epoch, "epochs_run": len(history), "seconds": time.perf_counter() - t0,
            "n_parameters": n_parameters(model), "vocab_size": len(vocab), "lam": float(lam),
            "teacher": None if lam == 0 else teacher.how, "seed": int(seed),
            "vocab_coverage_val": vocab.coverage(task.val.texts)}
    about = {"task": task.name, "trained_on": len(task.train), **{k: info[k] for k in ("lam", "teacher", "seed")}}
    student = Student(model, vocab, class_names=[str(k) for k in range(K)], about=about)
    return StudentRun(student, pd.DataFrame(history), info)


def fold_tasks(task: Task, k: int, seed: int = 0) -> list[tuple[Task, Split]]:
    """k (fold task, held-out fold) pairs: each fold task trains on the other k-1 folds of ``task.train``
    (same validation and test), stratified by class."""
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    out = []
    for j, (fit_idx, held_idx) in enumerate(folds.split(np.zeros(len(task.train)), task.train.scores)):
        t = Task(name=f"{task.name} (fold {j + 1}/{k})", kind=task.kind, train=task.train.subset(np.sort(fit_idx)),
                 val=task.val, test=task.test, label_names=task.label_names, n_classes=task.n_classes,
                 meta={**task.meta, "fold": j, "folds": k})
        out.append((t, task.train.subset(np.sort(held_idx))))
    return out


def out_of_fold_probabilities(task: Task, k: int, predict_fold, seed: int = 0) -> TeacherProbabilities:
    """Teacher probabilities for ``task.train`` where each response is scored by a teacher that did
    not train on it. ``predict_fold(fold_task, held_out_split) -> (n_held, K)`` trains (or takes from
    the cache) the fold's teacher and scores the held-out fold."""
    ids, proba = [], []
    for fold_task, held in fold_tasks(task, k, seed):
        ids.append(held.ids.astype(str))
        proba.append(np.asarray(predict_fold(fold_task, held), dtype=np.float32))
    return TeacherProbabilities(np.concatenate(ids), np.concatenate(proba), how="out-of-fold")
