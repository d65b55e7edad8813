"""Per-task scorers as KD teachers: the class distribution they imply, routed by response id."""
import itertools

import numpy as np
import pytest

from scoring_lab.kd import teachers as kd_teachers
from scoring_lab.data import load_tasks
from scoring_lab.kd.sets import BENCHMARK_SETS, KDSetSpec, build_kd_set, member_tasks, source_id
from scoring_lab.data.synthetic import holistic_scores
from scoring_lab.data.task import Split, Task


@pytest.fixture(scope="module")
def benchmark():
    return load_tasks("synthetic", scale=0.2)


def test_count_distribution_is_the_exact_poisson_binomial():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=(6, 4))
    got = kd_teachers.count_distribution(p)
    want = np.zeros((6, 5))
    for combo in itertools.product([0, 1], repeat=4):
        c = np.array(combo)
        want[:, c.sum()] += np.prod(np.where(c == 1, p, 1 - p), axis=1)
    np.testing.assert_allclose(got, want, atol=1e-12)
    np.testing.assert_allclose(got.sum(axis=1), 1.0)


def test_count_to_class_caps_dimensions_and_reads_the_score_rule_off_the_data(benchmark):
    carlos = benchmark["carlos_javier_atomic_model"]                 # 5 dimensions
    spec = KDSetSpec("c", "Bathtub", (carlos.name,), "dimensions_met", max_class=4)
    np.testing.assert_array_equal(kd_teachers.count_to_class(carlos, spec), [0, 1, 2, 3, 4, 4])
    dry = benchmark["dry_ice_model"]                                 # the holistic 0-3 score
    spec = KDSetSpec("d", "Falling Weights", (dry.name,), "score")
    want = [holistic_scores(np.array([[1] * k + [0] * (dry.n_labels - k)]))[0] for k in range(dry.n_labels + 1)]
    np.testing.assert_array_equal(kd_teachers.count_to_class(dry, spec), want)


def _labelled(labels, scores) -> Task:
    labels, scores = np.array(labels), np.array(scores)
    s = Split(ids=[f"r{i}" for i in range(len(labels))], texts=["x"] * len(labels), labels=labels, scores=scores)
    return Task("t", "multilabel", s, s, s, label_names=("a", "b"), n_classes=3)


def test_a_score_that_is_not_a_function_of_the_count_is_refused():
    spec = KDSetSpec("s", "Bathtub", ("t",), "score")
    with pytest.raises(kd_teachers.TeacherSourceError, match=r"1 met goes with scores \[1, 2\]"):
        kd_teachers.count_to_class(_labelled([[0, 0], [1, 0], [0, 1], [1, 1]], [0, 1, 2, 2]), spec)
    with pytest.raises(kd_teachers.TeacherSourceError, match="meets exactly 2 dimension"):
        kd_teachers.count_to_class(_labelled([[0, 0], [1, 0]], [0, 1]), spec)


def test_a_multiclass_members_classes_above_the_cap_add_into_it():
    s = Split(ids=["a"], texts=["x"], scores=np.array([0]))
    task = Task("m", "multiclass", s, s, s, n_classes=5)
    spec = KDSetSpec("m", "Gelatin", ("m",), "score", max_class=2)
    got = kd_teachers.class_probabilities(np.array([[0.1, 0.2, 0.3, 0.25, 0.15]]), task, spec, 3)
    np.testing.assert_allclose(got, [[0.1, 0.2, 0.7]], atol=1e-6)


def test_each_pooled_response_is_scored_by_its_own_tasks_scorer(benchmark):
    spec = BENCHMARK_SETS[0]
    pooled = build_kd_set(benchmark, spec, seed=0)
    owner = member_tasks(pooled, pooled.test)
    asked = {}

    def predict(name, responses):                   # every task's "scorer" says: all dimensions met
        asked[name] = list(responses.ids)
        return np.ones((len(responses), benchmark[name].n_labels))

    proba = kd_teachers.per_task_probabilities(pooled, pooled.test, benchmark, predict)
    assert set(asked) == set(spec.tasks)
    for name, ids in asked.items():
        assert all(str(i).startswith(f"{name}/") for i in ids) and len(ids) == int((owner == name).sum())
    want = np.minimum([benchmark[n].n_labels for n in owner], spec.max_class)
    np.testing.assert_array_equal(proba.argmax(axis=1), want)
    np.testing.assert_allclose(proba.max(axis=1), 1.0)


def test_out_of_fold_teachers_never_trained_on_the_responses_they_score(benchmark):
    spec = BENCHMARK_SETS[1]
    single = build_kd_set(benchmark, spec, seed=0)
    scored = []

    def fold_predict(fold_task, responses):
        trained_on = {str(i) for i in fold_task.train.ids}
        assert not trained_on & {source_id(single, i) for i in responses.ids}
        assert len(fold_task.train) < len(benchmark[spec.tasks[0]].train)
        scored.extend(responses.ids)
        return np.full((len(responses), fold_task.n_labels), 0.5)

    t = kd_teachers.out_of_fold_class_probabilities(single, benchmark, 3, 0, fold_predict)
    assert sorted(scored) == sorted(single.train.ids) and t.how == "out-of-fold"
    assert t.for_ids(single.train.ids, single.n_classes).shape == (len(single.train), single.n_classes)


def test_check_applies_names_what_a_per_task_teacher_cannot_do():
    s = Split(ids=["a"], texts=["x"], scores=np.array([0]))
    task = Task("m", "multiclass", s, s, s, n_classes=2)
    kd_set = Task("k", "multiclass", s, s, s, n_classes=2,
                  meta={"spec": {"name": "k", "role": "Bathtub", "tasks": ["m"], "target": "dimensions_met",
                                 "max_class": None, "n_responses": None}})
    with pytest.raises(kd_teachers.TeacherSourceError, match="no rubric labels to count"):
        kd_teachers.check_applies(kd_set, {"m": task})


def test_only_responses_outside_a_scorers_training_split_count_as_held_out(benchmark):
    single = build_kd_set(benchmark, BENCHMARK_SETS[1], seed=0)
    task = benchmark[BENCHMARK_SETS[1].tasks[0]]
    held = kd_teachers.not_trained_on(single, single.val, benchmark)
    trained = {str(i) for i in task.train.ids}
    assert held.any() and (~held).any()
    assert all((str(i) in trained) != h for i, h in zip(single.val.ids, held))
    assert kd_teachers.not_trained_on(single, single.test, benchmark).all()


def test_a_per_task_teacher_looks_each_response_up_in_its_tasks_own_predictions(benchmark):
    """The teacher's probabilities of a KD set's responses are the rows of its member task's predictions on
    the task's own splits, found by id: the same as scoring those responses directly."""
    from scoring_lab.data.task import concat_splits
    from scoring_lab.errors import DataError

    def fake_predict(split):            # a deterministic 'scorer': a response's output depends on its text alone
        return np.array([[(hash(t) % 97) / 97, (len(t) % 13) / 13] for t in split.texts])

    pooled = build_kd_set(benchmark, BENCHMARK_SETS[0])
    name = BENCHMARK_SETS[0].tasks[1]
    index, proba = kd_teachers.task_probabilities_by_id(benchmark[name], fake_predict)
    whole = concat_splits(benchmark[name].train, benchmark[name].val, benchmark[name].test)
    assert len(index) == len(whole) and np.array_equal(proba, fake_predict(whole))
    for split in (pooled.train, pooled.test):
        mine = split.subset(np.flatnonzero(member_tasks(pooled, split) == name))
        rows = kd_teachers.rows_by_id(pooled, mine, index, name)
        np.testing.assert_array_equal(proba[rows], fake_predict(mine))
    stranger = Split(ids=[f"{name}/nobody"], texts=["x"])
    with pytest.raises(DataError, match="nobody"):
        kd_teachers.rows_by_id(pooled, stranger, index, name)
    # the training split may be scored another way (the top layers over cached frozen states): only it
    asked = []
    _, routed = kd_teachers.task_probabilities_by_id(benchmark[name], fake_predict,
                                                     lambda split: asked.append(len(split)) or fake_predict(split))
    assert asked == [len(benchmark[name].train)] and np.array_equal(routed, proba)
