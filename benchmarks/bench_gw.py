"""Wall time of the GW distance on this CPU, entropic against exact, and how it grows with the
number of responses per task; the 9 x 9 matrix (36 pairs) at the default size is projected from it.

    .venv/bin/python benchmarks/bench_gw.py [--sizes 250 500 1000] [--dim 384] [--epsilon 5e-3]

The clouds are seeded Gaussian features of the backbone's width (384 for MiniLM), shaped by a few
strong directions as fine-tuned [CLS] features are; the solver's cost depends on the number of
points, not on what they mean. Not part of the test suite.
"""
from __future__ import annotations

import argparse
import itertools
import platform
import time

import numpy as np

from scoring_lab import gw


def cloud(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scales = np.geomspace(5.0, 0.1, dim)
    return rng.normal(size=(n, dim)) * scales + rng.normal(size=(4, dim))[rng.integers(0, 4, n)] * 3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[250, 500, 1000])
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--epsilon", type=float, default=gw.GWSettings().epsilon)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    print(f"{platform.processor() or platform.machine()}, numpy {np.__version__}; epsilon {args.epsilon:g}")
    print(f"{'responses':>9} {'method':>9} {'seconds':>8} {'iters':>6} {'distance':>9} {'36 pairs (min)':>15}")
    for n in args.sizes:
        c1, c2 = (gw.cost_matrix(cloud(n, args.dim, s)) for s in (0, 1))
        for method in (gw.EXACT, gw.ENTROPIC):
            settings = gw.GWSettings(method=method, epsilon=args.epsilon)
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                r = gw.gw_distance(c1, c2, settings)
                times.append(time.perf_counter() - t0)
            best = min(times)
            print(f"{n:>9} {method:>9} {best:>8.2f} {r.iterations:>6} {r.distance:>9.4f} "
                  f"{36 * best / 60:>15.1f}")
    n = args.sizes[-1]
    print(f"cost matrices ({n} x {n}) for 9 tasks: ", end="")
    t0 = time.perf_counter()
    for s in range(9):
        gw.cost_matrix(cloud(n, args.dim, s))
    print(f"{time.perf_counter() - t0:.2f} s; pairs of 9 tasks: {len(list(itertools.combinations(range(9), 2)))}")


if __name__ == "__main__":
    main()
