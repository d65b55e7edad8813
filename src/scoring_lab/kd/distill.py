"""Knowledge distillation into the LSTM student: the KD paper's Eq. 2, teacher targets, training.

Loss (the paper's Eqs. 1-2), for logits z of the student, labels y and teacher
class probabilities p (both per response)::

    L_KD = CE(y, softmax(z)) + lambda * (1/N) sum_i  -sum_k p_ik log softmax(z_i)_k

``lambda = 0`` is plain cross-entropy. With Hinton et al.'s temperature tau (the paper uses
none: tau = 1), the teacher term compares the tempered distributions and is scaled by tau^2,
so its gradient keeps its size as tau grows::

    lambda * tau^2 * (1/N) sum_i  -sum_k p_ik^(tau) log softmax(z_i / tau)_k,   p^(tau) = softmax(log p / tau)

At tau = 1 this is the paper's term, computed exactly as it (no tempering is applied). The teacher's probabilities are joined
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

The vocabulary keeps the training words seen at least ``min_count`` times (a
:class:`StudentRequest`'s; :mod:`~scoring_lab.kd.vocab_choice` chooses it on
validation), as many as the parameter budget allows: a rarer word is ``<oov>``
in training as it will be on unseen text, so ``<oov>``'s embedding learns.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import StratifiedKFold
from torch.nn import functional as F
from tqdm.auto import tqdm
from transformers.trainer_pt_utils import LengthGroupedSampler

from ..errors import DataError
from ..data.task import Split, Task
from ..profiles import KDSettings
from .student import LSTMStudent, Student, StudentConfig, fixed_parameters, n_parameters, torch_threads
from .student_batch import StudentStack
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


def tempered(p: np.ndarray | torch.Tensor, temperature: float):
    """(n, K) probabilities softened at ``temperature``: p^(1/tau), renormalised (= softmax(log p / tau));
    ``p`` itself at tau = 1. A zero stays zero."""
    if temperature == 1:
        return p
    if isinstance(p, torch.Tensor):
        q = p.double() ** (1.0 / temperature)
        return (q / q.sum(dim=-1, keepdim=True)).to(p.dtype)
    q = np.asarray(p, dtype=np.float64) ** (1.0 / temperature)
    return (q / q.sum(axis=-1, keepdims=True)).astype(np.asarray(p).dtype)


def kd_loss(logits: torch.Tensor, targets: torch.Tensor, teacher_proba: torch.Tensor | None, lam: float,
            temperature: float = 1.0) -> torch.Tensor:
    """The paper's Eq. 2: CE with the labels + ``lam`` x CE with the teacher's probabilities (at
    ``temperature`` tau: the tempered distributions, times tau^2).

    logits (B, K), targets (B,) classes, teacher_proba (B, K) or None (only with ``lam == 0``)."""
    loss = F.cross_entropy(logits, targets)
    if lam == 0:
        return loss
    if teacher_proba is None:
        raise TeacherTargetError(f"lambda = {lam} needs teacher probabilities; there are none")
    if temperature == 1:
        return loss + lam * soft_cross_entropy(logits, teacher_proba)
    return loss + lam * temperature ** 2 * soft_cross_entropy(logits / temperature,
                                                              tempered(teacher_proba, temperature))


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
    info: dict               # best_epoch, epochs_run, seconds, n_parameters, vocab_size, min_count, lam, teacher,
                             # seed, val_accuracy (at the best epoch)


def _batches(lengths: list[int], batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    """One epoch's mini-batches of responses of similar length (transformers' length-grouped order,
    seeded): less padding, so fewer LSTM steps, and a prediction does not depend on padding anyway."""
    order = list(LengthGroupedSampler(batch_size, lengths=lengths, generator=gen))
    return [torch.tensor(order[i: i + batch_size]) for i in range(0, len(order), batch_size)]


@dataclass(frozen=True)
class StudentRequest:
    """One student to train: its seed, its lambda, the teacher targets it learns from (a key of
    the ``teachers`` given to :func:`train_students`; None with lambda 0), its vocabulary's
    ``min_count`` (training words seen fewer times are ``<oov>``) and the distillation temperature
    (1 with lambda 0: there is nothing to temper)."""

    seed: int
    lam: float = 0.0
    targets: str | None = None
    min_count: int = 1
    temperature: float = 1.0


DROPOUT_STREAM = 2 ** 40   # a member's dropout generator is seeded with seed + this, its batch order with seed


def train_student(task: Task, settings: KDSettings, seed: int = 0, lam: float = 0.0,
                  teacher: TeacherProbabilities | None = None, progress: bool = False,
                  min_count: int = 1, temperature: float = 1.0) -> StudentRun:
    """Train one LSTM student on ``task.train`` (multi-class), early-stopped on ``task.val``.

    ``lam > 0`` needs ``teacher`` probabilities for every training response (joined by id).
    The same as one member of :func:`train_students`."""
    how = None if lam == 0 else "teacher"
    return train_students(task, settings, [StudentRequest(seed, lam, how, min_count, temperature)],
                          {} if teacher is None else {"teacher": teacher}, progress)[0]


def train_students(task: Task, settings: KDSettings, requests: list[StudentRequest],
                   teachers: dict[str, TeacherProbabilities] | None = None, progress: bool = False) -> list[StudentRun]:
    """Train one LSTM student per request, side by side (:class:`~scoring_lab.kd.student_batch.StudentStack`).

    Each student trains exactly as it would alone: initialised under its seed, its own seeded batch
    order and dropout masks, its own loss (Eq. 2 with its lambda and targets), Adam, early stopping
    on its validation cross-entropy with the best epoch's weights restored. A student that stops
    leaves the stack. Students of different ``min_count`` have different vocabularies, so each
    ``min_count`` trains as a stack of its own. Deterministic on the CPU; runs on one thread, the
    fastest for so small a network. Returns the runs in the order of ``requests``."""
    requests, teachers = list(requests), dict(teachers or {})
    _check_requests(task, requests, teachers)
    runs: dict[int, StudentRun] = {}
    with torch_threads(1):
        for min_count in sorted({r.min_count for r in requests}):
            group = [i for i, r in enumerate(requests) if r.min_count == min_count]
            for i, run in zip(group, _train_students(task, settings, [requests[i] for i in group], teachers,
                                                     progress, min_count)):
                runs[i] = run
    return [runs[i] for i in range(len(requests))]


def _check_requests(task: Task, requests: list[StudentRequest], teachers: dict) -> None:
    if task.kind != "multiclass":
        raise ValueError(f"the LSTM student scores multi-class tasks; {task.name!r} is {task.kind}")
    if len(task.train) == 0 or len(task.val) == 0:
        raise ValueError(f"task {task.name!r} needs training and validation responses")
    if not requests:
        raise ValueError("no students requested")
    for r in requests:
        if r.lam < 0:
            raise ValueError(f"lambda must be >= 0, got {r.lam}")
        if r.min_count < 1:
            raise ValueError(f"a vocabulary's min_count must be >= 1, got {r.min_count}")
        if not r.temperature > 0:
            raise ValueError(f"a distillation temperature must be > 0, got {r.temperature}")
        if r.lam > 0 and (r.targets is None or r.targets not in teachers):
            raise TeacherTargetError(f"KD with lambda = {r.lam} on {task.name!r} needs teacher probabilities "
                                     f"({r.targets!r}); there are {sorted(teachers) or 'none'}")


def _train_students(task: Task, settings: KDSettings, requests: list[StudentRequest], teachers: dict,
                    progress: bool, min_count: int) -> list[StudentRun]:
    """The students of ``requests`` (all of vocabulary threshold ``min_count``) as one stack."""
    t0 = time.perf_counter()
    K, M = task.n_classes, len(requests)
    vocab = fit_vocabulary(task.train.texts, vocabulary_size(K, settings), max_words=settings.max_words,
                           min_count=min_count)
    config = student_config(K, len(vocab), settings)
    models = []
    for r in requests:
        torch.manual_seed(r.seed)
        models.append(LSTMStudent(config))
    x_train = torch.from_numpy(vocab.encode(task.train.texts))
    lengths = (x_train != 0).sum(dim=1).tolist()
    y_train = torch.from_numpy(task.train.scores.astype(np.int64))
    x_val = torch.from_numpy(vocab.encode(task.val.texts))
    y_val = torch.from_numpy(task.val.scores.astype(np.int64))
    targets = {how: torch.from_numpy(t.for_ids(task.train.ids, K)) for how, t in teachers.items()
               if any(r.targets == how and r.lam > 0 for r in requests)}
    zeros = torch.zeros((len(task.train), K))
    p_all = torch.stack([tempered(targets[r.targets], r.temperature) if r.lam > 0 else zeros
                         for r in requests])                                                # (M, N, K)
    lam_all = torch.tensor([float(r.lam) for r in requests])                               # (M,)
    tau_all = torch.tensor([float(r.temperature) if r.lam > 0 else 1.0 for r in requests])  # (M,)
    order = [torch.Generator().manual_seed(r.seed) for r in requests]
    masks = [torch.Generator().manual_seed(r.seed + DROPOUT_STREAM) for r in requests]

    live = list(range(M))                                  # members still training, in stack order
    stack = StudentStack(models, masks)
    optimizer = torch.optim.Adam(stack.parameters(), lr=settings.lr)
    history = [[] for _ in range(M)]
    best_state = [stack.member_state(m) for m in range(M)]
    best_loss, best_epoch, bad = [float("inf")] * M, [0] * M, [0] * M
    bar = tqdm(range(1, settings.max_epochs + 1), desc=f"{M} student(s) of {task.name}", unit="epoch",
               leave=False, disable=not progress)
    for epoch in bar:
        e0 = time.perf_counter()
        stack.train()
        batches = [_batches(lengths, settings.batch_size, order[m]) for m in live]
        losses = []
        for step in zip(*batches):
            idx = torch.stack(step)                                                        # (M', b)
            logits = stack(_trim_stack(x_train[idx]))                                      # (M', b, K)
            loss = kd_losses(logits, y_train[idx], p_all[live][torch.arange(len(live))[:, None], idx],
                             lam_all[live], tau_all[live])
            optimizer.zero_grad()
            loss.sum().backward()   # members share no parameter: each gets its own loss's gradient
            optimizer.step()
            losses.append(loss.detach())
        val_loss, val_acc = _evaluate_stack(stack, x_val, y_val)
        mean_loss = torch.stack(losses, dim=1).mean(dim=1)   # (M', steps), each member's row reduced alone
        seconds = time.perf_counter() - e0
        stopping = []
        for j, m in enumerate(live):
            history[m].append({"epoch": epoch, "train_loss": float(mean_loss[j]), "val_loss": float(val_loss[j]),
                               "val_accuracy": float(val_acc[j]), "seconds": seconds})
            if val_loss[j] < best_loss[m] - 1e-6:
                best_loss[m], best_epoch[m], bad[m] = float(val_loss[j]), epoch, 0
                best_state[m] = stack.member_state(j)
            else:
                bad[m] += 1
                if bad[m] >= settings.patience:
                    stopping.append(j)
        bar.set_postfix(training=len(live) - len(stopping))
        if stopping:
            keep = [j for j in range(len(live)) if j not in stopping]
            live = [live[j] for j in keep]
            if not live:
                break
            stack, optimizer = _keep_members(stack, optimizer, keep)

    seconds = time.perf_counter() - t0
    runs = []
    for m, r in enumerate(requests):
        model = LSTMStudent(config)
        model.load_state_dict(best_state[m])
        model.eval()
        info = {"best_epoch": best_epoch[m], "epochs_run": len(history[m]), "seconds": seconds,
                "trained_alongside": M, "n_parameters": n_parameters(model), "vocab_size": len(vocab),
                "min_count": int(min_count), "lam": float(r.lam), "temperature": float(r.temperature),
                "teacher": None if r.lam == 0 else teachers[r.targets].how, "seed": int(r.seed),
                "val_accuracy": best_value(history[m], best_epoch[m], "val_accuracy"),
                "vocab_coverage_val": vocab.coverage(task.val.texts)}
        about = {"task": task.name, "trained_on": len(task.train),
                 **{k: info[k] for k in ("lam", "teacher", "seed", "min_count", "temperature")}}
        runs.append(StudentRun(Student(model, vocab, class_names=[str(k) for k in range(K)], about=about),
                               pd.DataFrame(history[m]), info))
    return runs


def best_value(history: list[dict] | pd.DataFrame, best_epoch: int, column: str = "val_accuracy") -> float:
    """``column`` of a student's training history at the epoch early stopping kept (NaN if none was kept)."""
    h = pd.DataFrame(history)
    if best_epoch < 1 or h.empty:
        return float("nan")
    return float(h.loc[h["epoch"] == best_epoch, column].iloc[0])


def _trim_stack(ids: torch.Tensor) -> torch.Tensor:
    """Drop the all-padding columns at the right of a (M, B, T) batch."""
    width = int((ids != 0).sum(dim=2).max().clamp(min=1))
    return ids[..., :width]


def kd_losses(logits: torch.Tensor, y: torch.Tensor, p: torch.Tensor, lam: torch.Tensor,
              temperature: torch.Tensor | None = None) -> torch.Tensor:
    """(M,) Eq. 2 for M students at once (:func:`kd_loss` of each): logits (M, B, K), labels (M, B), teacher
    probabilities (M, B, K), already tempered (any values where lambda is 0), lambdas (M,), temperatures
    (M,) (None: all 1). A member at temperature 1 computes exactly the untempered term."""
    log_p = F.log_softmax(logits, dim=-1)
    ce = -log_p.gather(-1, y.unsqueeze(-1)).squeeze(-1).mean(dim=1)
    if temperature is None or bool((temperature == 1).all()):
        return ce + lam * -(p * log_p).sum(dim=-1).mean(dim=1)
    tau = temperature[:, None, None]
    log_p_soft = torch.where(tau == 1, log_p, F.log_softmax(logits / tau, dim=-1))
    soft = -(p * log_p_soft).sum(dim=-1).mean(dim=1)
    return ce + lam * temperature ** 2 * soft


@torch.no_grad()
def _evaluate_stack(stack: StudentStack, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256):
    """(M,) validation cross-entropy and (M,) accuracy of every member, in eval mode."""
    stack.eval()
    M = stack.n_members
    logits = torch.cat([stack(_trim_stack(x[i: i + batch_size].unsqueeze(0).expand(M, -1, -1)))
                        for i in range(0, len(x), batch_size)], dim=1)                  # (M, N, K)
    ce = F.cross_entropy(logits.flatten(0, 1), y.repeat(M), reduction="none").view(M, -1).mean(dim=1)
    return ce.tolist(), (logits.argmax(dim=-1) == y).float().mean(dim=1).tolist()


def _keep_members(stack: StudentStack, optimizer: torch.optim.Adam, keep: list[int]):
    """The stack and Adam state of members ``keep`` only (their training goes on unchanged)."""
    smaller = stack.select(keep)
    new_optimizer = torch.optim.Adam(smaller.parameters(), lr=optimizer.defaults["lr"])
    index = torch.tensor(keep)
    for (_, p), (_, q) in zip(stack.named_parameters(), smaller.named_parameters()):
        state = optimizer.state.get(p)
        if state:
            new_optimizer.state[q] = {k: (v if k == "step" else v[index].clone()) for k, v in state.items()}
    return smaller, new_optimizer


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
