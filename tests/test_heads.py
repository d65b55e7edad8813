"""Scorer heads: the ordinal cumulative head, and the linear-probe initialisation (LP-FT)."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from scoring_lab.models.backbone import TINY_RANDOM, load_backbone
from scoring_lab.models.baseline import fit_logistic
from scoring_lab.data.synthetic import generate_benchmark
from scoring_lab.models.probe import CONSTANT_LOGIT, head_weights
from scoring_lab.profiles import ProfileError, TrainSettings
from scoring_lab.models.scorer import Scorer, ScorerSpec, cumulative_targets, cumulative_to_class_proba
from scoring_lab.models.training import train_scorer

TINY = TrainSettings(backbone=TINY_RANDOM, max_epochs=2, patience=4, lr=1e-3, batch_size=16, max_length=48,
                     warmup_ratio=0.0)


@pytest.fixture(scope="module")
def holistic():
    return generate_benchmark(seed=0, scale=0.1, tasks=["dry_ice_model"], view="holistic")["dry_ice_model"]


@pytest.fixture(scope="module")
def multilabel():
    return generate_benchmark(seed=0, scale=0.1, tasks=["gas_filled_balloons"])["gas_filled_balloons"]


def test_cumulative_targets_and_class_probabilities():
    assert cumulative_targets(torch.tensor([0, 1, 3]), 4).tolist() == [[0, 0, 0], [1, 0, 0], [1, 1, 1]]
    p = cumulative_to_class_proba(torch.tensor([[0.9, 0.6, 0.2], [0.3, 0.5, 0.1]]))
    # row 1 is already decreasing; row 2 is not: P(>1) is capped at P(>0) = 0.3
    assert torch.allclose(p, torch.tensor([[0.1, 0.3, 0.4, 0.2], [0.7, 0.0, 0.2, 0.1]]))
    assert torch.allclose(p.sum(dim=1), torch.ones(2)) and (p >= 0).all()


def test_cumulative_head_gives_class_probabilities(holistic):
    k = holistic.n_classes
    scorer = Scorer(load_backbone(TINY_RANDOM), ScorerSpec(TINY_RANDOM, "multiclass", k, head="cumulative"))
    assert scorer.head.out_features == k - 1
    proba = scorer.predict_proba(holistic.test.texts[:10])
    assert proba.shape == (10, k) and np.allclose(proba.sum(axis=1), 1) and (proba >= 0).all()
    logits = torch.randn(4, k - 1)
    y = torch.tensor([0, 1, 2, 3])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, cumulative_targets(y, k))
    assert torch.allclose(scorer.loss(logits, y), expected)
    with pytest.raises(ValueError, match="multi-class only"):
        Scorer(load_backbone(TINY_RANDOM), ScorerSpec(TINY_RANDOM, "multilabel", 3, head="cumulative"))


@pytest.mark.slow
def test_cumulative_head_trains_from_the_profile(holistic):
    r = train_scorer(holistic, replace(TINY, multiclass_head="cumulative"), progress=False)
    assert r.scorer.spec.head == "cumulative" and r.scorer.head.out_features == holistic.n_classes - 1
    assert r.history["train_loss"].iloc[-1] < r.history["train_loss"].iloc[0]
    with pytest.raises(ProfileError, match="multiclass_head"):
        TrainSettings(multiclass_head="ordinal")


def _linear_proba(weight, bias, x, kind):
    logits = x @ weight.T + bias
    if kind == "multilabel":
        return 1 / (1 + np.exp(-logits))
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("kind,classes", [("multilabel", None), ("multiclass", 3), ("multiclass", 2)])
def test_probe_head_weights_reproduce_the_logistic_regression(kind, classes):
    rng = np.random.default_rng(0)
    x, x_val = rng.normal(size=(120, 6)), rng.normal(size=(40, 6))
    if kind == "multilabel":   # two learnable labels and one constant 1 in training
        y = np.column_stack([x[:, 0] > 0, x[:, 1] + x[:, 2] > 0, np.ones(120)]).astype(float)
        y_val = np.column_stack([x_val[:, 0] > 0, x_val[:, 1] > 0, np.ones(40)]).astype(float)
        n_out = 3
    else:                      # K = 4 classes of which only `classes` occur in training
        y = np.digitize(x[:, 0], np.quantile(x[:, 0], np.linspace(0, 1, classes + 1)[1:-1]))
        y_val = np.digitize(x_val[:, 0], [0.0])
        n_out = 4
    fit = fit_logistic(x, y, x_val, y_val, kind, n_out)
    weight, bias = head_weights(fit, kind, n_out, 6)
    ours = _linear_proba(weight, bias, x_val, kind)
    theirs = fit.predict_proba(x_val, kind, n_out)
    if kind == "multilabel":
        np.testing.assert_allclose(ours[:, :2], theirs[:, :2], atol=1e-6)
        assert bias[2] == CONSTANT_LOGIT and np.all(ours[:, 2] > 0.999)
    else:   # the absent classes get (almost) no probability, the others the regression's
        np.testing.assert_allclose(ours, theirs, atol=5e-3)
        assert np.all(ours[:, classes:] < 5e-3)


def test_probe_initialised_training_starts_from_the_probe(multilabel):
    r = train_scorer(multilabel, replace(TINY, head_init="probe"), progress=False)
    h = r.history
    assert list(h["epoch"]) == [0, 1, 2] and np.isnan(h["train_loss"].iloc[0])
    # epoch 0 is the probe alone: its validation loss is the logistic regression's at the chosen C
    assert h["val_loss"].iloc[0] == pytest.approx(r.info["probe_val_log_loss"][r.info["probe_C"]], rel=1e-4)
    assert r.info["epochs_run"] == 2 and r.info["best_epoch"] in (0, 1, 2)
    assert h["val_loss"].iloc[r.info["best_epoch"]] == h["val_loss"].min()


def test_probe_on_a_cumulative_head(holistic):
    r = train_scorer(holistic, replace(TINY, head_init="probe", multiclass_head="cumulative", max_epochs=1),
                     progress=False)
    assert r.history["epoch"].tolist() == [0, 1] and r.info["probe_C"] in (0.1, 1.0, 10.0, 100.0)
