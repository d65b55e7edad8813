"""The students' test probabilities, cached apart (issue 30): a chapter re-executed over a warm cache reads
them without loading a student, and they are the student's own."""
import numpy as np
import pytest

from kd_tasks import tiny_task
from scoring_lab.data.task import Split, Task
from scoring_lab.kd import distill as kd, student_predictions
from scoring_lab.kd.plan import KDPlan
from scoring_lab.kd.students import STUDENT_KIND, StudentsAndANN
from scoring_lab.models.cache import ArtifactCache
from scoring_lab.profiles import KDSettings


def _models(cache_dir, task: Task) -> StudentsAndANN:
    """The students of ``task`` without a teacher (every planned student has lambda 0), one threshold."""
    plan = KDPlan({task.name: task}, KDSettings(max_epochs=2, patience=2, seeds=2, vocab_min_counts=(1,),
                                                sweep_set="elsewhere"))
    models = StudentsAndANN(plan, transformers=None, cache=ArtifactCache(cache_dir), progress=False)
    models.planned_students = lambda name: plan.planned_students(name, models.min_count(name))  # lambda 0 only
    return models


def test_the_probabilities_are_the_students_own_and_a_warm_read_loads_no_student(tmp_path):
    task = tiny_task(48, 3, 0, n_val=16, n_test=16)
    models = _models(tmp_path, task)
    proba = student_predictions.student_proba(models, "tiny", 1, 0.0)
    student = models.student("tiny", 1, 0.0)
    assert student.from_cache                                   # scored from the student trained with the set's
    expected = student.student.predict_proba(task.test.texts)
    assert proba.shape == (16, 3) and proba.dtype == np.float32
    np.testing.assert_array_equal(proba, expected)
    assert not np.array_equal(proba, student_predictions.student_proba(models, "tiny", 0, 0.0))   # each seed its own

    again = _models(tmp_path, task)
    again.cached_student = again.planned_student = again.train_students = None   # any load or training fails
    np.testing.assert_array_equal(student_predictions.student_proba(again, "tiny", 1, 0.0), proba)
    request = kd.StudentRequest(1, 0.0, None, 1)
    np.testing.assert_array_equal(student_predictions.proba_on_test(again, "tiny", request, planned=False), proba)


def test_another_test_split_or_a_retrained_student_is_scored_anew(tmp_path):
    task = tiny_task(48, 3, 0, n_val=16, n_test=16)
    models = _models(tmp_path, task)
    proba = student_predictions.student_proba(models, "tiny", 0, 0.0)
    # the same student (train and validation unchanged), other test responses: scored on them, not read
    shorter = Task("tiny", "multiclass", task.train, task.val, task.test.subset(np.arange(8)), n_classes=3)
    other = _models(tmp_path, shorter)
    assert student_predictions.student_proba(other, "tiny", 0, 0.0).shape == (8, 3)
    np.testing.assert_array_equal(student_predictions.student_proba(other, "tiny", 0, 0.0), proba[:8])
    # the student's artifact gone: it is trained again before its test split is scored
    key = models.cache.key(models.student_inputs("tiny", kd.StudentRequest(0, 0.0, None, 1)))
    assert models.cache.exists(STUDENT_KIND, key)
    relabelled = Split(task.train.ids, task.train.texts, scores=(task.train.scores + 1) % 3)
    retrained = _models(tmp_path, Task("tiny", "multiclass", relabelled, task.val, task.test, n_classes=3))
    new = student_predictions.student_proba(retrained, "tiny", 0, 0.0)
    assert new.shape == (16, 3) and not np.array_equal(new, proba)


@pytest.mark.parametrize("how", ["in-sample", "oracle"])
def test_the_kd_students_probabilities_use_the_chosen_setting(tmp_path, how, monkeypatch):
    task = tiny_task(48, 3, 0, n_val=16, n_test=16)
    models = _models(tmp_path, task)
    asked = []
    monkeypatch.setattr(models, "kd_setting", lambda: (0.2, 2.0))
    monkeypatch.setattr(student_predictions, "proba_on_test",
                        lambda m, name, request, planned=True: asked.append(request) or np.zeros((16, 3)))
    student_predictions.kd_student_proba(models, "tiny", 3, how)
    assert asked == [kd.StudentRequest(3, 0.2, how, 1, 2.0)]
