"""Per-task scorers and merges run over shared frozen states (scoring_lab.models.frozen_states, merged_models)."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from scoring_lab.models import per_task
from scoring_lab.models.backbone import TINY_RANDOM, load_backbone
from scoring_lab.models.cache import ArtifactCache
from scoring_lab.data.synthetic import generate_benchmark
from scoring_lab.models.frozen_states import StateMaker, first_trainable_layer
from scoring_lab.merging.evaluation import OWN, Merge, MergeEvaluator, UpperModel
from scoring_lab.models.per_task import split_fingerprint
from scoring_lab.profiles import LoraSettings, TrainSettings

TINY = TrainSettings(backbone=TINY_RANDOM, max_epochs=2, patience=2, lr=1e-3, batch_size=16, max_length=48,
                     warmup_ratio=0.0)
PARTIAL = replace(TINY, trainable_layers=1)
NAMES = ["gas_filled_balloons", "natural_sugar", "anna_vs_carla"]


@pytest.fixture(scope="module")
def tasks():
    return generate_benchmark(seed=0, scale=0.06, tasks=NAMES)


@pytest.fixture(scope="module", params=["partial", "full"])
def setup(request, tasks, tmp_path_factory):
    settings = PARTIAL if request.param == "partial" else TINY
    cache = ArtifactCache(tmp_path_factory.mktemp(f"cache-{request.param}"))
    scorers = per_task.get_scorers(tasks, settings, 0, cache, progress=False)
    return settings, cache, scorers, MergeEvaluator(scorers, tasks, settings, 0, cache, progress=False)


def test_the_first_trainable_layer_follows_the_settings():
    assert first_trainable_layer(PARTIAL, 2) == 1
    assert first_trainable_layer(TINY, 2) == 0
    assert first_trainable_layer(replace(TINY, trainable_layers=6), 6) == 0
    assert first_trainable_layer(replace(TINY, lora=LoraSettings()), 6) == 0


def test_frozen_states_are_the_backbones_and_select_keeps_each_responses_rows(tasks, tmp_path):
    split = tasks["natural_sugar"].test
    states = StateMaker(PARTIAL, 0, ArtifactCache(tmp_path), progress=False).states(split, split_fingerprint(split))
    assert states.layer == 1 and len(states) == len(split)
    b = load_backbone(TINY_RANDOM)
    b.model.eval()
    ids = b.tokenizer(split.texts[:1], truncation=True, max_length=48, return_tensors="pt")
    with torch.no_grad():
        h = b.model(**ids, output_hidden_states=True).hidden_states[1][0].numpy()
    np.testing.assert_allclose(states.values[: states.offsets[1]], h, atol=1e-5)
    picked = states.select([3, 0])
    np.testing.assert_array_equal(picked.lengths, states.lengths[[3, 0]])
    np.testing.assert_array_equal(picked.values[: picked.offsets[1]], states.values[states.offsets[3]:states.offsets[4]])
    seen = []
    for idx, batch in states.batches(5):
        assert batch["hidden"].shape[:2] == batch["attention_mask"].shape
        assert batch["attention_mask"].sum(1).tolist() == states.lengths[idx].tolist()
        seen += list(idx)
    assert sorted(seen) == list(range(len(states)))


@pytest.mark.slow
def test_a_tasks_own_scorer_over_frozen_states_gives_its_own_predictions(setup, tasks):
    settings, _, scorers, ev = setup
    for name in NAMES:
        ours = ev.probabilities((name,), Merge(OWN))[name]
        theirs = scorers[name].predict_proba(tasks[name].test)
        np.testing.assert_allclose(ours, theirs, atol=1e-5)
        np.testing.assert_array_equal(ev.predictions((name,), Merge(OWN))[name], scorers[name].predict(tasks[name].test))
    f = ev.features(NAMES[0], tasks[NAMES[0]].test, "test")
    np.testing.assert_allclose(f, scorers[NAMES[0]].features(tasks[NAMES[0]].test), atol=1e-5)


@pytest.mark.slow
def test_the_cls_only_last_layer_equals_the_full_layer(setup, tasks):
    settings, _, _, ev = setup
    if settings.trainable_layers is None:
        pytest.skip("one case is enough")
    states = ev.states(NAMES[0], tasks[NAMES[0]].test, "test")
    ev.upper.load(ev.parts(NAMES[0]).encoder)
    fast = ev.upper.embed(states, 8)
    full = np.zeros_like(fast)
    with torch.no_grad():
        for idx, b in states.batches(8):
            full[idx] = ev.upper.model.embed_from(b["hidden"], b["attention_mask"], ev.upper.layer).numpy()
    np.testing.assert_allclose(fast, full, atol=1e-5)


@pytest.mark.slow
def test_a_merge_changes_the_predictions_is_cached_and_a_later_load_resets_what_it_set(setup, tasks, monkeypatch):
    settings, cache, _, ev = setup
    group = tuple(NAMES[:2])
    own = ev.probabilities((group[0],), Merge(OWN))[group[0]]
    merged = ev.probabilities(group, Merge("average"))
    assert set(merged) == set(group) and merged[group[0]].shape == own.shape
    assert np.abs(merged[group[0]] - own).max() > 1e-4
    calls = []
    monkeypatch.setattr(ev, "merged_encoder", lambda *a: calls.append(a) or {})
    again = ev.probabilities(group, Merge("average"))   # from the cache: no merge is built
    assert not calls
    np.testing.assert_array_equal(again[group[0]], merged[group[0]])
    upper = UpperModel(settings)
    name = next(iter(ev.parts(group[0]).encoder))
    upper.load({name: upper.base[name] + 1.0})
    upper.load({})
    torch.testing.assert_close(upper.model.state_dict()[name], upper.base[name])
    with pytest.raises(KeyError, match="not the backbone's"):
        upper.load({"encoder.no.such.weight": torch.zeros(1)})


@pytest.mark.slow
def test_own_runs_one_task_and_unknown_methods_are_refused(setup):
    _, _, _, ev = setup
    with pytest.raises(ValueError, match="one task's scorer"):
        ev.merged_encoder(tuple(NAMES[:2]), Merge(OWN))
    with pytest.raises(ValueError, match="merge method"):
        Merge("fisher")


def test_states_can_be_asked_for_at_any_layer_up_to_the_final_output(tasks, tmp_path):
    split = tasks["natural_sugar"].test
    maker = StateMaker(PARTIAL, 0, ArtifactCache(tmp_path), progress=False, layer=2)
    states = maker.states(split, split_fingerprint(split))
    b = load_backbone(TINY_RANDOM)
    b.model.eval()
    ids = b.tokenizer(split.texts[:1], truncation=True, max_length=48, return_tensors="pt")
    with torch.no_grad():
        final = b.model(**ids).last_hidden_state[0].numpy()
    assert states.layer == 2
    np.testing.assert_allclose(states.values[: states.offsets[1]], final, atol=1e-5)
    with pytest.raises(ValueError, match="layers 0 to 2"):
        StateMaker(PARTIAL, 0, ArtifactCache(tmp_path), progress=False, layer=3).layer


@pytest.mark.slow
def test_a_kd_teacher_scores_its_tasks_training_split_over_the_shared_frozen_states(setup, tasks):
    """The KD chapter's per-task teachers score a task's training responses with only their trained layers
    over the cached frozen states (partial fine-tuning): the same probabilities as the whole scorer's, and
    the states and probabilities are the very artifacts the later chapters read. Full fine-tuning: the
    scorer itself."""
    from scoring_lab.kd.fine_tuned import FineTunedTransformers
    from scoring_lab.kd.plan import KDPlan
    from scoring_lab.profiles import load_profile

    from scoring_lab.data.task import Task

    settings, cache, scorers, ev = setup
    smoke = load_profile("smoke")
    profile = replace(smoke, train=settings, kd=replace(smoke.kd, teacher_source="per-task"))
    name = NAMES[1]
    t = tasks[name]
    kd_set = Task("k", "multiclass", t.train, t.val, t.test, n_classes=t.n_labels + 1,   # one member: this task
                  meta={"spec": {"name": "k", "role": "Bathtub", "tasks": [name], "target": "dimensions_met",
                                 "max_class": None, "n_responses": None}})
    transformers = FineTunedTransformers(KDPlan({"k": kd_set}, profile.kd), profile, cache, progress=False,
                                         tasks=tasks)
    route = transformers._train_split_proba(name, 0)
    if settings.trainable_layers is None:
        assert route is None
        return
    ours = route(tasks[name].train)
    np.testing.assert_allclose(ours, scorers[name].predict_proba(tasks[name].train), atol=1e-5)
    # the evaluator of any later chapter finds the same artifact, not a new computation
    from scoring_lab.merging.evaluation import PROBA_KIND
    stored = sorted((cache.root / PROBA_KIND).iterdir())
    np.testing.assert_array_equal(ev.probabilities((name,), Merge(OWN), "train")[name], ours)
    assert sorted((cache.root / PROBA_KIND).iterdir()) == stored
