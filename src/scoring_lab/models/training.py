"""Fine-tuning one scorer on one task, with Hugging Face Accelerate.

The recipe of the GW and MoE papers: AdamW, linear warm-up then linear decay,
gradient clipping, early stopping on validation loss (best weights restored).
Shortcuts for a CPU, each a :class:`~scoring_lab.profiles.TrainSettings` field:
dynamic padding (always: a batch pads to its own longest response), batches
grouped by length (``group_by_length``), a shorter ``max_length``, and ``trainable_layers = k``: only the top k encoder layers and the
head train, so the frozen layers below run once per response and their output
states are reused every epoch. LoRA adapters (peft) are the other option.

``refit``: early stopping holds a tenth of the training responses out, which on
a few hundred responses per task is a tenth of what there is to learn from. With
``refit`` the early-stopped run only chooses the number of epochs (and a probe
head's ``C``); a second run from the same start trains on train + val for that
many epochs (scikit-learn's ``refit=True`` after a search). It costs those epochs
again; the validation probabilities it reports are the first run's, the only
held-out ones.

Precision, also from the settings: the backbone's weights are loaded in
``dtype`` (float32 by default, whatever the checkpoint was saved in), and
``mixed_precision`` (no, bf16, fp16) is Accelerate's autocast around the forward
pass. fp16 autocast needs a GPU: without one it falls back to no with a
warning. The profile's value overrides ``accelerate launch --mixed_precision``.

The same code runs under ``accelerate launch`` on several GPUs: Accelerate
places the model, shards the batches and gathers validation predictions.
"""
from __future__ import annotations

import random
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, PartialState
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup
from transformers.trainer_pt_utils import LengthGroupedSampler

from .backbone import load_backbone
from ..data.task import Split, Task, concat_splits
from ..metrics import accuracy, micro_f1
from .probe import init_head_from_probe
from ..profiles import TrainSettings
from .scorer import Scorer, ScorerSpec, length_sorted_batches, pad_ids, tokenize


@dataclass
class TrainResult:
    scorer: Scorer
    history: pd.DataFrame        # one row per epoch: epoch, train_loss, val_loss, val_score, seconds
    trained_parameters: list[str]  # names of the parameters that changed (what a checkpoint must keep)
    info: dict                   # best_epoch, epochs_run, seconds, n_trainable, n_total, stopped_early
                                 # (+ refit_epochs, refit_seconds, refit_n_train with settings.refit)
    heldout_val_proba: np.ndarray | None = None  # refit only: (n_val, L) or (n_val, K) probabilities of the
                                                 # early-stopped run, which did not train on validation


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def targets_of(task: Task, split: Split) -> np.ndarray:
    """(n, L) 0/1 labels for a multi-label task, (n,) classes for a multi-class one."""
    if task.kind == "multilabel":
        return split.labels.astype(np.float32)
    return split.scores.astype(np.int64)


class _Rows(Dataset):
    def __init__(self, inputs: list, targets: np.ndarray):
        self.inputs, self.targets = inputs, targets

    def __len__(self):
        return len(self.inputs)

    def __getitem__(self, i):
        return self.inputs[i], self.targets[i]


def _collate_ids(pad_id: int):
    def collate(rows):
        ids, mask = pad_ids([r[0] for r in rows], pad_id)
        return {"input_ids": ids, "attention_mask": mask, "targets": torch.as_tensor(np.stack([r[1] for r in rows]))}
    return collate


def _collate_states(rows):
    """Pad cached (T_i, H) lower-layer states to the batch's longest response."""
    width = max(r[0].shape[0] for r in rows)
    hidden = torch.zeros((len(rows), width, rows[0][0].shape[1]), dtype=rows[0][0].dtype)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (h, _) in enumerate(rows):
        hidden[i, : h.shape[0]] = h
        mask[i, : h.shape[0]] = 1
    return {"hidden": hidden, "attention_mask": mask, "targets": torch.as_tensor(np.stack([r[1] for r in rows]))}


@torch.no_grad()
def _lower_states(scorer: Scorer, ids: list[list[int]], layer: int, batch_size: int, desc: str,
                  progress: bool = True) -> list[torch.Tensor]:
    """Per response, the (T_i, H) states entering layer ``layer``, computed once with the frozen layers."""
    scorer.eval()
    out: list[torch.Tensor | None] = [None] * len(ids)
    for idx in tqdm(length_sorted_batches([len(x) for x in ids], batch_size), desc=desc, leave=False,
                    disable=not progress):
        input_ids, mask = pad_ids([ids[i] for i in idx], scorer.tokenizer.pad_token_id)
        h = scorer.hidden_states_below(input_ids.to(scorer.device), mask.to(scorer.device), layer).cpu()
        for j, i in enumerate(idx):
            out[i] = h[j, : len(ids[i])].clone()
    return out


def mixed_precision_for(settings: TrainSettings) -> str:
    """The autocast to train with here: ``settings.mixed_precision``, except fp16 without a GPU, which is no."""
    if settings.mixed_precision == "fp16" and PartialState().device.type == "cpu":
        warnings.warn("train.mixed_precision fp16 needs a GPU; training on the CPU in full precision (no)",
                      stacklevel=3)
        return "no"
    return settings.mixed_precision


def _accelerator(mixed_precision: str) -> Accelerator:
    """An Accelerator with this autocast, even when an earlier one in this process had another."""
    current = AcceleratorState._shared_state.get("_mixed_precision")
    if current is not None and current != mixed_precision:
        AcceleratorState._reset_state()  # a per-process singleton; transformers' Trainer resets it the same way
    return Accelerator(mixed_precision=mixed_precision)


def _freeze_for(scorer: Scorer, settings: TrainSettings) -> int:
    """Set requires_grad per the settings; returns the first trainable encoder layer (0 = all)."""
    if settings.lora is not None:
        return 0
    if settings.trainable_layers is None or settings.trainable_layers >= scorer.n_layers:
        return 0
    first = scorer.n_layers - settings.trainable_layers
    for name, p in scorer.encoder.named_parameters():
        p.requires_grad = any(name.startswith(f"encoder.layer.{i}.") for i in range(first, scorer.n_layers))
    return first


def _apply_lora(scorer: Scorer, settings: TrainSettings) -> None:
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(r=settings.lora.r, lora_alpha=settings.lora.alpha, lora_dropout=settings.lora.dropout,
                     target_modules=list(settings.lora.target_modules), bias="none")
    scorer.encoder = get_peft_model(scorer.encoder, cfg)


def _optimizer(model: torch.nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 else decay).append(p)  # biases and LayerNorm weights: no decay
    return torch.optim.AdamW([{"params": decay, "weight_decay": settings.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=settings.lr)


def train_scorer(task: Task, settings: TrainSettings, seed: int = 0, progress: bool = True) -> TrainResult:
    """Fine-tune a scorer for ``task`` on its train split, early-stopped on its val split.

    With ``settings.refit`` the early-stopped run only chooses the number of epochs (and the
    probe's ``C``); a second run from the same start then trains on train + val for exactly that
    many epochs and is the scorer returned (scikit-learn's ``refit=True``). Its ``history`` is the
    choosing run's, and ``heldout_val_proba`` keeps the choosing run's validation probabilities: the
    only validation predictions of a model that did not train on them.

    Deterministic on the CPU for a given seed (model init, dropout, batch order).
    """
    if len(task.train) == 0:
        raise ValueError(f"task {task.name!r} has no training responses")
    if len(task.val) == 0:
        raise ValueError(f"task {task.name!r} has no validation responses: early stopping needs some "
                         "(raise data.val_fraction)")
    t0 = time.perf_counter()
    chosen = _train_once(task, task.train, task.val, settings, seed, progress)
    if not settings.refit:
        chosen.info["seconds"] = time.perf_counter() - t0
        return chosen
    heldout = chosen.scorer.predict_proba(task.val.texts, settings.eval_batch_size)
    r0 = time.perf_counter()
    epochs = chosen.info["best_epoch"]
    refit = _train_once(task, concat_splits(task.train, task.val), None, settings, seed, progress,
                        epochs=epochs, probe_C=chosen.info.get("probe_C"))
    info = {**chosen.info, "refit_epochs": epochs, "refit_seconds": time.perf_counter() - r0,
            "refit_n_train": len(task.train) + len(task.val), "seconds": time.perf_counter() - t0}
    return TrainResult(scorer=refit.scorer, history=chosen.history, trained_parameters=refit.trained_parameters,
                       info=info, heldout_val_proba=heldout)


def _train_once(task: Task, train: Split, val: Split | None, settings: TrainSettings, seed: int, progress: bool,
                epochs: int | None = None, probe_C: float | None = None) -> TrainResult:
    """One training run on ``train``.

    epochs None: up to ``settings.max_epochs``, early-stopped on ``val`` (best weights restored);
    epochs n: exactly n epochs (0: the probe alone), ``val`` unused, the last weights kept, the
    schedule's warm-up and decay spread over those n epochs; a probe head uses ``probe_C``.
    """
    t0 = time.perf_counter()
    seed_everything(seed)
    fixed = epochs is not None
    n_epochs = epochs if fixed else settings.max_epochs
    accelerator = _accelerator(mixed_precision_for(settings))
    backbone = load_backbone(settings.backbone, seed=seed, dtype=settings.dtype, encoder_layers=settings.encoder_layers)
    spec = ScorerSpec(backbone=settings.backbone, kind=task.kind, n_outputs=task.n_labels,
                      dropout=settings.dropout, max_length=settings.max_length, seed=seed, dtype=settings.dtype,
                      pooling=settings.pooling, encoder_layers=settings.encoder_layers,
                      head=settings.multiclass_head if task.kind == "multiclass" else "softmax")
    scorer = Scorer(backbone, spec).to(accelerator.device)
    first = _freeze_for(scorer, settings)
    if settings.lora is not None:
        _apply_lora(scorer, settings)

    parts = {"train": train} if fixed else {"train": train, "val": val}
    ids = {name: tokenize(scorer.tokenizer, split.texts, settings.max_length) for name, split in parts.items()}
    y = {name: targets_of(task, split) for name, split in parts.items()}
    if first > 0:
        inputs = {k: _lower_states(scorer, v, first, settings.eval_batch_size, f"{task.name}: frozen layers ({k})",
                                   progress) for k, v in ids.items()}
        collate = _collate_states
    else:
        inputs, collate = ids, _collate_ids(scorer.tokenizer.pad_token_id)
    gen = torch.Generator().manual_seed(seed)
    if settings.group_by_length:  # batches of similar lengths pad less (transformers' Trainer option of that name)
        order = {"sampler": LengthGroupedSampler(settings.batch_size, lengths=[len(x) for x in ids["train"]],
                                                 generator=gen)}
    else:
        order = {"shuffle": True, "generator": gen}
    train_loader = DataLoader(_Rows(inputs["train"], y["train"]), batch_size=settings.batch_size,
                              collate_fn=collate, **order)
    val_loader = None if fixed else DataLoader(_Rows(inputs["val"], y["val"]), batch_size=settings.eval_batch_size,
                                               shuffle=False, collate_fn=collate)

    probe_info = {}
    if settings.head_init == "probe":  # LP-FT: the head starts as a logistic regression on the frozen features
        def embed_of(batch):
            mask = batch["attention_mask"].to(scorer.device)
            if first > 0:
                return scorer.embed_from(batch["hidden"].to(scorer.device), mask, first)
            return scorer.embed(batch["input_ids"].to(scorer.device), mask)
        in_order = DataLoader(_Rows(inputs["train"], y["train"]), batch_size=settings.eval_batch_size,
                              shuffle=False, collate_fn=collate)
        probe_info = init_head_from_probe(scorer, embed_of, in_order, val_loader, seed,
                                          **({"C_grid": (probe_C,)} if probe_C is not None else {}))

    optimizer = _optimizer(scorer, settings)
    total = max(n_epochs, 1) * len(train_loader)
    schedule = get_linear_schedule_with_warmup(optimizer, int(settings.warmup_ratio * total), total)
    model, optimizer, train_loader, schedule = accelerator.prepare(scorer, optimizer, train_loader, schedule)
    if val_loader is not None:
        val_loader = accelerator.prepare(val_loader)
    trainable = [n for n, p in accelerator.unwrap_model(model).named_parameters() if p.requires_grad]

    def logits_of(batch):  # through `model`, so a distributed wrapper syncs the gradients
        if first > 0:
            return model(hidden=batch["hidden"], attention_mask=batch["attention_mask"], from_layer=first)
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])

    def trainable_state():
        return {n: p.detach().clone() for n, p in accelerator.unwrap_model(model).named_parameters() if p.requires_grad}

    history, best, best_epoch, best_loss, bad_epochs = [], trainable_state(), 0, float("inf"), 0
    if settings.head_init == "probe" and not fixed:  # the probe itself is a candidate: fine-tuning must beat it
        best_loss, val_score = _validate(model, scorer, val_loader, logits_of, accelerator, task.kind)
        history.append({"epoch": 0, "train_loss": np.nan, "val_loss": best_loss, "val_score": val_score,
                        "seconds": 0.0})
    bar = tqdm(range(1, n_epochs + 1), desc=f"{task.name}" + (" (refit)" if fixed else ""), unit="epoch",
               disable=not progress)
    for epoch in bar:
        e0 = time.perf_counter()
        model.train()
        losses = []
        for batch in train_loader:
            loss = scorer.loss(logits_of(batch), batch["targets"])
            accelerator.backward(loss)
            if settings.grad_clip:
                accelerator.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            losses.append(loss.item())
        if fixed:
            history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_loss": np.nan,
                            "val_score": np.nan, "seconds": time.perf_counter() - e0})
            best, best_epoch = None, epoch
            continue
        val_loss, val_score = _validate(model, scorer, val_loader, logits_of, accelerator, task.kind)
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_loss": val_loss,
                        "val_score": val_score, "seconds": time.perf_counter() - e0})
        bar.set_postfix(val_loss=f"{val_loss:.4f}", val=f"{val_score:.3f}")
        if val_loss < best_loss - 1e-6:
            best_loss, bad_epochs, best, best_epoch = val_loss, 0, trainable_state(), epoch
        else:
            bad_epochs += 1
            if bad_epochs >= settings.patience:
                break

    final = accelerator.unwrap_model(model, keep_fp32_wrapper=False)  # no autocast left: as Scorer.load gives it
    n_changed = int(sum(p.numel() for n, p in final.named_parameters() if n in set(trainable)))
    if best is not None:  # early stopping: back to the best epoch's weights
        with torch.no_grad():
            params = dict(final.named_parameters())
            for n, v in best.items():
                params[n].copy_(v)
    if settings.lora is not None:
        final.encoder = final.encoder.merge_and_unload()  # a plain encoder again: saves and loads like any other
        trainable = [n for n, _ in final.named_parameters()]  # merged weights changed: keep them all
    final.eval()
    n_total = sum(p.numel() for p in final.parameters())
    epochs_run = sum(1 for h in history if h["epoch"] > 0)
    info = {"best_epoch": best_epoch, "epochs_run": epochs_run,
            "stopped_early": (not fixed) and epochs_run < settings.max_epochs,
            "seconds": time.perf_counter() - t0, "n_trainable": n_changed,
            "n_total": int(n_total), "first_trainable_layer": first, "device": str(accelerator.device),
            "dtype": settings.dtype, "mixed_precision": accelerator.mixed_precision, **probe_info}
    return TrainResult(scorer=final, history=pd.DataFrame(history), trained_parameters=trainable, info=info)


@torch.no_grad()
def _validate(model, scorer: Scorer, loader, logits_of, accelerator, kind: str) -> tuple[float, float]:
    """Validation loss (mean over responses) and micro-F1 (multi-label) or accuracy (multi-class)."""
    model.eval()
    all_logits, all_targets = [], []
    for batch in loader:
        logits = logits_of(batch)
        logits, targets = accelerator.gather_for_metrics((logits, batch["targets"]))
        all_logits.append(logits.float().cpu())
        all_targets.append(targets.cpu())
    logits, targets = torch.cat(all_logits), torch.cat(all_targets)
    loss = float(scorer.loss(logits, targets))
    pred = scorer.decide(scorer.probabilities(logits).numpy())
    score = micro_f1(targets.numpy().astype(int), pred) if kind == "multilabel" else accuracy(targets.numpy(), pred)
    return loss, float(score)
