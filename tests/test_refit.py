"""Refit on train + validation (``train.refit``): early stopping chooses the epoch count, a second
run from the same start trains on both splits for that many epochs; validation predictions stay
held-out ones. Tiny random BERT, seconds on the CPU."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from scoring_lab.models import per_task
from scoring_lab.models.backbone import TINY_RANDOM
from scoring_lab.models.cache import ArtifactCache
from scoring_lab.data.synthetic import generate_benchmark
from scoring_lab.data.task import Split, concat_splits
from scoring_lab.profiles import TrainSettings
from scoring_lab.models.training import train_scorer

TINY = TrainSettings(backbone=TINY_RANDOM, max_epochs=3, patience=3, lr=1e-3, batch_size=16, max_length=48,
                     warmup_ratio=0.0, trainable_layers=1)


@pytest.fixture(scope="module")
def task():
    return generate_benchmark(seed=0, scale=0.1, tasks=["gas_filled_balloons"])["gas_filled_balloons"]


def test_concat_splits_keeps_rows_in_order_and_refuses_repeated_ids(task):
    both = concat_splits(task.train, task.val)
    assert len(both) == len(task.train) + len(task.val)
    assert list(both.ids) == list(task.train.ids) + list(task.val.ids)
    assert both.texts[len(task.train)] == task.val.texts[0]
    assert np.array_equal(both.labels, np.vstack([task.train.labels, task.val.labels]))
    assert np.array_equal(both.ability, np.concatenate([task.train.ability, task.val.ability]))
    with pytest.raises(ValueError, match="1 id"):
        concat_splits(task.val, task.val.subset([0]))
    plain = Split(ids=["x"], texts=["a text"], labels=np.array([[1, 0, 1]]))  # no ability, no scores
    assert concat_splits(task.val, plain).ability is None


def test_refit_trains_on_train_and_val_for_the_chosen_epochs(task):
    chosen = train_scorer(task, TINY, seed=0, progress=False)
    refit = train_scorer(task, replace(TINY, refit=True), seed=0, progress=False)
    info = refit.info
    assert info["best_epoch"] == chosen.info["best_epoch"] >= 1
    assert info["refit_epochs"] == chosen.info["best_epoch"]
    assert info["refit_n_train"] == len(task.train) + len(task.val)
    assert info["seconds"] >= info["refit_seconds"] > 0
    # the history is the choosing run's: validation figures per epoch
    assert refit.history.drop(columns="seconds").equals(chosen.history.drop(columns="seconds"))
    # held-out validation probabilities are the early-stopped run's, and differ from the refit's own
    val_chosen = chosen.scorer.predict_proba(task.val.texts)
    assert np.allclose(refit.heldout_val_proba, val_chosen, atol=1e-6)
    assert not np.allclose(refit.scorer.predict_proba(task.val.texts), val_chosen, atol=1e-3)
    # a different model: it saw 10% more responses
    a, b = chosen.scorer.state_dict(), refit.scorer.state_dict()
    assert not all(torch.equal(a[k], b[k]) for k in a)
    assert chosen.heldout_val_proba is None


def test_refit_is_deterministic(task):
    settings = replace(TINY, refit=True, max_epochs=2)
    a = train_scorer(task, settings, seed=1, progress=False).scorer.predict_proba(task.test.texts)
    b = train_scorer(task, settings, seed=1, progress=False).scorer.predict_proba(task.test.texts)
    assert np.array_equal(a, b)


def test_refit_keeps_the_probe_C_chosen_on_validation(task):
    settings = replace(TINY, head_init="probe", refit=True, max_epochs=2)
    r = train_scorer(task, settings, seed=0, progress=False)
    chosen = train_scorer(task, replace(settings, refit=False), seed=0, progress=False)
    assert r.info["probe_C"] == chosen.info["probe_C"]
    assert set(r.info["probe_val_log_loss"]) == set(chosen.info["probe_val_log_loss"])  # the choice, kept


def test_a_refit_scorer_answers_held_out_probabilities_for_its_validation_split(task, tmp_path):
    cache = ArtifactCache(tmp_path)
    settings = replace(TINY, refit=True, max_epochs=2)
    first = per_task.get_scorer(task, settings, seed=0, cache=cache, progress=False)
    again = per_task.get_scorer(task, settings, seed=0, cache=cache, progress=False)
    assert again.from_cache
    chosen = per_task.get_scorer(task, replace(settings, refit=False), seed=0, cache=cache, progress=False)
    for ts in (first, again):
        assert np.allclose(ts.predict_proba(task.val), chosen.predict_proba(task.val), atol=1e-6)
        assert np.allclose(ts.predict_proba(task.test), first.scorer.predict_proba(task.test.texts), atol=1e-6)
        assert not np.allclose(ts.predict_proba(task.test), chosen.predict_proba(task.test), atol=1e-3)
    # any other split (here: the validation responses but one) is scored by the refit model itself
    part = task.val.subset(np.arange(1, len(task.val)))
    assert np.allclose(first.predict_proba(part), first.scorer.predict_proba(part.texts), atol=1e-6)
