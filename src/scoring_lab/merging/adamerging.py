"""Layer-wise merge coefficients fitted on validation responses (AdaMerging-style; GW-SMM's future work).

AdaMerging (Yang et al., ICLR 2024, "layer-wise") merges k task vectors with one
coefficient per task and per layer,

    theta_l = theta_0,l + sum_k lambda_{k,l} * tau_{k,l},

and fits the lambdas by gradient descent. AdaMerging minimises the prediction entropy on
unlabelled test inputs, having no labels; here the group's validation responses and their
labels are at hand, so the lambdas minimise each task's own training loss (BCE or CE, through
its own head) on validation responses, and test responses play no part. A "layer" is an
encoder block (``encoder.encoder.layer.<i>.``; the embeddings count as one with full
fine-tuning): on ``default`` the top two, the only ones the scorers trained.

The fitted coefficients go into a :class:`~scoring_lab.merging.evaluation.Merge` (task arithmetic
at scaling 1 with per-task, per-layer coefficients), so the merged model is evaluated and
cached like any other.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from . import task_vectors as merging
from .evaluation import Merge, MergeEvaluator

LAYER = re.compile(r"^(encoder\.encoder\.layer\.\d+\.|encoder\.embeddings\.)")


def layer_prefixes(names) -> list[str]:
    """The distinct layers (name prefixes) the parameters ``names`` belong to, in first-seen order."""
    out = []
    for n in names:
        m = LAYER.match(n)
        prefix = m.group(1) if m else n
        if prefix not in out:
            out.append(prefix)
    return out


class _Embedder(torch.nn.Module):
    """The evaluator's upper layers as a module whose forward is the pooled embedding, for functional calls."""

    def __init__(self, evaluator: MergeEvaluator):
        super().__init__()
        self.upper = evaluator.upper
        self.model = evaluator.upper.model

    def forward(self, batch: dict) -> torch.Tensor:
        if self.upper.layer == 0:
            hidden = self.model.encoder.embeddings(input_ids=batch["input_ids"])
        else:
            hidden = batch["hidden"]
        return self.upper._embed_from(hidden, batch["attention_mask"], self.upper.layer)


def fit_layer_coefficients(evaluator: MergeEvaluator, group: tuple[str, ...], init: float, steps: int = 40,
                           lr: float = 0.05, batch: int = 32, seed: int = 0, progress: bool = True
                           ) -> tuple[Merge, pd.DataFrame]:
    """(the fitted merge, its history: step, loss) for ``group``, the coefficients starting at ``init``.

    Each step takes ``batch`` validation responses of every task in the group (seeded), merges with
    the current coefficients, and steps Adam on the mean of the tasks' losses."""
    from ..models.training import targets_of   # here, not at import: training pulls in Accelerate

    group = tuple(group)
    upper = evaluator.upper
    vectors = merging.task_vectors([evaluator.parts(t).encoder for t in group], upper.base)
    names = list(vectors[0])
    prefixes = layer_prefixes(names)
    where = [prefixes.index(LAYER.match(n).group(1) if LAYER.match(n) else n) for n in names]
    lam = torch.full((len(group), len(prefixes)), float(init), requires_grad=True)
    optimiser = torch.optim.Adam([lam], lr=lr)
    states = {t: evaluator.states(t, evaluator.tasks[t].val, "val") for t in group}
    targets = {t: torch.as_tensor(targets_of(evaluator.tasks[t], evaluator.tasks[t].val)) for t in group}
    heads = {t: evaluator.parts(t) for t in group}
    embedder = _Embedder(evaluator).eval()
    rng = np.random.default_rng(seed)
    history = []
    for step in tqdm(range(steps), desc=f"layer-wise coefficients ({len(group)} tasks)", leave=False,
                     disable=not progress):
        params = {f"model.{n}": upper.base[n].float() + sum(lam[k, where[i]] * vectors[k][n]
                                                             for k in range(len(group)))
                  for i, n in enumerate(names)}
        losses = []
        for t in group:
            rows = rng.choice(len(states[t]), size=min(batch, len(states[t])), replace=False)
            order, b = next(states[t].select(rows).batches(len(rows), upper.pad_id))   # one batch, length-sorted
            emb = torch.func.functional_call(embedder, params, (b,))
            logits = torch.nn.functional.linear(emb, heads[t].head["head.weight"], heads[t].head["head.bias"])
            losses.append(_loss(heads[t].spec, logits, targets[t][rows[order]]))
        loss = torch.stack(losses).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        history.append({"step": step + 1, "loss": float(loss.detach())})
    coefficients = tuple((t, tuple((p, round(float(lam[k, j].detach()), 6)) for j, p in enumerate(prefixes)))
                         for k, t in enumerate(group))
    return Merge("task_arithmetic", scaling=1.0, coefficients=coefficients), pd.DataFrame(history)


def _loss(spec, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The scorer's own training loss (Scorer.loss reads nothing but the spec)."""
    from types import SimpleNamespace

    from ..models.scorer import Scorer

    return Scorer.loss(SimpleNamespace(spec=spec), logits, targets)
