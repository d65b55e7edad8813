"""The KD student's vocabulary (issue 26): a count threshold chosen on validation so that <oov> trains,
accuracy with and without unknown words, the field's metrics (QWK, weighted F1), and saved students
from before the threshold."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file
from sklearn.metrics import cohen_kappa_score, f1_score

from kd_tasks import tiny_task
from scoring_lab.data.task import Split, Task
from scoring_lab.kd import distill as kd, report, tables, unknown_words as uw, vocab_choice
from scoring_lab.kd.deploy import score_csv
from scoring_lab.kd.plan import KD_STUDENT, KDPlan, STUDENT, TEACHER
from scoring_lab.kd.results_over_seeds import scores_of, scores_of_predictions
from scoring_lab.kd.student import LSTMStudent, Student, StudentConfig
from scoring_lab.kd.students import STUDENT_KIND, StudentsAndANN
from scoring_lab.kd.vocab import OOV, PAD, Vocabulary, fit_vocabulary
from scoring_lab.models.cache import ArtifactCache
from scoring_lab.profiles import KDSettings, ProfileError, load_profile


# ----------------------------------------------------------------------------- the threshold
def test_a_threshold_leaves_rare_training_words_to_oov():
    v = fit_vocabulary(["a a b", "a c c", "d"], size=10, min_count=2)
    assert v.tokens == (PAD, OOV, "a", "c")                       # b and d seen once
    np.testing.assert_array_equal(v.encode(["b a d c"]), [[1, 2, 1, 3]])


def _runs(values: dict) -> pd.DataFrame:
    return pd.DataFrame([{"set": s, "min_count": m, "seed": i, "val_accuracy": a, "vocab_size": 100 - 10 * m}
                         for (s, m), accs in values.items() for i, a in enumerate(accs)])


def test_the_threshold_of_highest_mean_validation_accuracy_is_chosen_ties_to_the_smaller():
    runs = _runs({("a", 1): [0.5, 0.6], ("a", 2): [0.6, 0.7], ("a", 3): [0.7, 0.6],
                  ("b", 1): [0.7, 0.7], ("b", 2): [0.6, 0.7], ("b", 3): [0.5, 0.5]})
    t = vocab_choice.choose(runs)
    assert list(t.columns) == vocab_choice.COLUMNS
    assert t["set"].tolist() == ["a"] * 3 + ["b"] * 3 and t["min_count"].tolist() == [1, 2, 3] * 2
    assert t["val_accuracy_mean"].tolist() == pytest.approx([0.55, 0.65, 0.65, 0.7, 0.65, 0.5])
    assert t["val_accuracy_sd"].iloc[0] == pytest.approx(np.std([0.5, 0.6], ddof=1))
    assert t["chosen"].tolist() == [False, True, False, True, False, False]   # a: 2 and 3 tie at 0.65 -> 2
    assert vocab_choice.chosen_min_count(t, "a") == 2 and vocab_choice.chosen_min_count(t, "b") == 1
    assert t.loc[1, "vocab_size"] == 80 and t["seeds"].tolist() == [2] * 6
    text = report.vocab_choice_text(t)
    assert text == ("The threshold chosen on validation is 2 on a (80 rows, +0.100 in mean validation accuracy over "
                    "keeping every word); 1 on b (90 rows).")


def _rare_word_task(n: int = 48, seed: int = 0) -> Task:
    """tiny_task's responses, each training and test response with one word of its own (a typo seen once)."""
    t = tiny_task(n, 3, seed)
    typo = lambda s, p: Split(s.ids, [f"{x} {p}{i}x" for i, x in enumerate(s.texts)], scores=s.scores)  # noqa: E731
    return Task("rare", "multiclass", typo(t.train, "tr"), t.val, typo(t.test, "te"), n_classes=3)


def _initial_embedding(run: kd.StudentRun, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    return LSTMStudent(run.student.model.config).embedding.weight.detach()


def test_oov_learns_only_when_rare_training_words_map_to_it():
    task, settings = _rare_word_task(), KDSettings(max_epochs=3, patience=3)
    every, rare = (kd.train_student(task, settings, seed=4, min_count=m) for m in (1, 2))
    assert every.info["vocab_size"] == len(every.student.vocabulary) == 2 + 19 + 48   # 19 bank words + 48 typos
    assert rare.info["vocab_size"] == 2 + 19 and rare.info["min_count"] == 2 == rare.student.about["min_count"]
    oov_before = _initial_embedding(every, 4)[1]
    assert torch.equal(every.student.model.embedding.weight[1].detach(), oov_before)    # never in training
    moved = (rare.student.model.embedding.weight[1].detach() - _initial_embedding(rare, 4)[1]).abs().max()
    assert moved > 1e-3                                                                # trained on every response
    # on the test split every response holds an unseen word: both students read it as <oov>
    assert (every.student.encode(task.test.texts) == 1).sum(dim=1).min() >= 1


def _models(tmp_path, task: Task, **kd_settings) -> StudentsAndANN:
    """The students of ``task`` without a teacher (every planned student has lambda 0)."""
    plan = KDPlan({task.name: task}, KDSettings(**{"max_epochs": 3, "patience": 3, "seeds": 2,
                                                   "sweep_set": "elsewhere", **kd_settings}))
    models = StudentsAndANN(plan, transformers=None, cache=ArtifactCache(tmp_path), progress=False)
    models.planned_students = lambda name: plan.planned_students(name, models.min_count(name))  # no KD: lambda 0 only
    return models


def test_the_choice_reads_the_candidates_validation_accuracy_and_every_student_uses_it(tmp_path):
    task = _rare_word_task()
    models = _models(tmp_path / "cache", task, vocab_min_counts=(1, 2))
    table = models.vocab_choice("rare")
    val_acc = {}
    for m in (1, 2):
        accs = []
        for s in (0, 1):
            st = models.cached_student("rare", kd.StudentRequest(s, 0.0, None, m))
            assert st.from_cache and st.info["min_count"] == m
            accs.append(float((st.student.predict(task.val.texts) == task.val.scores).mean()))   # measured again
        val_acc[m] = np.mean(accs)
    assert table["val_accuracy_mean"].tolist() == pytest.approx([val_acc[1], val_acc[2]], abs=1e-6)
    best = 1 if val_acc[1] >= val_acc[2] - 1e-9 else 2
    assert table["chosen"].tolist() == [best == 1, best == 2] and models.min_count("rare") == best
    # the table's lambda = 0 students are the chosen candidates themselves (same cache key, not retrained)
    plain = models.student("rare", 0, 0.0)
    assert plain.from_cache and plain.student.about["min_count"] == best
    assert plain.path == models.cached_student("rare", kd.StudentRequest(0, 0.0, None, best)).path
    # the choice is cached as its own artifact: a fresh study reads it without loading a student
    again = _models(tmp_path / "cache", task, vocab_min_counts=(1, 2))
    again.cached_student = None                     # any student load would fail
    pd.testing.assert_frame_equal(again.vocab_choice("rare"), table)
    # the test split plays no part: other test labels, the same choice
    relabelled = Task("rare", "multiclass", task.train, task.val,
                      Split(task.test.ids, task.test.texts, scores=(task.test.scores + 1) % 3), n_classes=3)
    assert _models(tmp_path / "other", relabelled, vocab_min_counts=(1, 2)).min_count("rare") == best


def test_a_threshold_that_leaves_the_vocabulary_unchanged_trains_nothing_more_and_loses_the_tie(tmp_path):
    task = tiny_task()                                   # every word of the bank is seen many times
    models = _models(tmp_path, task, vocab_min_counts=(1, 2, 40))
    assert vocab_choice.same_vocabulary(task, models.kd, (1, 2, 40)) == {1: 1, 2: 1, 40: 40}
    table = models.vocab_choice("tiny")
    acc = table["val_accuracy_mean"]
    assert table["min_count"].tolist() == [1, 2, 40] and acc[0] == acc[1]
    assert table.loc[2, "vocab_size"] < table.loc[0, "vocab_size"] == table.loc[1, "vocab_size"]
    assert not table.loc[1, "chosen"]                    # a tie with 1, which it is: the smaller wins
    trained = lambda m: models.cache.exists(STUDENT_KIND, models.cache.key(  # noqa: E731
        models.student_inputs("tiny", kd.StudentRequest(0, 0.0, None, m))))
    assert trained(1) and trained(40) and not trained(2)


def test_a_students_cache_key_holds_its_threshold(tmp_path):
    models = _models(tmp_path, tiny_task())
    key = lambda m: models.cache.key(models.student_inputs("tiny", kd.StudentRequest(0, 0.0, None, m)))  # noqa: E731
    assert key(1) != key(2) and key(2) == key(2)
    assert models.student_inputs("tiny", kd.StudentRequest(0, 0.0, None, 3))["min_count"] == 3
    with pytest.raises(ValueError, match="min_count must be >= 1"):
        kd.train_students(tiny_task(), KDSettings(max_epochs=1), [kd.StudentRequest(0, 0.0, None, 0)])


def test_students_of_several_thresholds_train_as_they_would_alone():
    task, settings = _rare_word_task(), KDSettings(max_epochs=2)
    both = kd.train_students(task, settings, [kd.StudentRequest(0, 0.0, None, 2), kd.StudentRequest(1, 0.0, None, 1)])
    alone = kd.train_student(task, settings, seed=0, min_count=2)
    assert [r.info["min_count"] for r in both] == [2, 1] and [r.info["seed"] for r in both] == [0, 1]
    np.testing.assert_allclose(both[0].student.predict_proba(task.test.texts),
                               alone.student.predict_proba(task.test.texts), atol=1e-6)


# ----------------------------------------------------------------------------- the profile key
def test_the_profile_key_is_checked_and_named(tmp_path):
    assert KDSettings(vocab_min_counts=["3", 1]).vocab_min_counts == (1, 3)
    for bad, why in (([0], "greater than or equal to 1"), ([], "at least 1 item"), ([2, 2], "must differ"),
                     ("two", "valid tuple")):
        with pytest.raises(ProfileError, match=rf"kd\.vocab_min_counts.*{why}"):
            KDSettings(vocab_min_counts=bad)
    f = tmp_path / "mine.yaml"
    f.write_text("name: mine\nkd:\n  vocab_min_counts: [1, -2]\n")
    with pytest.raises(ProfileError, match=r"mine\.yaml.*kd\.vocab_min_counts"):
        load_profile(f)
    assert "validation" in load_profile("default").notes["kd.vocab_min_counts"]


# ----------------------------------------------------------------------------- unknown words
def _split_case():
    vocab = Vocabulary((PAD, OOV, "the", "gas", "expands"), max_words=3)
    texts = ["the gas expands", "the gas boils", "", "gas gas", "the gas expands boils"]   # boils: unknown;
    y = np.array([0, 1, 2, 1, 2])                                                           # 5th: cut at 3 words
    task = Task("s", "multiclass", Split([], []), Split([], []), Split([f"t{i}" for i in range(5)], texts, scores=y),
                n_classes=3)
    predictions = {("s", TEACHER, 0): np.array([0, 1, 0, 0, 2]),
                   ("s", KD_STUDENT, 0): np.array([0, 0, 2, 1, 0]), ("s", KD_STUDENT, 1): np.array([0, 1, 2, 0, 2])}
    return task, vocab, predictions


def test_responses_split_by_words_outside_the_students_vocabulary():
    task, vocab, predictions = _split_case()
    np.testing.assert_array_equal(uw.has_unknown_word(vocab, task.test.texts), [False, True, False, False, False])
    t = uw.accuracy_by_unknown_words({"s": task}, predictions, {"s": vocab}).set_index("model")
    assert list(t.index) == [TEACHER, KD_STUDENT]                  # in the order given, models without predictions left out
    assert t.loc[TEACHER, ["seeds", "n_unknown", "n_known"]].tolist() == [1, 1, 4]
    assert t.loc[TEACHER, "accuracy_unknown"] == 1.0 and t.loc[TEACHER, "accuracy_known"] == pytest.approx(2 / 4)
    assert t.loc[KD_STUDENT, "accuracy_unknown"] == 0.5                  # seed 0 wrong, seed 1 right
    assert t.loc[KD_STUDENT, "accuracy_known"] == pytest.approx((3 + 3) / 8)
    assert t.loc[KD_STUDENT, "difference"] == pytest.approx(0.75 - 0.5)
    p = uw.pooled(t.reset_index(), KD_STUDENT)
    assert p == pytest.approx({"unknown": 0.5, "known": 0.75, "share_unknown": 0.2})


def test_the_unknown_words_sentence_is_computed_from_the_table():
    rows = [("a", TEACHER, 10, 0.5, 30, 0.9), ("a", KD_STUDENT, 10, 0.3, 30, 0.7), ("a", STUDENT, 10, 0.2, 30, 0.6),
            ("a", uw.every_training_word(1), 10, 0.1, 30, 0.6),
            ("b", TEACHER, 30, 0.6, 30, 0.8), ("b", KD_STUDENT, 30, 0.5, 30, 0.6), ("b", STUDENT, 30, 0.4, 30, 0.6)]
    t = pd.DataFrame([{"set": s, "model": m, "seeds": 1, "n_unknown": nu, "accuracy_unknown": au, "n_known": nk,
                       "accuracy_known": ak, "difference": ak - au} for s, m, nu, au, nk, ak in rows])
    assert report.unknown_words_text(t) == (
        "Over the sets, 40% of the test responses hold a word no training response of their set has. On those the KD "
        "student's accuracy is 0.450, on the rest 0.650; the teacher's 0.575 and 0.850; the λ = 0 student's 0.350 "
        "and 0.600. On the sets where a threshold above 1 was chosen (a), the λ = 0 student scores 0.200 and 0.600 "
        "with it, against 0.100 and 0.600 keeping every training word (min_count = 1).")


# ----------------------------------------------------------------------------- the field's metrics
def test_qwk_and_weighted_f1_are_scikit_learns():
    task = tiny_task(n_test=40, k=4, seed=2)
    pred = (task.test.scores + np.random.default_rng(0).integers(-1, 2, 40)).clip(0, 3)
    s = scores_of(task, pred)
    assert s["qwk"] == pytest.approx(cohen_kappa_score(task.test.scores, pred, weights="quadratic"))
    assert s["weighted_f1"] == pytest.approx(f1_score(task.test.scores, pred, average="weighted"))
    assert 0 < s["qwk"] < 1 and s["weighted_f1"] != pytest.approx(s["macro_f1"])
    rows = scores_of_predictions({"a": task}, {("a", KD_STUDENT, 0): pred, ("a", KD_STUDENT, 1): task.test.scores})
    table = tables.table2(rows)
    assert table.loc[0, "qwk_mean"] == pytest.approx((s["qwk"] + 1) / 2)
    assert table.loc[0, "weighted_f1_sd"] == pytest.approx(np.std([s["weighted_f1"], 1.0], ddof=1))
    assert tables.mean_sd(table, "qwk").loc[0, KD_STUDENT] == f"{(s['qwk'] + 1) / 2:.3f} ± {table.loc[0, 'qwk_sd']:.3f}"


# ----------------------------------------------------------------------------- saved students
def test_a_student_saved_before_the_threshold_scores_as_it_did(tmp_path):
    """The saved format did not change (a student carries its own token list): a folder written in the
    first edition's layout, ``about`` without ``min_count``, loads and scores exactly as its network does."""
    torch.manual_seed(0)
    model = LSTMStudent(StudentConfig(vocab_size=6, n_classes=3)).eval()
    folder = tmp_path / "old"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "weights.safetensors"))
    (folder / "student.json").write_text(json.dumps({
        "format": "scoring-lab-lstm-student/1", "config": model.config.to_dict(),
        "vocabulary": {"tokens": [PAD, OOV, "gas", "heat", "the", "mass"], "max_words": 64},
        "class_names": ["0", "1", "2"], "about": {"task": "x", "trained_on": 10, "lam": 0.2, "teacher": "in-sample",
                                                  "seed": 0}}))
    old = Student.load(folder)
    assert "min_count" not in old.about
    texts = ["The gas, heat!", "mass of the bubbles"]
    with torch.no_grad():
        expected = torch.softmax(model(torch.tensor([[4, 2, 3, 0], [5, 1, 4, 1]])), dim=-1).numpy()
    np.testing.assert_allclose(old.predict_proba(texts), expected, atol=1e-6)
    (tmp_path / "in.csv").write_text("id,response\n1,The gas, heat!\n2,mass of the bubbles\n".replace(
        "The gas, heat!", '"The gas, heat!"'))
    scored = score_csv(folder, tmp_path / "in.csv", tmp_path / "out.csv")
    np.testing.assert_allclose(scored[["p_0", "p_1", "p_2"]].to_numpy(float), expected.round(6), atol=1e-6)
    meta = json.loads((folder / "student.json").read_text())
    meta["format"] = "scoring-lab-lstm-student/0"
    (folder / "student.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="format 'scoring-lab-lstm-student/0', expected 'scoring-lab-lstm-student/1'"):
        Student.load(folder)


def test_unknown_means_unseen_in_training_whatever_the_threshold():
    """The split is the same for every model and threshold: a word is unknown when no training response
    has it, not when a threshold left it out of the student's vocabulary."""
    seen = uw.training_words(["the gas expands", "gas boils", "rare"], max_words=64)
    assert set(seen.tokens[2:]) == {"the", "gas", "expands", "boils", "rare"}
    np.testing.assert_array_equal(uw.has_unknown_word(seen, ["rare gas", "gas condenses", ""]), [False, True, False])
