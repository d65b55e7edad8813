"""Wall time of the full T x T GW matrix on this machine, entropic against conditional gradient (non-entropic,
local), by responses per task.

    .venv/bin/python benchmarks/bench_gw.py [--profile default] [--sizes 100 200 300 500]
                                            [--epsilons 5e-3 1e-2 2e-2] [--workers 2] [--backend numpy]

The features are the GW chapter's: each task's training and validation responses under its own
scorer (from the artifact cache the chapter fills; what is missing is computed first), a seeded
sample of the largest size, smaller sizes nested in it. For each size: the seconds the whole
matrix takes with each solver (pairs spread over ``--workers`` processes), how well each entropic
epsilon's distances agree with the conditional-gradient ones (Spearman over the pairs), and the plan each gives.
``--backend torch`` hands POT torch tensors (on the GPU when there is one). Not part of the tests.
"""
from __future__ import annotations

import argparse
import platform
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import torch
from scipy import stats

from scoring_lab.gw import gromov, merge_plans
from scoring_lab.gw.study import GWStudy
from scoring_lab.book.run import setup


def matrix_seconds(features, settings: gromov.GWSettings, workers: int, backend: str):
    """(distances, seconds) of the full matrix; the torch backend solves pair by pair."""
    t0 = time.perf_counter()
    if backend == "numpy":
        d = gromov.pairwise_distances(features, settings, progress=False, workers=workers)
        return d.to_numpy(), time.perf_counter() - t0
    import ot

    device = "cuda" if torch.cuda.is_available() else "cpu"
    costs = [torch.as_tensor(gromov.cost_matrix(gromov.subsample(f, settings.max_points)), device=device)
             for f in features.values()]
    n = len(costs)
    d = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            p = torch.full((len(costs[i]),), 1 / len(costs[i]), device=device, dtype=costs[i].dtype)
            q = torch.full((len(costs[j]),), 1 / len(costs[j]), device=device, dtype=costs[j].dtype)
            if settings.method == gromov.CONDITIONAL_GRADIENT:
                v = ot.gromov.gromov_wasserstein2(costs[i], costs[j], p, q, "square_loss", max_iter=settings.max_iter)
            else:
                v = ot.gromov.entropic_gromov_wasserstein2(costs[i], costs[j], p, q, "square_loss",
                                                           epsilon=settings.epsilon, tol=settings.tol,
                                                           max_iter=settings.max_iter)
            d[i, j] = d[j, i] = float(v)
    return d, time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="default")
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 200, 300, 500])
    p.add_argument("--epsilons", type=float, nargs="+", default=[5e-3, 1e-2, 2e-2])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--backend", choices=("numpy", "torch"), default="numpy")
    args = p.parse_args()
    run = setup("gw", profile=args.profile)
    profile = replace(run.profile, gw=replace(run.profile.gw, max_points=max(args.sizes)))
    study = GWStudy(run.tasks, run.scorers(), profile, run.cache, run.seed)
    features = study.features()
    names = list(features)
    iu = np.triu_indices(len(names), 1)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, backend {args.backend}, "
          f"{args.workers} worker(s); {len(names)} tasks, {len(iu[0])} pairs; profile {args.profile}")
    print(f"{'responses':>9} {'method':>9} {'epsilon':>8} {'seconds':>8} {'spearman':>9}  plan")
    base = study.gw.solver_settings(gromov.CONDITIONAL_GRADIENT)
    for n in sorted(args.sizes):
        cg, secs = matrix_seconds(features, replace(base, max_points=n), args.workers, args.backend)
        rows = [("cond-grad", "-", secs, 1.0, cg)]
        for eps in args.epsilons:
            s = replace(base, method=gromov.ENTROPIC, epsilon=eps, tol=profile.gw.tol, max_points=n)
            try:
                d, secs = matrix_seconds(features, s, args.workers, args.backend)
            except gromov.GWError as e:
                print(f"{n:>9} {'entropic':>9} {eps:>8g}  failed: {e}")
                continue
            rows.append(("entropic", f"{eps:g}", secs, float(stats.spearmanr(d[iu], cg[iu]).statistic), d))
        for method, eps, secs, rho, d in rows:
            sim = gromov.similarity(pd.DataFrame(d, index=names, columns=names))
            plan, _ = merge_plans.best_plan(sim, study.n_models, profile.gw.max_group_size)
            print(f"{n:>9} {method:>9} {eps:>8} {secs:>8.1f} {rho:>9.3f}  {merge_plans.format_plan(plan)}", flush=True)


if __name__ == "__main__":
    main()
