"""Items for IRT: test (and validation) responses, and which merged scorers answer them correctly.

An *item* is one response of one task of a merge group; a model answers it correctly when the
label set it predicts equals the human one (all rubric dimensions right: the exact-match
criterion; a multi-class task scores an item by its class). A *model* is an encoder recipe,
:class:`Recipe`: which endpoint scorers it merges (none: the pre-trained backbone) and how
(:class:`~scoring_lab.merging.evaluation.Merge`); it answers every task's items through that task's
own head, like the GW chapter's merged models.

:class:`ItemScorer` runs a recipe over any positions of an :class:`ItemPool` on the shared
frozen states (only the layers above them run), counts the floating-point operations with
``torch.utils.flop_counter``, and caches the correctness by the recipe, the items and the code,
so that a warm chapter, or an evolution that meets a recipe again, scores nothing twice.
"""
from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..merging import task_vectors as merging
from ..models.cache import array_digest, code_version
from ..data.task import Task
from ..models.frozen_states import first_trainable_layer
from ..merging.evaluation import OWN, Merge, MergeEvaluator, decide, head_probabilities
from ..models.per_task import split_fingerprint

CORRECTNESS_KIND = "item-correctness"
EMBEDDINGS_KIND = "item-embeddings"


@dataclass(frozen=True)
class Recipe:
    """A model: the endpoints it merges (``members``, task names; empty: the pre-trained encoder) and how.
    One member with ``Merge("own")`` is that endpoint's scorer itself."""

    members: tuple[str, ...]
    merge: Merge = Merge(OWN)

    def label(self) -> str:
        if not self.members:
            return "pre-trained encoder"
        if self.merge.method == OWN:
            return f"{self.members[0]} (endpoint)"
        return f"{' + '.join(self.members)}: {self.merge.label()}"


@dataclass(frozen=True)
class ItemPool:
    """The items of a merge group: ``tasks`` in order, and per item (I,) its task index, split name and row."""

    tasks: tuple[str, ...]
    task: np.ndarray
    split: np.ndarray
    row: np.ndarray

    @classmethod
    def build(cls, tasks: dict[str, Task], group, splits=("val", "test")) -> "ItemPool":
        """Every response of ``splits`` of the ``group``'s tasks, task by task, split by split, in row order."""
        t, s, r = [], [], []
        for j, name in enumerate(group):
            if name not in tasks:
                raise KeyError(f"no task {name!r}; known: {', '.join(tasks)}")
            for split in splits:
                n = len(tasks[name].splits()[split])
                t.append(np.full(n, j)), s.append(np.full(n, split, dtype=object)), r.append(np.arange(n))
        return cls(tuple(group), np.concatenate(t), np.concatenate(s), np.concatenate(r))

    def __len__(self) -> int:
        return len(self.task)

    def positions(self, split: str | None = None, task: str | None = None) -> np.ndarray:
        """(k,) the positions of one split's and / or one task's items."""
        keep = np.ones(len(self), dtype=bool)
        if split is not None:
            keep &= self.split == split
        if task is not None:
            keep &= self.task == self.tasks.index(task)
        return np.flatnonzero(keep)

    def task_of(self, positions) -> np.ndarray:
        """(k,) task names of ``positions``."""
        return np.asarray(self.tasks, dtype=object)[self.task[np.asarray(positions, dtype=int)]]


@dataclass
class Scored:
    """A recipe on some items: ``correct`` (k,) 0/1, the FLOPs and seconds the scoring took (when it ran;
    the cached figures when it came from the cache)."""

    correct: np.ndarray
    flops: float
    seconds: float


class ItemScorer:
    """Scores recipes on an :class:`ItemPool` over the evaluator's shared frozen states, cached."""

    def __init__(self, evaluator: MergeEvaluator, pool: ItemPool):
        self.evaluator, self.pool = evaluator, pool
        self.tasks = evaluator.tasks
        self._loaded: Recipe | None = None
        self._flops: dict[str, float] = {}
        self._fingerprints = {(t, s): split_fingerprint(self.tasks[t].splits()[s])
                              for t in pool.tasks for s in set(pool.split)}

    def _inputs(self, recipe: Recipe, positions: np.ndarray) -> dict:
        ev = self.evaluator
        h = hashlib.sha256()
        for p in positions:
            t, s = self.pool.tasks[self.pool.task[p]], self.pool.split[p]
            h.update(f"{t}|{self._fingerprints[(t, s)]}|{self.pool.row[p]};".encode())
        return {"members": [ev.scorers[t].key for t in recipe.members], "merge": asdict(recipe.merge),
                "heads": {t: ev.scorers[t].key for t in self.pool.tasks}, "items": h.hexdigest(),
                "settings": asdict(ev.settings),
                "code": code_version(merging, first_trainable_layer, MergeEvaluator, ItemScorer)}

    def encoder(self, recipe: Recipe) -> dict[str, torch.Tensor]:
        """The recipe's encoder parameters (those that differ from the pre-trained ones)."""
        if not recipe.members:
            return {}
        return self.evaluator.merged_encoder(tuple(recipe.members), recipe.merge)

    def score(self, recipe: Recipe, positions=None) -> Scored:
        """``recipe`` on ``positions`` (default: every item), cached."""
        positions = np.arange(len(self.pool)) if positions is None else np.asarray(positions, dtype=int)

        def produce(folder):
            scored = self._run(recipe, positions)
            np.save(folder / "correct.npy", scored.correct)
            (folder / "cost.txt").write_text(f"{scored.flops:.0f} {scored.seconds:.6f}\n")

        def load(art):
            flops, seconds = (float(v) for v in art.file("cost.txt").read_text().split())
            return Scored(np.load(art.file("correct.npy")), flops, seconds)

        value, _ = self.evaluator.cache.get_or_compute(CORRECTNESS_KIND, self._inputs(recipe, positions), produce, load)
        return value

    def _run(self, recipe: Recipe, positions: np.ndarray) -> Scored:
        batches = list(self._states_of(positions))   # the frozen states, computed once and shared, not counted
        t0 = time.perf_counter()                     # the merge and the layers above the frozen ones
        self._load(recipe)
        # the FLOPs depend on the items and the architecture, not the weights: counted the first time a set
        # of items is scored (the counter slows a forward by about a fifth), reused after
        items_key = array_digest(positions)
        counting = items_key not in self._flops
        correct, flops = self._forward(positions, batches, counting)
        if counting:
            self._flops[items_key] = flops
        return Scored(correct, self._flops[items_key], time.perf_counter() - t0)

    def _load(self, recipe: Recipe) -> None:
        if self._loaded != recipe:
            self.evaluator.upper.load(self.encoder(recipe))
            self._loaded = recipe

    def _forward(self, positions: np.ndarray, batches: list, count: bool) -> tuple[np.ndarray, float]:
        """((k,) 0/1 correctness of the loaded model on ``positions``, its FLOPs when ``count``, else 0)."""
        from torch.utils.flop_counter import FlopCounterMode

        ev, pool = self.evaluator, self.pool
        correct = np.zeros(len(positions), dtype=np.uint8)
        counter = FlopCounterMode(display=False) if count else contextlib.nullcontext()
        with counter:
            for at, states in batches:
                task, split = pool.tasks[pool.task[positions[at[0]]]], pool.split[positions[at[0]]]
                rows, data, parts = pool.row[positions[at]], self.tasks[task].splits()[split], ev.parts(task)
                pred = decide(parts, head_probabilities(parts, ev.upper.embed(states, ev.batch_size)))
                truth = data.labels[rows] if data.labels is not None and pred.ndim == 2 else data.scores[rows]
                correct[at] = (pred == truth).all(axis=1) if pred.ndim == 2 else (pred == truth)
        return correct, float(counter.get_total_flops()) if count else 0.0

    def time_evaluation(self, recipe: Recipe, item_sets: dict) -> dict:
        """One evaluation of ``recipe`` timed as a search pays for it, nothing from a cache: {"merge_seconds":
        building its merged encoder and loading it, and per item set (``item_sets`` {name: positions}):
        "<name>_seconds" scoring those items, "<name>_flops" their FLOPs}. The frozen states are read before
        the clock starts (every model shares them)."""
        out = {}
        states = {name: list(self._states_of(np.asarray(p, dtype=int))) for name, p in item_sets.items()}
        t0 = time.perf_counter()
        self.evaluator.upper.load(self.encoder(recipe))
        self._loaded = recipe
        out["merge_seconds"] = time.perf_counter() - t0
        for name, positions in item_sets.items():
            positions = np.asarray(positions, dtype=int)
            t0 = time.perf_counter()
            self._forward(positions, states[name], False)
            out[f"{name}_seconds"] = time.perf_counter() - t0
            key = array_digest(positions)
            if key not in self._flops:
                self._flops[key] = self._forward(positions, states[name], True)[1]
            out[f"{name}_flops"] = self._flops[key]
        return out

    def embeddings(self, recipe: Recipe, positions) -> np.ndarray:
        """(k, H) pooled final-layer embeddings of the items at ``positions`` under ``recipe``'s encoder, cached."""
        positions = np.asarray(positions, dtype=int)
        ev = self.evaluator

        def compute():
            ev.upper.load(self.encoder(recipe))
            self._loaded = recipe
            out = np.zeros((len(positions), ev.upper.base_width), dtype=np.float32)
            for at, states in self._states_of(positions):
                out[at] = ev.upper.embed(states, ev.batch_size)
            return out

        return ev._cached(EMBEDDINGS_KIND, {**self._inputs(recipe, positions), "embeddings": True}, compute)

    def _states_of(self, positions: np.ndarray):
        """Yield (indices into ``positions``, their frozen states), one (task, split) at a time."""
        pool = self.pool
        for j, task in enumerate(pool.tasks):
            for split in dict.fromkeys(pool.split[positions]):
                at = np.flatnonzero((pool.task[positions] == j) & (pool.split[positions] == split))
                if len(at):
                    data = self.tasks[task].splits()[split]
                    yield at, self.evaluator.states(task, data, split).select(pool.row[positions[at]])

    def matrix(self, recipes, positions=None, progress: bool = True, desc: str = "models") -> np.ndarray:
        """(m, k) correctness of ``recipes`` on ``positions`` (every item by default)."""
        from tqdm.auto import tqdm

        return np.stack([self.score(r, positions).correct for r in tqdm(list(recipes), desc=desc,
                                                                          disable=not progress, leave=False)])
