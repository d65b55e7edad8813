"""The feature clouds GW compares: each task's train and validation responses (``gw.feature_splits``,
a seeded subsample of ``gw.max_points``), embedded by the task's own scorer. Test responses stay out: a plan
is a choice, and test responses play no part in choices."""
from __future__ import annotations

import numpy as np

from ..data.task import Split, concat_splits
from ..study_steps import TimedSteps
from . import gromov
from .protocol import StudySetup


class FeatureClouds(TimedSteps):
    """Each task's cloud of final-layer [CLS] features under its own scorer, made once per run."""

    def __init__(self, setup: StudySetup):
        self.setup = setup
        self.timing, self._memo = setup.timing, {}

    def feature_split(self, task: str) -> Split:
        """The responses whose features stand for ``task``: its ``gw.feature_splits``, subsampled to
        ``gw.max_points`` (seeded)."""
        s = self.setup
        t = s.tasks[task]
        pool = concat_splits(*(t.splits()[name] for name in s.settings.feature_splits))
        return pool.subset(gromov.subsample_rows(len(pool), s.settings.max_points, s.seed))

    def features(self) -> dict[str, np.ndarray]:
        """{task: (n_t, H) final-layer [CLS] embeddings under the task's own scorer}."""
        s = self.setup
        return self._once("features", lambda: self._timed("features (frozen layers + top layers)", lambda: {
            t: s.evaluator.features(t, self.feature_split(t), "+".join(s.settings.feature_splits))
            for t in s.names}))

    def pretrained_features(self) -> dict[str, np.ndarray]:
        """{task: (n_t, H) final-layer [CLS] embeddings of the same responses under the pre-trained encoder}:
        what the clouds look like before any task's fine-tuning (the premise's control)."""
        s = self.setup
        return self._once("pretrained", lambda: self._timed("features (pre-trained encoder)", lambda: {
            t: s.evaluator.pretrained_features(t, self.feature_split(t), "+".join(s.settings.feature_splits))
            for t in s.names}))
