"""Students trained side by side: the batched stack computes what each student would alone."""
import numpy as np
import pytest
import torch

from kd_tasks import tiny_task
from scoring_lab.kd import distill as kd
from scoring_lab.data.task import Task
from scoring_lab.profiles import KDSettings
from scoring_lab.kd.student import LSTMStudent, StudentConfig
from scoring_lab.kd.student_batch import StudentStack, lstm_recurrence

CONFIG = StudentConfig(vocab_size=40, n_classes=3)


def _students(seeds):
    out = []
    for s in seeds:
        torch.manual_seed(s)
        out.append(LSTMStudent(CONFIG).eval())
    return out


def test_recurrence_equals_torch_lstm():
    torch.manual_seed(0)
    lstms = [torch.nn.LSTM(5, 4, batch_first=True) for _ in range(3)]
    x = torch.randn(3, 2, 7, 5)
    ours = lstm_recurrence(x, *(torch.stack([getattr(m, n) for m in lstms]) for n in
                                ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")))
    theirs = torch.stack([m(x[g])[0] for g, m in enumerate(lstms)])
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)


def test_stack_scores_like_each_student_padding_and_empty_rows_included():
    students = _students([0, 1, 2])
    stack = StudentStack(students).eval()
    ids = torch.randint(2, 40, (3, 4, 9))
    ids[:, 1, 4:] = 0          # a shorter response
    ids[1, 2, :] = 0           # an empty one
    ids[2, :, 6:] = 0          # a member whose batch is shorter than the others'
    with torch.no_grad():
        ours = stack(ids)
        for m, s in enumerate(students):
            torch.testing.assert_close(ours[m], s(ids[m]), atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(ours[m, :, :], s(ids[m, :, : int((ids[m] != 0).sum(1).max())]),
                                       atol=1e-6, rtol=1e-5)   # trimming the padding changes nothing
    # back out as students: member states are the students' own parameters
    for m, s in enumerate(students):
        for name, value in s.state_dict().items():
            torch.testing.assert_close(stack.member_state(m)[name], value, atol=0, rtol=0)
    kept = stack.select([2, 0])
    assert kept.n_members == 2
    torch.testing.assert_close(kept.member_state(0)["out.bias"], students[2].out.bias, atol=0, rtol=0)


def test_stack_needs_students_of_one_shape():
    with pytest.raises(ValueError, match="one shape"):
        StudentStack([LSTMStudent(CONFIG), LSTMStudent(StudentConfig(vocab_size=41, n_classes=3))])


def test_dropout_masks_are_each_members_own():
    """A member's masks depend on its own generator and its own batch's width, not on the others'."""
    def member0(other_width):
        gens = [torch.Generator().manual_seed(5), torch.Generator().manual_seed(6)]
        stack = StudentStack(_students([0, 1]), gens).train()
        ids = torch.randint(2, 40, (2, 4, 10))
        ids[0, :, 5:] = 0
        ids[1, :, other_width:] = 0
        torch.manual_seed(0)
        ids[0] = torch.randint(2, 40, (4, 10)) * (torch.arange(10) < 5)
        return stack(ids)[0]
    torch.testing.assert_close(member0(10), member0(3), atol=1e-6, rtol=1e-5)


def _task() -> Task:
    return tiny_task(48, 3, 0, n_val=16, n_test=16, vary_length=True)


def test_a_student_trains_side_by_side_as_it_would_alone():
    task = _task()
    settings = KDSettings(max_epochs=4, patience=10, batch_size=8)
    rng = np.random.default_rng(1)
    teacher = kd.TeacherProbabilities(task.train.ids, rng.dirichlet(np.ones(3), len(task.train)))
    alone = kd.train_student(task, settings, seed=2, lam=0.5, teacher=teacher)
    together = kd.train_students(task, settings, [kd.StudentRequest(0, 0.0), kd.StudentRequest(2, 0.5, "t"),
                                                  kd.StudentRequest(1, 2.0, "t")], {"t": teacher})
    assert [r.info["seed"] for r in together] == [0, 2, 1] and together[1].info["trained_alongside"] == 3
    np.testing.assert_allclose(together[1].history["train_loss"], alone.history["train_loss"], rtol=1e-5)
    np.testing.assert_allclose(together[1].history["val_loss"], alone.history["val_loss"], rtol=1e-5)
    np.testing.assert_allclose(together[1].student.predict_proba(task.test.texts),
                               alone.student.predict_proba(task.test.texts), atol=1e-5)
    assert together[0].info["teacher"] is None and together[1].info["lam"] == 0.5
    # the padding row of the embedding never trains
    assert float(together[2].student.model.embedding.weight[0].detach().abs().max()) == 0.0


def test_students_that_stop_early_leave_the_stack_and_keep_their_best_epoch():
    task = _task()
    settings = KDSettings(max_epochs=12, patience=1, batch_size=8, lr=3e-2)
    runs = kd.train_students(task, settings, [kd.StudentRequest(s) for s in range(4)])
    stopped = 0
    for r in runs:
        h = r.history
        best = r.info["best_epoch"]
        assert r.info["epochs_run"] == len(h) <= 12
        assert h.loc[best - 1, "val_loss"] <= h["val_loss"].min() + 1e-6     # improvements under 1e-6 do not count
        if len(h) < 12:    # stopped: patience (1) epochs after its best, while others trained on
            stopped += 1
            assert len(h) == best + 1
    assert stopped >= 1 and max(len(r.history) for r in runs) > min(len(r.history) for r in runs)


def test_a_kd_request_without_its_targets_fails_loudly():
    task = _task()
    with pytest.raises(kd.TeacherTargetError, match=r"needs teacher probabilities \('oof'\)"):
        kd.train_students(task, KDSettings(max_epochs=1), [kd.StudentRequest(0, 0.2, "oof")], {})
    with pytest.raises(ValueError, match="no students"):
        kd.train_students(task, KDSettings(max_epochs=1), [])


def test_batched_losses_are_the_papers_eq2_per_member():
    torch.manual_seed(0)
    logits, y = torch.randn(3, 5, 4), torch.randint(0, 4, (3, 5))
    p = torch.softmax(torch.randn(3, 5, 4), dim=-1)
    lam = torch.tensor([0.0, 0.2, 1.5])
    got = kd.kd_losses(logits, y, p, lam)
    for m in range(3):
        assert got[m].item() == pytest.approx(kd.kd_loss(logits[m], y[m], p[m], float(lam[m])).item(), rel=1e-6)


@pytest.mark.slow
def test_a_study_trains_a_sets_students_together_in_two_processes_and_caches_each(tmp_path):
    from dataclasses import replace

    from scoring_lab.kd.students import STUDENT_KIND
    from scoring_lab.kd.study import KDStudy
    from scoring_lab.models.cache import ArtifactCache
    from scoring_lab.profiles import load_profile

    profile = load_profile("smoke")
    profile = replace(profile, kd=replace(profile.kd, workers=2, teacher_source="fine-tune", max_epochs=2))
    task = _task()
    study = KDStudy({"tiny": task}, profile, ArtifactCache(tmp_path), progress=False)
    requests = [kd.StudentRequest(s) for s in (0, 1, 2)]
    assert study.train_students("tiny", requests) == 3
    assert study.train_students("tiny", requests) == 0                       # all cached now
    for r in requests:
        cached = KDStudy({"tiny": task}, profile, ArtifactCache(tmp_path), progress=False)
        key = cached.cache.key(cached.models.student_inputs("tiny", r))
        assert cached.cache.exists(STUDENT_KIND, key)
    alone = kd.train_student(task, profile.kd, seed=1)
    in_cache = [e for e in study.cache.entries() if e["kind"] == STUDENT_KIND]
    assert len(in_cache) == 3
    from scoring_lab.kd.student import Student
    loaded = [Student.load(e["path"]) for e in in_cache]
    seed1 = next(s for s in loaded if s.about["seed"] == 1)
    np.testing.assert_allclose(seed1.predict_proba(task.test.texts), alone.student.predict_proba(task.test.texts),
                               atol=1e-5)


def test_a_students_bits_do_not_depend_on_its_companions():
    """Exactly, not approximately: a KD student's numbers must not depend on which other students the cache
    happened to lack when it trained (a warm chapter retraining some students, a cold one all). Each
    member's input projection, bias and embedding lookup run over its own batch's width, and its loss
    history is reduced alone; at the profile's student size a shared width changed the weights' last bits
    (and early stopping turned those into different students)."""
    task = tiny_task(160, 4, 0, n_val=32, n_test=32, vary_length=True)
    settings = KDSettings(max_epochs=3, patience=10)
    rng = np.random.default_rng(3)
    teacher = kd.TeacherProbabilities(task.train.ids, rng.dirichlet(np.ones(4), len(task.train)))
    alone = kd.train_students(task, settings, [kd.StudentRequest(2, 0.02, "t")], {"t": teacher})[0]
    together = kd.train_students(task, settings, [kd.StudentRequest(s, 0.02 if s == 2 else 0.0, "t")
                                                  for s in range(6)], {"t": teacher})[2]
    assert together.info["trained_alongside"] == 6
    for column in ("train_loss", "val_loss", "val_accuracy"):
        np.testing.assert_array_equal(together.history[column], alone.history[column])
    np.testing.assert_array_equal(together.student.predict_proba(task.test.texts),
                                  alone.student.predict_proba(task.test.texts))
