"""The LSTM students' probabilities on their set's test split, cached apart from the students (kind
``kd-student-proba``).

Every table of the KD chapter reads the students' test predictions: Table 2 over seeds, the agreement with the
teacher, the sweep, the unknown words, the out-of-fold comparison. Scoring some 200 students' test responses
again, each student loaded from its folder first, was most of a re-executed chapter's time. Each student's
(n_test, K) probabilities are computed once, the first time they are asked for, and read after. Their key is the
student's own (so a retrained student is scored anew), the test split's fingerprint and the scoring code.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import student as student_module
from ..models.cache import code_version
from ..models.per_task import split_fingerprint

if TYPE_CHECKING:
    from .distill import StudentRequest
    from .students import StudentsAndANN

PROBA_KIND = "kd-student-proba"


def proba_on_test(models: "StudentsAndANN", name: str, request: "StudentRequest", planned: bool = True) -> np.ndarray:
    """(n_test, K) float32 probabilities of student ``request`` on set ``name``'s test split, from the cache, else
    scored now (the student trained first if the cache lacks it: with the set's planned students when
    ``planned``, else alone)."""
    test = models.sets[name].test
    inputs = {"student": models.student_inputs(name, request), "test": split_fingerprint(test),
              "code": code_version(student_module)}

    def produce(folder):
        st = models.planned_student(name, request) if planned else models.cached_student(name, request)
        np.save(folder / "proba.npy", st.student.predict_proba(test.texts).astype(np.float32))

    proba, _ = models.cache.get_or_compute(PROBA_KIND, inputs, produce, lambda art: np.load(art.file("proba.npy")))
    return proba


def student_proba(models: "StudentsAndANN", name: str, seed: int, lam: float, how: str = "in-sample",
                  temperature: float = 1.0) -> np.ndarray:
    """:func:`proba_on_test` of the student :meth:`~scoring_lab.kd.students.StudentsAndANN.student` returns."""
    return proba_on_test(models, name, models.request(name, seed, lam, how, temperature))


def kd_student_proba(models: "StudentsAndANN", name: str, seed: int, how: str = "in-sample") -> np.ndarray:
    """:func:`proba_on_test` of set ``name``'s KD student (the chosen lambda and temperature) on targets ``how``."""
    lam, tau = models.kd_setting()
    return student_proba(models, name, seed, lam, how, tau)
