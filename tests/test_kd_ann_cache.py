"""The fitted ANN baseline is kept in the cache (issue 30): a re-executed KD chapter times it without fitting
it again, and what it reads back is the model it fitted."""
import numpy as np

from kd_tasks import tiny_task
from scoring_lab.kd import ann as ann_module
from scoring_lab.kd.plan import KDPlan
from scoring_lab.kd.students import ANN_MODEL_KIND, StudentsAndANN
from scoring_lab.models.cache import ArtifactCache
from scoring_lab.profiles import KDSettings


def _models(cache_dir, task, hidden=8):
    plan = KDPlan({task.name: task}, KDSettings(seeds=2, ann_hidden=hidden, sweep_set="elsewhere"))
    return StudentsAndANN(plan, transformers=None, cache=ArtifactCache(cache_dir), progress=False)


def test_the_fitted_ann_is_read_back_not_fitted_again(tmp_path, monkeypatch):
    task = tiny_task(48, 3, 0, n_val=16, n_test=16)
    models = _models(tmp_path, task)
    proba, _ = models.ann_test_proba("tiny", 1)          # fits the set's ANNs side by side
    fitted = models.fit_ann("tiny", 1)                   # that very fit, now kept
    np.testing.assert_array_equal(fitted.predict_proba(task.test), proba)
    assert models.cache.exists(ANN_MODEL_KIND, models.cache.key(models.ann_inputs("tiny", 1)))

    monkeypatch.setattr(ann_module, "fit_ann", lambda *a, **k: (_ for _ in ()).throw(AssertionError("fitted again")))
    again = _models(tmp_path, task).fit_ann("tiny", 1)
    np.testing.assert_array_equal(again.predict_proba(task.test), proba)
    assert again.n_parameters == fitted.n_parameters


def test_other_settings_fit_another_ann(tmp_path):
    task = tiny_task(48, 3, 0, n_val=16, n_test=16)
    small, large = _models(tmp_path, task, hidden=4).fit_ann("tiny", 0), _models(tmp_path, task, hidden=16).fit_ann("tiny", 0)
    assert small.model.coefs_[0].shape[1] == 4 and large.model.coefs_[0].shape[1] == 16
