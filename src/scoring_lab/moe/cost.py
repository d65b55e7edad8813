"""What a profile's MoE study costs to train: every model it trains, grouped by what one training step
runs (the ledger), and the seconds that come to from per-step times measured on a device.

:func:`ledger` counts, from a profile and a run's tasks, the models each step of :class:`~.study.MoEStudy`
trains (the search, the controls, the seeds, the variants, the trained-encoder column with its controls,
the adaptation, the teachers) and the most optimiser steps each can take (its epoch cap times the batches of
an epoch; early stopping takes fewer). A model's *stage* says what a step runs, and so what it costs:

* ``pooled``: the MoE block (or none, MTL) and heads over each response's cached mean final state;
* ``tokens``: the token-wise MoE and heads over every token's cached final state;
* ``top k layers``: the encoder's top k layers trained with the MoE block and heads (the rest cached);
* ``whole encoder``: every encoder layer trained;
* ``encoder fixed, run``: adaptation after a whole-encoder fine-tune: the encoder runs, only the MoE block
  and new heads train;
* ``teacher``: a teacher fine-tuned on one task (``moe.teacher``; LoRA through peft where it says so).

:func:`measure_step` times (and counts the operations of) one stage's training steps on a device for an encoder of a given shape (random
weights: a step's cost does not depend on them), over batches of the run's own token lengths;
:func:`costed` multiplies. ``benchmarks/bench_moe_cost.py`` runs both for a profile on the machine at hand.
"""
from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..data.task import Task
from ..profiles import MultiTaskSettings, Profile
from . import layers as moe, multitask
from .protocol import GUIDED, MTL, MTL_KD, UNIMOE, held_out_tasks
from .search import SEEDED

TRAINED_METHODS = (MTL, UNIMOE, GUIDED)   # the trained column's models, and the freezing control's

POOLED_STAGE, TOKENS_STAGE, WHOLE, FIXED, TEACHER = "pooled", "tokens", "whole encoder", "encoder fixed, run", "teacher"
LEDGER_COLUMNS = ["step", "stage", "models", "max_epochs", "steps_per_epoch", "max_steps"]
# the ledger's groups whose models train on different responses (one task, or one fold, each): their rows
# give the epoch of every model together; every other group's models each train on the same responses
SUMMED = ("trained column: MTL one task at a time", "teachers (one per task)",
          "teachers without each fold (out-of-fold logits)")


def layers_stage(k: int) -> str:
    return "top layer" if k == 1 else f"top {k} layers"


def ledger(profile: Profile, tasks: dict[str, Task]) -> pd.DataFrame:
    """The models ``profile``'s MoE study trains on ``tasks``, one row per group: step, stage (what a training
    step runs), models, max_epochs, steps_per_epoch (one epoch of every model of the group, together) and
    max_steps (their product: the most the group can take). Counts are the study's; where a model may
    coincide with one trained before (the probe's or a variant's setting equal to the chosen one) it is
    counted, so each row is an upper bound."""
    s = profile.moe
    m = s.model
    new = held_out_tasks(tasks, s.held_out)
    old = [t for t in tasks if t not in new]
    batch = m.batch_size

    def steps(names, share: float = 1.0) -> int:
        return sum(math.ceil(max(1, math.ceil(share * len(tasks[t].train))) / batch) for t in names)

    placement = TOKENS_STAGE if m.moe_on == moe.TOKENS else POOLED_STAGE
    grid = len(s.n_experts) * len(s.lambda_lb)
    guided = (grid if s.search == "joint" else 1) * len(s.lambda_kd) * len(s.tau)
    extra_seeds = s.seeds - 1
    moe_seeded = sum(1 for x in SEEDED if x not in (MTL, MTL_KD))
    rows = [("search: UniMoE", placement, grid, m.max_epochs, steps(old)),
            ("search: UniMoE-Guided", placement, guided, m.max_epochs, steps(old)),
            ("MTL", POOLED_STAGE, 1, m.max_epochs, steps(old)),
            ("load-balancing probe", placement, len(s.lb_probe), m.max_epochs, steps(old)),
            ("controls: dense block", placement, 1, m.max_epochs, steps(old)),
            ("controls: MTL + KD", POOLED_STAGE, 1, m.max_epochs, steps(old)),
            ("seeds: MoE models", placement, extra_seeds * moe_seeded, m.max_epochs, steps(old)),
            ("seeds: MTL models", POOLED_STAGE, extra_seeds * (len(SEEDED) - moe_seeded), m.max_epochs, steps(old))]
    cap = s.variant_epochs or m.max_epochs
    rows += [(f"variants: experts on {'every token' if on == moe.TOKENS else 'the pooled vector'}",
              TOKENS_STAGE if on == moe.TOKENS else POOLED_STAGE, 1, cap, steps(old)) for on in (moe.TOKENS, moe.POOLED)]
    if s.teacher_folds:
        rows.append(("variants: out-of-fold teachers", placement, 1, m.max_epochs, steps(old)))
    k = s.trainable_layers
    trains = k != 0
    if trains:
        stage = WHOLE if k is None else layers_stage(k)
        methods = len(TRAINED_METHODS)
        rows += [("trained column: MTL, UniMoE, UniMoE-Guided", stage, methods, s.encoder_epochs, steps(old)),
                 ("trained column: MTL one task at a time", stage, len(old), s.encoder_epochs, steps(old)),
                 ("trained column: frozen models trained on as long", placement, methods, s.encoder_epochs,
                  steps(old))]
    adapt = FIXED if k is None else placement
    rows += [("adaptation: MTL (new heads)", adapt, 1, m.max_epochs, steps(new)),
             ("adaptation: UniMoE-Guided, with rehearsal", adapt, 1, m.max_epochs,
              steps(new) + steps(old, s.rehearsal)),
             ("adaptation: UniMoE-Guided, no rehearsal", adapt, 1, m.max_epochs, steps(new))]
    t = replace(profile.train, **s.teacher) if s.teacher else profile.train   # the per-task scorers otherwise
    if s.teacher:
        every = old + new
        rows.append(("teachers (one per task)", TEACHER, len(every), t.max_epochs,
                     sum(math.ceil(len(tasks[x].train) / t.batch_size) for x in every)))
    if s.teacher_folds:   # each training task's teacher retrained without each fold of its responses
        rows.append(("teachers without each fold (out-of-fold logits)", TEACHER, s.teacher_folds * len(old),
                     t.max_epochs, s.teacher_folds * sum(
                         math.ceil(math.ceil(len(tasks[x].train) * (1 - 1 / s.teacher_folds)) / t.batch_size)
                         for x in old)))
    out = pd.DataFrame(rows, columns=LEDGER_COLUMNS[:-1])
    out = out[out["models"] > 0].reset_index(drop=True)
    alike = ~out["step"].isin(SUMMED)          # models that each train on the same responses: one epoch each
    out.loc[alike, "steps_per_epoch"] *= out.loc[alike, "models"]
    out["max_steps"] = out["max_epochs"] * out["steps_per_epoch"]
    return out


def costed(table: pd.DataFrame, seconds_per_step: dict[str, float]) -> pd.DataFrame:
    """``table`` (:func:`ledger`) with each group's measured seconds per step (``seconds_per_step`` {stage:
    seconds}; a stage not measured stays NaN) and the hours its ``max_steps`` come to, and a last row
    ``all`` with the sums."""
    out = table.copy()
    out["seconds_per_step"] = out["stage"].map(seconds_per_step).astype(float)
    out["max_hours"] = out["max_steps"] * out["seconds_per_step"] / 3600
    total = {"step": "all", "stage": "", "models": int(out["models"].sum()), "max_steps": int(out["max_steps"].sum()),
             "max_hours": float(out["max_hours"].sum(min_count=1))}
    return pd.concat([out, pd.DataFrame([total])], ignore_index=True)


def batch_lengths(lengths: np.ndarray, batch_size: int, max_length: int, seed: int = 0) -> np.ndarray:
    """(batch_size,) token lengths drawn (seeded) from the run's responses' ``lengths``, cut at ``max_length``."""
    rng = np.random.default_rng(seed)
    return np.minimum(rng.choice(np.asarray(lengths), size=batch_size, replace=True), max_length)


def measure_step(encoder: nn.Module, stage: str, settings: MultiTaskSettings, lengths: np.ndarray, n_labels: int = 4,
                 steps: int = 3, warmup: int = 1, device: str | torch.device = "cpu", lora=None) -> dict[str, float]:
    """{seconds: the median seconds, flops: the floating-point operations (torch's FlopCounterMode, matrix
    products and attention, forward and backward) of one training step of ``stage`` (:func:`ledger`'s names; a teacher's is the whole
    encoder's under a small head, with LoRA adapters when ``lora`` gives their settings: r, alpha, dropout,
    target_modules) for a model over ``encoder`` (a BERT-style model, changed in place; its weights as they
    are: a step's cost does not depend on them) on ``device``: forward, loss, backward and an AdamW update of
    what the stage trains, one batch of ``lengths`` (B,) tokens, after ``warmup`` untimed steps."""
    device = torch.device(device)
    n = len(encoder.encoder.layer)
    if stage == TEACHER and lora is not None:
        from peft import LoraConfig, get_peft_model

        encoder = get_peft_model(encoder, LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                                     target_modules=list(lora.target_modules), bias="none"))
    encoder = encoder.to(device)
    d = int(encoder.config.hidden_size)
    if stage == POOLED_STAGE:
        layer, kind, shape = n, "hidden", (len(lengths), 1)
    elif stage == TOKENS_STAGE:
        layer, kind, shape = n, "hidden", (len(lengths), int(max(lengths)))
    elif stage in (WHOLE, FIXED, TEACHER):
        layer, kind, shape = 0, "ids", (len(lengths), int(max(lengths)))
    else:
        k = 1 if stage == "top layer" else int(stage.split()[1])
        layer, kind, shape = n - k, "hidden", (len(lengths), int(max(lengths)))
    if stage == TEACHER:
        settings = replace(settings, use_moe=False)
    model = multitask.MultiTaskModel(encoder, layer, {"task": n_labels}, settings).to(device)
    for name, p in model.named_parameters():
        if not name.startswith("encoder."):
            p.requires_grad_(True)
        elif stage == TEACHER and lora is not None:
            p.requires_grad_("lora_" in name)
        else:
            p.requires_grad_(stage != FIXED and (layer == 0 or _layer_of(name) >= layer))
    mask = (torch.arange(shape[1])[None] < torch.as_tensor(lengths)[:, None]).long() if shape[1] > 1 else \
        torch.ones(shape, dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    batch = ({"input_ids": torch.randint(1000, 2000, shape, generator=g)} if kind == "ids" else
             {"hidden": torch.randn(*shape, d, generator=g)})
    batch = {**batch, "attention_mask": mask}
    batch = {key: v.to(device) for key, v in batch.items()}
    y = torch.randint(0, 2, (shape[0], n_labels), generator=g).float().to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=1e-5)
    model.train()
    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=settings.autocast == "bf16"):
            logits, _ = model(batch, "task")
        loss = multitask.task_loss(logits, y, "multilabel")
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:                        # the first step, counted (and untimed, as a warm-up)
        step()
    times = []
    for i in range(max(warmup - 1, 0) + steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup - 1:
            times.append(time.perf_counter() - t0)
    return {"seconds": float(np.median(times)), "flops": float(counter.get_total_flops())}


def _layer_of(name: str) -> int:
    """The encoder layer a parameter name belongs to (-1: the embeddings or the pooler)."""
    parts = name.split(".")
    return int(parts[3]) if parts[1:3] == ["encoder", "layer"] else -1
