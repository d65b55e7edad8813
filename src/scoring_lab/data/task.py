"""The task objects every loader returns and every chapter consumes.

A :class:`Task` is one assessment item: its rubric (label names), and three
:class:`Split` s (train, val, test). Every response carries an explicit string
id, so predictions, teacher probabilities and metrics are always aligned by id,
never by row position.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Kind = Literal["multilabel", "multiclass"]


@dataclass
class Split:
    """One split of one task.

    ids:    (n,) str, unique within the task
    texts:  list of n response strings
    labels: (n, L) int8 0/1 rubric dimensions, or None for a purely multi-class task
    scores: (n,) int64 holistic class in 0..K-1, or None
    ability: (n,) float latent student ability (synthetic data only), or None
    """

    ids: np.ndarray
    texts: list[str]
    labels: np.ndarray | None = None
    scores: np.ndarray | None = None
    ability: np.ndarray | None = None

    def __post_init__(self):
        self.ids = np.asarray(self.ids, dtype=object)
        n = len(self.ids)
        if len(self.texts) != n:
            raise ValueError(f"Split has {n} ids but {len(self.texts)} texts")
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int8)
            if self.labels.ndim != 2 or self.labels.shape[0] != n:
                raise ValueError(f"labels must have shape ({n}, L), got {self.labels.shape}")
        if self.scores is not None:
            self.scores = np.asarray(self.scores, dtype=np.int64)
            if self.scores.shape != (n,):
                raise ValueError(f"scores must have shape ({n},), got {self.scores.shape}")
        if self.ability is not None:
            self.ability = np.asarray(self.ability, dtype=float)

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index) -> "Split":
        """Rows ``index`` (an int array or boolean mask) as a new Split."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        elif index.size == 0:
            index = index.astype(int)
        pick = lambda a: None if a is None else a[index]  # noqa: E731
        return Split(
            ids=self.ids[index],
            texts=[self.texts[i] for i in index],
            labels=pick(self.labels),
            scores=pick(self.scores),
            ability=pick(self.ability),
        )


def concat_splits(*splits: Split) -> Split:
    """The rows of ``splits`` one after another, as one Split (ids must stay unique).

    A field is kept only when every split has it (labels, scores, ability), else it is None.
    """
    if not splits:
        raise ValueError("concat_splits needs at least one split")
    ids = np.concatenate([s.ids for s in splits])
    _, counts = np.unique(ids.astype(str), return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"concat_splits: {int((counts > 1).sum())} id(s) occur in more than one split")

    def joined(name):
        parts = [getattr(s, name) for s in splits]
        return None if any(p is None for p in parts) else np.concatenate(parts)

    return Split(ids=ids, texts=[t for s in splits for t in s.texts], labels=joined("labels"),
                 scores=joined("scores"), ability=joined("ability"))


@dataclass
class Task:
    """One assessment item with its splits.

    kind:        "multilabel" (rubric dimensions, BCE) or "multiclass" (holistic score, CE)
    label_names: the L rubric dimensions, in column order (multi-label view)
    n_classes:   K for the holistic multi-class score, or None when there is none
    meta:        free-form provenance: source, files, scenario, rubric text,
                 family, and any counted, reported drops (``meta["dropped"]``)
    """

    name: str
    kind: Kind
    train: Split
    val: Split
    test: Split
    label_names: list[str] = field(default_factory=list)
    n_classes: int | None = None
    meta: dict = field(default_factory=dict)

    @property
    def n_labels(self) -> int:
        """Number of labels (multi-label) or classes (multi-class)."""
        return len(self.label_names) if self.kind == "multilabel" else int(self.n_classes or 0)

    def splits(self) -> dict[str, Split]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def prevalence(self, split: str = "train") -> np.ndarray:
        """(L,) share of responses with each label (multi-label) or (K,) class shares."""
        s = self.splits()[split]
        if self.kind == "multilabel":
            return s.labels.mean(axis=0) if len(s) else np.zeros(len(self.label_names))
        return np.bincount(s.scores, minlength=self.n_classes) / max(len(s), 1)
