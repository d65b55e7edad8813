"""The chapter's protocol: the names of its plans, the paper's metrics, and what every step of a study
shares (:class:`StudySetup`: the tasks and the merge evaluator over their scorers, the profile's ``gw``
settings, the cache, the seed and the timing of the steps)."""
from __future__ import annotations

from ..data.task import Task
from ..merging.evaluation import MergeEvaluator
from ..models.cache import ArtifactCache
from ..models.per_task import TrainedScorer, main_metric, metric_columns, task_kind
from ..profiles import Profile

PREMERGE = "Pre-Merged"
GW_PLAN = "GW-SMM"
HUMAN, LLM = "Human Knowledge", "GPT-o1"
DESCRIPTIONS, FAMILIES = "task descriptions", "planted families"
RANDOM = "random"
PAPER_METRICS = ("micro_f1", "macro_f1", "exact_match", "per_label_accuracy")


class StudySetup:
    """What every step of the study shares: the run's ``tasks`` (``names`` in order, their ``kind``),
    the ``evaluator`` over their per-task ``scorers``, the profile and its ``gw`` ``settings``, the
    ``metrics`` the tables report and the ``main`` one, the cache, the seed, and ``timing``
    {step: seconds in this run (loading, when cached)}."""

    def __init__(self, tasks: dict[str, Task], scorers: dict[str, TrainedScorer], profile: Profile,
                 cache: ArtifactCache | None = None, seed: int = 0, progress: bool = True):
        self.tasks, self.profile, self.settings = tasks, profile, profile.gw
        self.names = list(tasks)
        self.kind = task_kind(tasks)
        self.seed, self.progress = int(seed), progress
        self.cache = cache or ArtifactCache()
        self.evaluator = MergeEvaluator(scorers, tasks, profile.train, self.seed, self.cache, progress)
        self.metrics = PAPER_METRICS if self.kind == "multilabel" else metric_columns(self.kind)
        self.main = main_metric(self.kind)
        self.timing: dict[str, float] = {}

    @property
    def n_models(self) -> int:
        """T': the profile's, or one fewer than the tasks when there are not more tasks than that."""
        return max(1, min(self.settings.n_models, len(self.names) - 1))

    def families(self) -> dict[str, list[str]] | None:
        """{family: tasks} when every task's meta names its family (the synthetic benchmark), else None."""
        if not all("family" in t.meta for t in self.tasks.values()):
            return None
        out: dict[str, list[str]] = {}
        for name, t in self.tasks.items():
            out.setdefault(t.meta["family"], []).append(name)
        return out
