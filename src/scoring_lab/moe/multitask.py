"""One scorer for several tasks: a shared encoder, optionally a MoE block, a small head per task.

The UniMoE paper's MTL baseline (no MoE) and UniMoE / UniMoE-Guided (with the MoE block of
:mod:`scoring_lab.moe.layers`, and with distillation from teacher logits). The shared encoder is the
profile's backbone: the layers it trains run over the frozen lower layers' states of
:mod:`scoring_lab.models.frozen_states` (computed once per response and shared with every other
model), the layers below are never run again.

Training (:func:`train_multitask`): AdamW with linear warm-up and decay, gradient clipping,
early stopping on the validation loss with the best weights restored, as the per-task
scorers. Every batch holds responses of one task (its head and its labels); the tasks'
batches are interleaved in a seeded random order each epoch. The loss is the paper's
L_task + lambda_LB L_LB + lambda_KD L_KD. L_task is each task's kind's: binary cross-entropy per rubric
dimension (the paper's), or cross-entropy over a score's classes (a softmax head, as the per-task
scorers' on ``train.multiclass_head: softmax``), and L_KD the matching form
(:func:`~scoring_lab.moe.layers.distillation_loss`). Shapes: B responses, T tokens, d hidden, L_t labels
(or classes).
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

from . import layers as moe
from ..models.frozen_states import FrozenStates
from ..profiles import MultiTaskSettings  # noqa: F401 (re-exported: the settings are profile data)


def run_layers(encoder: nn.Module, hidden: torch.Tensor, mask: torch.Tensor, start: int, stop: int | None = None
               ) -> torch.Tensor:
    """(B, T, d) states leaving layer ``stop - 1`` (default: the last) of ``encoder`` from states (B, T, d)
    entering layer ``start``, ``mask`` (B, T) marking real tokens."""
    blocks = encoder.encoder.layer[start:stop]
    if not len(blocks):
        return hidden
    full = create_bidirectional_mask(config=encoder.config, inputs_embeds=hidden, attention_mask=mask)
    for block in blocks:
        hidden = block(hidden, full)
        hidden = hidden[0] if isinstance(hidden, tuple) else hidden
    return hidden


class MultiTaskModel(nn.Module):
    """Shared encoder layers ``layer`` and up -> (MoE) -> per-task heads.

    ``encoder``: a BERT-style model whose ``encoder.layer[layer:]`` are the shared trainable layers
    (layer 0: its embeddings too); ``kinds``: {task: "multilabel" or "multiclass"}, each task's head
    (sigmoids or a softmax), default multilabel."""

    def __init__(self, encoder: nn.Module, layer: int, labels_per_task: dict[str, int], settings: MultiTaskSettings,
                 kinds: dict[str, str] | None = None):
        super().__init__()
        self.encoder, self.layer, self.settings = encoder, layer, settings
        d = int(encoder.config.hidden_size)
        self.tasks = list(labels_per_task)
        self.kinds = {t: (kinds or {}).get(t, "multilabel") for t in self.tasks}
        self.moe = (moe.MoEBlock(d, settings.n_experts, len(self.tasks), settings.expert_hidden, settings.task_dim,
                                 settings.dropout, settings.moe_on) if settings.use_moe else None)
        self.heads = moe.TaskHeads(d, labels_per_task, settings.head_hidden, settings.dropout)

    def encode(self, batch: dict) -> torch.Tensor:
        """(B, T, d) final-layer states from a batch of frozen states entering layer ``layer``
        (``{"hidden", "attention_mask"}``), or of token ids (``{"input_ids", "attention_mask"}``: the
        whole encoder runs, as the deployed model does)."""
        mask = batch["attention_mask"]
        start = 0 if "input_ids" in batch else self.layer
        hidden = self.encoder.embeddings(input_ids=batch["input_ids"]) if start == 0 else batch["hidden"]
        return run_layers(self.encoder, hidden, mask, start)

    def forward(self, batch: dict, task: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, L_t) logits of ``task`` and the gate weights (B, M) (None without a MoE block)."""
        hidden, mask = self.encode(batch), batch["attention_mask"]
        alpha = None
        if self.moe is not None:
            ids = torch.full((hidden.shape[0],), self.tasks.index(task), dtype=torch.long, device=hidden.device)
            mixed, alpha = self.moe(hidden, mask, ids)
            pooled = moe.mean_pool(mixed, mask) if mixed.dim() == 3 else mixed
        else:
            pooled = moe.mean_pool(hidden, mask)
        return self.heads(pooled, task), alpha

    def labels_per_task(self) -> dict[str, int]:
        """{task: its label count}, in the heads' order."""
        return dict(zip(self.heads.names, (h[-1].out_features for h in self.heads.heads)))

    def add_task(self, name: str, n_labels: int, kind: str = "multilabel") -> None:
        """A new task of ``kind``: its head, and a task embedding for the gate (the paper's adaptation)."""
        device = next(self.heads.parameters()).device
        self.heads.add(name, n_labels)
        self.heads.heads[-1].to(device)
        self.tasks.append(name)
        self.kinds[name] = kind
        if self.moe is not None:
            old = self.moe.task_embedding
            new = nn.Embedding(old.num_embeddings + 1, old.embedding_dim).to(old.weight.device)
            with torch.no_grad():
                new.weight[:-1] = old.weight
            self.moe.task_embedding = new


def task_loss(logits: torch.Tensor, y: torch.Tensor, kind: str, reduction: str = "mean") -> torch.Tensor:
    """L_task of (B, L) logits against (B, L) 0/1 labels (``multilabel``: binary cross-entropy, the mean over
    responses and labels) or (B,) classes (``multiclass``: cross-entropy, the mean over responses)."""
    if kind == "multiclass":
        return nn.functional.cross_entropy(logits.float(), y.long(), reduction=reduction)
    return nn.functional.binary_cross_entropy_with_logits(logits.float(), y.float(), reduction=reduction)


def probabilities(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """(B, L) label probabilities (sigmoids) or class probabilities (a softmax) of ``kind``."""
    return torch.softmax(logits.float(), dim=-1) if kind == "multiclass" else torch.sigmoid(logits.float())


@dataclass
class TaskData:
    """One task's responses for training: frozen states, (n, L) 0/1 labels or (n,) classes, ids, and
    optionally (n, L) teacher logits in the same order."""

    states: FrozenStates
    labels: np.ndarray
    ids: np.ndarray
    teacher: np.ndarray | None = None


def _loss(model: MultiTaskModel, batch: dict, task: str, y: torch.Tensor, teacher: torch.Tensor | None,
          s: MultiTaskSettings) -> tuple[torch.Tensor, dict]:
    logits, alpha = model(batch, task)
    kind = model.kinds[task]
    own = task_loss(logits, y, kind)
    total, parts = own, {"task": float(own.detach())}
    if alpha is not None and s.lambda_lb > 0:
        lb = moe.load_balancing_loss(alpha.float())
        total = total + s.lambda_lb * lb
        parts["lb"] = float(lb.detach())
    if s.lambda_kd > 0:
        if teacher is None:
            raise KeyError(f"task {task!r}: lambda_kd > 0 but no teacher logits were given")
        kd = moe.distillation_loss(logits, teacher, s.tau, kind)
        total = total + s.lambda_kd * kd
        parts["kd"] = float(kd.detach())
    return total, parts


def _batches(data: dict[str, TaskData], size: int, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """(task, rows) batches of one task each, every task's rows shuffled, the batches interleaved. Over
    per-token states the rows of a batch are of similar lengths (transformers' ``LengthGroupedSampler``,
    seeded from ``rng``, as the per-task scorers' ``group_by_length``): a third fewer padded tokens through
    a trained encoder layer on the benchmark; pooled states (one row per response) are only shuffled."""
    from transformers.trainer_pt_utils import LengthGroupedSampler

    out = []
    for name, d in data.items():
        lengths = d.states.lengths
        if len(lengths) and lengths.max() > 1:
            generator = torch.Generator().manual_seed(int(rng.integers(2 ** 31)))
            order = np.fromiter(LengthGroupedSampler(size, lengths=lengths.tolist(), generator=generator), np.int64)
        else:
            order = rng.permutation(len(d.labels))
        out += [(name, order[i:i + size]) for i in range(0, len(order), size)]
    return [out[i] for i in rng.permutation(len(out))]


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _on(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


def _batch_of(d: TaskData, rows: np.ndarray, device: torch.device) -> tuple[dict, torch.Tensor, torch.Tensor | None]:
    order, batch = next(d.states.select(rows).batches(len(rows)))
    picked = rows[order]
    y = torch.as_tensor(d.labels[picked]).to(device)
    t = None if d.teacher is None else torch.as_tensor(d.teacher[picked], dtype=torch.float32).to(device)
    return _on(batch, device), y, t


@torch.no_grad()
def validation_loss(model: MultiTaskModel, val: dict[str, TaskData], size: int = 64) -> float:
    """The mean L_task over every validation response of every task: per label of a multi-label task (BCE),
    per response of a multi-class one (cross-entropy)."""
    model.eval()
    device = _device(model)
    total, count = 0.0, 0
    for name, d in val.items():
        for idx, batch in d.states.batches(size):
            logits, _ = model(_on(batch, device), name)
            y = torch.as_tensor(d.labels[idx]).to(device)
            total += float(task_loss(logits, y, model.kinds[name], reduction="sum"))
            count += y.numel()
    return total / max(count, 1)


def train_multitask(model: MultiTaskModel, train: dict[str, TaskData], val: dict[str, TaskData],
                    settings: MultiTaskSettings, seed: int = 0, trainable=None, progress: bool = True
                    ) -> tuple[MultiTaskModel, pd.DataFrame]:
    """Train ``model`` (only the parameters in ``trainable``, default all) on ``train``, early-stopped on
    the validation loss over ``val``; returns the best epoch's model and the history (epoch,
    train_loss, val_loss, seconds). With ``settings.autocast`` "bf16" the training steps' forward passes run
    in bfloat16 autocast (weights, optimiser and losses in float32); validation runs in float32."""
    from transformers import get_linear_schedule_with_warmup

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    device = _device(model)
    params = [p for p in (trainable if trainable is not None else model.parameters()) if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [{"params": g, "weight_decay": w} for g, w in ((decay, settings.weight_decay), (no_decay, 0.0)) if g]
    optimiser = torch.optim.AdamW(groups, lr=settings.lr, fused=True)   # fused: a third of the step time on a CPU
    steps = settings.max_epochs * len(_batches(train, settings.batch_size, np.random.default_rng(0)))
    schedule = get_linear_schedule_with_warmup(optimiser, int(settings.warmup_ratio * steps), steps)
    best_loss, best_state, bad, history = validation_loss(model, val), copy.deepcopy(model.state_dict()), 0, []
    for epoch in tqdm(range(1, settings.max_epochs + 1), desc="multi-task training", unit="epoch",
                      disable=not progress):
        t0 = time.perf_counter()
        model.train()
        losses = []
        for task, rows in _batches(train, settings.batch_size, rng):
            batch, y, teacher = _batch_of(train[task], rows, device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=settings.autocast == "bf16"):
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
    """(n, L_t) label (or class) probabilities of ``task`` over a split's frozen states."""
    model.eval()
    out = None
    for idx, batch in states.batches(size):
        p = probabilities(model(_on(batch, _device(model)), task)[0], model.kinds[task]).cpu().numpy()
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
        batch = _on(batch, _device(model))
        hidden = model.encode(batch)
        ids = torch.full((hidden.shape[0],), model.tasks.index(task), dtype=torch.long, device=hidden.device)
        total += model.moe.weights(hidden, batch["attention_mask"], ids).sum(dim=0).cpu()
    return (total / max(len(states), 1)).numpy()


class StatesInput(nn.Module):
    """The encoder of a model that reads precomputed final-layer states: the backbone's config and no
    layers (what a model over a wholly frozen encoder needs in training, without the backbone's weights;
    :func:`deployable` puts the real encoder back)."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList()


def deployable(model: MultiTaskModel, encoder: nn.Module) -> MultiTaskModel:
    """``model`` with ``encoder`` (the whole backbone) in place of a :class:`StatesInput`: what runs
    from raw text, and what is counted and saved as the deployed model."""
    out = MultiTaskModel(encoder, len(encoder.encoder.layer), model.labels_per_task(), model.settings, model.kinds)
    missing, unexpected = out.load_state_dict(trained_state(model), strict=False)
    if unexpected or any(not k.startswith("encoder.") for k in missing):
        raise ValueError(f"the model does not fit the encoder: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return out.to(_device(encoder)).eval()


def train_job(settings: MultiTaskSettings, config, labels_per_task: dict[str, int], train: dict[str, TaskData],
              val: dict[str, TaskData], seed: int = 0, threads: int | None = None, kinds: dict[str, str] | None = None
              ) -> tuple[dict[str, torch.Tensor], pd.DataFrame, float]:
    """Train a model over precomputed final-layer states (a wholly frozen encoder) from scratch, as a
    self-contained job for a worker process (``kinds``: each task's, default multilabel): (its trained
    state, history, seconds)."""
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    n_layers = int(config.num_hidden_layers)
    model = MultiTaskModel(StatesInput(config), n_layers, labels_per_task, settings, kinds)
    t0 = time.perf_counter()
    model, history = train_multitask(model, train, val, settings, seed, progress=False)
    return trained_state(model), history, time.perf_counter() - t0


def pooled_states(states: FrozenStates) -> FrozenStates:
    """A split's final-layer states reduced to one row per response, their mean (n, d).

    For an encoder kept frozen whole, MTL and the pooled MoE read nothing but this mean (the gate,
    the experts and the heads all see the pooled vector), so over these one-row "responses" they give
    the same outputs as over the full states (tested) at a fraction of the cost."""
    if states.layer == 0:
        raise ValueError("pooled states need states of a frozen layer, not token ids")
    sums = np.add.reduceat(states.values, states.offsets[:-1], axis=0) if len(states) else states.values[:0]
    means = (sums / np.maximum(states.lengths, 1)[:, None]).astype(np.float32)
    return FrozenStates(states.layer, np.arange(len(states) + 1, dtype=np.int64), values=means)


def trained_state(model: MultiTaskModel) -> dict[str, torch.Tensor]:
    """What ``model`` trained (MoE block, heads, and the encoder's layers from ``model.layer`` up): the
    parameters and buffers a checkpoint needs besides the pre-trained backbone."""
    n = len(model.encoder.encoder.layer)
    if n == 0:   # a StatesInput: nothing of the encoder is here
        return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()
                if not k.startswith("encoder.")}
    trained_layers = {f"encoder.encoder.layer.{i}." for i in range(model.layer, n)}

    def keep(name: str) -> bool:
        if not name.startswith("encoder."):
            return True
        if model.layer == 0:
            return True
        return any(name.startswith(p) for p in trained_layers)

    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items() if keep(k)}


def parameter_count(module: nn.Module) -> int:
    """Parameters of ``module`` (each counted once)."""
    return int(sum(p.numel() for p in module.parameters()))


@torch.no_grad()
def predict_texts(model: MultiTaskModel, tokenizer, texts, task: str, max_length: int) -> np.ndarray:
    """(n, L_t) label (or class) probabilities of ``task`` from raw texts through the whole model (what a
    deployment runs: tokenizer, every encoder layer, MoE, head)."""
    from ..models.scorer import pad_ids, tokenize

    model.eval()
    ids, mask = pad_ids(tokenize(tokenizer, list(texts), max_length), tokenizer.pad_token_id)
    batch = _on({"input_ids": ids, "attention_mask": mask}, _device(model))
    return probabilities(model(batch, task)[0], model.kinds[task]).cpu().numpy()


@torch.no_grad()
def advance_states(states: FrozenStates, encoder: nn.Module, to_layer: int, batch_size: int = 64) -> FrozenStates:
    """The states entering layer ``to_layer`` (up to the layer count: the final output) from ``states``
    entering an earlier one, through ``encoder``'s pre-trained layers in between: (sum T_i, d) float32,
    the same rows as ``states``. Lets every split's lower layers run once for the whole book."""
    n_layers = len(encoder.encoder.layer)
    if not 0 < states.layer <= to_layer <= n_layers:
        raise ValueError(f"states entering layer {states.layer} cannot be advanced to layer {to_layer} of {n_layers}")
    out = np.zeros_like(states.values)
    device = next(encoder.parameters()).device
    training = encoder.training
    encoder.eval()                      # no dropout in states that stand for the frozen layers
    try:
        _advance_into(out, states, encoder, to_layer, batch_size, device)
    finally:
        encoder.train(training)
    return FrozenStates(to_layer, states.offsets.copy(), values=out)


def _advance_into(out: np.ndarray, states: FrozenStates, encoder: nn.Module, to_layer: int, batch_size: int,
                  device: torch.device) -> None:
    for idx, batch in states.batches(batch_size):
        hidden = run_layers(encoder, batch["hidden"].to(device), batch["attention_mask"].to(device), states.layer,
                            to_layer)
        h = hidden.float().cpu().numpy()
        for j, i in enumerate(idx):
            a, b = states.offsets[i], states.offsets[i + 1]
            out[a:b] = h[j, : b - a]


def trains_encoder_layers(model: MultiTaskModel) -> bool:
    """Whether ``model`` carries trained encoder layers above frozen ones (its inputs: states of a middle layer)."""
    return 0 < model.layer < len(model.encoder.encoder.layer)


def over_final_states(model: MultiTaskModel, pooled: bool, *data: dict[str, TaskData]
                      ) -> tuple[MultiTaskModel, ...]:
    """For training a model's MoE block and heads while its trained encoder layers stay fixed (as adaptation
    does): a model over final-layer states that shares ``model``'s MoE block and heads (the same modules,
    so training it trains them), and ``data`` with its states (entering ``model.layer``, which must be a
    frozen layer above 0) run once through ``model``'s encoder layers, pooled to one row per response when
    ``pooled``. Its outputs are ``model``'s (tested), at the cost of the MoE and heads alone each epoch.
    Returns (the view, each of ``data`` so made)."""
    n = len(model.encoder.encoder.layer)
    if not trains_encoder_layers(model):
        raise ValueError(f"the model must train encoder layers above frozen ones, not from layer {model.layer} of {n}")
    view = MultiTaskModel(StatesInput(model.encoder.config), n, model.labels_per_task(), model.settings, model.kinds)
    view.moe, view.heads, view.tasks, view.kinds = model.moe, model.heads, model.tasks, model.kinds

    def final(d: TaskData) -> TaskData:
        states = advance_states(d.states, model.encoder, n)
        return TaskData(pooled_states(states) if pooled else states, d.labels, d.ids, d.teacher)

    return (view.to(_device(model)), *({t: final(d) for t, d in part.items()} for part in data))
