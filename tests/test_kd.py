"""The KD chapter's library: the student's size, the paper's loss, teacher targets joined by id,
the data sets in the roles of the paper's Table 1, the baselines and the summary tests."""
import numpy as np
import pandas as pd
import pytest
import torch
from torch.nn import functional as F

from kd_tasks import tiny_task
from scoring_lab.kd import distill as kd, students, tables
from scoring_lab.kd.ann import fit_ann
from scoring_lab.kd.plan import KD_STUDENT, TEACHER
from scoring_lab.data import load_tasks
from scoring_lab.kd import sets as kd_sets
from scoring_lab.kd.sets import BENCHMARK_SETS, KDSetSpec, build_kd_set, build_kd_sets, class_balance
from scoring_lab.data.task import Split, Task
from scoring_lab.profiles import KDSettings, load_profile
from scoring_lab.kd.student import LSTMStudent, StudentConfig, fixed_parameters, n_parameters
from scoring_lab.kd.vocab import OOV, PAD, fit_vocabulary, words


# ----------------------------------------------------------------------------- the student's size
def test_student_has_the_papers_shape_and_about_0_03M_parameters():
    settings = KDSettings()
    for n_classes in (4, 5, 10):
        v = kd.vocabulary_size(n_classes, settings)
        model = LSTMStudent(kd.student_config(n_classes, v, settings))
        assert n_parameters(model) == fixed_parameters(n_classes) + 32 * v
        assert 29_900 <= n_parameters(model) <= 30_000            # the budget, filled to within one embedding row
    # 10 classes: LSTM 2 x (4*16*(32+16) + 2*4*16) = 6400, dense 32*16+16 = 528, output 16*10+10 = 170
    assert fixed_parameters(10) == 6400 + 528 + 170
    assert kd.vocabulary_size(10, settings) == (30_000 - 7098) // 32 == 715


def test_padding_never_changes_a_prediction():
    torch.manual_seed(0)
    model = LSTMStudent(StudentConfig(vocab_size=50, n_classes=3)).eval()
    ids = torch.tensor([[5, 7, 9, 0, 0, 0], [3, 4, 5, 6, 7, 8]])
    alone = model(ids[:1, :3])
    assert torch.allclose(model(ids)[0], alone[0], atol=1e-6)


# ----------------------------------------------------------------------------- the loss
def test_kd_loss_matches_a_hand_computed_value():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 1.0]])
    y = torch.tensor([0, 2])
    p = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    z = logits.numpy()
    log_q = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    ce = -(log_q[0, 0] + log_q[1, 2]) / 2
    soft = -(p.numpy() * log_q).sum(axis=1).mean()
    assert kd.kd_loss(logits, y, p, 0.2).item() == pytest.approx(ce + 0.2 * soft, rel=1e-6)


def test_lambda_zero_is_plain_cross_entropy_and_needs_no_teacher():
    torch.manual_seed(1)
    logits, y = torch.randn(8, 4), torch.randint(0, 4, (8,))
    assert kd.kd_loss(logits, y, None, 0.0).item() == F.cross_entropy(logits, y).item()
    with pytest.raises(kd.TeacherTargetError, match="needs teacher probabilities"):
        kd.kd_loss(logits, y, None, 0.5)


# ----------------------------------------------------------------------------- teacher targets by id
def _tiny_task(n=40, k=3, seed=0) -> Task:
    return tiny_task(n, k, seed)


def test_teacher_probabilities_are_joined_by_id_not_position():
    ids = np.array(["a", "b", "c"])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    t = kd.TeacherProbabilities(ids, proba)
    np.testing.assert_allclose(t.for_ids(["c", "a", "b"]), proba[[2, 0, 1]])


def test_missing_or_misaligned_teacher_probabilities_fail_loudly():
    task = _tiny_task()
    settings = KDSettings(max_epochs=1)
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), len(task.train))
    short = kd.TeacherProbabilities(task.train.ids[2:], p[2:])
    with pytest.raises(kd.TeacherTargetError, match=r"2 of 40 training responses have no teacher probability.*tr0.*tr1"):
        kd.train_student(task, settings, lam=0.2, teacher=short)
    val_ids = kd.TeacherProbabilities(task.val.ids, rng.dirichlet(np.ones(3), len(task.val)))  # another split's
    with pytest.raises(kd.TeacherTargetError, match="40 of 40"):
        kd.train_student(task, settings, lam=0.2, teacher=val_ids)
    with pytest.raises(kd.TeacherTargetError, match="2 classes, the task has 3"):
        kd.train_student(task, settings, lam=0.2, teacher=kd.TeacherProbabilities(task.train.ids, p[:, :2] /
                                                                                   p[:, :2].sum(1, keepdims=True)))
    with pytest.raises(kd.TeacherTargetError, match="more than once"):
        kd.TeacherProbabilities(["x", "x"], [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(kd.TeacherTargetError, match="not probability"):
        kd.TeacherProbabilities(["x", "y"], [[np.nan, 1.0], [0.3, 0.3]])
    with pytest.raises(kd.TeacherTargetError, match="needs teacher probabilities"):
        kd.train_student(task, settings, lam=0.2)


def test_student_training_is_deterministic_and_early_stopped():
    task = _tiny_task()
    settings = KDSettings(max_epochs=6, patience=2)
    p = kd.TeacherProbabilities(task.train.ids[::-1], np.full((len(task.train), 3), 1 / 3))
    a = kd.train_student(task, settings, seed=3, lam=0.5, teacher=p)
    b = kd.train_student(task, settings, seed=3, lam=0.5, teacher=p)
    np.testing.assert_array_equal(a.student.predict_proba(task.test.texts), b.student.predict_proba(task.test.texts))
    assert a.info["best_epoch"] == int(a.history["val_loss"].idxmin()) + 1
    assert a.info["teacher"] == "in-sample" and a.info["lam"] == 0.5


def test_out_of_fold_targets_cover_every_training_response_once():
    task = _tiny_task(n=30)
    seen = []

    def predict_fold(fold_task, held):
        assert not set(fold_task.train.ids) & set(held.ids)          # the fold teacher never saw its fold
        seen.extend(held.ids)
        return np.tile([0.2, 0.3, 0.5], (len(held), 1))

    t = kd.out_of_fold_probabilities(task, 3, predict_fold)
    assert sorted(seen) == sorted(task.train.ids) and t.how == "out-of-fold"
    assert t.for_ids(task.train.ids).shape == (30, 3)


# ----------------------------------------------------------------------------- vocabulary
def test_vocabulary_is_frequency_ranked_with_alphabetical_ties():
    v = fit_vocabulary(["b a c", "a b", "a d"], size=5)
    assert v.tokens == (PAD, OOV, "a", "b", "c")
    np.testing.assert_array_equal(v.encode(["a zebra b", ""]), [[2, 1, 3], [1, 0, 0]])
    assert words("It's 3 gases, not 2!") == ["it's", "3", "gases", "not", "2"]


# ----------------------------------------------------------------------------- the data sets
@pytest.fixture(scope="module")
def benchmark():
    return load_tasks("synthetic", scale=0.2)


def test_benchmark_sets_take_the_papers_roles_and_lose_nothing(benchmark):
    sets = build_kd_sets(benchmark)
    assert [s.meta["role"] for s in sets.values()] == ["7T", "Bathtub", "Falling Weights", "Gelatin"]
    assert [t.n_classes for t in sets.values()] == [10, 5, 4, 5]
    for spec in BENCHMARK_SETS:
        t = sets[spec.name]
        n = len(t.train) + len(t.val) + len(t.test)
        full = sum(len(s) for name in spec.tasks for s in benchmark[name].splits().values())
        assert n == min(full, spec.n_responses)                     # at scale 0.2 no subsample applies
        ids = np.concatenate([s.ids for s in t.splits().values()]).astype(str)
        assert len(set(ids)) == n
        assert abs(len(t.val) / (len(t.train) + len(t.val)) - 1 / 8) < 0.02      # train : val = 7 : 1
    pooled = sets["pooled-7"]
    assert pooled.train.ids[0].split("/")[0] in BENCHMARK_SETS[0].tasks
    # the class is the number of rubric dimensions met, 9 standing for 9 or more
    layers = benchmark["layers_in_test_tube"].test
    expected = np.minimum(layers.labels.sum(axis=1), 9)
    got = {i: c for i, c in zip(pooled.test.ids, pooled.test.scores)}
    assert [got[f"layers_in_test_tube/{i}"] for i in layers.ids] == list(expected)
    balance = class_balance(sets)
    assert balance.groupby(["set", "split"])["n"].sum().loc[("pooled-7", "test")] == len(pooled.test)


def test_benchmark_sets_have_the_sizes_and_classes_of_the_papers_table_1(benchmark):
    from scoring_lab import published

    paper = published.kd_sets().set_index("role")
    for spec in BENCHMARK_SETS:
        assert spec.n_responses == paper.loc[spec.role, "responses"]
    summary = kd_sets.set_summary(build_kd_sets(benchmark)).set_index("set")
    assert (summary["classes"] == summary["paper classes"]).all()


def test_a_subsample_keeps_the_test_split_share_and_is_seeded(benchmark):
    spec = KDSetSpec("dry", "Falling Weights", ("dry_ice_model",), n_responses=200)
    a, b = build_kd_set(benchmark, spec, seed=1), build_kd_set(benchmark, spec, seed=1)
    assert len(a.train) + len(a.val) + len(a.test) == 200
    src = benchmark["dry_ice_model"]
    share = len(src.test) / sum(len(s) for s in src.splits().values())
    assert abs(len(a.test) / 200 - share) < 0.01
    assert list(a.train.ids) == list(b.train.ids)
    assert a.meta["responses_before_subsample"] == sum(len(s) for s in src.splits().values())


def test_any_multiclass_source_gets_sets_of_its_own_scores(benchmark):
    holistic = {n: Task(n, "multiclass", *(Split(s.ids, s.texts, scores=s.scores) for s in (t.train, t.val, t.test)),
                        n_classes=4) for n, t in benchmark.items()}
    sets = build_kd_sets(holistic)
    assert list(sets)[0] == "pooled-7" and len(sets) == 4
    assert all(t.n_classes == 4 for t in sets.values())


# ----------------------------------------------------------------------------- baselines and tests
def test_ann_baseline_early_stops_on_validation_loss():
    task = _tiny_task(n=60)
    m = fit_ann(task, hidden=8, max_features=50, seed=0, max_epochs=30, patience=3)
    proba = m.predict_proba(task.test)
    assert proba.shape == (12, 3) and np.allclose(proba.sum(axis=1), 1)
    assert 1 <= m.info["best_epoch"] <= m.info["epochs_run"] <= 30
    assert m.n_parameters == m.info["n_features"] * 8 + 8 + 8 * 3 + 3


def test_gain_by_set_pairs_responses_pools_seeds_and_corrects_over_sets():
    from scoring_lab.kd import claim_tests

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 400)
    right, wrong = y.copy(), (y + 1) % 3
    flip = lambda share, seed: np.where(np.random.default_rng(seed).random(400) < share, wrong, right)  # noqa: E731
    samples = {"ahead": (y, [flip(0.1, 1), flip(0.1, 2)], [flip(0.3, 3), flip(0.3, 4)]),   # A far ahead
               "same": (y, [flip(0.2, 5)], [flip(0.2, 6)]),                                 # one seed each: a sample
               "behind": (y, [flip(0.4, 7), flip(0.4, 8)], [flip(0.1, 9), flip(0.1, 10)])}
    t = claim_tests.gain_by_set(samples, n_resamples=500, seed=0).set_index("set")
    assert list(t.columns) == [c for c in claim_tests.GAIN_COLUMNS if c != "set"]
    acc = lambda preds: np.mean([(p == y).mean() for p in preds])  # noqa: E731
    assert t.loc["ahead", "effect"] == pytest.approx(acc(samples["ahead"][1]) - acc(samples["ahead"][2]))
    assert t.loc["ahead", "verdict"] == "held" and t.loc["ahead", "ci_low"] > 0
    assert t.loc["same", "verdict"] == "inconclusive"
    assert t.loc["behind", "verdict"] == "not held" and t.loc["behind", "ci_high"] < 0
    assert (t["p_holm"] >= t["p"]).all() and t.loc["same", "n"].startswith("400")
    assert claim_tests.gain_by_set({}, 100, 0).empty


def test_profiles_carry_the_kd_settings():
    d, smoke = load_profile("default").kd, load_profile("smoke").kd
    assert d.seeds >= 5 and 0.0 in d.lambdas and {0.02, 0.05, 0.08} <= set(d.lambdas) and 1.0 in d.temperatures
    assert len(d.temperatures) >= 2
    assert smoke.seeds < d.seeds


def test_the_small_transformer_is_the_backbones_lower_layers():
    from scoring_lab.models.backbone import load_backbone

    full, cut = load_backbone("tiny-random-bert", seed=0), load_backbone("tiny-random-bert", seed=0, encoder_layers=1)
    assert len(cut.model.encoder.layer) == cut.model.config.num_hidden_layers == 1
    assert len(full.model.encoder.layer) == 2
    a, b = full.model.encoder.layer[0].state_dict(), cut.model.encoder.layer[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_table2_summarises_seeds_and_sits_beside_the_papers_figures_by_role():
    rows = [{"set": "pooled-7", "model": m, "seed": s, "accuracy": a + 0.01 * s, "macro_f1": a - 0.1}
            for m, a in ((TEACHER, 0.9), (KD_STUDENT, 0.7)) for s in range(3)]
    table = tables.table2(pd.DataFrame(rows))
    kd_row = table[table["model"] == KD_STUDENT].iloc[0]
    assert kd_row["accuracy_mean"] == pytest.approx(0.71) and kd_row["accuracy_sd"] == pytest.approx(0.01)
    assert kd_row["seeds"] == 3
    sets = {"pooled-7": Task("pooled-7", "multiclass", *(Split([], []) for _ in range(3)), n_classes=10,
                             meta={"role": "7T"})}
    paper = tables.beside_paper(table, sets).set_index("model")
    assert paper.loc[KD_STUDENT, "accuracy (paper)"] == 0.757      # the paper's Table 2, 7T, KD
    assert paper.loc[TEACHER, "F1 (paper)"] == 0.842
    wide = tables.mean_sd(table)
    assert wide.loc[0, KD_STUDENT] == "0.710 ± 0.010"


def test_a_students_cache_key_holds_every_kd_setting_its_training_reads():
    """A setting train_students reads but the key leaves out would let a changed profile reuse stale students."""
    import inspect
    import re

    from scoring_lab.kd import distill as kd_module
    read = set(re.findall(r"settings\.(\w+)", inspect.getsource(kd_module)))
    assert read and read <= set(students.STUDENT_SETTINGS)
    assert set(students.student_settings(KDSettings())) == set(students.STUDENT_SETTINGS)
