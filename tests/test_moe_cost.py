"""The MoE chapter's cost ledger: every model the study trains counted by stage with its most steps, and a
stage's step measured (seconds, and FLOPs that grow with what the stage trains)."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from scoring_lab.data.synthetic import generate_benchmark
from scoring_lab.models.backbone import TINY_RANDOM, load_backbone
from scoring_lab.moe import cost
from scoring_lab.moe.protocol import held_out_tasks
from scoring_lab.profiles import load_profile
from scoring_lab.profiles.settings import LoraSettings


@pytest.fixture(scope="module")
def tasks():
    return generate_benchmark(seed=0, scale=0.05)


def _epoch(tasks, names, batch, share=1.0):
    return sum(math.ceil(math.ceil(share * len(tasks[t].train)) / batch) for t in names)


@pytest.mark.parametrize("name", ["smoke", "default", "paper"])
def test_the_ledger_counts_the_studys_models_and_their_most_steps(tasks, name):
    profile = load_profile(name)
    s, m = profile.moe, profile.moe.model
    table = cost.ledger(profile, tasks).set_index("step")
    new = held_out_tasks(tasks, s.held_out)
    old = [t for t in tasks if t not in new]
    grid = len(s.n_experts) * len(s.lambda_lb)
    assert table.loc["search: UniMoE", "models"] == grid
    assert table.loc["search: UniMoE-Guided", "models"] == \
        (grid if s.search == "joint" else 1) * len(s.lambda_kd) * len(s.tau)
    assert table.loc["seeds: MoE models", "models"] + table.loc["seeds: MTL models", "models"] == 5 * (s.seeds - 1)
    assert table.loc["MTL", "steps_per_epoch"] == _epoch(tasks, old, m.batch_size)
    assert table.loc["MTL", "max_steps"] == m.max_epochs * _epoch(tasks, old, m.batch_size)
    # a group of models on the same responses: an epoch each; one model per task: each on its own task
    assert table.loc["search: UniMoE", "steps_per_epoch"] == grid * _epoch(tasks, old, m.batch_size)
    assert table.loc["trained column: MTL, UniMoE, UniMoE-Guided", "steps_per_epoch"] == \
        3 * _epoch(tasks, old, m.batch_size)
    assert table.loc["trained column: MTL one task at a time", "steps_per_epoch"] == _epoch(tasks, old, m.batch_size)
    assert table.loc["adaptation: UniMoE-Guided, with rehearsal", "steps_per_epoch"] == \
        _epoch(tasks, new, m.batch_size) + _epoch(tasks, old, m.batch_size, s.rehearsal)
    placement = cost.TOKENS_STAGE if m.moe_on == "tokens" else cost.POOLED_STAGE
    assert table.loc["search: UniMoE", "stage"] == placement and table.loc["MTL", "stage"] == cost.POOLED_STAGE
    trained = table.loc["trained column: MTL, UniMoE, UniMoE-Guided"]
    assert trained["max_epochs"] == s.encoder_epochs
    assert table.loc["trained column: MTL one task at a time", "models"] == len(old)
    if s.trainable_layers is None:     # paper: the whole encoder, and adaptation runs it (fixed) every step
        assert trained["stage"] == cost.WHOLE
        assert table.loc["adaptation: MTL (new heads)", "stage"] == cost.FIXED
        teachers = table.loc["teachers (one per task)"]
        assert teachers["models"] == len(tasks) and teachers["stage"] == cost.TEACHER
    else:
        assert trained["stage"] == cost.layers_stage(s.trainable_layers)
    assert ("teachers without each fold (out-of-fold logits)" in table.index) == bool(s.teacher_folds)
    assert (table["max_steps"] == table["max_epochs"] * table["steps_per_epoch"]).all()


def test_a_profile_without_a_trained_column_has_no_trained_rows(tasks):
    profile = load_profile("default")
    frozen = replace(profile, moe=replace(profile.moe, trainable_layers=0, lb_probe=()))
    table = cost.ledger(frozen, tasks)
    assert not table["step"].str.startswith("trained column").any()
    assert "load-balancing probe" not in set(table["step"])      # no probe, no models


def test_costing_multiplies_and_leaves_unmeasured_stages_open(tasks):
    table = cost.ledger(load_profile("default"), tasks)
    priced = cost.costed(table, {cost.POOLED_STAGE: 0.01, "top layer": 2.0})
    body, total = priced.iloc[:-1], priced.iloc[-1]
    pooled = body[body["stage"] == cost.POOLED_STAGE]
    assert pooled["max_hours"].to_numpy() == pytest.approx(pooled["max_steps"].to_numpy() * 0.01 / 3600)
    assert body[body["stage"] == cost.TOKENS_STAGE]["max_hours"].isna().all()
    assert total["step"] == "all" and total["models"] == body["models"].sum()
    assert total["max_hours"] == pytest.approx(body["max_hours"].sum())


def test_a_steps_operations_grow_with_what_it_trains():
    """FLOPs are exact for a shape: the pooled head < the token-wise MoE < the top layer < the whole encoder;
    adaptation's fixed encoder runs forward only, and LoRA adds the backward pass through the activations."""
    settings = replace(load_profile("smoke").moe.model, moe_on="tokens")
    lengths = cost.batch_lengths(np.arange(5, 40), 8, 32, seed=1)
    assert lengths.shape == (8,) and lengths.max() <= 32

    def step(stage, lora=None):
        out = cost.measure_step(load_backbone(TINY_RANDOM).model, stage, settings, lengths, steps=1, lora=lora)
        assert out["seconds"] > 0
        return out["flops"]

    pooled, tokens, top, whole = (step(s) for s in (cost.POOLED_STAGE, cost.TOKENS_STAGE, "top layer", cost.WHOLE))
    fixed, lora = step(cost.FIXED), step(cost.TEACHER, LoraSettings(r=4, alpha=8))
    assert 0 < pooled < tokens < top < whole
    assert fixed < lora < whole
