"""What the KD chapter trains: its five models, the seeds of each, the sets the lambda sweep and the
out-of-fold comparison run on, and so every student it asks of a set."""
from __future__ import annotations

from . import distill as kd_module
from ..data.task import Task
from ..profiles import KDSettings

TEACHER, SMALL, ANN, STUDENT, KD_STUDENT = ("teacher", "small transformer", "ANN", "student (lambda = 0)",
                                            "KD student")
MODELS = (TEACHER, SMALL, ANN, STUDENT, KD_STUDENT)


class KDPlan:
    """The chapter's plan for the sets ``sets`` under the kd settings ``kd``, seeds counted from ``seed``:
    students and the ANN over ``seeds``, the teacher and small transformer over ``transformer_seeds``."""

    def __init__(self, sets: dict[str, Task], kd: KDSettings, seed: int = 0):
        self.sets, self.kd, self.seed = sets, kd, int(seed)
        self.seeds = [self.seed + i for i in range(kd.seeds)]
        self.transformer_seeds = [self.seed + i for i in range(kd.teacher_seeds)]

    @property
    def single_item_sets(self) -> list[str]:
        """The sets built from one task each (all sets where none is)."""
        singles = [n for n, t in self.sets.items() if len(t.meta.get("spec", {}).get("tasks", ())) == 1]
        return singles or list(self.sets)

    @property
    def sweep_set(self) -> str:
        """The set of the lambda sweep (``kd.sweep_set``, else the first single-item set)."""
        return self.kd.sweep_set or self.single_item_sets[0]

    @property
    def oof_set(self) -> str:
        """The set of the out-of-fold comparison (``kd.oof_set``, else the first single-item set)."""
        return self.kd.oof_set or self.single_item_sets[0]

    @property
    def sweep_seeds(self) -> list[int]:
        """The seeds of the lambda sweep: the first ``kd.sweep_seeds`` (all where it is unset)."""
        return self.seeds[: self.kd.sweep_seeds or len(self.seeds)]

    def has_small_transformer(self, name: str) -> bool:
        """Whether the profile trains the small transformer on set ``name`` (``kd.small_transformer_pooled``
        says whether pooled sets get one)."""
        return self.kd.small_transformer_pooled or name in self.single_item_sets

    def planned_students(self, name: str, min_count: int = 1) -> list[kd_module.StudentRequest]:
        """Every student the chapter asks of set ``name``, with vocabulary threshold ``min_count``: the
        table's (each seed, lambda 0 and the paper's lambda), the sweep's and the out-of-fold
        comparison's where they run on this set."""
        k = self.kd
        wanted = [(s, lam, "in-sample") for s in self.seeds for lam in (0.0, k.lam)]
        if name == self.sweep_set:
            wanted += [(s, lam, "in-sample") for lam in k.lambdas for s in self.sweep_seeds]
        if name == self.oof_set:
            wanted += [(s, k.lam, "out-of-fold") for s in self.seeds]
        requests = [kd_module.StudentRequest(s, float(lam), None if lam == 0 else how, int(min_count))
                    for s, lam, how in wanted]
        return list(dict.fromkeys(requests))

    def vocabulary_candidates(self, name: str) -> list[kd_module.StudentRequest]:
        """The lambda = 0 students, one per seed and candidate threshold (``kd.vocab_min_counts``), whose
        validation accuracy chooses set ``name``'s vocabulary threshold."""
        return [kd_module.StudentRequest(s, 0.0, None, int(m)) for m in self.kd.vocab_min_counts for s in self.seeds]
