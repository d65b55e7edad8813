"""The multi-task scorer (MTL and UniMoE) over frozen states: training, adaptation, freezing, usage."""
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from scoring_lab.moe import multitask
from scoring_lab.models.backbone import TINY_RANDOM, load_backbone
from scoring_lab.models.cache import ArtifactCache
from scoring_lab.data.synthetic import generate_benchmark
from scoring_lab.models.frozen_states import FrozenStates, StateMaker
from scoring_lab.models.per_task import split_fingerprint
from scoring_lab.profiles import TrainSettings

PARTIAL = TrainSettings(backbone=TINY_RANDOM, max_length=48, trainable_layers=1)
NAMES = ["gas_filled_balloons", "natural_sugar"]
FAST = multitask.MultiTaskSettings(n_experts=3, head_hidden=16, task_dim=4, lr=3e-3, max_epochs=3, patience=3,
                                   batch_size=16)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tasks = generate_benchmark(seed=0, scale=0.06, tasks=NAMES + ["dry_ice_model"])
    maker = StateMaker(PARTIAL, 0, ArtifactCache(tmp_path_factory.mktemp("c")), progress=False)

    def of(name, split):
        s = tasks[name].splits()[split]
        return multitask.TaskData(maker.states(s, split_fingerprint(s)), s.labels, s.ids)
    return tasks, of


def _model(tasks, settings=FAST, names=NAMES):
    torch.manual_seed(0)
    b = load_backbone(TINY_RANDOM)
    return multitask.MultiTaskModel(b.model, 1, {n: tasks[n].n_labels for n in names}, settings)


@pytest.mark.parametrize("use_moe", [True, False])
def test_training_lowers_the_validation_loss_and_gives_probabilities(data, use_moe):
    tasks, of = data
    model = _model(tasks, replace(FAST, use_moe=use_moe))
    train, val = {n: of(n, "train") for n in NAMES}, {n: of(n, "val") for n in NAMES}
    before = multitask.validation_loss(model, val)
    model, history = multitask.train_multitask(model, train, val, replace(FAST, use_moe=use_moe), progress=False)
    # a tiny random backbone learns little: what must hold is that the best epoch's weights come back
    assert len(history) >= 1
    assert multitask.validation_loss(model, val) == pytest.approx(min(before, history["val_loss"].min()), abs=1e-6)
    p = multitask.predict_proba(model, of(NAMES[0], "test").states, NAMES[0])
    assert p.shape == (len(tasks[NAMES[0]].test), tasks[NAMES[0]].n_labels) and ((p >= 0) & (p <= 1)).all()
    if use_moe:
        usage = multitask.expert_usage(model, of(NAMES[0], "test").states, NAMES[0])
        assert usage.shape == (3,) and usage.sum() == pytest.approx(1.0, abs=1e-5)


def test_adaptation_trains_only_the_moe_and_the_new_head_the_rest_stays_bit_identical(data):
    tasks, of = data
    model = _model(tasks)
    model.add_task("dry_ice_model", tasks["dry_ice_model"].n_labels)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters()
              if not (n.startswith("moe.") or n.startswith(f"heads.heads.{len(NAMES)}."))}
    trainable = [p for n, p in model.named_parameters() if n not in frozen]
    for n, p in model.named_parameters():
        p.requires_grad = n not in frozen
    train = {"dry_ice_model": of("dry_ice_model", "train"), NAMES[0]: of(NAMES[0], "train")}
    val = {"dry_ice_model": of("dry_ice_model", "val")}
    moe_before = model.moe.gate.weight.detach().clone()
    model, _ = multitask.train_multitask(model, train, val, FAST, trainable=trainable, progress=False)
    for n, p in model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n
    assert not torch.equal(model.moe.gate.weight, moe_before)


def test_distillation_without_teacher_logits_fails_loudly(data):
    tasks, of = data
    model = _model(tasks)
    with pytest.raises(KeyError, match="no teacher logits"):
        multitask.train_multitask(model, {NAMES[0]: of(NAMES[0], "train")}, {NAMES[0]: of(NAMES[0], "val")},
                                  replace(FAST, lambda_kd=0.5, max_epochs=1), progress=False)
    d = of(NAMES[0], "train")
    d.teacher = np.zeros_like(d.labels, dtype=np.float32)
    model, history = multitask.train_multitask(model, {NAMES[0]: d}, {NAMES[0]: of(NAMES[0], "val")},
                                               replace(FAST, lambda_kd=0.5, max_epochs=1), progress=False)
    assert len(history) == 1


def _separable(n, d=8, seed=0):
    """Pooled states whose two labels are the signs of the first two coordinates."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = np.stack([x[:, 0] > 0, x[:, 1] > 0], axis=1).astype(int)
    states = FrozenStates(2, np.arange(n + 1), values=x)
    return multitask.TaskData(states, y, np.array([f"r{seed}-{i}" for i in range(n)]))


@pytest.mark.parametrize("use_moe", [True, False])
def test_a_model_over_precomputed_states_learns_a_separable_rule_in_a_worker_job(use_moe):
    config = SimpleNamespace(hidden_size=8, num_hidden_layers=2)
    settings = replace(FAST, use_moe=use_moe, lr=1e-2, max_epochs=15, patience=15, batch_size=32)
    train, val = {"a": _separable(400, seed=1)}, {"a": _separable(200, seed=2)}
    state, history, seconds = multitask.train_job(settings, config, {"a": 2}, train, val, seed=0, threads=1)
    assert history["val_loss"].min() < 0.35 < history["val_loss"].iloc[0] + 0.3 and seconds > 0
    assert not any(k.startswith("encoder.") for k in state) and any(k.startswith("heads.") for k in state)
    model = multitask.MultiTaskModel(multitask.StatesInput(config), 2, {"a": 2}, settings)
    model.load_state_dict(state)
    p = multitask.predict_proba(model, val["a"].states, "a")
    assert ((p >= 0.5).astype(int) == val["a"].labels).mean() > 0.85


def _scored(n, k=3, d=8, seed=0):
    """Pooled states whose score (0..k-1) is the bin of the first coordinate."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = np.digitize(x[:, 0], np.quantile(x[:, 0], np.linspace(0, 1, k + 1)[1:-1]))
    return multitask.TaskData(FrozenStates(2, np.arange(n + 1), values=x), y, np.array([f"s{seed}-{i}" for i in range(n)]))


@pytest.mark.parametrize("use_moe", [True, False])
def test_a_scored_task_gets_a_softmax_head_beside_a_rubric_task_and_both_learn(use_moe):
    """A score's head trains with cross-entropy and predicts class probabilities that sum to 1, beside a
    rubric task's sigmoids; distillation from the teacher's log-probabilities takes the softmax form."""
    config = SimpleNamespace(hidden_size=8, num_hidden_layers=2)
    settings = replace(FAST, use_moe=use_moe, lr=1e-2, max_epochs=15, patience=15, batch_size=32)
    kinds = {"rubric": "multilabel", "score": "multiclass"}
    train = {"rubric": _separable(400, seed=1), "score": _scored(400, seed=3)}
    val = {"rubric": _separable(200, seed=2), "score": _scored(200, seed=4)}
    state, history, _ = multitask.train_job(settings, config, {"rubric": 2, "score": 3}, train, val, seed=0,
                                            threads=1, kinds=kinds)
    model = multitask.MultiTaskModel(multitask.StatesInput(config), 2, {"rubric": 2, "score": 3}, settings, kinds)
    model.load_state_dict(state)
    p = multitask.predict_proba(model, val["score"].states, "score")
    assert p.shape == (200, 3) and np.allclose(p.sum(1), 1, atol=1e-5)
    assert (p.argmax(1) == val["score"].labels).mean() > 0.8
    r = multitask.predict_proba(model, val["rubric"].states, "rubric")
    assert ((r >= 0.5).astype(int) == val["rubric"].labels).mean() > 0.85 and not np.allclose(r.sum(1), 1)
    # the validation loss is the score's cross-entropy per response beside the rubric's BCE per label
    with torch.no_grad():
        logits = model({"hidden": torch.from_numpy(val["score"].states.values[:, None, :]),
                        "attention_mask": torch.ones(200, 1)}, "score")[0]
    ce = float(torch.nn.functional.cross_entropy(logits, torch.as_tensor(val["score"].labels), reduction="sum"))
    only = multitask.validation_loss(model, {"score": val["score"]})
    assert only == pytest.approx(ce / 200, rel=1e-5)
    # distillation from teacher logits: a score's teacher gives log-probabilities (inputs.logits_of)
    from scoring_lab.moe.inputs import logits_of
    teacher = logits_of(np.full((400, 3), 1 / 3), "multiclass")
    assert np.allclose(teacher, np.log(1 / 3))
    kd = {**train, "score": multitask.TaskData(train["score"].states, train["score"].labels, train["score"].ids,
                                              teacher),
          "rubric": multitask.TaskData(train["rubric"].states, train["rubric"].labels, train["rubric"].ids,
                                       logits_of(np.full((400, 2), 0.5)))}
    _, h = multitask.train_job(replace(settings, lambda_kd=1.0, max_epochs=1), config, {"rubric": 2, "score": 3}, kd,
                               val, seed=0, threads=1, kinds=kinds)[:2]
    assert len(h) == 1 and np.isfinite(h["train_loss"]).all()
    model.add_task("score2", 4, "multiclass")
    assert model.kinds["score2"] == "multiclass" and model.labels_per_task()["score2"] == 4


def test_pooled_states_give_the_same_outputs_as_the_full_states_for_a_frozen_encoder(data, tmp_path):
    tasks, of = data
    b = load_backbone(TINY_RANDOM)
    full = StateMaker(PARTIAL, 0, ArtifactCache(tmp_path), progress=False, layer=b.n_layers)
    s = tasks[NAMES[0]].test
    states = full.states(s, split_fingerprint(s))
    pooled = multitask.pooled_states(states)
    assert len(pooled) == len(states) and (pooled.lengths == 1).all()
    np.testing.assert_allclose(pooled.values[1], states.values[states.offsets[1]:states.offsets[2]].mean(axis=0),
                               rtol=1e-6)
    for settings in (replace(FAST, moe_on="pooled"), replace(FAST, use_moe=False)):
        torch.manual_seed(0)
        model = multitask.MultiTaskModel(multitask.StatesInput(b.model.config), b.n_layers,
                                         {NAMES[0]: tasks[NAMES[0]].n_labels}, settings)
        np.testing.assert_allclose(multitask.predict_proba(model, pooled, NAMES[0]),
                                   multitask.predict_proba(model, states, NAMES[0]), atol=1e-6)
        deployed = multitask.deployable(model, b.model)
        np.testing.assert_allclose(multitask.predict_texts(deployed, b.tokenizer, s.texts, NAMES[0], 48),
                                   multitask.predict_proba(model, states, NAMES[0]), atol=1e-5)


def test_states_advanced_from_the_shared_lower_layers_equal_those_computed_from_the_token_ids(data, tmp_path):
    tasks, of = data
    b = load_backbone(TINY_RANDOM)
    s = tasks[NAMES[0]].test
    lower = of(NAMES[0], "test").states                                   # entering layer 1
    direct = StateMaker(PARTIAL, 0, ArtifactCache(tmp_path), progress=False, layer=b.n_layers).states(
        s, split_fingerprint(s))
    advanced = multitask.advance_states(lower, b.model, b.n_layers)   # in train mode: it must not drop out
    assert advanced.layer == b.n_layers and (advanced.offsets == direct.offsets).all() and b.model.training
    np.testing.assert_allclose(advanced.values, direct.values, atol=1e-5)
    with pytest.raises(ValueError, match="cannot be advanced"):
        multitask.advance_states(direct, b.model, 1)


def _token_states(lengths) -> FrozenStates:
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return FrozenStates(1, offsets, values=np.zeros((int(offsets[-1]), 4), np.float32))


def test_batches_over_token_states_group_lengths_and_pooled_ones_are_only_shuffled():
    rng = np.random.default_rng(5)
    d = {n: multitask.TaskData(_token_states(rng.integers(5, 120, size=m)), np.zeros((m, 2), np.int8),
                               np.arange(m)) for n, m in zip(NAMES, (90, 70))}
    batches = multitask._batches(d, 8, np.random.default_rng(0))
    for n in NAMES:        # every row once, in batches of one task
        rows = np.concatenate([r for t, r in batches if t == n])
        assert sorted(rows.tolist()) == list(range(len(d[n].labels)))
    padded = sum(len(r) * d[t].states.lengths[r].max() for t, r in batches)
    rng = np.random.default_rng(0)
    shuffled = 0
    for n in NAMES:
        order = rng.permutation(len(d[n].labels))
        shuffled += sum(len(order[i:i + 8]) * d[n].states.lengths[order[i:i + 8]].max()
                        for i in range(0, len(order), 8))
    assert padded < 0.9 * shuffled
    assert [r.tolist() for _, r in batches] == [r.tolist() for _, r in multitask._batches(
        d, 8, np.random.default_rng(0))]                                           # seeded
    pooled = {n: multitask.TaskData(multitask.pooled_states(x.states), x.labels, x.ids) for n, x in d.items()}
    rng, expected = np.random.default_rng(3), []
    for n, x in pooled.items():    # the order before length grouping: each task's rows permuted, batches shuffled
        order = rng.permutation(len(x.labels))
        expected += [(n, order[i:i + 8]) for i in range(0, len(order), 8)]
    expected = [expected[i] for i in rng.permutation(len(expected))]
    got = multitask._batches(pooled, 8, np.random.default_rng(3))
    assert [(t, r.tolist()) for t, r in got] == [(t, r.tolist()) for t, r in expected]


@pytest.mark.parametrize("moe_on", ["tokens", "pooled"])
def test_a_view_over_final_states_scores_as_the_model_and_shares_its_moe_and_heads(data, moe_on):
    tasks, of = data
    settings = replace(FAST, moe_on=moe_on)
    model = _model(tasks, settings).eval()          # trains layer 1 of the tiny backbone's 2
    assert multitask.trains_encoder_layers(model)
    val = {n: of(n, "val") for n in NAMES}
    view, final = multitask.over_final_states(model, moe_on == "pooled", val)
    assert view.moe is model.moe and view.heads is model.heads and view.tasks is model.tasks
    for n in NAMES:
        assert final[n].states.layer == 2 and (final[n].states.lengths == 1).all() == (moe_on == "pooled")
        np.testing.assert_allclose(multitask.predict_proba(view, final[n].states, n),
                                   multitask.predict_proba(model, val[n].states, n), atol=1e-5)
        np.testing.assert_array_equal(final[n].labels, val[n].labels)
    encoder = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    multitask.train_multitask(view, final, final, replace(settings, max_epochs=1), progress=False)
    assert all(torch.equal(v, model.encoder.state_dict()[k]) for k, v in encoder.items())
    with pytest.raises(ValueError, match="above frozen ones"):
        multitask.over_final_states(multitask.MultiTaskModel(load_backbone(TINY_RANDOM).model, 0, {"a": 2}, FAST),
                                    False, val)


def test_bf16_autocast_trains_in_half_precision_and_keeps_float32_weights(data):
    tasks, of = data
    settings = replace(FAST, autocast="bf16", max_epochs=1)
    model = _model(tasks, settings)
    train, val = {n: of(n, "train") for n in NAMES}, {n: of(n, "val") for n in NAMES}
    model, history = multitask.train_multitask(model, train, val, settings, progress=False)
    assert len(history) == 1 and np.isfinite(history["train_loss"]).all()
    assert all(p.dtype == torch.float32 for p in model.parameters())
    p = multitask.predict_proba(model, of(NAMES[0], "test").states, NAMES[0])
    assert p.dtype == np.float32 and np.isfinite(p).all()
