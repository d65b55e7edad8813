"""What the KD chapter trains: its five models and the positive control, the seeds of each, the sets the
lambda and temperature sweep and the out-of-fold comparison run on, and so every student it asks of a set."""
from __future__ import annotations

from . import distill as kd_module
from ..data.task import Task
from ..profiles import KDSettings

TEACHER, SMALL, ANN, STUDENT, KD_STUDENT = ("teacher", "small transformer", "ANN", "student (lambda = 0)",
                                            "KD student")
MODELS = (TEACHER, SMALL, ANN, STUDENT, KD_STUDENT)
ORACLE_STUDENT = "student of the generator"   # the positive control: distilled from the generator's probabilities
ORACLE = "oracle"                             # its targets (scoring_lab.kd.oracle)
TABLE_MODELS = MODELS + (ORACLE_STUDENT,)      # Table 2's rows: the paper's models, then the control


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
    def oof_sets(self) -> list[str]:
        """The sets of the out-of-fold comparison (``kd.oof_sets``: ``first``, the first single-item set;
        ``all``; ``none``; or the sets named, which must be among the plan's)."""
        wanted = self.kd.oof_sets
        if wanted == "none":
            return []
        if wanted == "first":
            return self.single_item_sets[:1]
        if wanted == "all":
            return list(self.sets)
        unknown = [n for n in wanted if n not in self.sets]
        if unknown:
            raise ValueError(f"kd.oof_sets names {unknown}, which are not among the KD sets {list(self.sets)}")
        return list(wanted)

    @property
    def sweep_seeds(self) -> list[int]:
        """The seeds of the lambda sweep: the first ``kd.sweep_seeds`` (all where it is unset)."""
        return self.seeds[: self.kd.sweep_seeds or len(self.seeds)]

    def has_small_transformer(self, name: str) -> bool:
        """Whether the profile trains the small transformer on set ``name`` (``kd.small_transformer_pooled``
        says whether pooled sets get one)."""
        return self.kd.small_transformer_pooled or name in self.single_item_sets

    def distillation_candidates(self, name: str, min_count: int = 1) -> list[kd_module.StudentRequest]:
        """The KD students whose validation accuracy chooses lambda and tau (on the sweep set): every
        lambda > 0 of ``kd.lambdas`` at every temperature of ``kd.temperatures``, over the sweep's seeds,
        learning from the teacher's in-sample targets."""
        if name != self.sweep_set:
            return []
        return [kd_module.StudentRequest(s, float(lam), "in-sample", int(min_count), float(tau))
                for lam in self.kd.lambdas if lam > 0 for tau in self.kd.temperatures for s in self.sweep_seeds]

    def planned_students(self, name: str, min_count: int = 1, lam: float | None = None, temperature: float = 1.0,
                         oracle: bool = False) -> list[kd_module.StudentRequest]:
        """Every student the chapter asks of set ``name``, with vocabulary threshold ``min_count`` and the
        KD setting (``lam``, ``temperature``) chosen on validation (None: not chosen yet, only the
        lambda = 0 students and the choice's candidates): the table's (each seed, lambda 0 and the
        chosen setting), the positive control's (the generator's targets at the chosen setting, where
        ``oracle``), the sweep's (the candidates, and the oracle over lambda at the chosen temperature)
        and the out-of-fold comparison's, where they run on this set."""
        k, m = self.kd, int(min_count)
        requests = [kd_module.StudentRequest(s, 0.0, None, m) for s in self.seeds]
        requests += self.distillation_candidates(name, m)
        if lam is not None:
            requests += [kd_module.StudentRequest(s, float(lam), "in-sample", m, float(temperature)) for s in self.seeds]
            if oracle:
                requests += [kd_module.StudentRequest(s, float(lam), ORACLE, m, float(temperature))
                             for s in self.seeds]
                if name == self.sweep_set:
                    requests += [kd_module.StudentRequest(s, float(x), ORACLE, m, float(temperature))
                                 for x in k.lambdas if x > 0 for s in self.sweep_seeds]
            if name in self.oof_sets:
                requests += [kd_module.StudentRequest(s, float(lam), "out-of-fold", m, float(temperature))
                             for s in self.seeds]
        return list(dict.fromkeys(requests))

    def vocabulary_candidates(self, name: str) -> list[kd_module.StudentRequest]:
        """The lambda = 0 students, one per seed and candidate threshold (``kd.vocab_min_counts``), whose
        validation accuracy chooses set ``name``'s vocabulary threshold."""
        return [kd_module.StudentRequest(s, 0.0, None, int(m)) for m in self.kd.vocab_min_counts for s in self.seeds]
