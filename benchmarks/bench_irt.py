"""What one fitness evaluation of the IRT chapter costs on this machine, and py-irt's fit.

    .venv/bin/python benchmarks/bench_irt.py [--profile default] [--threads 2] [--repeats 5]

Measures, for the profile's merge group and search merge (``irt.evolve_method``), with nothing taken
from the artifact cache for the models scored (a fresh cache folder; the frozen states come from
the project's cache, as in the book):

* building a merge (the merge alone), then scoring it on all fitness items (full-data fitness) and
  on the searches' subset (``irt.fitness_items`` per task): seconds and FLOPs of each, and their
  ratio;
* one estimator call (mp-IRT and gmp-IRT's lambda fit, p-IRT's ability fit) on that subset;
* one py-irt fit of the population's shape (random answers) at ``irt.irt_epochs``.

Not part of the tests: the figures are printed.
"""
from __future__ import annotations

import argparse
import platform
import tempfile
import time

import numpy as np
import torch

from scoring_lab.irt import estimators as irt
from scoring_lab.models.cache import ArtifactCache
from scoring_lab.irt.study import IRTStudy
from scoring_lab.book.run import setup


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    run = setup("irt", args.profile)
    study = IRTStudy(run.tasks, run.scorers(progress=False), run.profile, run.cache, progress=False)
    for t in study.group:   # the shared frozen states, from the project's cache
        for split in (study.settings.fitness_split, study.settings.eval_split):
            study.evaluator.states(t, run.tasks[t].splits()[split], split)
    study.evaluator.cache = ArtifactCache(tempfile.mkdtemp())   # every model below is scored afresh
    rng = np.random.default_rng(0)
    low, high = study.space.bounds
    subset = study.fit_pos[study.fitness_subset()]
    merge_s, full_s, sub_s = [], [], []
    full = sub = None
    for _ in range(args.repeats):
        recipe = study.space.recipe(rng.uniform(low, high))
        t0 = time.perf_counter()
        study.scorer.encoder(recipe)
        merge_s.append(time.perf_counter() - t0)
        full = study.scorer.score(recipe, study.fit_pos)
        full_s.append(full.seconds)
        study.scorer._loaded = None   # score the subset as a search does: merge, then the subset alone
        sub = study.scorer.score(recipe, subset)
        sub_s.append(sub.seconds)
    print(f"{platform.processor() or platform.machine()}, {args.threads} thread(s), profile {args.profile}, "
          f"group {', '.join(study.group)}, merge {study.settings.evolve_method}")
    print(f"merge alone:                {np.median(merge_s):.3f} s (median of {args.repeats})")
    print(f"full-data fitness:          {np.median(full_s):.3f} s, {len(study.fit_pos)} items, "
          f"{full.flops / 1e9:.1f} GFLOPs (merge included in the seconds)")
    print(f"subset fitness:             {np.median(sub_s):.3f} s, {len(subset)} items, {sub.flops / 1e9:.1f} GFLOPs")
    print(f"ratio full / subset:        {np.median(full_s) / np.median(sub_s):.1f}x seconds, "
          f"{full.flops / sub.flops:.1f}x FLOPs")
    # estimators on random item parameters of the pool's shape
    d = max(study.settings.dims)
    items = irt.ItemParameters(np.abs(rng.normal(1, 0.3, (len(study.fit_pos), d))), rng.normal(size=len(study.fit_pos)))
    ends = rng.normal(size=(len(study.group), d))
    y = (rng.random(len(subset)) < 0.5).astype(float)
    pos = np.arange(len(subset))
    for est in (irt.P_IRT, irt.MP_IRT):
        t0 = time.perf_counter()
        for _ in range(20):
            irt.estimate(est, y, pos, items, endpoints=ends)
        print(f"{est} estimate:             {(time.perf_counter() - t0) / 20 * 1e3:.1f} ms ({d} dims, {len(subset)} items)")
    m = study.settings.population + len(study.group) + 1
    answers = (rng.random((m, len(study.pool))) < 0.4).astype(int)
    t0 = time.perf_counter()
    irt.fit_items(answers, d, study.settings.irt_epochs, study.settings.irt_lr)
    print(f"py-irt fit:                 {time.perf_counter() - t0:.1f} s ({m} models x {len(study.pool)} items, "
          f"{d} dims, {study.settings.irt_epochs} epochs)")


if __name__ == "__main__":
    main()
