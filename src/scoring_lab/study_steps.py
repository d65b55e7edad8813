"""Timed, memoised steps: how a chapter's study object runs each of its steps once per run and says
what each cost (a step taken from the artifact cache costs what loading it does)."""
from __future__ import annotations

import time


_NESTED: dict[int, list[float]] = {}   # id of a timing dict -> the seconds its open steps' inner steps took


class TimedSteps:
    """Mixed into a chapter's study: ``_timed(step, make)`` runs ``make()`` and adds its seconds to
    ``timing[step]``, less what steps timed inside it took (they count as their own, so the steps' seconds add
    up to the time spent); ``_once(key, make)`` runs ``make()`` once per key and keeps the value."""

    timing: dict[str, float]
    _memo: dict

    def _timed(self, step: str, make):
        """``make()``, its seconds (without the inner steps') added to ``timing[step]``."""
        stack = _NESTED.setdefault(id(self.timing), [])
        stack.append(0.0)
        t0 = time.perf_counter()
        try:
            value = make()
        finally:
            elapsed = time.perf_counter() - t0
            inner = stack.pop()
            if stack:
                stack[-1] += elapsed
            else:
                del _NESTED[id(self.timing)]
            self.timing[step] = self.timing.get(step, 0.0) + elapsed - inner
        return value

    def _once(self, key, make):
        """``make()`` the first time ``key`` is asked for, the kept value after."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]
