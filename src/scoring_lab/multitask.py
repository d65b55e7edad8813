"""One scorer for several tasks: a shared encoder, optionally a MoE block, a small head per task.

The UniMoE paper's MTL baseline (no MoE) and UniMoE / UniMoE-Guided (with the MoE block of
:mod:`scoring_lab.moe`, and with distillation from teacher logits). The shared encoder is the
profile's backbone: the layers it trains run over the frozen lower layers' states of
:mod:`scoring_lab.frozen_states` (computed once per response and shared with every other
model), the layers below are never run again.

Training (:func:`train_multitask`): AdamW with linear warm-up and decay, gradient clipping,
early stopping on the validation loss with the best weights restored, as the per-task
scorers. Every batch holds responses of one task (its head and its labels); the tasks'
batches are interleaved in a seeded random order each epoch. The loss is the paper's
L_task + lambda_LB L_LB + lambda_KD L_KD. Shapes: B responses, T tokens, d hidden, L_t labels.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers.masking_utils import create_bidirectional_mask

from . import moe
from .frozen_states import FrozenStates


@dataclass(frozen=True)
class MultiTaskSettings:
    """The multi-task model and its training (the UniMoE paper's, where it says)."""

    use_moe: bool = True
    n_experts: int = 4
    moe_on: str = moe.TOKENS             # the paper's text; "pooled": its reference code
    expert_hidden: int | None = None     # None: 2 d
    task_dim: int = 32
    head_hidden: int = 128
    dropout: float = 0.1
    lambda_lb: float = 0.01
    lambda_kd: float = 0.0
    tau: float = 1.0
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    grad_clip: float = 1.0
    batch_size: int = 32
    max_epochs: int = 8
    patience: int = 3


class MultiTaskModel(nn.Module):
    """Shared encoder layers ``layer`` and up -> (MoE) -> per-task heads.

    ``encoder``: a BERT-style model whose ``encoder.layer[layer:]`` are the shared trainable layers
    (layer 0: its embeddings too)."""

    def __init__(self, encoder: nn.Module, layer: int, labels_per_task: dict[str, int], settings: MultiTaskSettings):
        super().__init__()
        self.encoder, self.layer, self.settings = encoder, layer, settings
        d = int(encoder.config.hidden_size)
        self.tasks = list(labels_per_task)
        self.moe = (moe.MoEBlock(d, settings.n_experts, len(self.tasks), settings.expert_hidden, settings.task_dim,
                                 settings.dropout, settings.moe_on) if settings.use_moe else None)
        self.heads = moe.TaskHeads(d, labels_per_task, settings.head_hidden, settings.dropout)

    def encode(self, batch: dict) -> torch.Tensor:
        """(B, T, d) final-layer states from a batch of frozen states (or token ids at layer 0)."""
        mask = batch["attention_mask"]
        hidden = (self.encoder.embeddings(input_ids=batch["input_ids"]) if self.layer == 0 else batch["hidden"])
        full = create_bidirectional_mask(config=self.encoder.config, inputs_embeds=hidden, attention_mask=mask)
        for block in self.encoder.encoder.layer[self.layer:]:
            hidden = block(hidden, full)
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        return hidden

    def forward(self, batch: dict, task: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, L_t) logits of ``task`` and the gate weights (B, M) (None without a MoE block)."""
        hidden, mask = self.encode(batch), batch["attention_mask"]
        alpha = None
        if self.moe is not None:
            ids = torch.full((hidden.shape[0],), self.tasks.index(task), dtype=torch.long)
            mixed, alpha = self.moe(hidden, mask, ids)
            pooled = moe.mean_pool(mixed, mask) if mixed.dim() == 3 else mixed
        else:
            pooled = moe.mean_pool(hidden, mask)
        return self.heads(pooled, task), alpha

    def add_task(self, name: str, n_labels: int) -> None:
        """A new task: its head, and a task embedding for the gate (the paper's adaptation)."""
        self.heads.add(name, n_labels)
        self.tasks.append(name)
        if self.moe is not None:
            old = self.moe.task_embedding
            new = nn.Embedding(old.num_embeddings + 1, old.embedding_dim)
            with torch.no_grad():
                new.weight[:-1] = old.weight
            self.moe.task_embedding = new


@dataclass
class TaskData:
    """One task's responses for training: frozen states, (n, L) 0/1 labels, ids, and optionally
    (n, L) teacher logits in the same order."""

    states: FrozenStates
    labels: np.ndarray
    ids: np.ndarray
    teacher: np.ndarray | None = None


def _loss(model: MultiTaskModel, batch: dict, task: str, y: torch.Tensor, teacher: torch.Tensor | None,
          s: MultiTaskSettings) -> tuple[torch.Tensor, dict]:
    logits, alpha = model(batch, task)
    task_loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), y.float())
    total, parts = task_loss, {"task": float(task_loss.detach())}
    if alpha is not None and s.lambda_lb > 0:
        lb = moe.load_balancing_loss(alpha)
        total = total + s.lambda_lb * lb
        parts["lb"] = float(lb.detach())
    if s.lambda_kd > 0:
        if teacher is None:
            raise KeyError(f"task {task!r}: lambda_kd > 0 but no teacher logits were given")
        kd = moe.distillation_loss(logits, teacher, s.tau)
        total = total + s.lambda_kd * kd
        parts["kd"] = float(kd.detach())
    return total, parts


def _batches(data: dict[str, TaskData], size: int, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """(task, rows) batches of one task each, every task's rows shuffled, the batches interleaved."""
    out = []
    for name, d in data.items():
        order = rng.permutation(len(d.labels))
        out += [(name, order[i:i + size]) for i in range(0, len(order), size)]
    return [out[i] for i in rng.permutation(len(out))]


def _batch_of(d: TaskData, rows: np.ndarray) -> tuple[dict, torch.Tensor, torch.Tensor | None]:
    order, batch = next(d.states.select(rows).batches(len(rows)))
    picked = rows[order]
    y = torch.as_tensor(d.labels[picked])
    t = None if d.teacher is None else torch.as_tensor(d.teacher[picked], dtype=torch.float32)
    return batch, y, t


@torch.no_grad()
def validation_loss(model: MultiTaskModel, val: dict[str, TaskData], size: int = 64) -> float:
    """The mean BCE over every validation response and label of every task."""
    model.eval()
    total, count = 0.0, 0
    for name, d in val.items():
        for idx, batch in d.states.batches(size):
            logits, _ = model(batch, name)
            y = torch.as_tensor(d.labels[idx]).float()
            total += float(nn.functional.binary_cross_entropy_with_logits(logits.float(), y, reduction="sum"))
            count += y.numel()
    return total / max(count, 1)


def train_multitask(model: MultiTaskModel, train: dict[str, TaskData], val: dict[str, TaskData],
                    settings: MultiTaskSettings, seed: int = 0, trainable=None, progress: bool = True
                    ) -> tuple[MultiTaskModel, pd.DataFrame]:
    """Train ``model`` (only the parameters in ``trainable``, default all) on ``train``, early-stopped on
    the validation loss over ``val``; returns the best epoch's model and the history (epoch,
    train_loss, val_loss, seconds)."""
    from transformers import get_linear_schedule_with_warmup

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    params = [p for p in (trainable if trainable is not None else model.parameters()) if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    optimiser = torch.optim.AdamW([{"params": decay, "weight_decay": settings.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=settings.lr)
    steps = settings.max_epochs * len(_batches(train, settings.batch_size, np.random.default_rng(0)))
    schedule = get_linear_schedule_with_warmup(optimiser, int(settings.warmup_ratio * steps), steps)
    best_loss, best_state, bad, history = validation_loss(model, val), copy.deepcopy(model.state_dict()), 0, []
    for epoch in tqdm(range(1, settings.max_epochs + 1), desc="multi-task training", unit="epoch",
                      disable=not progress):
        t0 = time.perf_counter()
        model.train()
        losses = []
        for task, rows in _batches(train, settings.batch_size, rng):
            batch, y, teacher = _batch_of(train[task], rows)
            loss, _ = _loss(model, batch, task, y, teacher, settings)
            optimiser.zero_grad()
            loss.backward()
            if settings.grad_clip:
                nn.utils.clip_grad_norm_(params, settings.grad_clip)
            optimiser.step()
            schedule.step()
            losses.append(float(loss.detach()))
        val_loss = validation_loss(model, val)
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_loss": val_loss,
                        "seconds": time.perf_counter() - t0})
        if val_loss < best_loss - 1e-6:
            best_loss, best_state, bad = val_loss, copy.deepcopy(model.state_dict()), 0
        else:
            bad += 1
            if bad >= settings.patience:
                break
    model.load_state_dict(best_state)
    return model.eval(), pd.DataFrame(history)


@torch.no_grad()
def predict_proba(model: MultiTaskModel, states: FrozenStates, task: str, size: int = 64) -> np.ndarray:
    """(n, L_t) label probabilities of ``task`` over a split's frozen states."""
    model.eval()
    out = None
    for idx, batch in states.batches(size):
        p = torch.sigmoid(model(batch, task)[0].float()).numpy()
        out = np.zeros((len(states), p.shape[1]), np.float32) if out is None else out
        out[idx] = p
    return out if out is not None else np.zeros((0, 0), np.float32)


@torch.no_grad()
def expert_usage(model: MultiTaskModel, states: FrozenStates, task: str, size: int = 64) -> np.ndarray:
    """(M,) the mean gate weight of each expert over a split's responses of ``task``."""
    if model.moe is None:
        raise ValueError("the model has no MoE block")
    model.eval()
    total = torch.zeros(model.moe.n_experts)
    for _, batch in states.batches(size):
        hidden = model.encode(batch)
        ids = torch.full((hidden.shape[0],), model.tasks.index(task), dtype=torch.long)
        total += model.moe.weights(hidden, batch["attention_mask"], ids).sum(dim=0)
    return (total / max(len(states), 1)).numpy()
