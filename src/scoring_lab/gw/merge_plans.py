"""Merge plans (GW-SMM section 2.2): partitions of the tasks into T' groups, the one with the most
similarity inside its groups, random plans with a plan's group sizes and plans written as groups.

A merge plan partitions the T tasks into T' groups; the plan chosen maximises the summed
similarity (:func:`scoring_lab.gw.gromov.similarity`) of the pairs inside its groups
(:func:`best_plan`, exhaustive: nine tasks into five groups is 6,951 partitions).
The paper's text says it "maximizes" this sum and, one sentence later, searches for
the plan that "minimizes" it; minimising a similarity would merge the least similar
tasks, the opposite of the method's premise, so the maximum is the objective here.
"""
from __future__ import annotations

import functools
import itertools
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

Plan = tuple[tuple[str, ...], ...]


def partitions(items: Sequence[str], k: int, max_size: int | None = None) -> Iterator[Plan]:
    """Every partition of ``items`` into exactly ``k`` non-empty groups of at most ``max_size`` (each
    once, groups in the order of their first item, items in their given order)."""
    items = list(items)
    if not 1 <= k <= len(items):
        raise ValueError(f"cannot split {len(items)} items into {k} groups")
    cap = len(items) if max_size is None else max_size
    if cap < 1 or cap * k < len(items):
        raise ValueError(f"{len(items)} items do not fit into {k} groups of at most {cap}")

    def grow(i: int, groups: list[list[str]]):
        if len(groups) + (len(items) - i) < k:
            return
        if i == len(items):
            if len(groups) == k:
                yield tuple(tuple(g) for g in groups)
            return
        for g in groups:
            if len(g) < cap:
                g.append(items[i])
                yield from grow(i + 1, groups)
                g.pop()
        if len(groups) < k:
            groups.append([items[i]])
            yield from grow(i + 1, groups)
            groups.pop()

    yield from grow(0, [])


@functools.lru_cache(maxsize=8)
def _every_partition(items: tuple[str, ...], k: int, max_size: int | None) -> tuple[Plan, ...]:
    """:func:`partitions`, kept: the chapter searches the same partitions many times."""
    return tuple(partitions(items, k, max_size))


def plan_score(plan: Plan, sim: pd.DataFrame) -> float:
    """Sum of the similarities of every pair of tasks merged into the same group (the paper's L(M))."""
    return float(sum(sim.loc[a, b] for group in plan for a, b in itertools.combinations(group, 2)))


def sizes(plan: Plan) -> tuple[int, ...]:
    """A plan's group sizes, largest first: its size profile, e.g. (3, 3, 1, 1, 1)."""
    return tuple(sorted((len(g) for g in plan), reverse=True))


def best_plan(sim: pd.DataFrame, n_models: int, max_size: int | None = None,
              size_profile: tuple[int, ...] | None = None) -> tuple[Plan, float]:
    """The partition of the tasks into ``n_models`` groups of at most ``max_size`` (and, when given, with
    group sizes ``size_profile``) with the largest :func:`plan_score`, found by exhaustive search (ties:
    the first in :func:`partitions`' order)."""
    names = list(sim.index)
    where = {t: i for i, t in enumerate(names)}
    values = sim.loc[names, names].to_numpy(dtype=float)
    best, best_score = None, -np.inf
    for plan in _every_partition(tuple(names), n_models, max_size):
        if size_profile is not None and sizes(plan) != tuple(size_profile):
            continue
        score = float(sum(values[where[a], where[b]] for group in plan for a, b in itertools.combinations(group, 2)))
        if score > best_score + 1e-12:
            best, best_score = plan, score
    if best is None:
        raise ValueError(f"no plan of {len(names)} tasks into {n_models} groups has the sizes {size_profile}")
    return best, best_score


def random_plans_like(items: Sequence[str], plan: Plan, count: int, seed: int = 0) -> tuple[list[Plan], int]:
    """(``count`` distinct plans drawn uniformly, seeded, from every partition of ``items`` with the same
    group sizes as ``plan`` other than ``plan`` itself, how many such partitions there are): the random
    plans a plan is ranked among."""
    profile = sizes(plan)
    every = [p for p in _every_partition(tuple(items), len(plan), profile[0])
             if sizes(p) == profile and not same_plan(p, plan)]
    if not every or count < 1:
        return [], len(every)
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(every), size=min(count, len(every)), replace=False)
    return [every[i] for i in sorted(picks)], len(every)


def plan_from_groups(items: Sequence[str], groups: Sequence[Sequence[str]]) -> Plan:
    """The plan that merges ``groups`` and keeps every other item on its own (in ``items``' order)."""
    items = list(items)
    seen = [t for g in groups for t in g]
    unknown = sorted(set(seen) - set(items))
    if unknown:
        raise ValueError(f"plan names unknown task(s) {unknown}")
    if len(seen) != len(set(seen)):
        raise ValueError(f"a task is in two groups of the plan {groups}")
    placed = {t: tuple(g) for g in groups for t in g}
    plan, done = [], set()
    for t in items:
        g = placed.get(t, (t,))
        if g not in done:
            done.add(g)
            plan.append(tuple(x for x in items if x in g))
    return tuple(plan)


def plan_labels(plan: Plan, items: Sequence[str]) -> list[int]:
    """The group number of each of ``items`` under ``plan`` (for the adjusted Rand index)."""
    where = {t: i for i, g in enumerate(plan) for t in g}
    return [where[t] for t in items]


def same_plan(a: Plan, b: Plan) -> bool:
    """Whether two plans have the same groups (in any order, items in any order)."""
    return {frozenset(g) for g in a} == {frozenset(g) for g in b}


def merged_groups(plan: Plan) -> list[tuple[str, ...]]:
    """The groups of a plan that merge two or more tasks (singletons keep their own model)."""
    return [g for g in plan if len(g) > 1]


def format_plan(plan: Plan) -> str:
    """``(a, b), (c, d, e)``: the merged groups of a plan, as the paper writes them."""
    return ", ".join("(" + ", ".join(g) + ")" for g in merged_groups(plan)) or "no merges"
