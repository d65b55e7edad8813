"""Timed, memoised steps: how a chapter's study object runs each of its steps once per run and says
what each cost (a step taken from the artifact cache costs what loading it does)."""
from __future__ import annotations

import time


class TimedSteps:
    """Mixed into a chapter's study: ``_timed(step, make)`` runs ``make()`` and adds its seconds to
    ``timing[step]``; ``_once(key, make)`` runs ``make()`` once per key and keeps the value."""

    timing: dict[str, float]
    _memo: dict

    def _timed(self, step: str, make):
        """``make()``, its seconds added to ``timing[step]``."""
        t0 = time.perf_counter()
        value = make()
        self.timing[step] = self.timing.get(step, 0.0) + time.perf_counter() - t0
        return value

    def _once(self, key, make):
        """``make()`` the first time ``key`` is asked for, the kept value after."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]
